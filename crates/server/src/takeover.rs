//! Starting on a ZooKeeper server's data: when dataDir and dataLogDir hold
//! ZooKeeper's `version-2` files and none of ferrokeeper's own, the state
//! ZooKeeper would load from them (`zkdata`, `tree::takeover`) becomes
//! ferrokeeper's first snapshot, at the index of ZooKeeper's last zxid, so
//! that ferrokeeper's zxids (its log indexes) continue above ZooKeeper's.
//! ZooKeeper's files are only read: they stay as they were, so ZooKeeper
//! can be started on them again.

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
    if voters.len() > 1
        && !dirs
            .find()
            .map_err(|e| ServerError::Takeover(e.to_string()))?
            .is_empty()
    {
        // Each server of an ensemble would import its own files, and a
        // server whose ZooKeeper data is ahead of the elected leader's
        // cannot yet be brought back to the leader's state. Refuse rather
        // than start empty beside ZooKeeper's data or diverge.
        return Err(ServerError::Takeover(format!(
            "{} holds ZooKeeper's data and this server is one of an ensemble of {}: only a standalone server takes ZooKeeper's data over yet",
            dirs.snap_dir.display(),
            voters.len()
        )));
    }
    let started = std::time::Instant::now();
    let Some(loaded) = dirs
        .load()
        .map_err(|e| ServerError::Takeover(e.to_string()))?
    else {
        return Ok(None);
    };
    let config = tree::TreeConfig {
        extended_types: cfg.extended_types,
    };
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
    // ZooKeeper's epoch (the zxid's high 32 bits) is the term the state
    // was written in: a server holding a later epoch's data is ahead.
    let term = ((report.last_zxid >> 32) as u64).max(1);
    let meta = storage::SnapshotMeta {
        index,
        term,
        conf_state: raft::prelude::ConfState::from((voters.to_vec(), vec![])),
    };
    let frozen = state.freeze();
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
