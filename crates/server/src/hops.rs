//! Per-hop timestamps of the write path, for a diagnostic run: with the
//! environment variable `FERROKEEPER_HOPS=DIR` each server appends a line
//! `<CLOCK_MONOTONIC ns> <hop> <log index>` to `DIR/server-<id>.hops` at
//! every hand-off a write crosses — the client's request read, the
//! append queued and flushed to each follower, read there, handed to the
//! log thread, fsynced, acknowledged, the acknowledgement read back, the
//! commit, the answer, its flush to the client. The servers of one host
//! share the clock, so `scripts/hop_breakdown.py DIR` can put the hops of
//! a whole ensemble on one line, network and wake-ups included — what the
//! per-server budget (`budget`) cannot see. Off (the default) a hop costs
//! one relaxed atomic load; on, a lock and a formatted line, so the
//! numbers it gives are a little above an uninstrumented run's.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

/// The environment variable that turns it on.
pub const ENV: &str = "FERROKEEPER_HOPS";

static ON: AtomicBool = AtomicBool::new(false);
/// Lines not yet written, and where they go.
static OUT: Mutex<Option<(std::fs::File, Vec<u8>)>> = Mutex::new(None);

/// Written out once this many bytes are buffered (and at `flush`).
const FLUSH_AT: usize = 1 << 16;

/// Starts recording when `FERROKEEPER_HOPS` names a directory.
pub fn init(server_id: Option<u64>) -> std::io::Result<()> {
    let Some(dir) = std::env::var_os(ENV) else {
        return Ok(());
    };
    let dir = std::path::PathBuf::from(dir);
    std::fs::create_dir_all(&dir)?;
    let name = format!("server-{}.hops", server_id.unwrap_or(0));
    let file = std::fs::File::create(dir.join(&name))?;
    *OUT.lock().unwrap_or_else(|p| p.into_inner()) = Some((file, Vec::with_capacity(FLUSH_AT)));
    ON.store(true, Ordering::Relaxed);
    tracing::warn!(
        "{ENV} is set: recording every write's hops to {} (a diagnostic; it slows the server)",
        dir.join(name).display()
    );
    Ok(())
}

/// Whether hops are being recorded (to skip work done only for them).
#[inline]
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

/// Records that the write at log index `index` (0 when the hop does not
/// know it) passed `hop` now.
#[inline]
pub fn hop(hop: &'static str, index: u64) {
    if on() {
        record(hop, index);
    }
}

#[cold]
fn record(hop: &str, index: u64) {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    let ns = ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64;
    let mut out = OUT.lock().unwrap_or_else(|p| p.into_inner());
    if let Some((file, buf)) = out.as_mut() {
        let _ = writeln!(buf, "{ns} {hop} {index}");
        if buf.len() >= FLUSH_AT {
            let _ = file.write_all(buf);
            buf.clear();
        }
    }
}

/// Writes out what is buffered (at shutdown).
pub fn flush() {
    if let Some((file, buf)) = OUT.lock().unwrap_or_else(|p| p.into_inner()).as_mut() {
        let _ = file.write_all(buf);
        buf.clear();
    }
}

/// Records where a Raft message is, when recording and it is one a write
/// crosses (`raft_hop`).
#[inline]
pub fn raft(prefix: Prefix, m: &raft::prelude::Message) {
    if on() {
        if let Some((hop, index)) = raft_hop(prefix, m) {
            record(hop, index);
        }
    }
}

/// A Raft message's hop name at `prefix`, and the log index it is about:
/// an append's last entry, an acknowledgement's index. None for other
/// messages (heartbeats, votes, appends with no entries).
fn raft_hop(prefix: Prefix, m: &raft::prelude::Message) -> Option<(&'static str, u64)> {
    use raft::prelude::MessageType as T;
    let (kind, index) = match m.get_msg_type() {
        T::MsgAppend => (0, m.entries.last()?.index),
        T::MsgAppendResponse if !m.reject => (1, m.index),
        _ => return None,
    };
    let names = match prefix {
        Prefix::CoreOut => ["core_out_append", "core_out_ack"],
        Prefix::Flushed => ["flushed_append", "flushed_ack"],
        Prefix::Read => ["read_append", "read_ack"],
        Prefix::CoreIn => ["core_in_append", "core_in_ack"],
    };
    Some((names[kind], index))
}

/// Where a Raft message is (`raft_hop`).
#[derive(Clone, Copy)]
pub enum Prefix {
    /// Handed by the core to the link's queue.
    CoreOut,
    /// Written and flushed to the peer's socket.
    Flushed,
    /// Read from a peer's socket.
    Read,
    /// Taken in by the core.
    CoreIn,
}

/// Records the hop of a whole peer frame (`peer_frame`: a Raft message's
/// is parsed again; only while recording).
pub(crate) fn frame(prefix: Prefix, f: &[u8]) {
    use protobuf::Message as _;
    if f.len() > 5 && f[4] == crate::peer_frame::KIND_RAFT {
        if let Ok(m) = raft::prelude::Message::parse_from_bytes(&f[5..]) {
            raft(prefix, &m);
        }
    }
}
