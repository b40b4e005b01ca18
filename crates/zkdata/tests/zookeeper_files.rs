//! ZooKeeper 3.8's own files, made by a real server
//! (`tests/golden/capture_zkfiles.py`): uncompressed, gzip and snappy
//! snapshots, and the transaction logs around them, read as ZooKeeper
//! would load them at startup.

use proto::OpCode;
use std::collections::BTreeSet;
use std::path::PathBuf;
use zkdata::{Txn, TxnLogFile, ZkDirs};

fn fixture(method: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/golden/zookeeper-3.8-files")
        .join(method)
}

fn expected(method: &str) -> serde_json::Value {
    let s = std::fs::read_to_string(fixture(method).join("expected.json")).unwrap();
    serde_json::from_str(&s).unwrap()
}

fn dirs(method: &str) -> ZkDirs {
    ZkDirs {
        snap_dir: fixture(method),
        log_dir: fixture(method),
    }
}

#[test]
fn the_startup_snapshot_holds_the_tree_zookeeper_served() {
    for method in ["none", "gz", "snappy"] {
        let loaded = dirs(method).load().unwrap().expect("ZooKeeper files");
        let e = expected(method);
        let snap = &loaded.snapshot;
        assert_eq!(snap.zxid, 0x19, "{method}: the newest snapshot");
        assert!(loaded.skipped_snapshots.is_empty());
        let paths: Vec<String> = snap
            .nodes
            .iter()
            .map(|n| {
                if n.path.is_empty() {
                    "/".to_string()
                } else {
                    n.path.clone()
                }
            })
            .collect();
        let want: BTreeSet<String> = e["snapshot_nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            paths.iter().cloned().collect::<BTreeSet<_>>(),
            want,
            "{method}"
        );
        // Pre-order: every parent before its children.
        for (i, p) in paths.iter().enumerate().skip(1) {
            let parent = match p.rfind('/') {
                Some(0) => "/".to_string(),
                Some(at) => p[..at].to_string(),
                None => unreachable!(),
            };
            assert!(
                paths[..i].contains(&parent),
                "{method}: {p} before its parent"
            );
        }
        // Nodes the log did not touch after the snapshot have ZooKeeper's
        // Stat as a client saw it, where the persisted form agrees.
        let nodes = e["nodes"].as_object().unwrap();
        let mut compared = 0;
        for n in &snap.nodes {
            let p = if n.path.is_empty() {
                "/"
            } else {
                n.path.as_str()
            };
            if [
                "/app",
                "/app/multi",
                "/app/container",
                "/app/container/child",
            ]
            .contains(&p)
            {
                continue; // changed after the snapshot
            }
            let Some(want) = nodes.get(p) else { continue };
            let st = &want["stat"];
            assert_eq!(n.stat.czxid, st["czxid"].as_i64().unwrap(), "{method} {p}");
            assert_eq!(n.stat.mzxid, st["mzxid"].as_i64().unwrap(), "{method} {p}");
            assert_eq!(n.stat.ctime, st["ctime"].as_i64().unwrap(), "{method} {p}");
            assert_eq!(n.stat.mtime, st["mtime"].as_i64().unwrap(), "{method} {p}");
            assert_eq!(
                n.stat.version as i64,
                st["version"].as_i64().unwrap(),
                "{method} {p}"
            );
            assert_eq!(
                n.stat.aversion as i64,
                st["aversion"].as_i64().unwrap(),
                "{method} {p}"
            );
            assert_eq!(n.stat.pzxid, st["pzxid"].as_i64().unwrap(), "{method} {p}");
            let data = n
                .data
                .as_deref()
                .map(|d| d.iter().map(|b| format!("{b:02x}")).collect::<String>());
            // A client reads a null buffer as empty bytes.
            assert_eq!(
                data.unwrap_or_default(),
                want["data"].as_str().unwrap_or_default(),
                "{method} {p}"
            );
            compared += 1;
        }
        assert!(compared >= 12, "{method}: compared {compared}");
        // On disk a container's owner is 0x8000000000000000 and a TTL
        // node's 0xFF00000000000000 | ttl; clients see 0 for both.
        let owner = |p: &str| {
            snap.nodes
                .iter()
                .find(|n| n.path == p)
                .unwrap()
                .stat
                .ephemeral_owner
        };
        assert_eq!(owner("/app/container") as u64, 0x8000_0000_0000_0000);
        assert_eq!(owner("/app/ttl") as u64, 0xFF00_0000_0000_0000 | 3_600_000);
        assert_eq!(
            snap.nodes
                .iter()
                .find(|n| n.path == "/app/rawnull")
                .unwrap()
                .data,
            None
        );
    }
}

#[test]
fn the_log_after_the_snapshot_holds_the_open_session_and_its_ephemerals() {
    for method in ["none", "gz", "snappy"] {
        let loaded = dirs(method).load().unwrap().unwrap();
        let e = expected(method);
        let sid = e["open_session"]["id"].as_i64().unwrap();
        let zxids: Vec<i64> = loaded.txns.iter().map(|t| t.header.zxid).collect();
        assert_eq!(zxids.first(), Some(&0x1a), "{method}");
        assert!(
            zxids.windows(2).all(|w| w[1] == w[0] + 1),
            "{method}: {zxids:?}"
        );
        assert!(loaded.txns.iter().any(|t| t.header.client_id == sid
            && matches!(t.txn, Txn::CreateSession { timeout_ms } if timeout_ms > 0)));
        let ephemerals: BTreeSet<String> = loaded
            .txns
            .iter()
            .filter(|t| t.header.client_id == sid)
            .filter_map(|t| match &t.txn {
                Txn::Create {
                    path,
                    ephemeral: true,
                    ..
                } => Some(path.clone()),
                _ => None,
            })
            .collect();
        let want: BTreeSet<String> = e["open_session"]["ephemerals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(ephemerals, want, "{method}");
        assert_eq!(loaded.last_zxid(), *zxids.last().unwrap());
        // ZooKeeper 3.8 writes a digest after each transaction by default.
        assert!(loaded.txns.iter().all(|t| t.digest.is_some()), "{method}");
    }
}

#[test]
fn the_first_log_holds_every_transaction_type_the_clients_caused() {
    let f = TxnLogFile::read(&fixture("none").join("log.1")).unwrap();
    let mut ops = BTreeSet::new();
    for t in &f.entries {
        ops.insert(t.header.op);
        if let Txn::Multi(subs) = &t.txn {
            for (o, _) in subs {
                ops.insert(*o);
            }
        }
    }
    for want in [
        OpCode::Create,
        OpCode::Create2,
        OpCode::CreateContainer,
        OpCode::CreateTtl,
        OpCode::Delete,
        OpCode::SetData,
        OpCode::SetAcl,
        OpCode::Check,
        OpCode::Multi,
        OpCode::Error,
        OpCode::CreateSession,
        OpCode::CloseSession,
    ] {
        assert!(ops.contains(&want.code()), "{want:?} not in {ops:?}");
    }
    // The closed session's close names the ephemeral it removed.
    assert!(f.entries.iter().any(|t| matches!(&t.txn,
        Txn::CloseSession { paths } if paths == &["/app/eph-closed".to_string()])));
}
