//! Snapshots: when to take one (entries, or log bytes against the tree's
//! size), taking it as a copy-on-write freeze between two entries,
//! compacting the in-memory log once it is durable, and installing a
//! leader's snapshot.

use super::*;

/// ZooKeeper's `snapCount / 2 + randRoll`, randRoll in [0, snapCount / 2).
pub(crate) fn snapshot_threshold(snap_count: u64, rng: &mut rand::rngs::StdRng) -> u64 {
    let half = (snap_count / 2).max(1);
    half + rng.gen_range(0..half)
}

impl Node {
    /// The leader's snapshot named in `msg` arrived whole, is durable in
    /// this replica's dataDir, and decoded to `state`. Raft decides whether
    /// to take it (it may be stale by now); if it does, the next `flush`
    /// replaces the state and restarts the log after it.
    pub fn install_snapshot(&mut self, msg: RaftMessage, state: StateMachine) {
        if msg.get_msg_type() != MessageType::MsgSnapshot || self.takeover_conflict(&msg) {
            return;
        }
        let meta = msg.get_snapshot().get_metadata();
        self.incoming = Some((meta.index, meta.term, Box::new(state)));
        let _ = self.raw.step(msg);
        self.redraw_election_timeout();
    }

    /// Leader: the transfer of a snapshot to `peer` ended. On failure
    /// Raft goes back to probing it and offers a snapshot again later.
    pub fn snapshot_sent(&mut self, peer: u64, ok: bool) {
        let status = if ok {
            raft::SnapshotStatus::Finish
        } else {
            raft::SnapshotStatus::Failure
        };
        self.raw.report_snapshot(peer, status);
    }

    /// The snapshot at `index` is durable: the log before it may go. An
    /// ensemble keeps the log from the previous snapshot on, so a replica
    /// a little behind catches up from the log; one further behind gets
    /// this snapshot.
    pub fn snapshotted(&mut self, index: u64) {
        let Some(meta) = self.snapshot_in_flight.take() else {
            return;
        };
        if meta.index != index {
            return;
        }
        let startup = std::mem::take(&mut self.startup_snapshot);
        let keep_from = if self.cfg.voters.len() == 1 {
            index
        } else if startup {
            self.prev_snapshot_index
                .max(index.saturating_sub(self.cfg.snap_count / 10))
        } else {
            self.prev_snapshot_index
        };
        self.prev_snapshot_index = index;
        self.raw.mut_store().snap = Some(meta);
        let first = raft::Storage::first_index(self.raw.store()).unwrap_or(1);
        if keep_from > first {
            self.raw
                .mut_store()
                .mem
                .compact(keep_from)
                .expect("compacting below the applied index");
        }
    }

    /// Replaces the state with the leader's snapshot that Raft accepted;
    /// returns (index, term) for the log's restart record. Clients of this
    /// replica are closed: their watches and reads were against a state
    /// that jumped; they reconnect and re-register (setWatches), as after
    /// a leader change.
    pub(crate) fn take_snapshot(&mut self, snap: Snapshot) -> (u64, u64) {
        let meta = snap.get_metadata().clone();
        let state = match self.incoming.take() {
            Some((i, t, state)) if i == meta.index && t == meta.term => state,
            // Raft only accepts a snapshot stepped by install_snapshot.
            _ => panic!(
                "raft accepted snapshot {}/{} that was not received",
                meta.index, meta.term
            ),
        };
        tracing::info!(
            "installed the leader's snapshot at index {} (term {}): {} znodes, {} sessions",
            meta.index,
            meta.term,
            state.tree.node_count(),
            state.sessions.len()
        );
        self.sm = *state;
        self.sm
            .set_local_members(&self.cfg.members_text, self.now_ms);
        self.close_all_clients("this server installed a snapshot from the leader");
        self.liveness = fresh_timers(&self.sm, self.now_ms);
        self.since_snapshot = 0;
        self.since_snapshot_bytes = 0;
        self.snapshot_after_bytes = self.bytes_between_snapshots();
        self.prev_snapshot_index = meta.index;
        self.raw
            .mut_store()
            .mem
            .apply_snapshot(snap.get_metadata().clone())
            .expect("raft accepted a snapshot newer than the log");
        self.raw.mut_store().snap = Some(meta.clone());
        self.members_changed();
        (meta.index, meta.term)
    }

    /// Takes a snapshot when enough entries were applied since the last one:
    /// a clone of the state between two entries, where it is consistent.
    pub(crate) fn maybe_snapshot(&mut self) {
        let due = self.since_snapshot >= self.snapshot_after
            || self.since_snapshot_bytes >= self.snapshot_after_bytes;
        if self.snapshot_in_flight.is_some() || !due {
            return;
        }
        let index = self.sm.last_zxid() as u64;
        let Ok(term) = raft::Storage::term(self.raw.store(), index) else {
            return;
        };
        self.since_snapshot = 0;
        self.since_snapshot_bytes = 0;
        self.snapshot_after = snapshot_threshold(self.cfg.snap_count, &mut self.rng);
        self.snapshot_after_bytes = self.bytes_between_snapshots();
        let conf_state = self.raw.raft.prs().conf().to_conf_state();
        let mut meta = SnapshotMetadata {
            index,
            term,
            ..Default::default()
        };
        meta.set_conf_state(conf_state.clone());
        self.snapshot_in_flight = Some(meta);
        let state = Box::new(self.sm.freeze());
        self.outputs.push(Output::Snapshot {
            index,
            term,
            conf_state,
            state,
        });
    }

    /// Log bytes before the next snapshot: `snapSizeLimitInKb`, or the
    /// tree's size when that is larger (a snapshot holds every path and
    /// value, plus a Stat and an ACL id of about 32 bytes per znode).
    pub(crate) fn bytes_between_snapshots(&self) -> u64 {
        let tree = self.sm.tree.approximate_data_size() + 32 * self.sm.tree.node_count() as u64;
        self.cfg.snap_size_limit_bytes.max(tree)
    }
}
