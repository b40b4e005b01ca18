//! `ferrokeeper force-new-ensemble [--confirm] zoo.cfg`: the way back from
//! a lost quorum (beyond ZooKeeper, which has none; etcd's
//! `--force-new-cluster`). With the server stopped, its own state — the
//! newest snapshot and every entry of its log after it, committed as far
//! as it knows or not — becomes a new ensemble of this one server:
//!
//! - a snapshot at its last index whose Raft membership is this server
//!   alone, and whose `/zookeeper/config` lists only it (as a participant)
//!   at version = that index;
//! - a fresh log after it (the old one is moved aside, not deleted, to
//!   `<dataLogDir>/ferrokeeper-wal.before-force-new-ensemble-<index>`),
//!   keeping the highest Raft term it had seen;
//! - `<zoo.cfg>.dynamic.<index>` with its one `server.N` line, zoo.cfg
//!   pointed at it, with `standaloneEnabled=false` (a one-server ensemble,
//!   not a standalone server) and `reconfigEnabled=true`, so that `reconfig`
//!   grows it back.
//!
//! Without `--confirm` it only says what it would do and changes nothing.
//! What the lost servers had committed and this one never received is
//! gone; what this one had received and not known committed is kept.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use proto::members::Members;
use raft::prelude::{ConfState, HardState};

use crate::config::Config;

/// The offline tools' errors (`export`): config, locks, files, refusals.
pub use crate::export::ExportError as ForceError;

/// What was found, and what was (with `confirm`) or would be done.
pub struct Outcome {
    pub report: String,
    pub done: bool,
}

pub fn force_new_ensemble(cfg_path: &Path, confirm: bool) -> Result<Outcome, ForceError> {
    let cfg = Config::load(cfg_path)?;
    if !cfg.distributed() {
        return Err(ForceError::Refused(format!(
            "{}: a standalone server (no server.N lines, or one with standaloneEnabled=true) has no quorum to lose",
            cfg_path.display()
        )));
    }
    let my_id = cfg.server_id().ok_or_else(|| {
        ForceError::Refused(format!(
            "{}: no readable server id",
            cfg.data_dir.join("myid").display()
        ))
    })?;
    // Held until done: a running server makes this refuse, and a server
    // starting meanwhile refuses.
    let _locks = storage::DirLock::acquire_both(&cfg.data_dir, cfg.log_dir())?;
    let crate::export::Offline {
        mut sm,
        snapshot_term: mut term,
        log: rec,
        ..
    } = crate::export::load_offline(&cfg)?;
    let index = sm.last_zxid() as u64;
    if index == 0 {
        return Err(ForceError::Refused(format!(
            "{} and {} hold no ferrokeeper state: nothing to start a new ensemble from (a server with no data catches up from a leader instead)",
            cfg.data_dir.display(),
            cfg.log_dir().display()
        )));
    }
    if let Some(e) = rec.entries.iter().rev().find(|e| e.index == index) {
        term = e.term;
    } else if let Some((_, t)) = rec.restart.filter(|(i, _)| *i == index) {
        term = term.max(t);
    }
    let before = match sm.members() {
        m if m.version != 0 => m,
        _ => Members {
            servers: cfg.servers.clone(),
            version: 0,
        },
    };
    let Some(mine) = before.servers.get(&my_id) else {
        return Err(ForceError::Refused(format!(
            "server {my_id} is not a member of its last membership (version 0x{:x}): {}; it has nothing to start an ensemble as",
            before.version,
            before.render_servers().replace('\n', ", ")
        )));
    };
    let mut mine = mine.clone();
    mine.observer = false;
    let after = Members {
        servers: [(my_id, mine)].into_iter().collect(),
        version: index,
    };
    let lost: Vec<String> = before
        .servers
        .keys()
        .filter(|id| **id != my_id)
        .map(|id| id.to_string())
        .collect();
    let mut report = String::new();
    let _ = writeln!(
        report,
        "server {my_id} ({}): state at zxid 0x{index:x} (term {term}), {} znodes, {} sessions",
        cfg_path.display(),
        sm.tree.node_count(),
        sm.sessions.len()
    );
    let _ = writeln!(
        report,
        "membership now (version 0x{:x}):\n  {}",
        before.version,
        before.render_servers().replace('\n', "\n  ")
    );
    let _ = writeln!(
        report,
        "new ensemble (version 0x{index:x}):\n  {}",
        after.render_servers().replace('\n', "\n  ")
    );
    if !confirm {
        let _ = write!(
            report,
            "nothing changed. With --confirm, server {my_id}'s state becomes the whole ensemble's and servers {} are no longer members: whatever they committed that server {my_id} never received is lost for good. Never start them again on their old data; grow the new ensemble back with reconfig (add a fresh server as an observer, then as a participant).",
            if lost.is_empty() { "-".to_string() } else { lost.join(", ") }
        );
        return Ok(Outcome {
            report,
            done: false,
        });
    }
    let text = format!("{}\nversion={index:x}", after.render_servers());
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    sm.force_members(&text, index as i64, now_ms);
    // 1. The snapshot, durable: a crash after it starts the server alone
    //    (its membership is the snapshot's), and running this again
    //    finishes the rest.
    let meta = storage::SnapshotMeta {
        index,
        term,
        conf_state: ConfState::from((vec![my_id], vec![])),
    };
    let frozen = sm.freeze();
    let (snap_path, _) =
        storage::snap::write_with(&cfg.data_dir, &meta, |w| frozen.encode_snapshot_to(w))?;
    // 2. The old log aside, a fresh one after the snapshot.
    let wal_dir = cfg.log_dir().join(storage::wal::DIR_NAME);
    let aside = aside_name(cfg.log_dir(), index);
    std::fs::rename(&wal_dir, &aside).map_err(|e| {
        ForceError::Refused(format!(
            "cannot move {} to {}: {e}",
            wal_dir.display(),
            aside.display()
        ))
    })?;
    let opts = storage::WalOptions {
        prealloc_bytes: cfg.prealloc_bytes,
        force_sync: true,
    };
    let (mut wal, _) = storage::Wal::open(cfg.log_dir(), opts)?;
    wal.stage_restart(index, term);
    wal.stage_hard_state(&HardState {
        term: rec.hard_state.term.max(term),
        vote: 0,
        commit: index,
        ..Default::default()
    });
    wal.commit()?;
    drop(wal);
    // 3. The config files.
    let has_dynamic = cfg.dynamic_config_file.is_some();
    let dynamic = crate::dynamic_config::write(cfg_path, has_dynamic, my_id, &text)
        .map_err(ForceError::Refused)?;
    crate::dynamic_config::set_keys(
        cfg_path,
        &[("standaloneEnabled", "false"), ("reconfigEnabled", "true")],
    )
    .map_err(|e| ForceError::Refused(format!("cannot rewrite {}: {e}", cfg_path.display())))?;
    if crate::takeover::unconfirmed(&cfg.data_dir)
        .ok()
        .flatten()
        .is_some()
    {
        // Data taken over from ZooKeeper that the lost ensemble never
        // confirmed: this server's copy is now the ensemble's.
        crate::takeover::confirm(&cfg.data_dir)
            .map_err(|e| ForceError::Refused(format!("{}: {e}", cfg.data_dir.display())))?;
    }
    let _ = write!(
        report,
        "done: snapshot {}; the old log moved to {}; membership in {}; {} now has standaloneEnabled=false and reconfigEnabled=true. Start the server: it leads alone. Grow it back with reconfig: start a fresh server (empty dataDir, its myid) whose config lists this one and itself, `reconfig -add` it as an observer, then again as a participant.",
        snap_path.display(),
        aside.display(),
        dynamic.map_or_else(|| "(unchanged)".to_string(), |p| p.display().to_string()),
        cfg_path.display()
    );
    Ok(Outcome { report, done: true })
}

/// Where the old log goes: a name no earlier run took.
fn aside_name(log_dir: &Path, index: u64) -> PathBuf {
    let base = format!(
        "{}.before-force-new-ensemble-{index:x}",
        storage::wal::DIR_NAME
    );
    let mut path = log_dir.join(&base);
    let mut n = 1;
    while path.exists() {
        path = log_dir.join(format!("{base}.{n}"));
        n += 1;
    }
    path
}
