//! A restore on this replica (the AdminServer's `restore`): proposing the
//! entry that carries the snapshot, and what applying it does beyond the
//! state machine — every client of this replica is closed (its watches
//! and reads were against a state that is gone; a client whose session
//! the snapshot holds reconnects and keeps it), every restored session
//! gets a full timeout to come back, and a snapshot of the new state is
//! taken soon, so the large entry does not stay in the log.

use super::*;

impl Node {
    /// Proposes replacing the state with `packed` (`tree::zk_restore::pack`
    /// of a checked ZooKeeper snapshot); `Output::Restored` with `waiter`
    /// answers once this replica applied it. False when there is no leader
    /// to take it.
    pub fn propose_restore(&mut self, packed: Vec<u8>, waiter: u64, now_ms: i64) -> bool {
        if !self.has_leader() {
            return false;
        }
        self.propose(Entry {
            time_ms: now_ms,
            session_id: 0,
            xid: 0,
            origin: self.origin,
            conn: waiter,
            kind: EntryKind::Restore { snapshot: packed },
        });
        self.propose_pending();
        true
    }

    /// A restore entry was applied at `zxid`.
    pub(crate) fn restored(&mut self, zxid: i64, entry: &Entry, ok: bool) {
        if ok {
            tracing::info!(
                "restored a snapshot at zxid 0x{zxid:x}: {} znodes, {} sessions",
                self.sm.tree.node_count(),
                self.sm.sessions.len()
            );
            self.close_all_clients("the state was restored from a snapshot");
            self.liveness = fresh_timers(&self.sm, self.now_ms);
            self.since_snapshot = self.snapshot_after;
        } else {
            tracing::warn!("a restore entry at zxid 0x{zxid:x} is not a snapshot; nothing changed");
        }
        if entry.origin == self.origin {
            self.outputs.push(Output::Restored {
                waiter: entry.conn,
                zxid,
                ok,
            });
        }
    }
}
