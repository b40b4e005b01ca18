//! Non-voting followers: servers that replicate and serve clients without
//! being in `/zookeeper/config`, as ZooKeeper keeps them — a server about
//! to join (its config lists the members and itself) syncs before
//! `reconfig -add`, and a server a reconfig removes goes on following.
//!
//! In Raft they are learners that the membership text does not list as
//! observers. (Until a reconfig, each server's text is its own config
//! files': a joiner's lists it as a participant, so whether it votes is
//! Raft's word, the same on every replica, not the text's.)
//! A reconfig that removes a server makes it such a learner instead of
//! dropping it (`raft_target`); a server the transport reports as calling
//! in without being a member (`joiner`: it named itself and its address
//! when asked) is added as one by the leader, when reconfig is enabled.
//! The leader drops one it has not heard from for `GONE_TICKS`; one that
//! has not heard from a leader for `REJOIN_TICKS` asks the transport to
//! call in again (`Output::Rejoin`), so a leader that dropped it, or never
//! knew its address, adds it back. The changes are Raft membership entries
//! without a reconfig entry as context, applied at every replica only if
//! they still hold then by Raft's membership alone (a reconfig may have
//! added the server meanwhile); a joiner whose own config made it a voter
//! here applies its own addition as a demotion, which brings its Raft
//! membership to the leader's (its config is the ensemble's plus itself).

use super::*;
use proto::members::Members;
use raft::prelude::{ConfChangeSingle, ConfChangeType, ConfChangeV2};

/// Raft ticks without a word from a non-voting follower before the leader
/// drops it (30 s with the default tickTime).
pub(crate) const GONE_TICKS: i64 = 150;

/// Raft ticks without a word from a leader before a server outside the
/// voters calls in again.
pub(crate) const REJOIN_TICKS: i64 = 30;

/// Raft's (voters, learners) for the membership `target`, from Raft's
/// `current` one: its participants vote, its observers learn, and a
/// server it leaves out that Raft has now stays as a non-voting learner.
pub(crate) fn raft_target(target: &Members, current: (&[u64], &[u64])) -> (Vec<u64>, Vec<u64>) {
    let voters = target.voters();
    let mut learners = target.learners();
    for id in current.0.iter().chain(current.1) {
        if !target.servers.contains_key(id) && !learners.contains(id) {
            learners.push(*id);
        }
    }
    learners.sort_unstable();
    (voters, learners)
}

fn one_change(id: u64, t: ConfChangeType) -> ConfChangeV2 {
    let mut s = ConfChangeSingle {
        node_id: id,
        ..Default::default()
    };
    s.set_change_type(t);
    let mut cc = ConfChangeV2::default();
    cc.set_changes(vec![s].into());
    cc
}

impl Node {
    /// Raft's learners that the membership text does not list as
    /// observers (none when there is no text: a standalone server).
    pub(crate) fn non_voting_ids(&self) -> Vec<u64> {
        let members = self.sm.members();
        if members.servers.is_empty() {
            return Vec::new();
        }
        let mut ids = self.raft_members().1;
        ids.retain(|id| !members.servers.get(id).is_some_and(|s| s.observer));
        ids
    }

    /// This server follows without a vote and without being listed.
    pub fn is_non_voting(&self) -> bool {
        self.non_voting
    }

    /// Leader only: non-voting followers replicating in step (ZooKeeper's
    /// `synced_non_voting_followers`).
    pub fn synced_non_voting(&self) -> usize {
        if !self.is_leader() {
            return 0;
        }
        let prs = self.raw.raft.prs();
        self.non_voting_ids()
            .iter()
            .filter(|id| {
                prs.get(**id).is_some_and(|pr| {
                    pr.recent_active && pr.state == raft::ProgressState::Replicate
                })
            })
            .count()
    }

    /// Whether Raft counts this server a learner (an observer, or a
    /// non-voting follower): it never campaigns.
    pub(crate) fn is_learner(&self) -> bool {
        self.raft_members().1.contains(&self.cfg.server_id)
    }

    /// The transport let in server `id`, which is not a member, once it
    /// named its address: the leader adds it as a non-voting follower
    /// (on a tick); every replica notes it, in case it leads later.
    pub fn joiner(&mut self, id: u64) {
        if id == self.cfg.server_id || id == raft::INVALID_ID {
            return;
        }
        self.joiners.insert(id, self.now_ms);
        self.down.remove(&id);
    }

    /// On every Raft tick: a leader adds joiners and drops non-voting
    /// followers gone for long; a server outside the voters without a
    /// leader for long calls in again.
    pub(crate) fn tend_non_voting(&mut self) {
        let tick = self.cfg.tick_ms as i64;
        let gone = self.now_ms - GONE_TICKS * tick;
        self.joiners.retain(|_, at| *at >= gone);
        if !self.is_leader() {
            let me = self.cfg.server_id;
            let voter = self.raft_members().0.contains(&me);
            let quiet = self.raw.raft.election_elapsed as i64 >= REJOIN_TICKS;
            if self.cfg.reconfig.enabled
                && !voter
                && quiet
                && self.now_ms - self.rejoined_at_ms >= REJOIN_TICKS * tick
            {
                self.rejoined_at_ms = self.now_ms;
                tracing::info!(
                    "no word from a leader for {} ms: calling the ensemble again",
                    REJOIN_TICKS * tick
                );
                self.outputs.push(Output::Rejoin);
            }
            return;
        }
        let applied = self.sm.last_zxid() as u64;
        if !self.cfg.reconfig.enabled
            || self.raw.raft.has_pending_conf()
            || self.raft_members().2
            || self.reconfig_pending_at > applied
        {
            return;
        }
        let (voters, learners, _) = self.raft_members();
        let members = self.sm.members();
        if members.servers.is_empty() {
            return;
        }
        let known = |id: &u64| voters.contains(id) || learners.contains(id);
        let change = if let Some(id) = self
            .joiners
            .keys()
            .find(|id| !known(id) && !members.servers.contains_key(id))
        {
            tracing::info!(
                "server {id} calls in without being a member: adding it as a non-voting follower"
            );
            Some(one_change(*id, ConfChangeType::AddLearnerNode))
        } else {
            let since = self.leading_since_ms.max(self.membership_changed_ms);
            self.non_voting_ids()
                .into_iter()
                .find(|id| {
                    let last = self.heard_ms.get(id).copied().unwrap_or(i64::MIN);
                    let joined = self.joiners.get(id).copied().unwrap_or(i64::MIN);
                    last.max(joined).max(since) < gone
                })
                .map(|id| {
                    tracing::info!(
                        "non-voting follower {id} silent for {} ms: dropping it",
                        GONE_TICKS * tick
                    );
                    one_change(id, ConfChangeType::RemoveNode)
                })
        };
        let Some(cc) = change else {
            return;
        };
        if let Err(e) = self.raw.propose_conf_change(Vec::new(), cc) {
            tracing::warn!("cannot propose a non-voting follower change: {e}");
        }
    }

    /// Applies a committed change of non-voting followers (a Raft change
    /// without a reconfig entry), if it still holds by Raft's membership
    /// (the same on every replica, unlike a text from config files): an
    /// added server is still unknown to Raft — or is this server, a
    /// joiner whose own config made it a voter: the addition demotes it —
    /// and a dropped one is still a learner.
    pub(crate) fn apply_non_voting(&mut self, change: &ConfChangeV2) {
        let (voters, learners, joint) = self.raft_members();
        let me = self.cfg.server_id;
        let holds = !joint
            && change.get_changes().iter().all(|c| {
                let id = c.node_id;
                match c.get_change_type() {
                    ConfChangeType::AddLearnerNode => {
                        !learners.contains(&id) && (id == me || !voters.contains(&id))
                    }
                    ConfChangeType::RemoveNode => learners.contains(&id),
                    ConfChangeType::AddNode => false,
                }
            });
        if !holds {
            tracing::info!("a non-voting follower change no longer holds: skipped ({change:?})");
            return;
        }
        self.change_raft_members(change);
        self.members_changed();
    }
}
