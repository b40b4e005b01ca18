//! Taking a ZooKeeper server's data over: the state machine ZooKeeper
//! itself would have after its startup on the same files
//! (`zkdata::Loaded`: its newest readable snapshot and the logged
//! transactions after it). Every znode keeps ZooKeeper's data, ACL and
//! Stat; sessions keep their ids and timeouts, with the passwords
//! ZooKeeper derives from their ids; the last zxid is ZooKeeper's last
//! transaction's, so ferrokeeper's zxids continue above it.
//!
//! As ZooKeeper's startup (`FileTxnSnapLog.restore`, then
//! `ZooKeeperServer.loadData`): the snapshot's nodes, then each
//! transaction with `DataTree.processTxn`'s rules (`datatree::replay`),
//! then the ephemerals of sessions no longer open are deleted.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;

use proto::{Acl, OpCode};
use zkdata::{Loaded, Txn, TxnHeader};

use crate::apply::{Session, StateMachine, TreeConfig};
use crate::datatree::{DataTree, Skipped, CONTAINER_OWNER, TTL_OWNER_MASK};

/// What a takeover read and built, for the server's log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub snapshot: PathBuf,
    pub snapshot_zxid: i64,
    /// Newer snapshots that were unreadable and passed over, and why.
    pub skipped_snapshots: Vec<String>,
    pub log_files: Vec<PathBuf>,
    /// Log files whose last record was cut short (cut, as ZooKeeper does).
    pub torn: Vec<(PathBuf, u64)>,
    pub txns: usize,
    pub first_zxid: i64,
    pub last_zxid: i64,
    pub nodes: usize,
    pub sessions: usize,
    /// Transactions whose effect the fuzzy snapshot already held.
    pub already_applied: usize,
    /// Ephemerals of sessions that were no longer open, deleted.
    pub orphan_ephemerals: usize,
}

/// A snapshot that does not make a tree (the files themselves were
/// checked by `zkdata`).
#[derive(Debug)]
pub enum TakeoverError {
    Snapshot(String),
}

impl std::fmt::Display for TakeoverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TakeoverError::Snapshot(s) => write!(f, "{s}"),
        }
    }
}

impl std::error::Error for TakeoverError {}

/// Builds the state machine from what ZooKeeper would load.
pub fn take_over(
    loaded: &Loaded,
    config: TreeConfig,
) -> Result<(StateMachine, Report), TakeoverError> {
    let snap = &loaded.snapshot;
    let (mut tree, mut sessions) = from_snapshot(snap).map_err(|why| {
        TakeoverError::Snapshot(format!("{}: {why}", loaded.snapshot_path.display()))
    })?;
    let mut already = 0;
    for t in &loaded.txns {
        tree.begin();
        already += replay(&mut tree, &mut sessions, &t.header, t.header.op, &t.txn);
    }
    let last_zxid = loaded.last_zxid();
    let orphans = delete_orphans(&mut tree, &sessions, last_zxid);
    tree.take_triggers();
    tree.recompute_digest();
    let next_session_id = sessions
        .keys()
        .next_back()
        .map_or(0, |id| id.wrapping_add(1));
    let report = Report {
        snapshot: loaded.snapshot_path.clone(),
        snapshot_zxid: snap.zxid,
        skipped_snapshots: loaded
            .skipped_snapshots
            .iter()
            .map(|e| e.to_string())
            .collect(),
        log_files: loaded.log_files.clone(),
        torn: loaded.torn.clone(),
        txns: loaded.txns.len(),
        first_zxid: loaded.txns.first().map_or(snap.zxid, |t| t.header.zxid),
        last_zxid,
        nodes: tree.node_count(),
        sessions: sessions.len(),
        already_applied: already,
        orphan_ephemerals: orphans,
    };
    Ok((
        StateMachine::from_parts(tree, sessions, next_session_id, last_zxid, config),
        report,
    ))
}

/// A ZooKeeper snapshot's nodes (data, ACL, persisted Stat) as a tree, and
/// its sessions with the passwords ZooKeeper derives from their ids; Err
/// says what in the snapshot does not make a tree.
pub(crate) fn from_snapshot(
    snap: &zkdata::ZkSnapshot,
) -> Result<(DataTree, BTreeMap<i64, Session>), String> {
    let acls: HashMap<i64, &Vec<Acl>> = snap.acls.iter().map(|(id, l)| (*id, l)).collect();
    let open = Acl::open_unsafe();
    let mut tree = DataTree::empty();
    for n in &snap.nodes {
        let acl = match n.acl {
            -1 => open.clone(),
            id => (*acls.get(&id).ok_or_else(|| {
                format!(
                    "node {} names ACL list {id}, which is not in the snapshot",
                    n.path
                )
            })?)
            .clone(),
        };
        let path = if n.path.is_empty() {
            "/"
        } else {
            n.path.as_str()
        };
        let stat = n.stat.to_stat();
        tree.restore_node(path, n.data.as_deref(), acl, stat)
            .map_err(|()| format!("node {path} has no parent before it, or comes twice"))?;
    }
    if tree.get("/").is_none() {
        return Err("no root node".into());
    }
    let sessions = snap
        .sessions
        .iter()
        .map(|&(id, timeout_ms)| (id, session(id, timeout_ms)))
        .collect();
    Ok((tree, sessions))
}

/// `ZooKeeperServer.loadData`: the ephemerals of sessions that are not
/// open are deleted (at `zxid`); returns how many.
pub(crate) fn delete_orphans(
    tree: &mut DataTree,
    sessions: &BTreeMap<i64, Session>,
    zxid: i64,
) -> usize {
    tree.begin();
    let mut orphans = 0;
    let dead: Vec<i64> = tree
        .ephemerals()
        .keys()
        .copied()
        .filter(|s| !sessions.contains_key(s))
        .collect();
    for s in dead {
        let paths: Vec<String> = tree.ephemerals()[&s].iter().cloned().collect();
        for p in paths.iter().rev() {
            if tree.zk_delete(p, zxid).is_ok() {
                orphans += 1;
            }
        }
    }
    orphans
}

fn session(id: i64, timeout_ms: i32) -> Session {
    Session {
        timeout_ms,
        passwd: zkdata::session_password(id).to_vec(),
    }
}

/// One transaction (or one op of a multi, with the multi's header) as
/// `DataTree.processTxn` and `FileTxnSnapLog.processTransaction` apply it;
/// returns how many effects were already in the tree (0 or 1).
fn replay(
    tree: &mut DataTree,
    sessions: &mut BTreeMap<i64, Session>,
    h: &TxnHeader,
    op_code: i32,
    txn: &Txn,
) -> usize {
    let (zxid, time) = (h.zxid, h.time);
    let r = match txn {
        Txn::CreateSession { timeout_ms } => {
            sessions.insert(h.client_id, session(h.client_id, *timeout_ms));
            Ok(())
        }
        Txn::CloseSession { paths } => {
            sessions.remove(&h.client_id);
            let mut paths = if paths.is_empty() {
                tree.ephemerals()
                    .get(&h.client_id)
                    .map(|s| s.iter().cloned().collect())
                    .unwrap_or_default()
            } else {
                paths.clone()
            };
            // Deepest first: a path sorts before its descendants.
            paths.sort();
            for p in paths.iter().rev() {
                let _ = tree.zk_delete(p, zxid);
            }
            Ok(())
        }
        Txn::Create {
            path,
            data,
            acl,
            ephemeral,
            parent_cversion,
        } => {
            let owner = if *ephemeral { h.client_id } else { 0 };
            let r = tree.zk_create(
                path,
                data.as_deref(),
                acl.clone(),
                owner,
                *parent_cversion,
                zxid,
                time,
            );
            if r == Err(Skipped::NodeExists) && op_code == OpCode::Create.code() {
                // processTxn: a plain create that finds its node (deleted
                // and re-created by another session around the snapshot)
                // still moves the parent's cversion and pzxid up.
                if let Some((parent, _)) = crate::path::split(path) {
                    let _ = tree.zk_raise_cversion(parent, *parent_cversion, zxid);
                }
            }
            r
        }
        Txn::CreateContainer {
            path,
            data,
            acl,
            parent_cversion,
        } => tree.zk_create(
            path,
            data.as_deref(),
            acl.clone(),
            CONTAINER_OWNER,
            *parent_cversion,
            zxid,
            time,
        ),
        Txn::CreateTtl {
            path,
            data,
            acl,
            parent_cversion,
            ttl,
        } => tree.zk_create(
            path,
            data.as_deref(),
            acl.clone(),
            TTL_OWNER_MASK | *ttl,
            *parent_cversion,
            zxid,
            time,
        ),
        Txn::Delete { path } => tree.zk_delete(path, zxid),
        Txn::SetData {
            path,
            data,
            version,
        } => tree.zk_set_data(path, data.as_deref(), *version, zxid, time),
        Txn::SetAcl { path, acl, version } => tree.zk_set_acl(path, acl.clone(), *version),
        Txn::Check { .. } | Txn::Error { .. } => Ok(()),
        Txn::Multi(subs) => {
            // A multi with an error in it failed as a whole: no effect.
            if subs.iter().any(|(t, _)| *t == OpCode::Error.code()) {
                return 0;
            }
            return subs
                .iter()
                .map(|(t, sub)| replay(tree, sessions, h, *t, sub))
                .sum();
        }
    };
    usize::from(r.is_err())
}
