//! Dynamic reconfiguration: ZooKeeper's `reconfig` on Raft membership
//! changes.
//!
//! A client's reconfig travels to the leader as any write does (a request
//! entry proposed where its session lives). Before a proposal enters the
//! leader's log (`vet_proposals`), the leader decides it as ZooKeeper's
//! PrepRequestProcessor does, in ZooKeeper's order — reconfig disabled
//! (left for apply to answer), standalone, a change in progress, a stale
//! `-v`, bad arguments, too few voters, no connected quorum in the new
//! membership, no right to write `/zookeeper/config` — and replaces the
//! request by its refusal (`EntryKind::Refused`), or by the membership
//! change: a Raft `ConfChangeV2` entry whose context is the reconfig entry
//! (`EntryKind::Reconfig`, the new `server.N=` lines). One voter added or
//! removed is a simple change; more go through a joint membership that
//! Raft leaves on its own. A change of addresses alone is a normal entry.
//!
//! Every replica applies the change at the same index: `/zookeeper/config`
//! becomes the new text at version = that zxid (its watches fire, the
//! client is answered with it), then Raft's membership moves — exactly as
//! the leader's change says when this replica's membership was the one
//! the leader started from, and otherwise (a replica that started from
//! its config files with a newer membership, replaying its log) straight
//! to the new membership. A leader that is no longer a voter hands
//! leadership to a voter; a server that is no longer a member follows
//! without a vote (`non_voting`). The driver hears of every new membership (`Output::Membership`)
//! to reach new peers and write ZooKeeper's dynamic config file.

use super::*;
use proto::members::Members;
use protobuf::Message as _;
use raft::prelude::{
    ConfChangeSingle, ConfChangeTransition, ConfChangeType, ConfChangeV2, EntryType,
};

/// `reconfigEnabled` and `standaloneEnabled`.
#[derive(Debug, Clone, Copy)]
pub struct ReconfigSettings {
    pub enabled: bool,
    /// A new membership needs at least 2 voters (else 1), as ZooKeeper.
    pub standalone_enabled: bool,
}

impl Default for ReconfigSettings {
    fn default() -> Self {
        ReconfigSettings {
            enabled: false,
            standalone_enabled: true,
        }
    }
}

/// The change that takes Raft's membership from (voters, learners) `from`
/// to `to`; None when they are the same.
fn change_between(from: (&[u64], &[u64]), to: (&[u64], &[u64])) -> Option<ConfChangeV2> {
    let single = |id: u64, t: ConfChangeType| {
        let mut s = ConfChangeSingle {
            node_id: id,
            ..Default::default()
        };
        s.set_change_type(t);
        s
    };
    let mut changes = Vec::new();
    for id in to.0.iter().filter(|id| !from.0.contains(id)) {
        changes.push(single(*id, ConfChangeType::AddNode));
    }
    for id in to.1.iter().filter(|id| !from.1.contains(id)) {
        changes.push(single(*id, ConfChangeType::AddLearnerNode));
    }
    for id in from.0.iter().chain(from.1) {
        if !to.0.contains(id) && !to.1.contains(id) {
            changes.push(single(*id, ConfChangeType::RemoveNode));
        }
    }
    if changes.is_empty() {
        return None;
    }
    let mut cc = ConfChangeV2::default();
    cc.set_transition(ConfChangeTransition::Auto);
    cc.set_changes(changes.into());
    Some(cc)
}

fn sorted(mut v: Vec<u64>) -> Vec<u64> {
    v.sort_unstable();
    v
}

impl Node {
    /// Raft's membership here: (voters, learners), sorted; and whether it
    /// is joint.
    pub(crate) fn raft_members(&self) -> (Vec<u64>, Vec<u64>, bool) {
        let cs = self.raw.raft.prs().conf().to_conf_state();
        let joint = !cs.voters_outgoing.is_empty();
        (sorted(cs.voters), sorted(cs.learners), joint)
    }

    /// Leader: every reconfig request among these proposals becomes the
    /// membership change it asks for, or its refusal (module comment).
    pub(crate) fn vet_proposals(&mut self, entries: &mut [RaftEntry]) {
        if !self.cfg.reconfig.enabled || !self.is_leader() {
            return;
        }
        let applied = self.sm.last_zxid() as u64;
        let mut changing = self.raw.raft.has_pending_conf()
            || self.raft_members().2
            || self.reconfig_pending_at > applied;
        let last = self.raw.raft.raft_log.last_index();
        for (i, e) in entries.iter_mut().enumerate() {
            if e.get_entry_type() != EntryType::EntryNormal
                || !tree::entry::is_request(&e.data, OpCode::Reconfig)
            {
                continue;
            }
            let Ok(entry) = Entry::decode(&e.data) else {
                continue;
            };
            let refuse = |error: ErrorCode| Entry {
                kind: EntryKind::Refused {
                    error: error.code(),
                },
                ..entry.clone()
            };
            match self.decide(&entry, changing) {
                Err(error) => {
                    tracing::warn!(
                        "reconfig of session 0x{:x} refused: {error:?}",
                        entry.session_id
                    );
                    e.data = refuse(error).encode().into();
                }
                Ok((kind, change)) => {
                    changing = true;
                    self.reconfig_pending_at = last + i as u64 + 1;
                    let decided = Entry { kind, ..entry };
                    match change.map(|cc| cc.write_to_bytes()) {
                        None => e.data = decided.encode().into(),
                        Some(Ok(cc)) => {
                            e.set_entry_type(EntryType::EntryConfChangeV2);
                            e.data = cc.into();
                            e.context = decided.encode().into();
                        }
                        Some(Err(_)) => {
                            e.data = refuse(ErrorCode::SystemError).encode().into();
                        }
                    }
                }
            }
        }
    }

    /// ZooKeeper's checks of a reconfig, in its order; Ok: the reconfig
    /// entry and the Raft change (None when voters and learners stay).
    fn decide(
        &self,
        entry: &Entry,
        changing: bool,
    ) -> Result<(EntryKind, Option<ConfChangeV2>), ErrorCode> {
        let EntryKind::Request { body, auth, .. } = &entry.kind else {
            return Err(ErrorCode::MarshallingError);
        };
        let Ok(Request::Reconfig(r)) = Request::decode(OpCode::Reconfig, body) else {
            return Err(ErrorCode::MarshallingError);
        };
        if self.cfg.members_text.is_empty() {
            // A standalone server: ZooKeeper answers Unimplemented.
            return Err(ErrorCode::Unimplemented);
        }
        if changing {
            return Err(ErrorCode::ReconfigInProgress);
        }
        let current = self.sm.members();
        if r.cur_config_id != -1 && r.cur_config_id as u64 != current.version {
            return Err(ErrorCode::BadVersion);
        }
        fn given(s: &str) -> Option<&str> {
            (!s.is_empty()).then_some(s)
        }
        let next = Members {
            servers: current
                .changed(
                    given(&r.joining_servers),
                    given(&r.leaving_servers),
                    given(&r.new_members),
                )
                .map_err(|msg| {
                    tracing::warn!("reconfig: {msg}");
                    ErrorCode::BadArguments
                })?,
            version: 0,
        };
        let voters = next.voters();
        let fewest = if self.cfg.reconfig.standalone_enabled {
            2
        } else {
            1
        };
        if voters.len() < fewest {
            tracing::warn!(
                "Reconfig failed - new configuration must include at least {fewest} followers"
            );
            return Err(ErrorCode::BadArguments);
        }
        if !self.quorum_connected(&voters) {
            tracing::warn!("Reconfig failed - there must be a connected and synced quorum in new configuration");
            return Err(ErrorCode::NewConfigNoQuorum);
        }
        let acl = self
            .sm
            .tree
            .get(tree::datatree::CONFIG)
            .map(|n| n.acl.to_vec())
            .unwrap_or_default();
        acl::check(&acl, Perms::WRITE, auth, self.cfg.tree.schemes)
            .map_err(|_| ErrorCode::NoAuth)?;
        let (base_voters, base_learners, _) = self.raft_members();
        let to = non_voting::raft_target(&next, (&base_voters, &base_learners));
        let change = change_between((&base_voters, &base_learners), (&to.0, &to.1));
        Ok((
            EntryKind::Reconfig {
                base: current.version,
                servers: next.render_servers(),
                base_voters,
                base_learners,
            },
            change,
        ))
    }

    /// Leader: a majority of `voters` is this server (if among them) and
    /// servers replicating from it that it heard from within an election
    /// timeout, as ZooKeeper counts a new membership's synced followers.
    fn quorum_connected(&self, voters: &[u64]) -> bool {
        let me = self.cfg.server_id;
        let prs = self.raw.raft.prs();
        let recent = self.now_ms - (ELECTION_TICKS as u64 * self.cfg.tick_ms) as i64;
        let live = voters
            .iter()
            .filter(|id| {
                **id == me
                    || (!self.down.contains(id)
                        && self.heard_ms.get(id).is_some_and(|t| *t >= recent)
                        && prs
                            .get(**id)
                            .is_some_and(|pr| pr.state == raft::ProgressState::Replicate))
            })
            .count();
        live > voters.len() / 2
    }

    /// Applies a committed membership change (`committed::Membership`):
    /// the reconfig entry to the tree and its answer, then Raft's
    /// membership; none: Raft leaving a joint membership, or a change of
    /// non-voting followers (`non_voting`).
    pub(crate) fn apply_membership(
        &mut self,
        zxid: i64,
        entry: Option<Entry>,
        change: &ConfChangeV2,
    ) {
        let Some(entry) = entry else {
            self.sm.skip(zxid);
            if !change.get_changes().is_empty() {
                self.apply_non_voting(change);
                return;
            }
            if self.raft_members().2 {
                self.change_raft_members(change);
            }
            self.members_changed();
            return;
        };
        let applied = self.sm.apply(zxid, &entry);
        let ok = matches!(applied.reply, Some(Reply::Data(..)));
        self.after_apply(zxid, &entry, applied);
        if ok {
            self.switch_members(&entry, Some(change));
        }
    }

    /// After a reconfig entry applied well: Raft's membership becomes the
    /// one the entry names — by the leader's `change` when ours is the
    /// membership the leader started from, else straight there.
    pub(crate) fn switch_members(&mut self, entry: &Entry, change: Option<&ConfChangeV2>) {
        let EntryKind::Reconfig {
            servers,
            base_voters,
            base_learners,
            ..
        } = &entry.kind
        else {
            return;
        };
        let Ok(target) = Members::parse(servers) else {
            return;
        };
        let (voters, learners, joint) = self.raft_members();
        match change {
            Some(cc) if !joint && voters == *base_voters && learners == *base_learners => {
                self.change_raft_members(cc);
            }
            _ => {
                if joint {
                    self.change_raft_members(&ConfChangeV2::default());
                }
                let (voters, learners, _) = self.raft_members();
                let to = non_voting::raft_target(&target, (&voters, &learners));
                if let Some(cc) = change_between((&voters, &learners), (&to.0, &to.1)) {
                    self.change_raft_members(&cc);
                    if self.raft_members().2 {
                        // Straight there: no joint stage to wait out here.
                        self.change_raft_members(&ConfChangeV2::default());
                    }
                }
            }
        }
        self.members_changed();
    }

    pub(crate) fn change_raft_members(&mut self, cc: &ConfChangeV2) {
        // A snapshot soon: a server added now gets one that lists it
        // (Raft refuses a snapshot whose membership leaves it out, and the
        // newest one might predate its addition).
        self.since_snapshot = self.snapshot_after;
        let me = self.cfg.server_id;
        let mut cc = cc.clone();
        if self.is_leader() {
            // raft-rs cannot lead without its own progress (it panics):
            // a leader that a change removes stays in Raft's membership
            // as a learner here — it serves nothing, as the new
            // membership does not list it, and hands leadership on. Its
            // peers drop it altogether.
            for c in cc.mut_changes().iter_mut() {
                if c.node_id == me && c.get_change_type() == ConfChangeType::RemoveNode {
                    c.set_change_type(ConfChangeType::AddLearnerNode);
                }
            }
        }
        if let Err(e) = self.raw.apply_conf_change(&cc) {
            tracing::error!("membership change {cc:?} not applied: {e}");
        }
        // A campaign of a server that no longer votes stops: votes granted
        // under the old membership would make it a leader Raft cannot
        // track (raft-rs panics: the simulation found it).
        let r = &mut self.raw.raft;
        if matches!(
            r.state,
            raft::StateRole::Candidate | raft::StateRole::PreCandidate
        ) && !r.prs().conf().voters().contains(me)
        {
            let term = r.term;
            r.become_follower(term, raft::INVALID_ID);
        }
    }

    /// Leader: a joint membership that Raft did not leave (leadership
    /// changed after it was entered: raft-rs leaves only from the leader
    /// that entered it) is left now.
    pub(crate) fn leave_joint_if_stuck(&mut self) {
        if !self.is_leader() || !self.raft_members().2 || self.raw.raft.has_pending_conf() {
            return;
        }
        tracing::info!("leaving the joint membership a previous leader entered");
        if let Err(e) = self
            .raw
            .propose_conf_change(Vec::new(), ConfChangeV2::default())
        {
            tracing::warn!("cannot propose leaving the joint membership: {e}");
        }
    }

    /// After Raft's membership changed here (or at startup, or after a
    /// snapshot from the leader): tell the driver; a server that is no
    /// longer a member stops serving; a leader that no longer votes hands
    /// leadership on.
    pub(crate) fn members_changed(&mut self) {
        let me = self.cfg.server_id;
        let (voters, learners, _) = self.raft_members();
        // Left out of the membership text (a standalone server has none)
        // and of Raft's: removed. A Raft learner the text does not list as
        // an observer (one a reconfig removed, a joiner): a non-voting
        // follower (`non_voting`) until its leader drops it.
        let members = self.sm.members();
        let unlisted = !members.servers.is_empty() && !members.servers.contains_key(&me);
        let removed = unlisted && !voters.contains(&me) && !learners.contains(&me);
        let non_voting = !members.servers.is_empty()
            && learners.contains(&me)
            && !members.servers.get(&me).is_some_and(|s| s.observer);
        if non_voting && !self.non_voting {
            tracing::info!(
                "this server (id {me}) is not a voting member of the ensemble: it follows as a non-voting follower"
            );
        }
        self.non_voting = non_voting;
        if removed && !self.removed {
            tracing::warn!(
                "this server (id {me}) is no longer a member of the ensemble: it serves no clients until it is let in again"
            );
            self.close_all_clients("this server was removed from the ensemble");
        }
        self.removed = removed;
        self.membership_changed_ms = self.now_ms;
        self.outputs.push(Output::Membership {
            text: members.render(),
            voters,
            learners,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_between_memberships() {
        assert!(change_between((&[1, 2, 3], &[]), (&[1, 2, 3], &[])).is_none());
        let cc = change_between((&[1, 2, 3], &[]), (&[1, 2, 3], &[100])).unwrap();
        assert_eq!(cc.changes.len(), 1);
        assert_eq!(
            cc.changes[0].get_change_type(),
            ConfChangeType::AddLearnerNode
        );
        // A promotion is one change; a swap of voters is two (joint).
        let cc = change_between((&[1, 2, 3], &[4]), (&[1, 2, 3, 4], &[])).unwrap();
        assert_eq!(cc.changes.len(), 1);
        assert_eq!(cc.changes[0].get_change_type(), ConfChangeType::AddNode);
        let cc = change_between((&[1, 2, 3], &[]), (&[1, 2, 4], &[])).unwrap();
        assert_eq!(cc.changes.len(), 2);
        assert!(cc.enter_joint().is_some());
    }
}
