//! The exclusive lock a server holds on its dataDir and its dataLogDir for
//! as long as it runs, so that a second server started on the same
//! directories (a common mistake: `start-foreground` beside the daemon)
//! stops at once and touches nothing — no listing, no temp-file cleanup,
//! no torn-tail repair of a log another process is appending to.
//!
//! An advisory `flock` on `<dir>/ferrokeeper.lock`, which also holds the
//! holder's pid for the message. The kernel drops the lock when the holder
//! exits, however it exits (SIGKILL included), so a stale lock file never
//! keeps a server from starting. The file itself stays in place: removing
//! it would let two processes lock two different files of the same name.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// The lock file's name in each locked directory.
pub const LOCK_FILE: &str = "ferrokeeper.lock";

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("{what} {dir} is in use by another ferrokeeper server ({holder}, holding {lock}); stop it first — two servers on one {what} would damage its files")]
    Held {
        what: &'static str,
        dir: String,
        holder: String,
        lock: String,
    },
    #[error("{what} {path}: cannot lock: {source}")]
    Io {
        what: &'static str,
        path: String,
        source: io::Error,
    },
}

/// Held while it lives; dropping it (or the process ending) releases it.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    path: PathBuf,
}

fn flock(f: &File, op: libc::c_int) -> io::Result<bool> {
    // SAFETY: flock on a descriptor we own; no memory is passed.
    if unsafe { libc::flock(f.as_raw_fd(), op | libc::LOCK_NB) } == 0 {
        return Ok(true);
    }
    let e = io::Error::last_os_error();
    if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
        Ok(false)
    } else {
        Err(e)
    }
}

fn holder_of(f: &mut File) -> String {
    let mut s = String::new();
    let _ = f.seek(SeekFrom::Start(0));
    let _ = f.read_to_string(&mut s);
    match s.trim().parse::<u32>() {
        Ok(pid) => format!("process {pid}"),
        Err(_) => "a process that is still starting".into(),
    }
}

impl DirLock {
    /// Locks `dir` (which must exist) for this process, or says who holds it.
    pub fn acquire(dir: &Path, what: &'static str) -> Result<DirLock, LockError> {
        let path = dir.join(LOCK_FILE);
        let io_err = |source| LockError::Io {
            what,
            path: path.display().to_string(),
            source,
        };
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_err)?;
        if !flock(&f, libc::LOCK_EX).map_err(io_err)? {
            return Err(LockError::Held {
                what,
                dir: dir.display().to_string(),
                holder: holder_of(&mut f),
                lock: path.display().to_string(),
            });
        }
        f.set_len(0).map_err(io_err)?;
        f.write_all(format!("{}\n", std::process::id()).as_bytes())
            .map_err(io_err)?;
        Ok(DirLock { _file: f, path })
    }

    /// Locks dataDir and, when it is another directory, dataLogDir.
    pub fn acquire_both(data_dir: &Path, log_dir: &Path) -> Result<Vec<DirLock>, LockError> {
        let mut locks = vec![DirLock::acquire(data_dir, "dataDir")?];
        if !same_dir(data_dir, log_dir) {
            locks.push(DirLock::acquire(log_dir, "dataLogDir")?);
        }
        Ok(locks)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    }
}

/// Who holds `dir`'s lock now ("process N"), if anyone: for the offline
/// tools, which read beside a running server but must not repair or cut.
pub fn holder(dir: &Path) -> Option<String> {
    let mut f = File::open(dir.join(LOCK_FILE)).ok()?;
    match flock(&f, libc::LOCK_SH) {
        Ok(true) => {
            // SAFETY: releases the shared lock just taken on our descriptor.
            unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_UN) };
            None
        }
        Ok(false) => Some(holder_of(&mut f)),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_dir_is_refused_and_names_the_holder() {
        let d = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(d.path(), "dataDir").unwrap();
        let e = DirLock::acquire(d.path(), "dataDir").unwrap_err();
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("process {}", std::process::id())),
            "{msg}"
        );
        assert!(msg.contains(&d.path().display().to_string()), "{msg}");
        assert_eq!(
            holder(d.path()),
            Some(format!("process {}", std::process::id()))
        );
        drop(first);
        assert_eq!(holder(d.path()), None);
        DirLock::acquire(d.path(), "dataDir").expect("released on drop");
    }

    #[test]
    fn one_lock_when_data_and_log_dir_are_the_same() {
        let d = tempfile::tempdir().unwrap();
        let locks = DirLock::acquire_both(d.path(), &d.path().join(".")).unwrap();
        assert_eq!(locks.len(), 1);
        let other = tempfile::tempdir().unwrap();
        drop(locks);
        let locks = DirLock::acquire_both(d.path(), other.path()).unwrap();
        assert_eq!(locks.len(), 2);
        assert!(DirLock::acquire_both(other.path(), d.path()).is_err());
    }
}
