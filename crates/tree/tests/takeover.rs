//! Taking over files a real ZooKeeper 3.8 wrote
//! (`tests/golden/capture_zkfiles.py`): the tree built from its startup
//! snapshot and the log after it must be, node for node and field for
//! field, the tree kazoo read from that ZooKeeper before it was killed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use tree::takeover::take_over;
use tree::TreeConfig;
use zkdata::{Loaded, TxnEntry, TxnLogFile, ZkDirs};

fn fixture(method: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/golden/zookeeper-3.8-files")
        .join(method)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn load(method: &str) -> (Loaded, serde_json::Value) {
    let dir = fixture(method);
    let e =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let loaded = ZkDirs {
        snap_dir: dir.clone(),
        log_dir: dir,
    }
    .load()
    .unwrap()
    .unwrap();
    (loaded, e)
}

#[test]
fn every_node_session_and_zxid_is_zookeepers() {
    for method in ["none", "gz", "snappy"] {
        let (loaded, e) = load(method);
        check(method, &loaded, &e);
    }
}

/// A fuzzy snapshot: ZooKeeper writes its snapshot while it applies, so
/// the snapshot holds effects of transactions after the zxid in its
/// name, and startup replays those again. Here the snapshot of 0x19
/// is taken as if it were of 0x10, so the nine transactions before it
/// find their effects already there (created nodes, deleted nodes, set
/// versions, a session opened and closed); the tree must come out the same.
#[test]
fn a_fuzzy_snapshot_replays_to_the_same_tree() {
    let (mut loaded, e) = load("none");
    let mut earlier: Vec<TxnEntry> = TxnLogFile::read(&fixture("none").join("log.1"))
        .unwrap()
        .entries
        .into_iter()
        .filter(|t| t.header.zxid > 0x10 && t.header.zxid <= 0x19)
        .collect();
    assert_eq!(earlier.len(), 9);
    let ops: Vec<i32> = earlier.iter().map(|t| t.header.op).collect();
    earlier.append(&mut loaded.txns);
    loaded.txns = earlier;
    loaded.snapshot.zxid = 0x10;
    let (_, report) = check("fuzzy", &loaded, &e);
    assert!(report.already_applied >= 2, "{report:?} over ops {ops:?}");
}

fn check(
    method: &str,
    loaded: &Loaded,
    e: &serde_json::Value,
) -> (tree::StateMachine, tree::takeover::Report) {
    {
        let (sm, report) = take_over(loaded, TreeConfig::default()).unwrap();
        let want = e["nodes"].as_object().unwrap();
        let mut got = BTreeMap::new();
        sm.tree.visit_preorder(|path, n| {
            got.insert(
                path.to_string(),
                (n.stat(), n.data.map(hex), n.acl.to_vec()),
            );
        });
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{method}: the same paths"
        );
        for (path, w) in want {
            let (stat, data, acl) = &got[path];
            let ws = &w["stat"];
            let field = |k: &str| ws[k].as_i64().unwrap();
            assert_eq!(
                [
                    stat.czxid,
                    stat.mzxid,
                    stat.ctime,
                    stat.mtime,
                    stat.version as i64,
                    stat.cversion as i64,
                    stat.aversion as i64,
                    stat.ephemeral_owner,
                    stat.data_length as i64,
                    stat.num_children as i64,
                    stat.pzxid,
                ],
                [
                    field("czxid"),
                    field("mzxid"),
                    field("ctime"),
                    field("mtime"),
                    field("version"),
                    field("cversion"),
                    field("aversion"),
                    field("ephemeralOwner"),
                    field("dataLength"),
                    field("numChildren"),
                    field("pzxid"),
                ],
                "{method} {path}: Stat"
            );
            // kazoo reads a null buffer as b"" (ZooKeeper's /app/rawnull).
            assert_eq!(
                data.clone().unwrap_or_default(),
                w["data"].as_str().unwrap_or_default(),
                "{method} {path}: data"
            );
            let wacl: Vec<(i32, String, String)> = w["acl"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| {
                    (
                        a["perms"].as_i64().unwrap() as i32,
                        a["scheme"].as_str().unwrap().to_string(),
                        a["id"].as_str().unwrap().to_string(),
                    )
                })
                .collect();
            let gacl: Vec<(i32, String, String)> = acl
                .iter()
                .map(|a| (a.perms, a.id.scheme.clone(), a.id.id.clone()))
                .collect();
            assert_eq!(gacl, wacl, "{method} {path}: ACL");
        }
        assert_eq!(
            sm.tree.get("/app/rawnull").unwrap().data,
            None,
            "null data stays null"
        );
        // The session still open in ZooKeeper is open here, with the
        // password ZooKeeper gave it, and owns its ephemerals.
        let sid = e["open_session"]["id"].as_i64().unwrap();
        let s = sm.sessions.get(&sid).expect("the open session");
        assert_eq!(s.passwd, zkdata::session_password(sid).to_vec());
        let mine: Vec<String> = sm.tree.ephemerals()[&sid].iter().cloned().collect();
        let want_eph: Vec<String> = e["open_session"]["ephemerals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        assert_eq!(mine, want_eph, "{method}");
        assert_eq!(sm.sessions.len(), 1, "{method}: only that session is open");
        // zxids continue from ZooKeeper's last transaction.
        assert_eq!(sm.last_zxid(), report.last_zxid);
        assert_eq!(report.last_zxid, loaded.txns.last().unwrap().header.zxid);
        assert_eq!(report.snapshot_zxid, loaded.snapshot.zxid);
        assert!(sm.tree.containers().any(|p| p == "/app/container"));
        assert!(sm.tree.ttls().any(|p| p == "/app/ttl"));
        assert_eq!(report.nodes, want.len());
        (sm, report)
    }
}
