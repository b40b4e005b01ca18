//! The AdminServer's commands (`http://host:8080/commands/NAME`): ZooKeeper
//! 3.8's command names, aliases and JSON fields, each answer ending with
//! `"command"` and `"error"`. Rendered by the core task from the same view
//! the four-letter words use.

use serde_json::{json, Map, Value};

use crate::fourlw::{self, View};

/// Command names, as `/commands` lists them.
pub const COMMANDS: &[&str] = &[
    "configuration",
    "connection_stat_reset",
    "connections",
    "dirs",
    "dump",
    "environment",
    "get_trace_mask",
    "hash",
    "initial_configuration",
    "is_read_only",
    "last_snapshot",
    "leader",
    "monitor",
    "observer_connection_stat_reset",
    "observers",
    "ruok",
    "server_stats",
    "set_trace_mask",
    "stat_reset",
    "stats",
    "system_properties",
    "voting_view",
    "watch_summary",
    "watches",
    "watches_by_path",
    "zabstate",
];

/// A command's JSON answer with its HTTP status: `extra`'s fields, then
/// "command" and "error" (for the commands that answer other than 200).
pub(crate) fn answer(
    status: axum::http::StatusCode,
    command: &str,
    error: Option<&str>,
    extra: Option<Map<String, Value>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let mut m = extra.unwrap_or_default();
    m.insert("command".into(), command.into());
    m.insert("error".into(), error.map_or(Value::Null, Into::into));
    let body = serde_json::to_string_pretty(&Value::Object(m)).unwrap_or_default();
    (
        status,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// The value of `key` in the request's query string (`?a=1&key=v`).
pub(crate) fn query_param<'u>(uri: &'u axum::http::Uri, key: &str) -> Option<&'u str> {
    uri.query()?
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// The answer while the server cannot take the command.
pub(crate) fn unavailable(command: &str) -> axum::response::Response {
    answer(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        command,
        Some("This ZooKeeper instance is not currently serving requests"),
        None,
    )
}

/// A command name or one of ZooKeeper's aliases, as its name.
pub fn resolve(name: &str) -> Option<&'static str> {
    let alias = match name {
        "conf" | "config" => "configuration",
        "crst" => "connection_stat_reset",
        "cons" => "connections",
        "env" | "envi" => "environment",
        "gtmk" => "get_trace_mask",
        "icfg" => "initial_configuration",
        "isro" => "is_read_only",
        "lsnp" => "last_snapshot",
        "lead" => "leader",
        "mntr" => "monitor",
        "orst" => "observer_connection_stat_reset",
        "obsr" => "observers",
        "srvr" => "server_stats",
        "stmk" => "set_trace_mask",
        "srst" => "stat_reset",
        "stat" => "stats",
        "sysp" => "system_properties",
        "wchs" => "watch_summary",
        "wchc" => "watches",
        "wchp" => "watches_by_path",
        other => other,
    };
    COMMANDS.iter().copied().find(|c| *c == alias)
}

/// The JSON answer of a resolved command. Resets (`stat_reset`,
/// `connection_stat_reset`) are carried out by the caller.
pub fn render(cmd: &str, v: &View) -> Value {
    let mut m = match cmd {
        "configuration" => configuration(v),
        "connections" => json!({
            "connections": connections(v),
            "secure_connections": [],
        }),
        "dirs" => {
            let (d, l) = fourlw::dir_sizes(v.cfg);
            json!({ "datadir_size": d, "logdir_size": l })
        }
        "dump" => dump(v),
        "environment" => environment(v),
        "get_trace_mask" | "set_trace_mask" => json!({ "tracemask": fourlw::TRACE_MASK }),
        "hash" => json!({
            "digests": [{ "zxid": v.node.last_zxid(), "digest": v.node.state().tree.digest() }],
        }),
        "initial_configuration" => json!({
            "initial_configuration": std::fs::read_to_string(&v.cfg.path).unwrap_or_default(),
        }),
        "is_read_only" => json!({ "read_only": v.node.is_read_only() }),
        "last_snapshot" => last_snapshot(v),
        "leader" => leader(v),
        "monitor" => monitor(v),
        "observers" => json!({ "synced_observers": v.node.observers().1, "observers": [] }),
        "server_stats" | "stats" => {
            let mut s = server_stats(v);
            if cmd == "stats" {
                s["connections"] = connections(v);
                s["secure_connections"] = json!([]);
            }
            s
        }
        "system_properties" => system_properties(),
        "voting_view" => voting_view(v),
        "watch_summary" => {
            let by_path = v.watches_by_path();
            let sessions: std::collections::BTreeSet<i64> = by_path
                .iter()
                .flat_map(|(_, s)| s.iter().copied())
                .collect();
            json!({
                "num_connections": sessions.len(),
                "num_paths": by_path.len(),
                "num_total_watches": by_path.iter().map(|(_, s)| s.len()).sum::<usize>(),
            })
        }
        "watches" => {
            let mut by_session: Map<String, Value> = Map::new();
            for (p, ss) in v.watches_by_path() {
                for s in ss {
                    let e = by_session.entry(s.to_string()).or_insert_with(|| json!([]));
                    e.as_array_mut().expect("array").push(json!(p));
                }
            }
            json!({ "session_id_to_watched_paths": by_session })
        }
        "watches_by_path" => {
            let m: Map<String, Value> = v
                .watches_by_path()
                .into_iter()
                .map(|(p, ss)| (p, json!(ss)))
                .collect();
            json!({ "path_to_session_ids": m })
        }
        "zabstate" => {
            let voting = v.cfg.distributed();
            let state = if !voting {
                ""
            } else if v.serving() {
                "broadcast"
            } else {
                "election"
            };
            json!({ "voting": voting, "zabstate": state })
        }
        // ruok, stat_reset, connection_stat_reset, observer_connection_stat_reset
        _ => json!({}),
    };
    if let Value::Object(o) = &mut m {
        o.entry("command").or_insert(json!(cmd));
        o.entry("error").or_insert(Value::Null);
    }
    m
}

fn configuration(v: &View) -> Value {
    let cfg = v.cfg;
    let mut m = json!({
        "client_port": cfg.client_port,
        "data_dir": storage::snap::snap_dir(&cfg.data_dir),
        "data_log_dir": cfg.log_dir().join(storage::wal::DIR_NAME),
        "tick_time": cfg.tick_ms,
        "max_client_cnxns": cfg.max_client_cnxns,
        "min_session_timeout": cfg.min_session_timeout_ms,
        "max_session_timeout": cfg.max_session_timeout_ms,
        "server_id": cfg.server_id().unwrap_or(0),
        "client_port_listen_backlog": -1,
    });
    if cfg.distributed() {
        m["init_limit"] = json!(cfg.init_limit);
        m["sync_limit"] = json!(cfg.sync_limit);
        m["election_alg"] = json!(3);
        m["peer_type"] = json!(0);
    }
    m
}

fn connections(v: &View) -> Value {
    v.sorted_conns()
        .into_iter()
        .map(|(id, c)| {
            let (sid, to) = v.node.conn_session(*id).unwrap_or((0, 0));
            json!({
                "remote_socket_address": format!("{}:{}", c.addr.ip(), c.addr.port()),
                "interest_ops": 1,
                "outstanding_requests": v.node.queued(*id),
                "packets_received": c.recved,
                "packets_sent": c.sent,
                "session_id": sid,
                "last_operation": c.last_op,
                "established": c.established_ms,
                "session_timeout": to,
                "last_cxid": c.last_cxid,
                "last_zxid": c.last_zxid,
                "last_response_time": c.last_resp_ms,
                "last_latency": c.last_latency_ms,
                "min_latency": c.latency.min(),
                "avg_latency": c.latency.total_ms / c.latency.count.max(1),
                "max_latency": c.latency.max_ms,
            })
        })
        .collect()
}

fn dump(v: &View) -> Value {
    let tick = v.cfg.tick_ms.max(1) as i64;
    let mut expiry: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
    for (s, d) in v.node.session_deadlines() {
        expiry.entry((d / tick + 1) * tick).or_default().push(s);
    }
    let expiry: Map<String, Value> = expiry
        .into_iter()
        .map(|(t, ss)| (t.to_string(), json!(ss)))
        .collect();
    let eph: Map<String, Value> = v
        .node
        .state()
        .tree
        .ephemerals()
        .iter()
        .filter(|(_, p)| !p.is_empty())
        .map(|(s, p)| (s.to_string(), json!(p.iter().collect::<Vec<_>>())))
        .collect();
    json!({
        "expiry_time_to_session_ids": expiry,
        "session_id_to_ephemeral_paths": eph,
    })
}

fn environment(v: &View) -> Value {
    let text = v.envi();
    let m: Map<String, Value> = text
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, val)| (k.to_string(), json!(val)))
        .collect();
    Value::Object(m)
}

fn last_snapshot(v: &View) -> Value {
    let newest = storage::snap::list(&v.cfg.data_dir)
        .ok()
        .and_then(|l| l.last().cloned());
    match newest {
        Some((index, path)) => {
            let secs = std::fs::metadata(&path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            json!({ "zxid": format!("{index:x}"), "timestamp": secs })
        }
        None => json!({ "zxid": "0", "timestamp": v.now_ms / 1000 }),
    }
}

fn leader(v: &View) -> Value {
    if !v.cfg.distributed() {
        return json!({ "error": "server is not initialized" });
    }
    let id = v.node.leader_id();
    let ip = v
        .cfg
        .servers
        .get(&id)
        .map(|s| s.host.clone())
        .unwrap_or_default();
    json!({
        "is_leader": v.node.is_leader(),
        "leader_id": id,
        "leader_ip": ip,
    })
}

/// mntr's keys without `zk_`, numbers as numbers.
fn monitor(v: &View) -> Value {
    let m: Map<String, Value> = v
        .mntr()
        .lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, val)| {
            let k = k.strip_prefix("zk_").unwrap_or(k).to_string();
            let val = if k == "last_zxid" || k == "version" || k == "server_state" {
                json!(val)
            } else if let Ok(n) = val.parse::<u64>() {
                json!(n)
            } else if let Ok(f) = val.parse::<f64>() {
                json!(f)
            } else {
                json!(val)
            };
            (k, val)
        })
        .collect();
    Value::Object(m)
}

fn server_stats(v: &View) -> Value {
    let l = &v.server.latency;
    let (d, lg) = fourlw::dir_sizes(v.cfg);
    json!({
        "version": fourlw::VERSION,
        "read_only": false,
        "server_stats": {
            "packets_sent": v.server.sent,
            "packets_received": v.server.received,
            "fsync_threshold_exceed_count": 0,
            "data_dir_size": d,
            "log_dir_size": lg,
            "provider_null": false,
            "server_state": v.mode,
            "last_processed_zxid": v.node.last_zxid(),
            "outstanding_requests": v.outstanding(),
            "avg_latency": l.avg().parse::<f64>().unwrap_or(0.0),
            "max_latency": l.max_ms,
            "min_latency": l.min(),
            "num_alive_client_connections": v.connections(),
            "uptime": v.started.elapsed().as_millis() as u64,
            "auth_failed_count": 0,
        },
        "node_count": v.node_count(),
    })
}

fn system_properties() -> Value {
    let m: Map<String, Value> = ["PATH", "HOME", "USER", "ZOO_LOG_DIR", "RUST_LOG"]
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), json!(v))))
        .collect();
    Value::Object(m)
}

fn voting_view(v: &View) -> Value {
    let m: Map<String, Value> = v
        .cfg
        .servers
        .iter()
        .filter(|_| v.cfg.distributed())
        .map(|(id, s)| {
            let client = s
                .client
                .as_ref()
                .map(|(h, p)| format!("{}:{p}", h.as_deref().unwrap_or("0.0.0.0")));
            (
                id.to_string(),
                json!({
                    "voting_addresses": [format!("{}:{}", s.host, s.quorum_port)],
                    "election_address": format!("{}:{}", s.host, s.election_port),
                    "client_address": client,
                    "learner_type": if s.observer { "observer" } else { "participant" },
                }),
            )
        })
        .collect();
    json!({ "current_config": m })
}

/// The `/commands` page: a link per command, as ZooKeeper's.
pub fn index(base: &str) -> String {
    let mut out = String::new();
    for c in COMMANDS {
        out.push_str(&format!("<a href=\"{base}/{c}\">{c}</a>\n<br/>\n"));
    }
    out
}
