//! Leadership transfer (beyond ZooKeeper, where a leader that stops means
//! an election): the leader asks an up-to-date voter to take over (Raft's
//! TimeoutNow: the transferee campaigns at once and wins), so stopping or
//! moving the leader costs one round of messages instead of an election
//! timeout. While a transfer runs, Raft refuses proposals; they are held
//! here instead of failing the clients' writes, and go to whichever
//! server leads when it is over (this one again if the transfer gave up
//! after an election timeout).

use super::*;

impl Node {
    /// Hands leadership to voter `to`, or (leader only) to the voter whose
    /// log matches ours (the one that can win at once), preferring one
    /// heard from lately. A follower passes a named transfer on to the
    /// leader it knows. Returns the server asked, or None when there is
    /// no leader, or no other voter qualifies.
    pub fn transfer_leadership(&mut self, to: Option<u64>) -> Option<u64> {
        let me = self.cfg.server_id;
        let voters: Vec<u64> = self.raw.raft.prs().conf().voters().ids().iter().collect();
        if !self.is_leader() {
            let id = to.filter(|id| voters.contains(id) && self.has_leader())?;
            tracing::info!("asking the leader to hand leadership to server {id}");
            self.raw.transfer_leader(id);
            self.flush();
            return Some(id);
        }
        let last = self.raw.raft.raft_log.last_index();
        let target = match to {
            Some(id) => voters.contains(&id).then_some(id).filter(|id| *id != me),
            None => {
                let mut best: Option<(bool, u64, u64)> = None;
                for (id, pr) in self.raw.raft.prs().iter() {
                    if *id == me || !voters.contains(id) {
                        continue;
                    }
                    // Up to date first, then heard from lately, then the
                    // longest log.
                    let key = (pr.matched == last && pr.recent_active, pr.matched, *id);
                    if best.is_none_or(|b| (key.0, key.1) > (b.0, b.1)) {
                        best = Some(key);
                    }
                }
                best.map(|b| b.2)
            }
        }?;
        tracing::info!("handing leadership to server {target}");
        self.raw.transfer_leader(target);
        self.flush();
        Some(target)
    }

    /// A leader that no longer votes (a reconfig removed or demoted it)
    /// hands leadership to a voter — again after a transfer that gave up
    /// — once the membership is not joint (Raft leaves the joint
    /// membership from this leader first). `flush` calls this after its
    /// loop: a transfer inside it would start a second Ready.
    pub(crate) fn hand_off_if_not_voting(&mut self) {
        if !self.is_leader() || self.raw.raft.lead_transferee.is_some() {
            return;
        }
        let (voters, _, joint) = self.raft_members();
        if joint || voters.is_empty() || voters.contains(&self.cfg.server_id) {
            return;
        }
        tracing::info!("this leader is no longer a voter: handing leadership on");
        self.transfer_leadership(None);
    }

    /// A leadership transfer is under way: proposals wait.
    pub(crate) fn transferring(&self) -> bool {
        self.is_leader() && self.raw.raft.lead_transferee.is_some()
    }
}
