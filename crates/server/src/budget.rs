//! The latency budget (issue 23): where a request's time goes on this
//! server, stage by stage, as histograms with fine buckets — in the
//! Prometheus metrics since start (`ferrokeeper_stage_seconds{stage}`)
//! and in `mntr` since the last `srst` (`ferrokeeper_stage_<stage>_*`),
//! which `ferrokeeper bench --budget` reads to print one run's breakdown.
//!
//! The stages, in the order a write passes them on the leader:
//! - `to_core`: the connection read the request → the core task took it
//!   (every request);
//! - `to_disk`: the core handed log entries to the log thread → it began
//!   writing them;
//! - `disk`: one write and one fdatasync (for the whole group);
//! - `from_disk`: durable → the core heard it;
//! - `to_commit`: the core handed entries to the log thread → the commit
//!   index passed them. On the leader that is its fsync and a quorum's
//!   acknowledgements in parallel; on a follower, learning of the commit;
//! - `commit_to_answer`: committed → the write's answer handed to its
//!   connection (applying it, encoding the answer);
//! - `to_socket`: an answer handed to its connection → written to the
//!   socket (the connection task's wake-up and write);
//! - `to_ack` (a follower): the leader's entries handed to the log
//!   thread → the acknowledgement handed to the link to the leader;
//! - `write`, `read`: the request read → its answer handed to the
//!   connection, for writes (a follower's forwarded ones included) and
//!   for reads.
//!
//! Each histogram counts in buckets 1/8 of a power of two wide (a
//! quantile read from them is within 6.25% of the truth), 1 µs to 16 s.
//! The connection tasks record `to_socket` themselves, into atomic
//! counters (`SocketStage`); everything else is recorded by the core task,
//! the only writer, with plain integers.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Buckets: 0..8 µs one each, then 8 per power of two up to 2^24 µs.
const BUCKETS: usize = 8 * 22 + 8;

/// The bucket of a duration in µs.
fn bucket(us: u64) -> usize {
    if us < 8 {
        return us as usize;
    }
    let b = 63 - us.leading_zeros() as usize;
    let m = ((us >> (b - 3)) & 7) as usize;
    (8 * (b - 2) + m).min(BUCKETS - 1)
}

/// The lowest duration of bucket `i`, in µs.
fn bucket_low(i: usize) -> u64 {
    if i < 8 {
        return i as u64;
    }
    let (b, m) = (i / 8 + 2, i % 8);
    (8 + m as u64) << (b - 3)
}

/// The stages (see the module's comment), in the order they are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    ToCore,
    ToDisk,
    Disk,
    FromDisk,
    ToCommit,
    CommitToAnswer,
    ToSocket,
    ToAck,
    Write,
    Read,
}

impl Stage {
    pub const ALL: [Stage; 10] = [
        Stage::ToCore,
        Stage::ToDisk,
        Stage::Disk,
        Stage::FromDisk,
        Stage::ToCommit,
        Stage::CommitToAnswer,
        Stage::ToSocket,
        Stage::ToAck,
        Stage::Write,
        Stage::Read,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::ToCore => "to_core",
            Stage::ToDisk => "to_disk",
            Stage::Disk => "disk",
            Stage::FromDisk => "from_disk",
            Stage::ToCommit => "to_commit",
            Stage::CommitToAnswer => "commit_to_answer",
            Stage::ToSocket => "to_socket",
            Stage::ToAck => "to_ack",
            Stage::Write => "write",
            Stage::Read => "read",
        }
    }
}

/// Counts per bucket.
#[derive(Debug, Clone)]
pub struct Hist {
    counts: [u64; BUCKETS],
    count: u64,
    sum_us: u64,
}

impl Default for Hist {
    fn default() -> Self {
        Hist {
            counts: [0; BUCKETS],
            count: 0,
            sum_us: 0,
        }
    }
}

impl Hist {
    pub fn observe_us(&mut self, us: u64) {
        self.counts[bucket(us)] += 1;
        self.count += 1;
        self.sum_us += us;
    }

    /// The duration at quantile `q` (0..=1), in µs: the middle of its
    /// bucket. None when empty.
    pub fn quantile_us(&self, q: f64) -> Option<f64> {
        if self.count == 0 {
            return None;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        let mut seen = 0;
        for (i, n) in self.counts.iter().enumerate() {
            seen += n;
            if seen >= rank {
                let (lo, hi) = (bucket_low(i), bucket_low(i + 1));
                return Some((lo + hi) as f64 / 2.0);
            }
        }
        None
    }
}

/// `to_socket`, recorded by every connection task: relaxed atomic
/// counters, read when the metrics or `mntr` are rendered.
#[derive(Debug)]
pub struct SocketStage {
    since_start: AtomicHist,
    since_reset: AtomicHist,
}

#[derive(Debug)]
struct AtomicHist {
    counts: [AtomicU64; BUCKETS],
    sum_us: AtomicU64,
}

impl AtomicHist {
    fn new() -> AtomicHist {
        AtomicHist {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_us: AtomicU64::new(0),
        }
    }

    fn observe_us(&self, us: u64) {
        self.counts[bucket(us)].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    fn read(&self) -> Hist {
        let mut h = Hist::default();
        for (c, a) in h.counts.iter_mut().zip(self.counts.iter()) {
            *c = a.load(Ordering::Relaxed);
        }
        h.count = h.counts.iter().sum();
        h.sum_us = self.sum_us.load(Ordering::Relaxed);
        h
    }

    fn clear(&self) {
        for a in &self.counts {
            a.store(0, Ordering::Relaxed);
        }
        self.sum_us.store(0, Ordering::Relaxed);
    }
}

impl SocketStage {
    pub fn new() -> SocketStage {
        SocketStage {
            since_start: AtomicHist::new(),
            since_reset: AtomicHist::new(),
        }
    }

    /// An answer handed to its connection at `at` is written now.
    pub fn written(&self, at: Instant, now: Instant) {
        let us = now.saturating_duration_since(at).as_micros() as u64;
        self.since_start.observe_us(us);
        self.since_reset.observe_us(us);
    }
}

impl Default for SocketStage {
    fn default() -> Self {
        SocketStage::new()
    }
}

/// Log entries handed to the log thread, not yet committed (and, on a
/// follower, not yet acknowledged): the last index of each hand-off and
/// when. Bounded: under a long stall the oldest are forgotten.
const TRACKED: usize = 4096;

/// The budget of one server.
#[derive(Debug)]
pub struct Budget {
    since_start: Vec<Hist>,
    since_reset: Vec<Hist>,
    socket: std::sync::Arc<SocketStage>,
    /// (last index, handed to the log thread at) awaiting the commit.
    uncommitted: VecDeque<(u64, Instant)>,
    /// The same, awaiting this follower's acknowledgement.
    unacked: VecDeque<(u64, Instant)>,
    /// (Persist number, index acknowledged) of append responses the log
    /// thread sends once that Persist is durable.
    acks_after: VecDeque<(u64, u64)>,
    /// (commit index, reached at), the newest few: an answer looks up
    /// when its zxid was committed.
    commits: VecDeque<(u64, Instant)>,
    commit_index: u64,
}

impl Budget {
    pub fn new(socket: std::sync::Arc<SocketStage>) -> Budget {
        Budget {
            since_start: vec![Hist::default(); Stage::ALL.len()],
            since_reset: vec![Hist::default(); Stage::ALL.len()],
            socket,
            uncommitted: VecDeque::new(),
            unacked: VecDeque::new(),
            acks_after: VecDeque::new(),
            commits: VecDeque::new(),
            commit_index: 0,
        }
    }

    pub fn observe(&mut self, stage: Stage, us: u64) {
        let i = stage as usize;
        self.since_start[i].observe_us(us);
        self.since_reset[i].observe_us(us);
    }

    pub fn observe_since(&mut self, stage: Stage, from: Instant, now: Instant) {
        self.observe(
            stage,
            now.saturating_duration_since(from).as_micros() as u64,
        );
    }

    /// Entries up to `last` were handed to the log thread at `at`;
    /// `follower`: this server acknowledges them to a leader.
    pub fn handed_to_disk(&mut self, last: u64, at: Instant, follower: bool) {
        for q in [&mut self.uncommitted]
            .into_iter()
            .chain(follower.then_some(&mut self.unacked))
        {
            if q.len() == TRACKED {
                q.pop_front();
            }
            q.push_back((last, at));
        }
    }

    /// An acknowledgement of everything up to `index` goes out once
    /// Persist `number` is durable.
    pub fn ack_after(&mut self, number: u64, index: u64) {
        if self.acks_after.len() == TRACKED {
            self.acks_after.pop_front();
        }
        self.acks_after.push_back((number, index));
    }

    /// Every Persist up to `number` is durable, and the acknowledgements
    /// that waited for it were sent, `at`.
    pub fn persisted(&mut self, number: u64, at: Instant) {
        while let Some(&(n, index)) = self.acks_after.front() {
            if n > number {
                break;
            }
            self.acks_after.pop_front();
            self.acked(index, at);
        }
    }

    /// This follower told the leader it has everything up to `index`.
    pub fn acked(&mut self, index: u64, now: Instant) {
        while let Some(&(last, at)) = self.unacked.front() {
            if last > index {
                break;
            }
            self.unacked.pop_front();
            self.observe_since(Stage::ToAck, at, now);
        }
    }

    /// The commit index is `index` now.
    pub fn committed(&mut self, index: u64, now: Instant) {
        if index <= self.commit_index {
            return;
        }
        self.commit_index = index;
        crate::hops::hop("commit", index);
        while let Some(&(last, at)) = self.uncommitted.front() {
            if last > index {
                break;
            }
            self.uncommitted.pop_front();
            self.observe_since(Stage::ToCommit, at, now);
        }
        if self.commits.len() == 64 {
            self.commits.pop_front();
        }
        self.commits.push_back((index, now));
    }

    /// The answer to the write that made `zxid` is handed to its
    /// connection now.
    pub fn answered_write(&mut self, zxid: i64, now: Instant) {
        crate::hops::hop("answer", zxid as u64);
        let at = self
            .commits
            .iter()
            .find(|(index, _)| *index as i64 >= zxid)
            .map(|(_, at)| *at);
        if let Some(at) = at {
            self.observe_since(Stage::CommitToAnswer, at, now);
        }
    }

    /// A leader change: what was handed over may never commit here as it
    /// was; the stages of entries in flight are not counted.
    pub fn forget_in_flight(&mut self) {
        self.uncommitted.clear();
        self.unacked.clear();
        self.acks_after.clear();
    }

    /// `srst`: the `mntr` numbers start over (the Prometheus ones never do).
    pub fn reset(&mut self) {
        self.since_reset = vec![Hist::default(); Stage::ALL.len()];
        self.socket.since_reset.clear();
    }

    fn stage(&self, s: Stage, since_start: bool) -> Hist {
        if s == Stage::ToSocket {
            return if since_start {
                self.socket.since_start.read()
            } else {
                self.socket.since_reset.read()
            };
        }
        let from = if since_start {
            &self.since_start
        } else {
            &self.since_reset
        };
        from[s as usize].clone()
    }

    /// `mntr` lines since the last `srst`: per stage its count and
    /// p50/p99/p99.9 in µs (stages with nothing counted are left out).
    pub fn mntr(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for s in Stage::ALL {
            let h = self.stage(s, false);
            if h.count == 0 {
                continue;
            }
            let name = s.name();
            out.push((
                format!("ferrokeeper_stage_{name}_count"),
                h.count.to_string(),
            ));
            for (q, label) in [(0.5, "p50"), (0.99, "p99"), (0.999, "p999")] {
                let v = h.quantile_us(q).unwrap_or(0.0);
                out.push((
                    format!("ferrokeeper_stage_{name}_{label}_us"),
                    format!("{v:.0}"),
                ));
            }
        }
        out
    }

    /// The Prometheus histogram family, buckets every half power of two
    /// from 8 µs.
    pub fn render(&self, out: &mut String) {
        let name = "ferrokeeper_stage_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Time of each stage of a request on this server (see README: latency budget)."
        );
        let _ = writeln!(out, "# TYPE {name} histogram");
        for s in Stage::ALL {
            let h = self.stage(s, true);
            let stage = s.name();
            let mut cumulative = 0;
            for (i, n) in h.counts.iter().enumerate() {
                cumulative += n;
                // Bounds at every 4th bucket from 8 µs: factors of √2.
                let upper = bucket_low(i + 1);
                if i + 1 >= 8 && (i + 1) % 4 == 0 && i + 1 < BUCKETS {
                    let _ = writeln!(
                        out,
                        "{name}_bucket{{stage=\"{stage}\",le=\"{}\"}} {cumulative}",
                        upper as f64 / 1e6
                    );
                }
            }
            let _ = writeln!(
                out,
                "{name}_bucket{{stage=\"{stage}\",le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "{name}_sum{{stage=\"{stage}\"}} {}",
                h.sum_us as f64 / 1e6
            );
            let _ = writeln!(out, "{name}_count{{stage=\"{stage}\"}} {}", h.count);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_an_eighth_of_a_doubling_wide() {
        for us in 0..100_000u64 {
            let i = bucket(us);
            assert!(bucket_low(i) <= us && us < bucket_low(i + 1), "{us} in {i}");
        }
        for i in 16..BUCKETS - 1 {
            let (lo, hi) = (bucket_low(i), bucket_low(i + 1));
            assert!((hi - lo) * 8 <= lo, "bucket {i}: {lo}..{hi}");
        }
        assert_eq!(bucket(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_come_from_the_right_buckets() {
        let mut h = Hist::default();
        assert_eq!(h.quantile_us(0.5), None);
        for us in 1..=1000 {
            h.observe_us(us);
        }
        let p50 = h.quantile_us(0.5).unwrap();
        let p99 = h.quantile_us(0.99).unwrap();
        assert!((p50 - 500.0).abs() <= 500.0 / 16.0, "{p50}");
        assert!((p99 - 990.0).abs() <= 990.0 / 16.0, "{p99}");
    }

    #[test]
    fn commits_and_acks_close_what_was_handed_to_the_disk() {
        let mut b = Budget::new(Default::default());
        let t0 = Instant::now();
        b.handed_to_disk(5, t0, true);
        b.handed_to_disk(9, t0, true);
        b.acked(5, t0);
        b.committed(7, t0);
        let counts = |b: &Budget, s| b.stage(s, false).count;
        assert_eq!(
            (counts(&b, Stage::ToAck), counts(&b, Stage::ToCommit)),
            (1, 1)
        );
        b.committed(9, t0);
        b.answered_write(8, t0);
        b.answered_write(100, t0);
        assert_eq!(counts(&b, Stage::ToCommit), 2);
        assert_eq!(counts(&b, Stage::CommitToAnswer), 1);
        b.reset();
        assert!(b.mntr().is_empty());
        let mut text = String::new();
        b.render(&mut text);
        assert!(text.contains("ferrokeeper_stage_seconds_count{stage=\"to_commit\"} 2"));
    }
}
