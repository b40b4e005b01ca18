//! What a committed Raft entry means to the state machine: a leader's
//! no-op or a membership change uses its zxid and changes nothing, a
//! digest entry is checked rather than applied, anything else is applied.
//! Shared by the replica (`ready::apply_all`) and by the offline tools
//! that rebuild a server's state from its files (`replay`).

use raft::prelude::{Entry as RaftEntry, EntryType};
use tree::{Entry, EntryKind, StateMachine};

pub enum Committed {
    /// Uses the zxid; no change.
    Skip,
    /// The leader's digest at `index`, to compare with ours.
    Digest {
        index: u64,
        digest: u64,
        origin: u64,
    },
    Apply(Entry),
}

/// Classifies one committed entry; Err when its bytes do not decode.
pub fn committed(e: &RaftEntry) -> Result<Committed, proto::DecodeError> {
    if e.data.is_empty() || e.get_entry_type() != EntryType::EntryNormal {
        return Ok(Committed::Skip);
    }
    let entry = Entry::decode(&e.data)?;
    Ok(match entry.kind {
        EntryKind::Digest { index, digest } => Committed::Digest {
            index,
            digest,
            origin: entry.origin,
        },
        _ => Committed::Apply(entry),
    })
}

/// Applies `entries` (in index order, each above the state's last zxid)
/// to `sm` as the replica would, without watches, replies or checks: for
/// tools that read a stopped server's files. Returns how many were read.
pub fn replay(sm: &mut StateMachine, entries: &[RaftEntry]) -> Result<usize, String> {
    let mut n = 0;
    for e in entries {
        let zxid = e.index as i64;
        if zxid <= sm.last_zxid() {
            continue;
        }
        match committed(e).map_err(|err| format!("log entry 0x{:x}: {err}", e.index))? {
            Committed::Skip | Committed::Digest { .. } => sm.skip(zxid),
            Committed::Apply(entry) => {
                sm.apply(zxid, &entry);
            }
        }
        n += 1;
    }
    Ok(n)
}
