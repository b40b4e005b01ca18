//! Drivers shared by the node's tests, the simulation and the fuzz
//! targets, so that none of them keeps its own copy: a config for tests
//! (`NodeConfig::for_test`), an instant in-memory disk that keeps exactly
//! what `Persist` and `Snapshot` asked for (`MemDisk`), and `run_to_rest`,
//! which runs a node until it has nothing more to do. Not for production.

use raft::prelude::{ConfState, Entry as RaftEntry, HardState};
use tree::{Frozen, StateMachine, TreeConfig};

use crate::{Node, NodeConfig, Output, ReconfigSettings};

impl NodeConfig {
    /// A standalone server 1 at tickTime 2000 with ZooKeeper's default
    /// session bounds, TTL nodes on, snapshots by count only.
    pub fn for_test() -> NodeConfig {
        NodeConfig {
            server_id: 1,
            tick_ms: 2000,
            min_session_timeout_ms: 4000,
            max_session_timeout_ms: 40000,
            container_check_interval_ms: 60_000,
            super_digest: None,
            sasl: None,
            enforce_auth: Vec::new(),
            takeover_unconfirmed: None,
            tree: TreeConfig {
                extended_types: true,
                schemes: Default::default(),
                enforce_quota: false,
            },
            seed: 7,
            snap_count: 100_000,
            snap_size_limit_bytes: u64::MAX,
            voters: vec![1],
            learners: vec![],
            digest_every: 64,
            reconfig: ReconfigSettings::default(),
            members_text: String::new(),
            read_only_mode: false,
            linearizable_reads: false,
            local_sessions: false,
            local_sessions_upgrading: false,
        }
    }
}

/// A durable snapshot: (index, term, membership, state).
pub type SnapFile = (u64, u64, ConfState, Frozen);

/// What one replica has on disk.
#[derive(Default, Clone)]
pub struct MemDisk {
    pub entries: Vec<RaftEntry>,
    pub hard_state: HardState,
    pub snapshot: Option<SnapFile>,
}

impl MemDisk {
    /// Applies one `Persist`: a restart voids the log before it; a lower
    /// index replaces the entries from there.
    pub fn persist(
        &mut self,
        restart: Option<(u64, u64)>,
        entries: Vec<RaftEntry>,
        hard_state: Option<HardState>,
    ) {
        if restart.is_some() {
            self.entries.clear();
        }
        for e in entries {
            let keep = self
                .entries
                .iter()
                .take_while(|d| d.index < e.index)
                .count();
            self.entries.truncate(keep);
            self.entries.push(e);
        }
        if let Some(hs) = hard_state {
            self.hard_state = hs;
        }
    }
}

/// A snapshot's state as a restarted or receiving replica loads it:
/// through the real encoding.
pub fn load(f: &Frozen) -> StateMachine {
    StateMachine::decode_snapshot(&f.encode_snapshot(), f.config()).expect("own snapshot decodes")
}

/// Runs `node` until it has nothing more to do, every `Persist` and
/// `Snapshot` durable at once in `disk`; returns the other outputs in order.
pub fn run_to_rest(node: &mut Node, disk: &mut MemDisk) -> Vec<Output> {
    let mut all = Vec::new();
    loop {
        node.flush();
        let outs = node.take_outputs();
        if outs.is_empty() {
            return all;
        }
        for o in outs {
            match o {
                Output::Persist {
                    number,
                    restart,
                    entries,
                    hard_state,
                    then_send,
                    ..
                } => {
                    disk.persist(restart, entries, hard_state);
                    all.extend(then_send.into_iter().map(|m| Output::Message(Box::new(m))));
                    node.persisted(number);
                }
                Output::Snapshot {
                    index,
                    term,
                    conf_state,
                    state,
                } => {
                    disk.snapshot = Some((index, term, conf_state, *state));
                    node.snapshotted(index);
                }
                o => all.push(o),
            }
        }
    }
}
