//! Starting on a ZooKeeper server's data: when dataDir and dataLogDir hold
//! ZooKeeper's `version-2` files and none of ferrokeeper's own, the state
//! ZooKeeper would load from them (`zkdata`, `tree::takeover`) becomes
//! ferrokeeper's first snapshot, at the index of ZooKeeper's last zxid, so
//! that ferrokeeper's zxids (its log indexes) continue above ZooKeeper's.
//! ZooKeeper's files are only read: they stay as they were, so ZooKeeper
//! can be started on them again.
//!
//! In an ensemble each server takes over its own files. Until the
//! ensemble confirms that data (`node::takeover`), `ferrokeeper-snap/
//! zookeeper-takeover-unconfirmed` holds its zxid; a server found to be
//! ahead of the elected leader drops its copy (`decline`), records that in
//! `zookeeper-takeover-declined`, and starts empty next time, to catch up
//! from the leader.
//!
//! The zxid at which the data last changed hands (taken over here, or
//! exported back by `export-zookeeper`) is kept in `ferrokeeper-snap/
//! zookeeper-handover`. At every later start, ZooKeeper files holding a
//! transaction above it mean ZooKeeper ran on these directories since:
//! the server refuses rather than serve its own older state and hide
//! writes ZooKeeper acknowledged.

use std::path::Path;

use crate::config::Config;
use crate::error::ServerError;

/// The snapshot to start from when this server's directories hold only
/// ZooKeeper's data; `None` when they hold ferrokeeper's own, or nothing.
/// The snapshot is durable in dataDir before this returns.
pub(crate) fn from_zookeeper(
    cfg: &Config,
    voters: &[u64],
) -> Result<Option<node::RestoredSnapshot>, ServerError> {
    if !storage::snap::list(&cfg.data_dir)?.is_empty()
        || !storage::wal::list_segments(cfg.log_dir())?.is_empty()
    {
        return Ok(None);
    }
    let dirs = zkdata::ZkDirs::new(&cfg.data_dir, cfg.log_dir());
    let declined = storage::snap::snap_dir(&cfg.data_dir).join(DECLINED);
    if declined.exists() {
        tracing::info!(
            "{}: this server's ZooKeeper data went beyond the ensemble's leader and was not taken over ({}); starting empty, to catch up from the leader",
            dirs.snap_dir.display(),
            declined.display()
        );
        return Ok(None);
    }
    let started = std::time::Instant::now();
    let Some(loaded) = dirs
        .load()
        .map_err(|e| ServerError::Takeover(e.to_string()))?
    else {
        return Ok(None);
    };
    if loaded.last_zxid() <= 0 {
        // A ZooKeeper that never wrote a transaction (its snapshot.0 of an
        // empty tree): nothing to take over. The marker still lets a later
        // start notice ZooKeeper writing here.
        record_handover(&cfg.data_dir, 0)?;
        tracing::info!(
            "{} holds ZooKeeper's files but no transaction: nothing to take over",
            dirs.snap_dir.display()
        );
        return Ok(None);
    }
    let config = cfg.tree_config();
    let (state, report) = tree::takeover::take_over(&loaded, config)
        .map_err(|e| ServerError::Takeover(e.to_string()))?;
    for why in &report.skipped_snapshots {
        tracing::warn!("ZooKeeper snapshot passed over, as ZooKeeper would: {why}");
    }
    for (path, offset) in &report.torn {
        tracing::warn!(
            "{}: last transaction cut short at offset {offset} (a crash while ZooKeeper wrote it); ignored, as ZooKeeper does",
            path.display()
        );
    }
    let index = report.last_zxid as u64;
    // Term 1, below every term a ferrokeeper leader writes in. Among
    // servers that took over, the index (the zxid, epoch in its high bits)
    // alone decides who is ahead, as ZooKeeper's own election does; and a
    // log a ferrokeeper leader wrote is always ahead of data taken over, so
    // a server arriving late with ZooKeeper data cannot win an election
    // over entries the ensemble has committed since.
    let term = 1;
    let meta = storage::SnapshotMeta {
        index,
        term,
        conf_state: raft::prelude::ConfState::from((voters.to_vec(), vec![])),
    };
    let frozen = state.freeze();
    // Before the snapshot: a crash between the two leaves a marker and no
    // snapshot, and the next start takes over again and rewrites it.
    record_handover(&cfg.data_dir, report.last_zxid)?;
    if voters.len() > 1 {
        let path = storage::snap::snap_dir(&cfg.data_dir).join(UNCONFIRMED);
        write_durably(&path, format!("zxid=0x{:x}\n", report.last_zxid).as_bytes())
            .map_err(|e| ServerError::Takeover(format!("{}: {e}", path.display())))?;
    }
    let (path, bytes) =
        storage::snap::write_with(&cfg.data_dir, &meta, |w| frozen.encode_snapshot_to(w))?;
    let logs: Vec<String> = report
        .log_files
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    tracing::info!(
        "took over ZooKeeper's data: snapshot {} (zxid 0x{:x}) and {} transactions (0x{:x}..0x{:x}) from {}; {} znodes, {} open session(s), {} effects already in the fuzzy snapshot, {} ephemerals of closed sessions deleted; written as {} ({} bytes) in {:.3} s. ZooKeeper's files are untouched",
        report.snapshot.display(),
        report.snapshot_zxid,
        report.txns,
        report.first_zxid,
        report.last_zxid,
        if logs.is_empty() { "no log".to_string() } else { logs.join(", ") },
        report.nodes,
        report.sessions,
        report.already_applied,
        report.orphan_ephemerals,
        path.display(),
        bytes,
        started.elapsed().as_secs_f64()
    );
    Ok(Some(node::RestoredSnapshot {
        index,
        term,
        conf_state: meta.conf_state,
        state,
    }))
}

const HANDOVER: &str = "zookeeper-handover";
const UNCONFIRMED: &str = "zookeeper-takeover-unconfirmed";
const DECLINED: &str = "zookeeper-takeover-declined";

/// The index of data taken over from ZooKeeper that the ensemble has not
/// confirmed yet.
pub(crate) fn unconfirmed(data_dir: &Path) -> Result<Option<u64>, ServerError> {
    read_zxid(&storage::snap::snap_dir(data_dir).join(UNCONFIRMED)).map(|z| z.map(|z| z as u64))
}

/// The ensemble confirmed the data taken over: the marker goes.
pub(crate) fn confirm(data_dir: &Path) -> std::io::Result<()> {
    let dir = storage::snap::snap_dir(data_dir);
    std::fs::remove_file(dir.join(UNCONFIRMED))?;
    std::fs::File::open(&dir)?.sync_all()
}

/// The leader is behind the data taken over here, which therefore holds
/// transactions ZooKeeper never committed: this server's own copy of it
/// (its snapshots and log; ZooKeeper's files stay as they are) goes, and
/// the next start begins empty and catches up from the leader. Nothing
/// else was written since the takeover: data unconfirmed is never
/// applied past.
pub(crate) fn decline(cfg: &Config, ours: u64, leader_index: u64) -> Result<(), ServerError> {
    let dir = storage::snap::snap_dir(&cfg.data_dir);
    let err =
        |what: &Path, e: std::io::Error| ServerError::Takeover(format!("{}: {e}", what.display()));
    let declined = dir.join(DECLINED);
    write_durably(
        &declined,
        format!("zxid=0x{ours:x}\nleader=0x{leader_index:x}\n").as_bytes(),
    )
    .map_err(|e| err(&declined, e))?;
    for (_, path) in storage::snap::list(&cfg.data_dir)? {
        std::fs::remove_file(&path).map_err(|e| err(&path, e))?;
    }
    for (_, path) in storage::wal::list_segments(cfg.log_dir())? {
        std::fs::remove_file(&path).map_err(|e| err(&path, e))?;
    }
    let marker = dir.join(UNCONFIRMED);
    if marker.exists() {
        std::fs::remove_file(&marker).map_err(|e| err(&marker, e))?;
    }
    for d in [dir, cfg.log_dir().join(storage::wal::DIR_NAME)] {
        if let Ok(f) = std::fs::File::open(&d) {
            f.sync_all().map_err(|e| err(&d, e))?;
        }
    }
    Ok(())
}

/// Records, durably, that ZooKeeper's data and ferrokeeper's agree up to
/// `zxid` (a takeover, or an export back to ZooKeeper).
pub(crate) fn record_handover(data_dir: &Path, zxid: i64) -> Result<(), ServerError> {
    let path = storage::snap::snap_dir(data_dir).join(HANDOVER);
    write_durably(&path, format!("zxid=0x{zxid:x}\n").as_bytes())
        .map_err(|e| ServerError::Takeover(format!("{}: {e}", path.display())))
}

fn read_handover(data_dir: &Path) -> Result<Option<i64>, ServerError> {
    read_zxid(&storage::snap::snap_dir(data_dir).join(HANDOVER))
}

/// A marker's `zxid=0x…` first line; None when there is no marker.
fn read_zxid(path: &Path) -> Result<Option<i64>, ServerError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(ServerError::Takeover(format!("{}: {e}", path.display()))),
    };
    text.lines()
        .next()
        .unwrap_or("")
        .trim()
        .strip_prefix("zxid=0x")
        .and_then(|h| u64::from_str_radix(h, 16).ok())
        .map(|z| Some(z as i64))
        .ok_or_else(|| ServerError::Takeover(format!("{}: not a zxid=0x… line", path.display())))
}

/// On a start from ferrokeeper's own data: refuses when ZooKeeper's files
/// in the same directories hold a transaction above the last handover.
pub(crate) fn check_zookeeper_untouched(cfg: &Config) -> Result<(), ServerError> {
    let Some(handed) = read_handover(&cfg.data_dir)? else {
        return Ok(());
    };
    let dirs = zkdata::ZkDirs::new(&cfg.data_dir, cfg.log_dir());
    let err = |e: zkdata::ZkError| ServerError::Takeover(e.to_string());
    let found = dirs.find().map_err(err)?;
    let newest_snapshot = found.snapshots.first().map(|(z, _)| *z);
    let mut newest_txn = None;
    if let Some((first, path)) = found.logs.last() {
        newest_txn = Some(*first);
        if *first <= handed {
            let f = zkdata::TxnLogFile::read(path).map_err(err)?;
            newest_txn = f.entries.last().map(|t| t.header.zxid).or(newest_txn);
        }
    }
    match newest_snapshot.max(newest_txn) {
        Some(z) if z > handed => Err(ServerError::Takeover(format!(
            "ZooKeeper wrote to {} after its data was handed over at zxid 0x{handed:x} (it holds 0x{z:x}): starting on ferrokeeper's own, older state would hide those writes. To take ZooKeeper's data over again, move {} and {} away; to keep ferrokeeper's state, move ZooKeeper's version-2 folders away",
            dirs.snap_dir.display(),
            storage::snap::snap_dir(&cfg.data_dir).display(),
            cfg.log_dir().join(storage::wal::DIR_NAME).display()
        ))),
        _ => Ok(()),
    }
}

/// Writes `bytes` to `path` so that a crash leaves the old file or the
/// new one: a temporary file, fsync, rename, fsync of the folder.
pub(crate) fn write_durably(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let tmp = path.with_extension("tmp");
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
