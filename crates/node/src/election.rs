//! Elections: Raft messages from peers, turns to campaign after a lost
//! leader (lowest live id first, so replicas do not split the vote), the
//! seeded election timeout, and what a leader change does to clients and
//! session timers.

use super::*;

/// Ticks between the turns of replicas that lost their leader (`peer_lost`).
pub(crate) const CAMPAIGN_TURN_TICKS: i64 = 2;

/// Ticks without a leader's heartbeat before an election: between this
/// and twice this, drawn per election from the replica's seeded RNG.
pub(crate) const ELECTION_TICKS: usize = 10;

impl Node {
    /// A Raft message from a peer. A `MsgSnapshot` only counts through
    /// `install_snapshot`, with its state.
    pub fn step(&mut self, mut msg: RaftMessage) {
        self.down.remove(&msg.from);
        self.heard_ms.insert(msg.from, self.now_ms);
        if self.takeover_conflict(&msg) {
            return;
        }
        match msg.get_msg_type() {
            MessageType::MsgSnapshot => return,
            MessageType::MsgHeartbeat => {
                // A leader sends the commit index it believes we have. A
                // replica whose data was lost (a replaced disk, a wiped
                // dataDir) has less: Raft would abort on it. Take only what
                // we hold, and tell the leader our log is short.
                let last = self.raw.raft.raft_log.last_index();
                if msg.commit > last {
                    let (leader, believed) = (msg.from, msg.commit);
                    msg.commit = last;
                    let _ = self.raw.step(msg);
                    self.redraw_election_timeout();
                    self.report_short_log(leader, believed, last);
                    return;
                }
            }
            _ => {}
        }
        if msg.get_msg_type() == MessageType::MsgPropose {
            // A follower's forwarded writes, for this leader's term only
            // (`resend`); reconfigs are decided here.
            let Some(m) = self.accept_forwarded(msg) else {
                return;
            };
            msg = m;
            self.vet_proposals(msg.mut_entries());
        }
        // A message from an unknown peer or for an old term is not ours to act on.
        let _ = self.raw.step(msg);
        self.redraw_election_timeout();
    }

    /// Answers a leader who believes we hold `believed` entries while we
    /// hold `last`: a rejected append at `believed`, as a replica answers an
    /// append its log cannot take. Heartbeats alone would never tell the
    /// leader (its progress for us says we have everything), so an idle
    /// ensemble would leave a wiped replica empty — and serving its empty
    /// tree to clients — until the next write. The leader (which put us in
    /// probe when our connection dropped) then goes back to where our log
    /// ends and sends entries from there, or its snapshot.
    fn report_short_log(&mut self, leader: u64, believed: u64, last: u64) {
        let r = &mut self.raw.raft;
        if r.leader_id != leader || r.state != raft::StateRole::Follower {
            return;
        }
        let mut m = RaftMessage::default();
        m.set_msg_type(MessageType::MsgAppendResponse);
        m.from = r.id;
        m.to = leader;
        m.term = r.term;
        m.index = believed;
        m.reject = true;
        m.reject_hint = last;
        m.log_term = r.raft_log.term(last).unwrap_or(0);
        r.msgs.push(m);
    }

    /// The transport lost its connection to peer `id` (it died, or the link
    /// broke). If that peer is our leader, do what ZooKeeper's followers do
    /// and look for a new one now instead of waiting out the election
    /// timeout: forget the leader (leaving its lease, so we may grant votes)
    /// and start a pre-vote — in turns by server id, the lowest surviving id
    /// first, so that the replicas which all saw the leader go do not split
    /// the vote. Pre-vote keeps this safe: while the leader is alive for a
    /// majority, they stay in its lease and refuse.
    /// The transport's connection to peer `id` is up: it is not lost
    /// (a peer that never wrote to us since its connection once failed —
    /// a follower, to another follower — would otherwise stay counted as
    /// lost, and a leader step down for a majority it still has).
    /// `carries_raft`: the connection that carries appends and heartbeats
    /// (the transport has another for votes).
    pub fn peer_up(&mut self, id: u64, carries_raft: bool) {
        self.down.remove(&id);
        if self.is_leader() && id != self.cfg.server_id && carries_raft {
            // A server that (re)connects hears its leader now, not at the
            // next heartbeat tick, and so catches up (and serves) sooner:
            // a restarted follower behind its clients' zxids refuses them
            // until then. Once per reconnection: a leader probing a
            // follower that is behind sends it its catch-up (up to 1 MiB)
            // again on every heartbeat response (raft-rs resumes a probe
            // on each), so one more ping, for the vote link, cost a whole
            // catch-up message more.
            self.raw.raft.ping();
        }
    }

    pub fn peer_lost(&mut self, id: u64) {
        if id == raft::INVALID_ID || id == self.cfg.server_id {
            return;
        }
        self.down.insert(id);
        if self.is_leader() {
            self.raw.report_unreachable(id);
            // The connections to so many voters broke that no majority is
            // left: stop leading now, as ZooKeeper's leader does when its
            // followers go, rather than at Raft's next quorum check (up to
            // two election timeouts), so clients move (or read-only mode
            // starts) sooner. Stepping down is always safe.
            let me = self.cfg.server_id;
            let voters = self.raft_members().0;
            let reachable = voters
                .iter()
                .filter(|v| **v == me || !self.down.contains(v))
                .count();
            if reachable * 2 <= voters.len() {
                tracing::warn!(
                    "lost the connections to a majority of the voters {voters:?}: no longer leading"
                );
                self.look_for_a_leader();
            }
            return;
        }
        if self.raw.raft.leader_id == id {
            self.look_for_a_leader();
        } else if self.campaign_at_ms.is_some() && self.raw.raft.leader_id == raft::INVALID_ID {
            // Another peer went with the leader: our turn may come sooner.
            self.schedule_campaign();
        }
    }

    /// Follows no leader from now (in this term) and takes its turn to
    /// pre-vote.
    fn look_for_a_leader(&mut self) {
        let term = self.raw.raft.term;
        self.raw.raft.become_follower(term, raft::INVALID_ID);
        // become_follower drew a timeout from thread_rng: redraw ours.
        self.timeout_drawn_for = (u64::MAX, 0);
        self.redraw_election_timeout();
        self.leader_lost_at_ms = self.now_ms;
        self.campaign_at_ms = None;
        self.schedule_campaign();
    }

    /// Our turn to pre-vote after the leader was lost: one tick first, so
    /// every replica that saw the leader go has left its lease before the
    /// first pre-vote asks them; then one turn per lower id still up.
    pub(crate) fn schedule_campaign(&mut self) {
        // A learner (an observer, a non-voting follower) never campaigns.
        if self.is_learner() {
            return;
        }
        let turn = self
            .cfg
            .voters
            .iter()
            .filter(|v| **v < self.cfg.server_id && !self.down.contains(v))
            .count() as i64;
        let at =
            self.leader_lost_at_ms + (1 + turn * CAMPAIGN_TURN_TICKS) * self.cfg.tick_ms as i64;
        self.campaign_at_ms = Some(self.campaign_at_ms.map_or(at, |c| c.min(at)));
    }

    /// A new term or role: draw the next election timeout from our RNG
    /// (raft-rs just drew one from thread_rng, which no tick has used yet).
    pub(crate) fn redraw_election_timeout(&mut self) {
        let now = (self.raw.raft.term, self.raw.raft.state as u8);
        if now != self.timeout_drawn_for {
            self.timeout_drawn_for = now;
            let t = self.rng.gen_range(ELECTION_TICKS..2 * ELECTION_TICKS);
            self.raw.raft.set_randomized_election_timeout(t);
        }
    }

    /// Starts the pre-vote scheduled by `peer_lost`, unless a leader came.
    pub(crate) fn maybe_campaign(&mut self) {
        let Some(at) = self.campaign_at_ms else {
            return;
        };
        if self.raw.raft.leader_id != raft::INVALID_ID {
            self.campaign_at_ms = None;
        } else if self.now_ms >= at {
            // raft-rs's campaign does not ask whether this server votes
            // (only its election timer does): an observer, or a server a
            // reconfig removed, must not stand.
            if self.raw.raft.promotable() {
                let _ = self.raw.campaign();
            }
            self.redraw_election_timeout();
            // Still no leader a full round of turns later: try again.
            let round =
                self.cfg.voters.len() as i64 * CAMPAIGN_TURN_TICKS * self.cfg.tick_ms as i64;
            self.campaign_at_ms = Some(self.now_ms + round);
        }
    }

    /// The leader changed (or was lost). Unlike ZooKeeper's servers, which
    /// close every client connection then, connections stay: writes a
    /// lost leader never logged are sent again (`resend`); a server left
    /// without a leader closes them after a while. A new leader restarts
    /// every session's timer, so no healthy session expires because of
    /// the failover.
    pub(crate) fn on_leader_change(&mut self, leader: u64) {
        self.leader_changes += 1;
        // A reconfig a previous reign let in may never reach the log; a
        // new leader's Raft holds back conf changes until its log is
        // applied, and a reconfig's base version is checked at apply.
        self.reconfig_pending_at = 0;
        let had = self.leader_id;
        let term = self.raw.raft.term;
        if self.cfg.voters.len() > 1 {
            if leader == self.cfg.server_id {
                tracing::info!(
                    "LEADING: elected leader in term {term} (zxid 0x{:x})",
                    self.sm.last_zxid()
                );
            } else if leader != raft::INVALID_ID && self.is_observer() {
                tracing::info!("OBSERVING: server {leader} is the leader in term {term}");
            } else if leader != raft::INVALID_ID {
                tracing::info!("FOLLOWING: server {leader} is the leader in term {term}");
            } else {
                tracing::info!("LOOKING: lost leader {had} in term {term}; not serving clients until a new one is elected");
            }
        }
        self.leader_id = leader;
        if had != raft::INVALID_ID {
            self.close_unestablished();
        }
        if leader == raft::INVALID_ID {
            self.no_leader_since_ms = self.now_ms;
        } else {
            self.leave_read_only();
        }
        if leader == self.cfg.server_id {
            self.leading_since_ms = self.now_ms;
            for l in self.liveness.values_mut() {
                l.last_heard_ms = self.now_ms;
                l.expiring = false;
            }
        }
    }
}
