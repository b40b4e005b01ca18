//! Offline tools on a server's files, like ZooKeeper's
//! zkSnapShotToolkit, zkTxnLogToolkit and zkCleanup.sh. They only read,
//! except `purge`, so they work beside a running server too: none of them
//! repairs, cuts or removes a file the running server may still use.

use std::fmt::Write;
use std::path::Path;

use proto::{OpCode, Request};
use raft::prelude::EntryType;
use tree::{Entry, EntryKind, StateMachine, TreeConfig};

#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error("{0}")]
    Snapshot(#[from] storage::SnapError),
    #[error("{0}")]
    Log(#[from] storage::WalError),
    #[error("{path}: undecodable snapshot body: {reason}")]
    Body { path: String, reason: String },
    #[error("{0}")]
    Lock(#[from] storage::LockError),
}

/// `ferrokeeper snapshot dump FILE`: znodes with their Stat (and data when
/// asked), then the sessions.
pub fn dump_snapshot(path: &Path, with_data: bool) -> Result<String, ToolError> {
    let (meta, body) = storage::snap::read(path)?;
    let sm = StateMachine::decode_snapshot(
        &body,
        TreeConfig {
            extended_types: true,
            schemes: Default::default(),
            enforce_quota: false,
        },
    )
    .map_err(|e| ToolError::Body {
        path: path.display().to_string(),
        reason: e.to_string(),
    })?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "Snapshot {}: index 0x{:x}, term {}, voters {:?}",
        path.display(),
        meta.index,
        meta.term,
        meta.conf_state.voters
    );
    let _ = writeln!(out, "ZNode Details (count={}):", sm.tree.node_count());
    sm.tree.visit_preorder(|p, n| {
        let s = n.stat();
        let _ = writeln!(out, "----\n{p}");
        let _ = writeln!(out, "  cZxid = 0x{:x}\n  ctime = {}\n  mZxid = 0x{:x}\n  mtime = {}\n  pZxid = 0x{:x}", s.czxid, s.ctime, s.mzxid, s.mtime, s.pzxid);
        let _ = writeln!(out, "  cversion = {}\n  dataVersion = {}\n  aclVersion = {}\n  ephemeralOwner = 0x{:x}\n  dataLength = {}", s.cversion, s.version, s.aversion, s.ephemeral_owner, s.data_length);
        if with_data {
            let data = n.data.map(String::from_utf8_lossy).unwrap_or_default();
            let _ = writeln!(out, "  data = {data}");
        }
    });
    let _ = writeln!(out, "----\nSession Details (sid, timeout, ephemeralCount):");
    for (id, s) in &sm.sessions {
        let eph = sm.tree.ephemerals().get(id).map_or(0, |e| e.len());
        let _ = writeln!(out, "0x{id:x}, {}, {eph}", s.timeout_ms);
    }
    Ok(out)
}

/// `ferrokeeper log dump DIR`: one line per entry — index, term, session,
/// op, path.
pub fn dump_log(log_dir: &Path) -> Result<String, ToolError> {
    // Beside a running server the newest segment is being written: where
    // it stops checking out is where the writer is, not a torn tail.
    let live = storage::lock::holder(log_dir).is_some();
    let rec = if live {
        storage::wal::read_live(log_dir)?
    } else {
        storage::wal::read_only(log_dir)?
    };
    let mut out = String::new();
    for e in &rec.entries {
        let _ = write!(out, "index=0x{:x} term={} ", e.index, e.term);
        let bytes = match e.get_entry_type() {
            EntryType::EntryNormal if e.data.is_empty() => {
                let _ = writeln!(out, "leader-noop");
                continue;
            }
            EntryType::EntryNormal => &e.data,
            _ if e.context.is_empty() => {
                let _ = writeln!(out, "membership-change");
                continue;
            }
            // A reconfig's membership change: the reconfig entry.
            _ => &e.context,
        };
        match Entry::decode(bytes) {
            Err(err) => {
                let _ = writeln!(out, "undecodable entry: {err}");
            }
            Ok(entry) => {
                let _ = write!(
                    out,
                    "time={} session=0x{:x} cxid=0x{:x} ",
                    entry.time_ms, entry.session_id, entry.xid
                );
                let _ = match &entry.kind {
                    EntryKind::CreateSession { timeout_ms, .. } => {
                        writeln!(out, "op=createSession timeout={timeout_ms}")
                    }
                    EntryKind::CloseSession { expired } => {
                        writeln!(
                            out,
                            "op=closeSession{}",
                            if *expired { " (expired)" } else { "" }
                        )
                    }
                    EntryKind::Reap { paths } => {
                        writeln!(out, "op=deleteContainer paths={paths:?}")
                    }
                    EntryKind::Digest { index, digest } => {
                        writeln!(out, "op=digest index=0x{index:x} digest=0x{digest:x}")
                    }
                    EntryKind::Request { op, body, .. } => {
                        writeln!(out, "op={} {}", op.name(), request_paths(*op, body))
                    }
                    EntryKind::Restore { snapshot } => {
                        writeln!(out, "op=restore packed-snapshot-bytes={}", snapshot.len())
                    }
                    EntryKind::Reconfig { base, servers, .. } => {
                        writeln!(
                            out,
                            "op=reconfig from-version={base:x} members={:?}",
                            servers.replace('\n', ",")
                        )
                    }
                    EntryKind::Refused { error } => writeln!(out, "op=refused err={error}"),
                };
            }
        }
    }
    if let Some(t) = rec.torn_tail.as_ref().filter(|_| !live) {
        let _ = writeln!(
            out,
            "torn tail at {} offset {}: {}",
            t.segment.display(),
            t.offset,
            t.reason
        );
    }
    Ok(out)
}

fn request_paths(op: OpCode, body: &[u8]) -> String {
    match Request::decode(op, body) {
        Err(e) => format!("undecodable: {e}"),
        Ok(Request::Multi(ops)) => {
            let parts: Vec<String> = ops
                .iter()
                .map(|o| format!("{}:{}", o.op().name(), o.path()))
                .collect();
            format!("ops=[{}]", parts.join(", "))
        }
        Ok(Request::Create(_, c)) => format!("path={}", c.path),
        Ok(Request::Delete(d)) | Ok(Request::Check(d)) => {
            format!("path={} version={}", d.path, d.version)
        }
        Ok(Request::SetData(s)) => format!("path={} version={}", s.path, s.version),
        Ok(Request::SetAcl(s)) => format!("path={} version={}", s.path, s.version),
        Ok(other) => format!("{other:?}"),
    }
}

/// `ferrokeeper purge DATADIR [DATALOGDIR] -n COUNT` (zkCleanup.sh).
pub fn purge(data_dir: &Path, log_dir: &Path, count: usize) -> Result<String, ToolError> {
    let mut out = String::new();
    // Beside a running server, as zkCleanup.sh: only snapshots older than
    // the newest `count` and segments wholly below the oldest kept one go,
    // which the server itself no longer reads (its own autopurge removes
    // the same). Otherwise the directories stay locked while purging, so
    // a server starting meanwhile refuses instead of reading half a purge.
    let running = [data_dir, log_dir]
        .into_iter()
        .find_map(storage::lock::holder);
    let _locks = match &running {
        Some(who) => {
            let _ = writeln!(
                out,
                "a server ({who}) is running on these directories: removing only what it no longer needs"
            );
            Vec::new()
        }
        None => storage::DirLock::acquire_both(data_dir, log_dir)?,
    };
    let p = storage::snap::purge(data_dir, log_dir, count)?;
    for f in p.snapshots.iter().chain(&p.segments) {
        let _ = writeln!(out, "removed {}", f.display());
    }
    let _ = writeln!(
        out,
        "kept the newest {} snapshots and the log they need",
        count.max(3)
    );
    Ok(out)
}

/// `zkServer.sh status`: finds the client port in the config, asks the
/// server `srvr`, and prints what zkServer.sh prints (then the zxid and
/// node count). Returns (stdout, stderr, exit code): 1 when the server is
/// not running or not serving.
pub fn status(cfg_path: &Path) -> (String, String, u8) {
    let mut err = format!("Using config: {}\n", cfg_path.display());
    let cfg = match crate::Config::load(cfg_path) {
        Ok(c) => c,
        Err(e) => {
            err.push_str(&format!("{e}\n"));
            return (String::new(), err, 1);
        }
    };
    let (host, port) = match cfg.client_endpoint() {
        Ok(x) => x,
        Err(e) => {
            err.push_str(&format!("{e}\nUnable to find either secure or unsecure client port in any configs. Terminating.\n"));
            return (String::new(), err, 1);
        }
    };
    let host = host.unwrap_or_else(|| "localhost".into());
    let mut out =
        format!("Client port found: {port}. Client address: {host}. Client SSL: false.\n");
    let srvr = four_letter(&host, port, "srvr").unwrap_or_default();
    let pick = |key: &str| {
        srvr.lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.trim().to_string())
    };
    match pick("Mode:") {
        Some(mode) => {
            out.push_str(&format!("Mode: {mode}\n"));
            for key in ["Zxid:", "Node count:"] {
                if let Some(v) = pick(key) {
                    out.push_str(&format!("{key} {v}\n"));
                }
            }
            (out, err, 0)
        }
        None => {
            out.push_str("Error contacting service. It is probably not running.\n");
            (out, err, 1)
        }
    }
}

/// Sends a four-letter word and reads the answer until the server closes.
fn four_letter(host: &str, port: u16, cmd: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    use std::net::ToSocketAddrs;
    let timeout = std::time::Duration::from_secs(5);
    let mut last = std::io::Error::other("no address");
    for addr in (host, port).to_socket_addrs()? {
        match std::net::TcpStream::connect_timeout(&addr, timeout) {
            Ok(mut s) => {
                s.set_read_timeout(Some(timeout))?;
                s.write_all(cmd.as_bytes())?;
                let mut out = String::new();
                s.read_to_string(&mut out)?;
                return Ok(out);
            }
            Err(e) => last = e,
        }
    }
    Err(last)
}
