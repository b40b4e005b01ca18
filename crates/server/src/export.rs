//! `ferrokeeper export-zookeeper zoo.cfg`: the way back to ZooKeeper. From
//! a stopped server's own files (its newest snapshot and every entry of
//! its log after it), writes the state as a ZooKeeper snapshot into
//! ZooKeeper's `version-2` folder of the same dataDir, and the
//! `currentEpoch`/`acceptedEpoch` files a ZooKeeper ensemble member reads,
//! so that ZooKeeper 3.8 started on that zoo.cfg serves the same tree
//! with the same Stat values, everything written while ferrokeeper ran
//! included. Run once per server, with every server stopped.

use std::fmt::Write;
use std::path::Path;

use crate::config::Config;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{0}")]
    Config(#[from] crate::config::ConfigError),
    #[error("{0}")]
    Lock(#[from] storage::LockError),
    #[error("{0}")]
    Snapshot(#[from] storage::SnapError),
    #[error("{0}")]
    Log(#[from] storage::WalError),
    #[error("{0}")]
    ZooKeeper(#[from] zkdata::ZkError),
    #[error("{0}")]
    Refused(String),
}

/// A stopped server's whole state, read by the offline tools: its newest
/// snapshot and every entry in its log after it, committed as far as it
/// knows or not (ZooKeeper, too, logs proposals and keeps the highest
/// server's).
pub(crate) struct Offline {
    pub sm: tree::StateMachine,
    /// The newest snapshot's term (0 without one).
    pub snapshot_term: u64,
    pub had_snapshot: bool,
    /// Entries of the log applied over the snapshot.
    pub replayed: usize,
    pub log: storage::wal::Recovered,
}

/// Reads `Offline` from a config's directories; the caller holds their locks.
pub(crate) fn load_offline(cfg: &Config) -> Result<Offline, ExportError> {
    let tree_cfg = cfg.tree_config();
    let snaps = storage::snap::list(&cfg.data_dir)?;
    let (mut sm, snapshot_term) = match snaps.last() {
        Some((_, path)) => {
            let (meta, body) = storage::snap::read(path)?;
            let sm = tree::StateMachine::decode_snapshot(&body, tree_cfg).map_err(|e| {
                ExportError::Refused(format!(
                    "{}: undecodable snapshot body: {e}",
                    path.display()
                ))
            })?;
            (sm, meta.term)
        }
        None => (tree::StateMachine::new(tree_cfg), 0),
    };
    let log = storage::wal::read_only(cfg.log_dir())?;
    let replayed = node::committed::replay(&mut sm, &log.entries).map_err(ExportError::Refused)?;
    Ok(Offline {
        sm,
        snapshot_term,
        had_snapshot: !snaps.is_empty(),
        replayed,
        log,
    })
}

pub fn export_zookeeper(cfg_path: &Path) -> Result<String, ExportError> {
    let cfg = Config::load(cfg_path)?;
    // Held until done: a server starting meanwhile refuses, and a running
    // one makes this refuse (its state is still moving).
    let _locks = storage::DirLock::acquire_both(&cfg.data_dir, cfg.log_dir())?;
    let Offline {
        sm,
        had_snapshot,
        replayed,
        ..
    } = load_offline(&cfg)?;
    if !had_snapshot && replayed == 0 {
        return Err(ExportError::Refused(format!(
            "{} and {} hold no ferrokeeper data to export",
            cfg.data_dir.display(),
            cfg.log_dir().display()
        )));
    }
    let snap = tree::handback::to_zookeeper(&sm);
    let dirs = zkdata::ZkDirs::new(&cfg.data_dir, cfg.log_dir());
    // ZooKeeper loads its newest snapshot and replays the logs after it:
    // nothing of its own may be newer than this state.
    let found = dirs.find()?;
    if let Some((z, p)) = found.snapshots.first().filter(|(z, _)| *z >= snap.zxid) {
        return Err(ExportError::Refused(format!(
            "{} (zxid 0x{z:x}) is not older than ferrokeeper's state (zxid 0x{:x}); ZooKeeper ran on these directories after ferrokeeper: move its files away first",
            p.display(),
            snap.zxid
        )));
    }
    if let Some((_, p)) = found.logs.last() {
        let newest = zkdata::TxnLogFile::read(p)?;
        if let Some(t) = newest.entries.iter().find(|t| t.header.zxid > snap.zxid) {
            return Err(ExportError::Refused(format!(
                "{} holds ZooKeeper transaction 0x{:x}, newer than ferrokeeper's state (0x{:x}): ZooKeeper would replay it; move its files away first",
                p.display(),
                t.header.zxid,
                snap.zxid
            )));
        }
    }
    let path = snap.write(&dirs.snap_dir)?;
    // ZooKeeper's files now agree with ours up to here: ZooKeeper writing
    // above it is what a later start of ferrokeeper must notice.
    crate::takeover::record_handover(&cfg.data_dir, snap.zxid)
        .map_err(|e| ExportError::Refused(e.to_string()))?;
    let mut out = String::new();
    let epoch = (snap.zxid >> 32).max(0);
    for name in ["acceptedEpoch", "currentEpoch"] {
        let f = cfg.data_dir.join(name);
        let old: i64 = std::fs::read_to_string(&f)
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(-1);
        if old < epoch {
            crate::takeover::write_durably(&f, format!("{epoch}").as_bytes()).map_err(
                |source| {
                    ExportError::ZooKeeper(zkdata::ZkError::Io {
                        path: f.clone(),
                        source,
                    })
                },
            )?;
            let _ = writeln!(out, "wrote {} ({epoch})", f.display());
        }
    }
    let _ = writeln!(
        out,
        "wrote {}: {} znodes, {} sessions, zxid 0x{:x}. ZooKeeper started on {} serves this state; ferrokeeper's own files are left as they are",
        path.display(),
        snap.nodes.len(),
        snap.sessions.len(),
        snap.zxid,
        cfg_path.display()
    );
    Ok(out)
}
