//! `ferrokeeper bench --budget`: the servers' own account of where the
//! run's time went. Before the run each server's counters are reset
//! (`srst`), after it each one's `mntr` is read: ferrokeeper prints, per
//! stage of a request (see the server's `budget`), a count and
//! p50/p99/p99.9 in µs. ZooKeeper has no such lines; its servers are
//! listed with none. Both words must be in `4lw.commands.whitelist`.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// One server's breakdown.
#[derive(Debug, Clone)]
pub struct ServerBudget {
    pub server: String,
    /// `zk_server_state` (leader, follower, standalone, observer), or why
    /// the server could not be asked.
    pub state: String,
    /// (stage, count, p50, p99, p99.9 in µs), in the server's order.
    pub stages: Vec<(String, u64, f64, f64, f64)>,
}

/// Sends a four-letter word and reads the answer to its end.
async fn four_letter(server: &str, word: &str) -> std::io::Result<String> {
    let ask = async {
        let mut s = TcpStream::connect(server).await?;
        s.write_all(word.as_bytes()).await?;
        let mut out = String::new();
        s.read_to_string(&mut out).await?;
        Ok(out)
    };
    tokio::time::timeout(Duration::from_secs(5), ask)
        .await
        .unwrap_or_else(|_| Err(std::io::Error::other("no answer within 5 s")))
}

/// Every server's counters start over (`srst`); the answers that are not
/// ZooKeeper's "Server stats reset." are returned as problems.
pub async fn reset(servers: &[String]) -> Vec<String> {
    let mut problems = Vec::new();
    for s in servers {
        match four_letter(s, "srst").await {
            Ok(a) if a.starts_with("Server stats reset") => {}
            Ok(a) => problems.push(format!("{s}: srst: {}", a.trim())),
            Err(e) => problems.push(format!("{s}: srst: {e}")),
        }
    }
    problems
}

/// Each server's stages from its `mntr`.
pub async fn collect(servers: &[String]) -> Vec<ServerBudget> {
    let mut out = Vec::new();
    for s in servers {
        let b = match four_letter(s, "mntr").await {
            Ok(text) => parse(s, &text),
            Err(e) => ServerBudget {
                server: s.clone(),
                state: format!("mntr: {e}"),
                stages: Vec::new(),
            },
        };
        out.push(b);
    }
    out
}

/// The stage lines of one `mntr` answer.
pub fn parse(server: &str, text: &str) -> ServerBudget {
    let mut state = None;
    let mut stages: Vec<(String, u64, f64, f64, f64)> = Vec::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('\t') else {
            continue;
        };
        if k == "zk_server_state" {
            state = Some(v.to_string());
            continue;
        }
        let Some(rest) = k.strip_prefix("ferrokeeper_stage_") else {
            continue;
        };
        let field = ["_count", "_p50_us", "_p99_us", "_p999_us"]
            .iter()
            .position(|f| rest.ends_with(f));
        let Some(field) = field else { continue };
        let suffix = ["_count", "_p50_us", "_p99_us", "_p999_us"][field];
        let stage = &rest[..rest.len() - suffix.len()];
        let value: f64 = v.trim().parse().unwrap_or(0.0);
        if field == 0 {
            stages.push((stage.to_string(), value as u64, 0.0, 0.0, 0.0));
        } else if let Some(row) = stages.iter_mut().find(|r| r.0 == stage) {
            match field {
                1 => row.2 = value,
                2 => row.3 = value,
                _ => row.4 = value,
            }
        }
    }
    let state = state.unwrap_or_else(|| {
        let first = text.lines().next().unwrap_or("").trim();
        format!("no mntr answer ({first})")
    });
    ServerBudget {
        server: server.to_string(),
        state,
        stages,
    }
}

/// The breakdown as text: one table per server.
pub fn render(budgets: &[ServerBudget], problems: &[String]) -> String {
    let mut out = String::from("latency budget (server side, µs, this run):\n");
    for p in problems {
        out.push_str(&format!("  ({p})\n"));
    }
    for b in budgets {
        out.push_str(&format!("  {} {}\n", b.server, b.state));
        if b.stages.is_empty() {
            out.push_str("    no stage timings (not ferrokeeper, or nothing measured)\n");
            continue;
        }
        out.push_str(&format!(
            "    {:<17}{:>10}{:>10}{:>10}{:>10}\n",
            "stage", "count", "p50", "p99", "p99.9"
        ));
        for (stage, n, p50, p99, p999) in &b.stages {
            out.push_str(&format!(
                "    {stage:<17}{n:>10}{p50:>10.0}{p99:>10.0}{p999:>10.0}\n"
            ));
        }
    }
    out
}

/// The breakdown for `--output json`.
pub fn json(budgets: &[ServerBudget]) -> serde_json::Value {
    serde_json::Value::Array(
        budgets
            .iter()
            .map(|b| {
                let stages: serde_json::Map<String, serde_json::Value> = b
                    .stages
                    .iter()
                    .map(|(s, n, p50, p99, p999)| {
                        (
                            s.clone(),
                            serde_json::json!({"count": n, "p50_us": p50, "p99_us": p99, "p99.9_us": p999}),
                        )
                    })
                    .collect();
                serde_json::json!({"server": b.server, "state": b.state, "stages": stages})
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_stage_lines_of_mntr() {
        let text = "zk_version\t3.8.0\nzk_server_state\tleader\n\
            ferrokeeper_stage_to_core_count\t10\nferrokeeper_stage_to_core_p50_us\t12\n\
            ferrokeeper_stage_to_core_p99_us\t40\nferrokeeper_stage_to_core_p999_us\t90\n\
            ferrokeeper_stage_commit_to_answer_count\t3\nferrokeeper_stage_commit_to_answer_p50_us\t5\n";
        let b = parse("h:1", text);
        assert_eq!(b.state, "leader");
        assert_eq!(b.stages.len(), 2);
        assert_eq!(b.stages[0], ("to_core".to_string(), 10, 12.0, 40.0, 90.0));
        assert_eq!(b.stages[1].0, "commit_to_answer");
        assert_eq!(b.stages[1].2, 5.0);
        let z = parse(
            "h:2",
            "mntr is not executed because it is not in the whitelist.\n",
        );
        assert!(z.stages.is_empty() && z.state.contains("whitelist"));
    }
}
