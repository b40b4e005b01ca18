//! ZooKeeper's own metric names: the summaries ferrokeeper keeps under
//! ZooKeeper's names and unit (milliseconds), and every `mntr` key and
//! Prometheus family ZooKeeper 3.8 has (`mntr_keys`) — with ferrokeeper's
//! value where it has a counterpart, ZooKeeper's zero where it has none
//! (the README lists which are real), so dashboards and scrapers built on
//! ZooKeeper's names find them all.

use std::fmt::Write as _;

use crate::mntr_keys::{COUNTERS, SIMPLE, SUMMARIES};

/// Samples kept for percentiles (ZooKeeper keeps a reservoir too).
const WINDOW: usize = 1024;

/// A ZooKeeper summary (AvgMinMaxCounter, with percentiles when
/// ZooKeeper's is an AvgMinMaxPercentileCounter), in milliseconds.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    count: u64,
    sum: u64,
    min: u64,
    max: u64,
    /// The last `WINDOW` samples, `next` the slot to overwrite.
    recent: Vec<u64>,
    next: usize,
}

impl Summary {
    pub fn observe_ms(&mut self, ms: u64) {
        if self.count == 0 || ms < self.min {
            self.min = ms;
        }
        self.max = self.max.max(ms);
        self.count += 1;
        self.sum += ms;
        if self.recent.len() < WINDOW {
            if self.recent.capacity() == 0 {
                self.recent.reserve_exact(WINDOW);
            }
            self.recent.push(ms);
        } else {
            self.recent[self.next] = ms;
            self.next = (self.next + 1) % WINDOW;
        }
    }

    /// ZooKeeper's average: rounded to 4 decimals, printed as Java prints a
    /// double (`0.0`, `3.4`, `0.1667`).
    fn avg(&self) -> String {
        let avg = if self.count == 0 {
            0.0
        } else {
            self.sum as f64 / self.count as f64
        };
        format!("{:?}", (avg * 10_000.0).round() / 10_000.0)
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The recent samples' quantiles `qs`.
    fn quantiles<const N: usize>(&self, qs: [f64; N]) -> [u64; N] {
        let mut v = self.recent.clone();
        v.sort_unstable();
        qs.map(|q| {
            if v.is_empty() {
                0
            } else {
                v[((q * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1]
            }
        })
    }

    /// ZooKeeper's p50, p95, p99 and p999 (`mntr`).
    fn percentiles(&self) -> [u64; 4] {
        self.quantiles([0.5, 0.95, 0.99, 0.999])
    }
}

/// The summaries ferrokeeper has a counterpart for.
#[derive(Debug, Default)]
pub struct ZkSummaries {
    /// Requests answered without the log, and through it.
    pub readlatency: Summary,
    pub updatelatency: Summary,
    /// Each write and fsync of the log (one per batch).
    pub fsynctime: Summary,
    pub snapshottime: Summary,
}

impl ZkSummaries {
    fn get(&self, name: &str) -> Option<&Summary> {
        Some(match name {
            "readlatency" => &self.readlatency,
            "updatelatency" => &self.updatelatency,
            "fsynctime" => &self.fsynctime,
            "snapshottime" => &self.snapshottime,
            _ => return None,
        })
    }

    /// Every summary's `mntr` lines, in ZooKeeper's order.
    pub fn mntr(&self, kv: &mut impl FnMut(&str, String)) {
        let none = Summary::default();
        for (name, pct) in SUMMARIES {
            let s = self.get(name).unwrap_or(&none);
            kv(&format!("zk_avg_{name}"), s.avg());
            kv(&format!("zk_min_{name}"), s.min.to_string());
            kv(&format!("zk_max_{name}"), s.max.to_string());
            kv(&format!("zk_cnt_{name}"), s.count.to_string());
            kv(&format!("zk_sum_{name}"), s.sum.to_string());
            if *pct {
                for (p, v) in ["p50", "p95", "p99", "p999"].iter().zip(s.percentiles()) {
                    kv(&format!("zk_{p}_{name}"), v.to_string());
                }
            }
        }
    }

    /// The Prometheus families under ZooKeeper's names: the simple `mntr`
    /// keys without `zk_` (`value` gives ferrokeeper's, else 0), and the
    /// summaries with their quantiles, `_count` and `_sum`.
    /// Families `have(name)` says are there already are left out.
    pub fn prometheus(
        &self,
        out: &mut String,
        value: impl Fn(&str) -> Option<String>,
        have: impl Fn(&str) -> bool,
    ) {
        for (key, zero) in SIMPLE {
            let name = &key[3..];
            if have(name) {
                continue;
            }
            let kind = if COUNTERS.contains(&name) {
                "counter"
            } else {
                "gauge"
            };
            let v = value(key).unwrap_or_else(|| zero.to_string());
            // A gauge that is not a number (the server state) is left out
            // of the samples, as ZooKeeper's provider has none of them.
            if v.parse::<f64>().is_err() {
                continue;
            }
            let _ = writeln!(
                out,
                "# HELP {name} {name}\n# TYPE {name} {kind}\n{name} {v}"
            );
        }
        let none = Summary::default();
        for (name, pct) in SUMMARIES {
            if have(name) {
                continue;
            }
            let s = self.get(name).unwrap_or(&none);
            let _ = writeln!(out, "# HELP {name} {name}\n# TYPE {name} summary");
            if *pct {
                // ZooKeeper's Prometheus summaries have these three.
                for (q, v) in ["0.5", "0.9", "0.99"]
                    .iter()
                    .zip(s.quantiles([0.5, 0.9, 0.99]))
                {
                    let _ = writeln!(out, "{name}{{quantile=\"{q}\"}} {v}");
                }
            }
            let _ = writeln!(out, "{name}_count {}\n{name}_sum {}", s.count, s.sum);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_summary_reads_as_zookeepers() {
        let mut s = Summary::default();
        assert_eq!((s.avg(), s.percentiles()), ("0.0".to_string(), [0; 4]));
        for ms in [0, 0, 1, 0, 0, 1] {
            s.observe_ms(ms);
        }
        assert_eq!(
            (s.count, s.sum, s.min, s.max, s.avg()),
            (6, 2, 0, 1, "0.3333".to_string())
        );
        assert_eq!(s.percentiles(), [0, 1, 1, 1]);
        for ms in 0..5000 {
            s.observe_ms(ms);
        }
        assert_eq!(s.recent.len(), WINDOW);
        assert_eq!(s.percentiles()[0], 5000 - WINDOW as u64 / 2 - 1);
    }

    #[test]
    fn every_zookeeper_key_is_printed_once() {
        let z = ZkSummaries::default();
        let mut keys = Vec::new();
        z.mntr(&mut |k, _| keys.push(k.to_string()));
        keys.extend(SIMPLE.iter().map(|(k, _)| k.to_string()));
        let n = keys.len();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), n, "a key twice");
        let mut prom = String::new();
        z.prometheus(&mut prom, |_| None, |name| name == "watch_count");
        assert!(!prom.contains("# TYPE watch_count "));
        assert!(prom.contains("# TYPE fsynctime summary\n"));
        assert!(prom.contains("# TYPE readlatency summary\nreadlatency{quantile=\"0.5\"} 0\n"));
        assert!(prom.contains("# TYPE packets_received gauge\npackets_received 0\n"));
        assert!(prom.contains("# TYPE bytes_received_count counter\n"));
    }
}
