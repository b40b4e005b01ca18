//! Client writes across a leader change (beyond ZooKeeper, whose servers
//! close every client connection when their leader goes): connections stay
//! open, and a write whose leader never logged it is sent again, so a
//! leadership transfer or a failover costs clients a pause, not an error.
//!
//! Every proposal a replica sends carries the Raft term it was sent in
//! (`log_term` of the MsgPropose, which raft-rs leaves unused), and a
//! leader takes only proposals of its own term; a leader handing over
//! leadership keeps the proposals that come meanwhile (raft-rs would drop
//! them) and takes them if it still leads in that term afterwards. So an
//! entry a write made has the term the write was sent in, and once this
//! replica has applied an entry of a later term, every write sent in an
//! earlier term and not applied yet is known lost: committed entries'
//! terms only grow with their index. Those are proposed again, in their
//! connection's order; the connection's later writes wait behind them
//! (`must_hold`).
//!
//! What still closes a connection: a server without a leader for
//! max(2 s, tickTime) (as read-only mode starts; its clients move to a
//! server with a quorum), a write unanswered for the session's timeout (a
//! message lost on a broken link, with no leader change to tell), a
//! connection whose session is still being created when the leader
//! changes.

use super::*;
use crate::clients::{Asked, Pending, Sent};

impl Node {
    /// Client writes sent again after their leader never logged them.
    pub fn writes_resent(&self) -> u64 {
        self.writes_resent
    }

    /// Queues a client write on its connection and proposes it.
    pub(crate) fn propose_write(&mut self, conn: ConnId, asked: Asked, data: Vec<u8>) {
        let data = bytes::Bytes::from(data);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.queue.push_back(Pending::Write(
                asked,
                Sent {
                    term: 0,
                    at_ms: self.now_ms,
                    data: data.clone(),
                },
            ));
        }
        self.push_proposal(data, conn);
    }

    /// Whether a new write of `conn` must wait: behind a linearizable read
    /// still waiting for its index, or a write sent in an earlier term
    /// that may have to be sent again.
    pub(crate) fn must_hold(&self, conn: ConnId) -> bool {
        let term = self.raw.raft.term;
        self.conns.get(&conn).is_some_and(|c| {
            c.queue.iter().any(|p| match p {
                Pending::Linear(..) => true,
                Pending::Write(_, s) => s.term != 0 && s.term < term,
                Pending::Held(..) => true,
                Pending::Read(..) => false,
            })
        })
    }

    /// Proposes the held writes of `conn` that nothing holds any longer:
    /// those before its first linearizable read, and none while a write
    /// of an earlier term is unresolved.
    pub(crate) fn propose_held(&mut self, conn: ConnId) {
        let term = self.raw.raft.term;
        let now = self.now_ms;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let mut ready = Vec::new();
        for p in c.queue.iter_mut() {
            match p {
                Pending::Linear(..) => break,
                Pending::Write(_, s) if s.term != 0 && s.term < term => break,
                Pending::Held(asked, data) => {
                    let data = bytes::Bytes::from(std::mem::take(data));
                    ready.push(data.clone());
                    *p = Pending::Write(
                        *asked,
                        Sent {
                            term: 0,
                            at_ms: now,
                            data,
                        },
                    );
                }
                _ => {}
            }
        }
        for data in ready {
            self.push_proposal(data, conn);
        }
    }

    /// The proposals just handed to Raft in `term`: each connection's
    /// oldest unsent writes, one per proposal of it, in order.
    pub(crate) fn stamp_sent(&mut self, conns: &[ConnId], term: u64) {
        let now = self.now_ms;
        for conn in conns {
            let Some(c) = self.conns.get_mut(conn) else {
                continue;
            };
            let unsent = c.queue.iter_mut().find_map(|p| match p {
                Pending::Write(_, s) if s.term == 0 => Some(s),
                _ => None,
            });
            if let Some(s) = unsent {
                s.term = term;
                s.at_ms = now;
            }
        }
    }

    /// A proposal from a peer: taken only by a leader, only for its own
    /// term (0: a peer of an older build, taken); kept while handing over
    /// leadership. Returns the message when Raft should step it now.
    pub(crate) fn accept_forwarded(&mut self, msg: RaftMessage) -> Option<RaftMessage> {
        if !self.is_leader() || (msg.log_term != 0 && msg.log_term != self.raw.raft.term) {
            return None;
        }
        if self.transferring() {
            self.held_forwarded.push(msg);
            return None;
        }
        Some(msg)
    }

    /// After a leadership transfer: the proposals kept meanwhile go to Raft
    /// if this replica still leads in the term they were sent in; otherwise
    /// their senders send them again.
    pub(crate) fn release_forwarded(&mut self) {
        if self.held_forwarded.is_empty() || self.transferring() {
            return;
        }
        for mut msg in std::mem::take(&mut self.held_forwarded) {
            if self.is_leader() && (msg.log_term == 0 || msg.log_term == self.raw.raft.term) {
                self.vet_proposals(msg.mut_entries());
                let _ = self.raw.step(msg);
            }
        }
    }

    /// Once an entry of a later term is applied here, the writes sent in
    /// an earlier term and not applied are lost: they are proposed again,
    /// each connection's in order, and what waited behind them follows.
    pub(crate) fn resend_lost_writes(&mut self) {
        let applied = self.applied_term;
        if applied <= self.resent_for_term {
            return;
        }
        self.resent_for_term = applied;
        let mut conns: Vec<ConnId> = self.conns.keys().copied().collect();
        conns.sort_unstable();
        for conn in conns {
            let Some(c) = self.conns.get_mut(&conn) else {
                continue;
            };
            let mut again = Vec::new();
            for p in c.queue.iter_mut() {
                if let Pending::Write(_, s) = p {
                    if s.term != 0 && s.term < applied {
                        s.term = 0;
                        again.push(s.data.clone());
                    }
                }
            }
            self.writes_resent += again.len() as u64;
            for data in again {
                self.push_proposal(data, conn);
            }
            self.propose_held(conn);
        }
    }

    /// On every tick: a connection whose oldest write has gone unanswered
    /// for its session's timeout closes (a proposal lost with a broken
    /// link, no leader change to tell); with no leader for as long as
    /// read-only mode waits, every read-write connection closes, as
    /// ZooKeeper's servers close theirs, and its client moves on.
    pub(crate) fn close_stuck_clients(&mut self) {
        let now = self.now_ms;
        let leaderless =
            !self.has_leader() && now - self.no_leader_since_ms >= self.read_only_delay_ms();
        let mut stuck: Vec<(ConnId, &'static str)> = self
            .conns
            .iter()
            .filter_map(|(id, c)| {
                if leaderless && !c.read_only {
                    return Some((*id, "no leader: the ensemble has no quorum here"));
                }
                c.queue.iter().find_map(|p| match p {
                    Pending::Write(_, s) if now - s.at_ms > c.timeout_ms as i64 => {
                        Some((*id, "a write went unanswered for the session timeout"))
                    }
                    _ => None,
                })
            })
            .collect();
        stuck.sort_unstable();
        for (conn, reason) in stuck {
            self.drop_conn(conn);
            self.outputs.push(Output::Close { conn, reason });
        }
    }

    /// The leader changed: connections still waiting for their session to
    /// be created close (the proposal may be lost; the client connects
    /// again); the others stay.
    pub(crate) fn close_unestablished(&mut self) {
        self.close_clients_where(
            |c| c.session_id == 0,
            "the leader changed while the session was being created",
        );
    }
}
