//! The floor under a replicated write on this host (`ferrokeeper floor`):
//! what the disk and the loopback cost with nothing else in the way. A
//! write through a leader needs a quorum's logs durable — the leader's
//! and a follower's, in parallel — and two round trips (client to leader,
//! leader to follower); issue 23 measures latency against their sum.
//!
//! - fsync: a 512-byte record written into a preallocated file, then
//!   `fdatasync` — what a log's append costs without batching (both
//!   ZooKeeper's and ferrokeeper's logs are preallocated; an append that
//!   grows the file costs more: its size must be made durable too).
//! - quorum fsync: the same on two files at once, until both are durable
//!   — a quorum of two whose logs share this disk, as the servers of a
//!   one-host ensemble do. A disk that takes one flush at a time makes it
//!   up to twice the single fsync; on separate hosts it is the single.
//! - round trip: 8 bytes to a thread on loopback TCP (`TCP_NODELAY`) and
//!   back, both ends polling: two loopback hops, the loopback's own cost.
//!   Also shown, not in the floor: the same between threads that sleep in
//!   `read` — two wake-ups too, as a lone request pays them. On a VM whose
//!   idle CPUs halt, that is 8 µs against 45–60 (measured here): the
//!   wake-ups, not the loopback, and a server could avoid them only by
//!   spinning.

use std::io::{Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Instant;

/// Microseconds: the median and the 99th percentile of each probe.
#[derive(Clone, Copy, Debug)]
pub struct Floor {
    pub fsync_p50_us: f64,
    pub fsync_p99_us: f64,
    pub quorum_fsync_p50_us: f64,
    pub quorum_fsync_p99_us: f64,
    /// Spinning ends: the loopback's own cost.
    pub round_trip_p50_us: f64,
    pub round_trip_p99_us: f64,
    /// Ends that sleep in `read`: each message wakes a thread.
    pub woken_round_trip_p50_us: f64,
    pub woken_round_trip_p99_us: f64,
}

impl Floor {
    /// A write through a leader on this host, at least (p50): the quorum
    /// fsync and two round trips.
    pub fn one_host_p50_us(&self) -> f64 {
        self.quorum_fsync_p50_us + 2.0 * self.round_trip_p50_us
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "fsync_p50_us": self.fsync_p50_us,
            "fsync_p99_us": self.fsync_p99_us,
            "quorum_fsync_p50_us": self.quorum_fsync_p50_us,
            "quorum_fsync_p99_us": self.quorum_fsync_p99_us,
            "round_trip_p50_us": self.round_trip_p50_us,
            "round_trip_p99_us": self.round_trip_p99_us,
            "woken_round_trip_p50_us": self.woken_round_trip_p50_us,
            "woken_round_trip_p99_us": self.woken_round_trip_p99_us,
            "one_host_p50_us": self.one_host_p50_us(),
        })
    }

    pub fn text(&self) -> String {
        format!(
            "fdatasync of a 512-byte record in a preallocated log: p50 {:.0} µs, p99 {:.0} µs\n\
             the same on two logs at once, until both are durable (a quorum of two on this disk): p50 {:.0} µs, p99 {:.0} µs\n\
             loopback TCP round trip: p50 {:.0} µs, p99 {:.0} µs (between threads that sleep in read: p50 {:.0} µs, p99 {:.0} µs)\n\
             one write through a leader, at least (quorum fsync + 2 round trips): p50 {:.0} µs on this host; {:.0} µs with each server's log on its own disk\n",
            self.fsync_p50_us,
            self.fsync_p99_us,
            self.quorum_fsync_p50_us,
            self.quorum_fsync_p99_us,
            self.round_trip_p50_us,
            self.round_trip_p99_us,
            self.woken_round_trip_p50_us,
            self.woken_round_trip_p99_us,
            self.one_host_p50_us(),
            self.fsync_p50_us + 2.0 * self.round_trip_p50_us
        )
    }
}

/// Runs the probes, `samples` times each; the fsync probes' files go in
/// `dir` (put it on the disk the log uses) and are removed after.
pub fn measure(dir: &Path, samples: usize) -> std::io::Result<Floor> {
    let samples = samples.max(1);
    let (woken_round_trip_p50_us, woken_round_trip_p99_us) =
        quantiles(round_trip_probe(samples, false)?);
    let (round_trip_p50_us, round_trip_p99_us) = quantiles(round_trip_probe(samples, true)?);
    let (fsync_p50_us, fsync_p99_us) = quantiles(fsync_probe(dir, samples, 1)?);
    let (quorum_fsync_p50_us, quorum_fsync_p99_us) = quantiles(fsync_probe(dir, samples, 2)?);
    Ok(Floor {
        fsync_p50_us,
        fsync_p99_us,
        quorum_fsync_p50_us,
        quorum_fsync_p99_us,
        round_trip_p50_us,
        round_trip_p99_us,
        woken_round_trip_p50_us,
        woken_round_trip_p99_us,
    })
}

const RECORD: usize = 512;

/// `logs` preallocated files, one thread each, writing a record and
/// fdatasync-ing it at the same moment, `samples` times: how long the
/// slowest took, each time. The threads meet at a spinning barrier each
/// round (a sleeping one would add its wake-up to the next round's start,
/// not to the times).
fn fsync_probe(dir: &Path, samples: usize, logs: usize) -> std::io::Result<Vec<f64>> {
    let paths: Vec<_> = (0..logs)
        .map(|i| dir.join(format!(".ferrokeeper-floor-{}-{i}", std::process::id())))
        .collect();
    let result = (|| {
        let mut files = Vec::with_capacity(logs);
        for path in &paths {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(path)?;
            // Sparse, as ZooKeeper pads its logs; fallocated (as
            // ferrokeeper's segments) measured the same here.
            file.set_len(((samples + 1) * RECORD) as u64)?;
            file.sync_all()?;
            files.push(file);
        }
        let arrived = Arc::new(AtomicUsize::new(0));
        // A thread whose write failed (a full disk): the others stop
        // waiting for it at the barrier; its error is the result.
        let gave_up = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = files
            .into_iter()
            .map(|file| {
                let (arrived, gave_up) = (arrived.clone(), gave_up.clone());
                std::thread::spawn(move || -> std::io::Result<Vec<f64>> {
                    let record = [b'x'; RECORD];
                    let mut took = Vec::with_capacity(samples);
                    for i in 0..samples {
                        arrived.fetch_add(1, SeqCst);
                        while arrived.load(SeqCst) < logs * (i + 1) {
                            if gave_up.load(SeqCst) {
                                return Ok(took);
                            }
                            std::hint::spin_loop();
                        }
                        let t = Instant::now();
                        let written = file
                            .write_all_at(&record, (i * RECORD) as u64)
                            .and_then(|()| file.sync_data());
                        if let Err(e) = written {
                            gave_up.store(true, SeqCst);
                            return Err(e);
                        }
                        took.push(t.elapsed().as_secs_f64() * 1e6);
                    }
                    Ok(took)
                })
            })
            .collect();
        let mut slowest = vec![0f64; samples];
        let mut failed = None;
        for t in threads {
            match t.join() {
                Ok(Ok(took)) => {
                    for (s, t) in slowest.iter_mut().zip(took) {
                        *s = s.max(t);
                    }
                }
                Ok(Err(e)) => failed = Some(e),
                Err(_) => failed = Some(std::io::Error::other("a probe thread panicked")),
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(slowest),
        }
    })();
    for path in &paths {
        let _ = std::fs::remove_file(path);
    }
    result
}

/// 8 bytes to an echo thread and back, `samples` times. `spin`: both ends
/// poll their non-blocking sockets, so no thread sleeps — the loopback's
/// own cost; else both block in `read` — each message wakes a sleeping
/// thread, on this kind of VM the larger part.
fn round_trip_probe(samples: usize, spin: bool) -> std::io::Result<Vec<f64>> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        s.set_nonblocking(spin)?;
        let mut b = [0u8; 8];
        while read_exact(&mut s, &mut b).is_ok() {
            s.set_nonblocking(false)?;
            s.write_all(&b)?;
            s.set_nonblocking(spin)?;
        }
        Ok(())
    });
    let mut c = std::net::TcpStream::connect(addr)?;
    c.set_nodelay(true)?;
    c.set_nonblocking(spin)?;
    let mut took = Vec::with_capacity(samples);
    let mut b = [0u8; 8];
    for i in 0..samples {
        let t = Instant::now();
        c.write_all(&(i as u64).to_be_bytes())?;
        read_exact(&mut c, &mut b)?;
        took.push(t.elapsed().as_secs_f64() * 1e6);
        if b != (i as u64).to_be_bytes() {
            return Err(std::io::Error::other("the echo answered something else"));
        }
    }
    drop(c);
    let _ = echo.join();
    Ok(took)
}

/// `read_exact` that polls a non-blocking socket until it has it all.
fn read_exact(s: &mut std::net::TcpStream, mut buf: &mut [u8]) -> std::io::Result<()> {
    while !buf.is_empty() {
        match s.read(buf) {
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => buf = &mut buf[n..],
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::hint::spin_loop(),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

fn quantiles(mut v: Vec<f64>) -> (f64, f64) {
    v.sort_by(f64::total_cmp);
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)];
    (at(0.5), at(0.99))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_probes_measure_and_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let f = measure(dir.path(), 20).unwrap();
        assert!(
            f.fsync_p50_us > 0.0 && f.fsync_p99_us >= f.fsync_p50_us,
            "{f:?}"
        );
        assert!(
            f.quorum_fsync_p50_us > 0.0 && f.quorum_fsync_p99_us >= f.quorum_fsync_p50_us,
            "{f:?}"
        );
        assert!(
            f.round_trip_p50_us > 0.0 && f.round_trip_p99_us >= f.round_trip_p50_us,
            "{f:?}"
        );
        assert!(
            f.woken_round_trip_p50_us > 0.0
                && f.woken_round_trip_p99_us >= f.woken_round_trip_p50_us,
            "{f:?}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(f.text().contains("fdatasync"));
        assert_eq!(f.json()["fsync_p50_us"], f.fsync_p50_us);
        assert_eq!(f.json()["one_host_p50_us"], f.one_host_p50_us());
    }

    #[test]
    fn a_directory_that_is_not_there_is_an_error() {
        assert!(measure(Path::new("/nonexistent/ferrokeeper-floor"), 5).is_err());
    }
}
