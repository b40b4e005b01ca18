//! Prometheus metrics (text exposition format 0.0.4) on
//! `metricsProvider.httpPort`. The numbers live in the core task as plain
//! integers — it is the only writer, so the request path takes no lock
//! and no atomic; a scrape asks the core task to render them.

use std::fmt::Write as _;

use proto::OpCode;

/// Upper bounds of the latency buckets, in microseconds.
const BUCKETS_US: &[u64] = &[
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000, 5_000_000, 10_000_000,
];

/// A histogram of durations with fixed buckets.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    counts: [u64; 16],
    count: u64,
    sum_us: u64,
}

impl Histogram {
    pub fn observe_us(&mut self, us: u64) {
        if let Some(i) = BUCKETS_US.iter().position(|b| us <= *b) {
            self.counts[i] += 1;
        }
        self.count += 1;
        self.sum_us += us;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let sep = if labels.is_empty() { "" } else { "," };
        let mut cumulative = 0;
        for (b, n) in BUCKETS_US.iter().zip(self.counts.iter()) {
            cumulative += n;
            let _ = writeln!(
                out,
                "{name}_bucket{{{labels}{sep}le=\"{}\"}} {cumulative}",
                *b as f64 / 1e6
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
            self.count
        );
        let braces = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                format!("{{{s}}}")
            }
        };
        let _ = writeln!(
            out,
            "{name}_sum{} {}",
            braces(labels),
            self.sum_us as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count{} {}", braces(labels), self.count);
    }
}

/// Request kinds with their own latency histogram (by `OpCode::family`,
/// labelled with its name); the rest count as "other".
const OPS: [OpCode; 12] = [
    OpCode::Create,
    OpCode::Delete,
    OpCode::Exists,
    OpCode::GetData,
    OpCode::SetData,
    OpCode::GetAcl,
    OpCode::SetAcl,
    OpCode::GetChildren,
    OpCode::Sync,
    OpCode::Ping,
    OpCode::Multi,
    OpCode::MultiRead,
];

fn label(i: usize) -> &'static str {
    OPS.get(i).map_or("other", |o| o.name())
}

#[derive(Debug, Default)]
pub struct Metrics {
    /// One per `OPS` entry, then "other".
    latency: [Histogram; OPS.len() + 1],
    pub fsync: Histogram,
    /// Log batches a follower's core task wrote itself (a lone write: no
    /// log thread wake-up on its path); the rest the log thread wrote.
    pub inline_writes: u64,
    pub snapshot: Histogram,
    /// The same and more under ZooKeeper's names (`metrics_zk`).
    pub zk: crate::metrics_zk::ZkSummaries,
}

impl Metrics {
    pub fn observe_request(&mut self, op: i32, us: u64) {
        let family = OpCode::from_code(op).map(OpCode::family);
        let i = OPS
            .iter()
            .position(|o| Some(*o) == family)
            .unwrap_or(OPS.len());
        self.latency[i].observe_us(us);
        // ZooKeeper's ServerStats: a request through the log is an
        // update, any other (pings too) a read.
        let z = if OpCode::from_code(op).is_some_and(OpCode::is_write) {
            &mut self.zk.updatelatency
        } else {
            &mut self.zk.readlatency
        };
        z.observe_ms(us / 1000);
    }
}

/// Gauges and counters read at scrape time.
pub struct Now {
    pub mode: &'static str,
    pub znodes: usize,
    pub watches: usize,
    pub ephemerals: usize,
    pub data_size: u64,
    pub sessions: usize,
    pub connections: usize,
    pub outstanding: usize,
    pub packets_received: u64,
    pub packets_sent: u64,
    pub last_zxid: i64,
    pub commit_index: u64,
    pub applied_index: u64,
    pub leader_changes: u64,
    pub digest_checks: u64,
    pub followers: usize,
    pub synced_followers: usize,
    pub max_follower_lag: u64,
    pub open_fds: usize,
    pub uptime_s: f64,
}

fn metric(out: &mut String, name: &str, kind: &str, help: &str, value: impl std::fmt::Display) {
    let _ = writeln!(
        out,
        "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}"
    );
}

pub fn render(m: &Metrics, n: &Now) -> String {
    let mut out = String::with_capacity(8 << 10);
    let g = "gauge";
    let c = "counter";
    metric(
        &mut out,
        "znode_count",
        g,
        "Znodes in the tree (ZooKeeper counts the root twice).",
        n.znodes,
    );
    metric(
        &mut out,
        "watch_count",
        g,
        "Watches registered on this server.",
        n.watches,
    );
    metric(
        &mut out,
        "ephemerals_count",
        g,
        "Ephemeral znodes.",
        n.ephemerals,
    );
    metric(
        &mut out,
        "approximate_data_size",
        g,
        "Bytes of paths and data in the tree.",
        n.data_size,
    );
    metric(
        &mut out,
        "global_sessions",
        g,
        "Sessions in the ensemble.",
        n.sessions,
    );
    metric(
        &mut out,
        "num_alive_connections",
        g,
        "Client connections to this server.",
        n.connections,
    );
    metric(
        &mut out,
        "outstanding_requests",
        g,
        "Requests received and not yet answered.",
        n.outstanding,
    );
    metric(
        &mut out,
        "packets_received_total",
        c,
        "Packets received from clients.",
        n.packets_received,
    );
    metric(
        &mut out,
        "packets_sent_total",
        c,
        "Packets sent to clients.",
        n.packets_sent,
    );
    metric(
        &mut out,
        "last_zxid",
        g,
        "The newest zxid applied here.",
        n.last_zxid,
    );
    metric(
        &mut out,
        "commit_index",
        g,
        "Raft commit index known here.",
        n.commit_index,
    );
    metric(
        &mut out,
        "apply_lag_entries",
        g,
        "Committed entries not yet applied to the tree here.",
        n.commit_index.saturating_sub(n.applied_index),
    );
    metric(
        &mut out,
        "log_writes_dropped_total",
        c,
        "Log lines dropped because writing them failed (a closed stderr, a full disk).",
        crate::logging::dropped_writes(),
    );
    metric(
        &mut out,
        "leader_elections_total",
        c,
        "Leader changes this server saw.",
        n.leader_changes,
    );
    metric(
        &mut out,
        "digest_checks_total",
        c,
        "Leader's tree digests in the log this replica compared with its own and found equal (one that differs stops the server).",
        n.digest_checks,
    );
    let _ = writeln!(
        out,
        "# HELP server_state 1 for this server's mode.\n# TYPE server_state gauge"
    );
    for mode in ["standalone", "leader", "follower"] {
        let _ = writeln!(
            out,
            "server_state{{state=\"{mode}\"}} {}",
            u8::from(n.mode == mode)
        );
    }
    metric(
        &mut out,
        "learners",
        g,
        "Leader: followers connected.",
        n.followers,
    );
    metric(
        &mut out,
        "synced_followers",
        g,
        "Leader: followers replicating in step.",
        n.synced_followers,
    );
    metric(
        &mut out,
        "max_follower_lag_entries",
        g,
        "Leader: entries the slowest follower is behind.",
        n.max_follower_lag,
    );
    metric(
        &mut out,
        "open_file_descriptor_count",
        g,
        "Open file descriptors.",
        n.open_fds,
    );
    metric(
        &mut out,
        "uptime_seconds",
        g,
        "Seconds since the server started.",
        format!("{:.3}", n.uptime_s),
    );
    let _ = writeln!(out, "# HELP request_latency_seconds Client request latency at this server, by operation.\n# TYPE request_latency_seconds histogram");
    for (i, h) in m.latency.iter().enumerate() {
        h.render(
            &mut out,
            "request_latency_seconds",
            &format!("op=\"{}\"", label(i)),
        );
    }
    let _ = writeln!(out, "# HELP fsync_seconds Time of each transaction log write and fsync (one per batch).\n# TYPE fsync_seconds histogram");
    m.fsync.render(&mut out, "fsync_seconds", "");
    metric(
        &mut out,
        "txn_log_batches_inline_total",
        c,
        "Transaction log batches a follower wrote and fsynced on its core task (a lone write, no hand-off to the log thread); counted in fsync_seconds too.",
        m.inline_writes,
    );
    let _ = writeln!(out, "# HELP snapshot_seconds Time to encode and write each snapshot.\n# TYPE snapshot_seconds histogram");
    m.snapshot.render(&mut out, "snapshot_seconds", "");
    // ZooKeeper's families, but for those above under the same name.
    let mut zk = String::with_capacity(16 << 10);
    m.zk.prometheus(
        &mut zk,
        |key| n.zk_value(key),
        |name| out.contains(&format!("# TYPE {name} ")),
    );
    out.push_str(&zk);
    out
}

impl Now {
    /// This scrape's value of one of ZooKeeper's simple `mntr` keys.
    fn zk_value(&self, key: &str) -> Option<String> {
        Some(match key {
            "zk_packets_received" => self.packets_received.to_string(),
            "zk_packets_sent" => self.packets_sent.to_string(),
            "zk_uptime" => ((self.uptime_s * 1000.0) as u64).to_string(),
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let mut h = Histogram::default();
        for us in [50, 300, 300, 20_000_000] {
            h.observe_us(us);
        }
        let mut out = String::new();
        h.render(&mut out, "x", "op=\"a\"");
        assert!(out.contains("x_bucket{op=\"a\",le=\"0.0001\"} 1\n"));
        assert!(out.contains("x_bucket{op=\"a\",le=\"0.0005\"} 3\n"));
        assert!(out.contains("x_bucket{op=\"a\",le=\"10\"} 3\n"));
        assert!(out.contains("x_bucket{op=\"a\",le=\"+Inf\"} 4\n"));
        assert!(out.contains("x_count{op=\"a\"} 4\n"));
        assert!(out.contains("x_sum{op=\"a\"} 20.00065\n"));
    }
}
