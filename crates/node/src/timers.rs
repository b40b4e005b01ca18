//! What time does: Raft ticks, connect requests held too long, liveness
//! reports to the leader, session expiry (only the leader proposes it), and
//! the periodic reaping of empty containers and expired TTL nodes.

use super::*;

/// Liveness of a session, tracked where it is connected.
#[derive(Debug)]
pub(crate) struct Liveness {
    pub(crate) timeout_ms: i64,
    pub(crate) last_heard_ms: i64,
    /// An expiry entry is already proposed.
    pub(crate) expiring: bool,
}

/// A timer for every session of `sm`, each starting at `now_ms`.
pub(crate) fn fresh_timers(sm: &StateMachine, now_ms: i64) -> HashMap<i64, Liveness> {
    sm.sessions
        .iter()
        .map(|(id, s)| {
            (
                *id,
                Liveness {
                    timeout_ms: s.timeout_ms as i64,
                    last_heard_ms: now_ms,
                    expiring: false,
                },
            )
        })
        .collect()
}

impl Node {
    /// Time passed: Raft ticks, session expiry, container/TTL checks.
    pub fn tick(&mut self, now_ms: i64) {
        self.now_ms = now_ms;
        self.close_stuck_clients();
        self.check_read_only();
        self.expire_local_sessions();
        let outputs = &mut self.outputs;
        self.held_connects.retain(|h| {
            let waiting = h.until_ms > now_ms;
            if !waiting {
                outputs.push(Output::Close {
                    conn: h.conn,
                    reason: "no leader was elected within the session timeout",
                });
            }
            waiting
        });
        if self.install_unpersisted.is_none() {
            self.maybe_campaign();
        } else if self.campaign_at_ms.is_some_and(|at| now_ms >= at)
            && self.raw.raft.leader_id == raft::INVALID_ID
        {
            self.campaigns_deferred += 1;
        }
        let mut ticked = false;
        while now_ms - self.last_raft_tick_ms >= self.cfg.tick_ms as i64 {
            self.last_raft_tick_ms += self.cfg.tick_ms as i64;
            if self.install_unpersisted.is_none() {
                self.raw.tick();
                self.redraw_election_timeout();
                self.ask_read_indexes(true);
                // A learner (an observer, a non-voting follower) never
                // campaigns, so Raft never tells it the leader is gone (a
                // leader without a quorum steps down, and its connection
                // stays up): no word from the leader for an election
                // timeout, and it stops serving, as a follower would.
                if self.is_learner()
                    && self.raw.raft.leader_id != raft::INVALID_ID
                    && self.raw.raft.pass_election_timeout()
                {
                    let term = self.raw.raft.term;
                    self.raw.raft.become_follower(term, raft::INVALID_ID);
                }
            } else if !self.is_leader()
                && self.raw.raft.election_elapsed + 1 >= self.raw.raft.randomized_election_timeout()
            {
                self.campaigns_deferred += 1;
            }
            ticked = true;
        }
        if ticked {
            self.tend_non_voting();
        }
        if !self.is_leader() {
            let leader = self.raw.raft.leader_id;
            if ticked && leader != raft::INVALID_ID {
                // Only sessions that spoke since the last report: a client
                // that went silent must still expire.
                let since = self.last_liveness_report_ms;
                let mut sessions: Vec<i64> = self
                    .session_conn
                    .keys()
                    .filter(|s| {
                        self.liveness
                            .get(s)
                            .is_some_and(|l| l.last_heard_ms > since)
                    })
                    .copied()
                    .collect();
                self.last_liveness_report_ms = now_ms;
                if !sessions.is_empty() {
                    sessions.sort_unstable();
                    self.outputs.push(Output::Liveness {
                        to: leader,
                        sessions,
                    });
                }
            }
            return;
        }
        let mut expired: Vec<i64> = self
            .liveness
            .iter_mut()
            .filter(|(_, l)| !l.expiring && now_ms - l.last_heard_ms > l.timeout_ms)
            .map(|(sid, l)| {
                l.expiring = true;
                *sid
            })
            .collect();
        expired.sort_unstable();
        for session_id in expired {
            self.propose(Entry {
                time_ms: now_ms,
                session_id,
                xid: 0,
                origin: self.origin,
                conn: 0,
                kind: EntryKind::CloseSession { expired: true },
            });
        }
        if now_ms - self.last_container_check_ms >= self.cfg.container_check_interval_ms {
            self.last_container_check_ms = now_ms;
            self.propose_reap(now_ms);
        }
    }

    /// A follower reports these sessions alive (leader only acts on it).
    pub fn liveness(&mut self, sessions: &[i64], now_ms: i64) {
        if !self.is_leader() {
            return;
        }
        for s in sessions {
            if let Some(l) = self.liveness.get_mut(s) {
                l.last_heard_ms = l.last_heard_ms.max(now_ms);
            }
        }
    }

    /// Proposes removal of containers and TTL nodes that qualify now;
    /// apply checks again, so a stale candidate is harmless.
    pub(crate) fn propose_reap(&mut self, now_ms: i64) {
        let tree = &self.sm.tree;
        let mut paths: Vec<String> = tree
            .containers()
            .filter(|p| {
                tree.get(p)
                    .is_some_and(|n| n.children.is_empty() && n.stat.cversion > 0)
            })
            .map(str::to_string)
            .collect();
        paths.extend(
            tree.ttls()
                .filter(|p| {
                    tree.get(p).is_some_and(|n| {
                        let ttl = n.stat.ephemeral_owner & tree::datatree::MAX_TTL_MS;
                        n.children.is_empty() && now_ms - n.stat.mtime > ttl
                    })
                })
                .map(str::to_string),
        );
        if !paths.is_empty() {
            self.propose(Entry {
                time_ms: now_ms,
                session_id: 0,
                xid: 0,
                origin: self.origin,
                conn: 0,
                kind: EntryKind::Reap { paths },
            });
        }
    }
}
