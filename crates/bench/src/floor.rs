//! The floor under a replicated write on this host (`ferrokeeper floor`):
//! what the disk and the loopback cost with nothing else in the way. A
//! write through a leader needs at least one fsync (the follower's, in
//! parallel with the leader's own) and two round trips (client to leader,
//! leader to follower); issue 23 measures latency against their sum.
//!
//! - fsync: a 512-byte append to a new file in the given directory, then
//!   `fdatasync` — what a log segment's append costs without batching.
//! - round trip: 8 bytes to a thread on loopback TCP (`TCP_NODELAY`,
//!   blocking sockets) and back — two wake-ups and two loopback hops, as
//!   any request and its answer.

use std::io::{Read, Write};
use std::path::Path;
use std::time::Instant;

/// Microseconds: the median and the 99th percentile of each probe.
#[derive(Clone, Copy, Debug)]
pub struct Floor {
    pub fsync_p50_us: f64,
    pub fsync_p99_us: f64,
    pub round_trip_p50_us: f64,
    pub round_trip_p99_us: f64,
}

impl Floor {
    pub fn json(&self) -> serde_json::Value {
        serde_json::json!({
            "fsync_p50_us": self.fsync_p50_us,
            "fsync_p99_us": self.fsync_p99_us,
            "round_trip_p50_us": self.round_trip_p50_us,
            "round_trip_p99_us": self.round_trip_p99_us,
        })
    }

    pub fn text(&self) -> String {
        format!(
            "fdatasync of a 512-byte append: p50 {:.0} µs, p99 {:.0} µs\n\
             loopback TCP round trip: p50 {:.0} µs, p99 {:.0} µs\n\
             one write through a leader, at least (fsync + 2 round trips): p50 {:.0} µs\n",
            self.fsync_p50_us,
            self.fsync_p99_us,
            self.round_trip_p50_us,
            self.round_trip_p99_us,
            self.fsync_p50_us + 2.0 * self.round_trip_p50_us
        )
    }
}

/// Runs both probes, `samples` times each; the fsync probe's file goes
/// in `dir` (put it on the disk the log uses) and is removed after.
pub fn measure(dir: &Path, samples: usize) -> std::io::Result<Floor> {
    let samples = samples.max(1);
    let (fsync_p50_us, fsync_p99_us) = quantiles(fsync_probe(dir, samples)?);
    let (round_trip_p50_us, round_trip_p99_us) = quantiles(round_trip_probe(samples)?);
    Ok(Floor {
        fsync_p50_us,
        fsync_p99_us,
        round_trip_p50_us,
        round_trip_p99_us,
    })
}

fn fsync_probe(dir: &Path, samples: usize) -> std::io::Result<Vec<f64>> {
    let path = dir.join(format!(".ferrokeeper-floor-{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)?;
    let record = [b'x'; 512];
    let mut took = Vec::with_capacity(samples);
    let result = (|| {
        for _ in 0..samples {
            let t = Instant::now();
            file.write_all(&record)?;
            file.sync_data()?;
            took.push(t.elapsed().as_secs_f64() * 1e6);
        }
        Ok(())
    })();
    let _ = std::fs::remove_file(&path);
    result.map(|()| took)
}

fn round_trip_probe(samples: usize) -> std::io::Result<Vec<f64>> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        let mut b = [0u8; 8];
        while s.read_exact(&mut b).is_ok() {
            s.write_all(&b)?;
        }
        Ok(())
    });
    let mut c = std::net::TcpStream::connect(addr)?;
    c.set_nodelay(true)?;
    let mut took = Vec::with_capacity(samples);
    let mut b = [0u8; 8];
    for i in 0..samples {
        let t = Instant::now();
        c.write_all(&(i as u64).to_be_bytes())?;
        c.read_exact(&mut b)?;
        took.push(t.elapsed().as_secs_f64() * 1e6);
        if b != (i as u64).to_be_bytes() {
            return Err(std::io::Error::other("the echo answered something else"));
        }
    }
    drop(c);
    let _ = echo.join();
    Ok(took)
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
            f.round_trip_p50_us > 0.0 && f.round_trip_p99_us >= f.round_trip_p50_us,
            "{f:?}"
        );
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(f.text().contains("fdatasync"));
        assert_eq!(f.json()["fsync_p50_us"], f.fsync_p50_us);
    }

    #[test]
    fn a_directory_that_is_not_there_is_an_error() {
        assert!(measure(Path::new("/nonexistent/ferrokeeper-floor"), 5).is_err());
    }
}
