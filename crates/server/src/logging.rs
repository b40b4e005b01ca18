//! The server's log: the line format (as ZooKeeper's log4j lines: time,
//! `[myid:N]`, level, module, message), where lines go (stderr or a file
//! rotated by size), and the rule that logging can never hurt the server:
//! a write that fails (a closed pipe, a full disk, a log reader that went
//! away) drops that line and counts it; it never panics. Colour codes only
//! on a terminal, as log4j's console appender.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Log lines dropped because their write failed (metric
/// `log_writes_dropped_total`).
static DROPPED: AtomicU64 = AtomicU64::new(0);

pub fn dropped_writes() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

/// A file is rotated at this size, keeping this many old ones (ZooKeeper's
/// log4j default: 10 MB x 10).
const LOG_MAX_BYTES: u64 = 10 << 20;
const LOG_KEEP: usize = 10;

/// One line per event: time, `[myid:N]` (as ZooKeeper's log lines),
/// level, module, message and fields.
struct LineFormat {
    myid: String,
}

impl<S, N> tracing_subscriber::fmt::FormatEvent<S, N> for LineFormat
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    N: for<'a> tracing_subscriber::fmt::FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &tracing_subscriber::fmt::FmtContext<'_, S, N>,
        mut w: tracing_subscriber::fmt::format::Writer<'_>,
        event: &tracing::Event<'_>,
    ) -> std::fmt::Result {
        use tracing_subscriber::fmt::time::FormatTime;
        tracing_subscriber::fmt::time::SystemTime.format_time(&mut w)?;
        let meta = event.metadata();
        write!(
            w,
            " [myid:{}] {:>5} {}: ",
            self.myid,
            meta.level(),
            meta.target()
        )?;
        ctx.field_format().format_fields(w.by_ref(), event)?;
        writeln!(w)
    }
}

#[derive(Clone, Copy)]
enum Target {
    Stderr,
    File(&'static RotatingFile),
}

/// Writes one formatted line; a failure is counted, never returned (the
/// fmt layer would report it on stderr, which may be what failed).
struct Lossy(Target);

impl Write for Lossy {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let r = match self.0 {
            Target::Stderr => std::io::stderr().write_all(buf),
            Target::File(mut f) => f.write_all(buf),
        };
        if r.is_err() {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Installs the global logger: to `file` (rotated) when given, else to
/// stderr. `RUST_LOG` filters (default `info`).
pub fn init(myid: Option<u64>, file: Option<&Path>) -> std::io::Result<()> {
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let (target, ansi) = match file {
        Some(f) => {
            let file = RotatingFile::open(f, LOG_MAX_BYTES, LOG_KEEP)
                .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", f.display())))?;
            (Target::File(Box::leak(Box::new(file))), false)
        }
        None => (Target::Stderr, std::io::stderr().is_terminal()),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .log_internal_errors(false)
        .event_format(LineFormat {
            myid: myid.map(|i| i.to_string()).unwrap_or_default(),
        })
        .with_writer(move || Lossy(target))
        .init();
    Ok(())
}

/// A log file that is rotated by size: `NAME` is written; when it would
/// pass `max_bytes` it becomes `NAME.1` (`NAME.1` becomes `NAME.2`, …, up
/// to `keep` old files) and a new `NAME` is started.
pub struct RotatingFile {
    inner: std::sync::Mutex<Rotating>,
}

struct Rotating {
    path: PathBuf,
    file: std::fs::File,
    size: u64,
    max_bytes: u64,
    keep: usize,
}

impl RotatingFile {
    pub fn open(path: &Path, max_bytes: u64, keep: usize) -> std::io::Result<RotatingFile> {
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        let size = file.metadata()?.len();
        Ok(RotatingFile {
            inner: std::sync::Mutex::new(Rotating {
                path: path.to_path_buf(),
                file,
                size,
                max_bytes,
                keep,
            }),
        })
    }
}

impl Rotating {
    fn rotate(&mut self) -> std::io::Result<()> {
        let name = |i: usize| {
            let mut s = self.path.clone().into_os_string();
            s.push(format!(".{i}"));
            PathBuf::from(s)
        };
        let _ = std::fs::remove_file(name(self.keep));
        for i in (1..self.keep).rev() {
            let _ = std::fs::rename(name(i), name(i + 1));
        }
        std::fs::rename(&self.path, name(1))?;
        self.file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

impl Write for &RotatingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut r = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        if r.size > 0 && r.size + buf.len() as u64 > r.max_bytes && r.keep > 0 {
            // A failed rotation keeps writing to the current file.
            let _ = r.rotate();
        }
        r.file.write_all(buf)?;
        r.size += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotates_by_size_and_keeps_n_files() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("x.log");
        let f = RotatingFile::open(&path, 100, 2).unwrap();
        for i in 0..30 {
            writeln!(&f, "line {i:03} of the log......").unwrap();
        }
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        assert!(read(&path).len() <= 100);
        assert!(read(&d.path().join("x.log.1")).len() <= 100);
        assert!(d.path().join("x.log.2").exists());
        assert!(!d.path().join("x.log.3").exists());
        // The newest line is in the current file, older ones in .1.
        assert!(read(&path).contains("line 029"));
        let all = read(&d.path().join("x.log.2")) + &read(&d.path().join("x.log.1")) + &read(&path);
        let nums: Vec<u32> = all.lines().map(|l| l[5..8].parse().unwrap()).collect();
        assert!(
            nums.windows(2).all(|w| w[1] == w[0] + 1),
            "in order, none lost within the kept files"
        );
    }
}
