//! Data taken over from a ZooKeeper ensemble member, until the ensemble
//! confirms it. Each server of a switched ensemble starts from its own
//! ZooKeeper files, as a snapshot at the index of its last zxid. A server
//! whose files reach further than the leader Raft elects holds
//! transactions no quorum of ZooKeeper's ensemble logged (had a quorum
//! logged one, a voter holding it would have refused the leader its vote),
//! so ZooKeeper never committed them and no client was told they
//! succeeded; but Raft cannot take a replica back below its snapshot.
//!
//! So until then (`NodeConfig::takeover_unconfirmed`), a leader whose log
//! is found to end below our snapshot — its append probes below it, or it
//! offers an older snapshot — is reported as `Output::TakeoverConflict`
//! before Raft sees the message: the driver drops this server's copy of
//! the data (ZooKeeper's files are untouched) and the server catches up
//! from the leader. Once the commit index passes the snapshot, a leader's
//! log holds the same entry at our snapshot's index (Raft's log matching),
//! the data is confirmed, and `Output::TakeoverConfirmed` says so once.
//!
//! Not here: reading ZooKeeper's files (the server's `takeover`).

use super::*;

impl Node {
    /// True when `msg` shows a leader behind data taken over here and not
    /// yet confirmed; the conflict is reported and the message dropped.
    pub(crate) fn takeover_conflict(&mut self, msg: &RaftMessage) -> bool {
        let Some(ours) = self.cfg.takeover_unconfirmed else {
            return false;
        };
        let leader_index = match msg.get_msg_type() {
            MessageType::MsgAppend => msg.index,
            MessageType::MsgSnapshot => msg.get_snapshot().get_metadata().index,
            _ => return false,
        };
        // A message of an older term is Raft's to ignore.
        if msg.term < self.raw.raft.term || leader_index >= ours {
            return false;
        }
        self.outputs.push(Output::TakeoverConflict {
            leader: msg.from,
            leader_index,
            ours,
        });
        true
    }

    /// After each hand-off: the data is confirmed once an entry after it
    /// is committed.
    pub(crate) fn confirm_takeover(&mut self) {
        if let Some(ours) = self.cfg.takeover_unconfirmed {
            if self.raw.raft.raft_log.committed > ours {
                self.cfg.takeover_unconfirmed = None;
                self.outputs.push(Output::TakeoverConfirmed { index: ours });
            }
        }
    }
}
