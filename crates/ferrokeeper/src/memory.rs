//! How the process takes memory from the system and gives it back: the
//! allocator (mimalloc), when freed pages are returned (at once while
//! loading, after mimalloc's delay once serving), and no transparent huge
//! pages. The server's own structures and limits live in the crates; this
//! file owns only the process-wide allocator settings, made once at start
//! and once when serving begins.

/// mimalloc: per-thread free lists and size classes fit the request path's
/// many small, short-lived buffers better than glibc's malloc (setData
/// 32x8 on a 3-server ensemble: ~15% more ops/s, less CPU per op).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` (the same number in mimalloc 2 and 3).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// mimalloc's own purge delay, saved while startup runs with none.
static DEFAULT_PURGE_DELAY: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(-1);

/// The environment variable mimalloc reads for its transparent-huge-page
/// option: when an operator sets it, mimalloc's own handling of it (at
/// its start, before `main`) is what they get, and `setup` leaves the
/// process's huge-page setting alone.
const ALLOW_THP_ENV: &str = "MIMALLOC_ALLOW_THP";

/// Process start, before anything is loaded.
pub(crate) fn setup() {
    if std::env::var_os(ALLOW_THP_ENV).is_none() {
        no_transparent_huge_pages();
    }
    return_freed_memory_at_once();
}

/// No transparent huge pages for this process. mimalloc asks for them on
/// its arenas (`madvise(MADV_HUGEPAGE)`), so the first touch of any fresh
/// or purged 2 MiB of an arena has the kernel find and zero a whole huge
/// page inside the fault — one small allocation on the request path pays
/// for 2 MiB. On a virtual machine whose host backs guest memory lazily
/// that fault took 22 ms at the median (4 KiB pages: 16 µs each, for only
/// the pages touched), and it is what stalled a leader's core for 30–127
/// ms when a restarted follower rejoined (its catch-up buffers were fresh
/// arena memory): writes stopped for 46–127 ms in 11 of 18 runs. The JVM
/// asks for them only with `-XX:+UseTransparentHugePages`.
fn no_transparent_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes integer arguments only and changes
    // a flag of this process; it fails (EINVAL) on kernels before 3.15,
    // and then nothing changes.
    let r = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if r != 0 {
        // Logging is not set up yet; the server runs the same either way.
        eprintln!(
            "ferrokeeper: could not turn off transparent huge pages for this process: {}",
            std::io::Error::last_os_error()
        );
    }
}

/// Freed pages go back to the system at once while the server loads its
/// snapshot and log: with the default delay a restart kept the snapshot's
/// transient buffers resident (876 vs 343 bytes per znode after loading
/// 300,000).
fn return_freed_memory_at_once() {
    // SAFETY: reads and sets one of mimalloc's documented options; no pointers.
    unsafe {
        let d = libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY);
        DEFAULT_PURGE_DELAY.store(d as i64, std::sync::atomic::Ordering::Relaxed);
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
    }
}

/// Once serving: what loading freed goes back now, then mimalloc's delay
/// again — returning each page the moment it empties made the request
/// path fault pages back in (page faults were ~4% of all CPU under
/// setData load; create 40.7k -> 47.4k ops/s; memory per znode after a
/// restart unchanged, 347 -> 335 bytes with 300,000).
pub(crate) fn keep_freed_memory_for_reuse() {
    let d = DEFAULT_PURGE_DELAY.load(std::sync::atomic::Ordering::Relaxed);
    if d < 0 {
        return;
    }
    // SAFETY: documented mimalloc calls; no pointers.
    unsafe {
        libmimalloc_sys::mi_collect(true);
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, d as std::ffi::c_long);
    }
}

/// Takes back what other threads freed in this thread's heap, and returns
/// unused pages to the system.
pub(crate) fn collect_freed_memory() {
    // SAFETY: a documented mimalloc call; no pointers.
    unsafe { libmimalloc_sys::mi_collect(false) };
}
