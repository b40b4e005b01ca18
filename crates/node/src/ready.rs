//! The Raft hand-off: proposals batched between two flushes into one
//! proposal message, the one commented Ready loop (send, apply what is
//! committed, hand new entries to storage, advance), durability reports,
//! and applying committed entries to the tree.

use super::*;
use crate::committed::{committed, Committed};

/// The most entry bytes one append message to a follower carries.
pub(crate) const MAX_APPEND_BYTES: u64 = 1 << 20;

impl Node {
    pub(crate) fn propose(&mut self, e: Entry) {
        self.push_proposal(e.encode().into(), e.conn);
    }

    /// Proposes an encoded entry for `conn` (0 for none; a client's
    /// writes go through `propose_write`). Proposals wait for the next
    /// `flush` (or until they fill an append message) and go to Raft
    /// together, in the order they were made; without a leader they wait
    /// for one (`resend`).
    pub(crate) fn push_proposal(&mut self, data: bytes::Bytes, conn: ConnId) {
        self.proposal_bytes += data.len() as u64;
        self.proposals.push(raft::prelude::Entry {
            data,
            ..Default::default()
        });
        self.proposal_conns.push(conn);
        if self.proposal_bytes >= MAX_APPEND_BYTES {
            self.propose_pending();
        }
    }

    /// Hands the waiting proposals to Raft as one proposal message (what
    /// `RawNode::propose` does for a single entry).
    pub(crate) fn propose_pending(&mut self) {
        self.release_forwarded();
        // During a leadership transfer Raft drops proposals, and without a
        // leader it has nowhere to send them: they wait for the next
        // leader instead (`transfer`, `resend`).
        if self.proposals.is_empty()
            || self.transferring()
            || self.raw.raft.leader_id == raft::INVALID_ID
        {
            return;
        }
        self.proposal_bytes = 0;
        let mut m = RaftMessage::default();
        m.set_msg_type(raft::prelude::MessageType::MsgPropose);
        m.from = self.cfg.server_id;
        // The term they are sent in: a leader takes only its own (`resend`).
        let term = self.raw.raft.term;
        m.log_term = term;
        let mut entries = std::mem::take(&mut self.proposals);
        self.vet_proposals(&mut entries);
        m.set_entries(entries.into());
        let conns = std::mem::take(&mut self.proposal_conns);
        self.stamp_sent(&conns, term);
        if let Err(err) = self.raw.raft.step(m) {
            // No leader: the clients must retry elsewhere.
            tracing::warn!(%err, proposals = conns.len(), "proposals dropped");
            for conn in conns {
                if conn != 0 && self.conns.contains_key(&conn) {
                    self.outputs.push(Output::Close {
                        conn,
                        reason: "no leader to accept the write",
                    });
                    self.drop_conn(conn);
                }
            }
        }
    }

    /// Runs the Raft hand-off until nothing is ready, top to bottom:
    /// send, apply what is committed, hand new entries to storage, advance.
    /// Call after a batch of inputs and after `persisted`.
    pub fn flush(&mut self) {
        loop {
            self.hand_to_raft();
            // Writes a served read or a resolved term let go
            // (`propose_held`, `resend_lost_writes`) go now, not at the
            // next input.
            if self.proposals.is_empty()
                || self.transferring()
                || self.raw.raft.leader_id == raft::INVALID_ID
            {
                break;
            }
        }
        self.leave_joint_if_stuck();
        self.hand_off_if_not_voting();
        self.confirm_takeover();
        self.maybe_snapshot();
        if self.has_leader() && !self.held_connects.is_empty() {
            for h in std::mem::take(&mut self.held_connects) {
                self.open(h.conn, h.req, h.ip, h.ids, h.early, self.now_ms);
            }
            self.flush();
        }
    }

    /// One round of `flush`: proposals and read indexes to Raft, then
    /// every Ready until none, then the linearizable reads now due.
    fn hand_to_raft(&mut self) {
        self.propose_pending();
        self.ask_read_indexes(false);
        while self.raw.has_ready() {
            let mut ready = self.raw.ready();
            if let Some(ss) = ready.ss() {
                if ss.leader_id != self.leader_id {
                    self.on_leader_change(ss.leader_id);
                }
            }
            let answered = ready.take_read_states();
            if !answered.is_empty() {
                self.read_indexes_answered(answered);
            }
            // A leader may send before its own append is durable (Raft
            // thesis §10.2.1): these go now.
            for m in ready.take_messages() {
                self.outputs.push(Output::Message(Box::new(m)));
            }
            // A snapshot from the leader, accepted by Raft: it replaces
            // the state (no committed entries come with it).
            let mut restart = None;
            if !ready.snapshot().is_empty() {
                let snap = ready.snapshot().clone();
                restart = Some(self.take_snapshot(snap));
            }
            // Committed entries are durable already (commit needs our own
            // persisted index): apply them, in index order.
            let committed = ready.take_committed_entries();
            self.apply_all(committed);
            // New entries must be readable by Raft before advancing, and are
            // not durable until the driver reports `persisted(number)`.
            if !ready.entries().is_empty() {
                self.raw
                    .mut_store()
                    .mem
                    .append(ready.entries())
                    .expect("entries follow the log");
            }
            if let Some(hs) = ready.hs() {
                self.raw.mut_store().mem.set_hardstate(hs.clone());
            }
            // Votes and append responses promise what is on disk: they go
            // with the Persist, sent once it is durable, even when it adds
            // nothing (then the Persist is empty and only keeps the order).
            let held = ready.take_persisted_messages();
            if !ready.entries().is_empty()
                || ready.hs().is_some()
                || !held.is_empty()
                || restart.is_some()
            {
                if restart.is_some() {
                    self.install_unpersisted = Some(ready.number());
                }
                let hard_state = ready.hs().cloned();
                let vote_changed = hard_state
                    .as_ref()
                    .is_some_and(|hs| (hs.term, hs.vote) != self.persisted_vote);
                if let Some(hs) = &hard_state {
                    self.persisted_vote = (hs.term, hs.vote);
                }
                let sync = !ready.entries().is_empty() || restart.is_some() || vote_changed;
                self.outputs.push(Output::Persist {
                    number: ready.number(),
                    restart,
                    entries: ready.take_entries(),
                    hard_state,
                    sync,
                    then_send: held,
                });
            }
            self.raw.advance_append_async(ready);
            self.advance_applied();
        }
        self.advance_applied();
        self.serve_linearizable();
        self.resend_lost_writes();
    }

    /// Tells Raft what is applied. It counts only what is durable here:
    /// after a snapshot install, that is once its Persist is done.
    pub(crate) fn advance_applied(&mut self) {
        let log = &self.raw.raft.raft_log;
        let applied = (self.sm.last_zxid() as u64).min(log.persisted);
        if applied > log.applied {
            self.raw.advance_apply_to(applied);
        }
    }

    /// Storage made every `Persist` up to `number` durable.
    /// (The driver has sent each one's `then_send` by then.)
    pub fn persisted(&mut self, number: u64) {
        if self.install_unpersisted.is_some_and(|n| n <= number) {
            self.install_unpersisted = None;
        }
        self.raw.on_persist_ready(number);
        self.flush();
    }

    pub(crate) fn apply_all(&mut self, entries: Vec<RaftEntry>) {
        for e in entries {
            self.since_snapshot += 1;
            self.since_snapshot_bytes += e.data.len() as u64;
            let zxid = e.index as i64;
            self.applied_term = self.applied_term.max(e.term);
            match committed(&e).expect("a committed entry this build wrote must decode") {
                // The leader's no-op at election, or a membership change.
                Committed::Skip => self.sm.skip(zxid),
                Committed::Digest {
                    index,
                    digest,
                    origin,
                } => {
                    self.sm.skip(zxid);
                    self.check_digest(e.index, index, digest, origin);
                }
                Committed::Apply(entry) => {
                    let applied = self.sm.apply(zxid, &entry);
                    let reconfigured = matches!(entry.kind, EntryKind::Reconfig { .. })
                        && matches!(applied.reply, Some(Reply::Data(..)));
                    self.after_apply(zxid, &entry, applied);
                    if reconfigured {
                        // Addresses changed, voters and learners did not.
                        self.switch_members(&entry, None);
                    }
                }
                Committed::Membership { entry, change } => {
                    self.apply_membership(zxid, entry, &change);
                }
            }
            self.note_digest(e.index);
        }
        self.log_quota_warnings();
    }

    /// ZooKeeper's warning for a write past a soft quota (`enforceQuota`),
    /// at most one line a second, as ZooKeeper rate-limits it.
    fn log_quota_warnings(&mut self) {
        let warnings = self.sm.take_quota_warnings();
        let Some(first) = warnings.first() else {
            return;
        };
        self.quota_warnings_held += warnings.len() as u64 - 1;
        if self.now_ms - self.quota_warned_ms < 1000 {
            self.quota_warnings_held += 1;
            return;
        }
        self.quota_warned_ms = self.now_ms;
        match std::mem::take(&mut self.quota_warnings_held) {
            0 => tracing::warn!("{first}"),
            more => tracing::warn!("{first} ({more} more since the last such line)"),
        }
    }

    pub(crate) fn after_apply(&mut self, zxid: i64, entry: &Entry, applied: Applied) {
        // Watch events first: a client must see the event before the reply
        // to any later request (programmer's guide, "ZooKeeper Watches").
        self.notes.clear();
        let mut notes = std::mem::take(&mut self.notes);
        let conns = &self.conns;
        let schemes = self.cfg.tree.schemes;
        self.watches
            .fire(&applied.triggers, &mut notes, |conn, acl| {
                conns
                    .get(&conn)
                    .is_some_and(|c| acl::check(acl, Perms::READ, &c.auth, schemes).is_ok())
            });
        for n in &notes {
            self.send_notification(n, zxid);
        }
        self.notes = notes;

        if let EntryKind::Restore { .. } = entry.kind {
            self.restored(zxid, entry, applied.reply == Some(Reply::Empty));
            return;
        }
        match &applied.session {
            Some(SessionEffect::Created {
                session_id,
                timeout_ms,
                passwd,
            }) => {
                self.upgraded(*session_id);
                self.liveness.insert(
                    *session_id,
                    Liveness {
                        timeout_ms: *timeout_ms as i64,
                        last_heard_ms: self.now_ms,
                        expiring: false,
                    },
                );
                if entry.origin == self.origin && self.conns.contains_key(&entry.conn) {
                    let negotiated = self.conns[&entry.conn].timeout_ms;
                    self.attach(entry.conn, *session_id, negotiated, passwd.clone());
                }
                return;
            }
            Some(SessionEffect::Closed {
                session_id,
                expired,
            }) => {
                if *expired {
                    tracing::info!("Expiring session 0x{session_id:x}");
                } else {
                    tracing::debug!("Closed session 0x{session_id:x}");
                }
                self.liveness.remove(session_id);
                if let Some(conn) = self.session_conn.get(session_id).copied() {
                    if !*expired && entry.conn == conn && entry.origin == self.origin {
                        self.complete_write(conn, entry.xid, zxid, &Reply::Empty);
                    }
                    let reason = if *expired {
                        "session expired"
                    } else {
                        "session closed by the client"
                    };
                    self.outputs.push(Output::Close { conn, reason });
                    self.drop_conn(conn);
                }
                return;
            }
            None => {}
        }
        if entry.origin == self.origin && entry.conn != 0 {
            if let Some(reply) = &applied.reply {
                self.complete_write(entry.conn, entry.xid, zxid, reply);
            }
        }
    }
}
