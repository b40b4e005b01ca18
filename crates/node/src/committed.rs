//! What a committed Raft entry means to the state machine: a leader's
//! no-op uses its zxid and changes nothing, a digest entry is checked
//! rather than applied, a Raft membership change carries the reconfig
//! entry it makes (or none: leaving a joint membership), anything else is
//! applied.
//! Shared by the replica (`ready::apply_all`) and by the offline tools
//! that rebuild a server's state from its files (`replay`).

use protobuf::Message as _;
use raft::prelude::{ConfChangeV2, Entry as RaftEntry, EntryType};
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
    /// A Raft membership change: with the reconfig entry that set it in
    /// motion (`EntryKind::Reconfig`), or none when Raft leaves a joint
    /// membership on its own.
    Membership {
        entry: Option<Entry>,
        change: ConfChangeV2,
    },
}

/// Classifies one committed entry; Err when its bytes do not decode.
pub fn committed(e: &RaftEntry) -> Result<Committed, proto::DecodeError> {
    match e.get_entry_type() {
        EntryType::EntryConfChangeV2 => {
            let mut change = ConfChangeV2::default();
            change
                .merge_from_bytes(&e.data)
                .map_err(|_| proto::DecodeError::BadLength(e.data.len() as i32))?;
            let entry = if e.context.is_empty() {
                None
            } else {
                Some(Entry::decode(&e.context)?)
            };
            return Ok(Committed::Membership { entry, change });
        }
        EntryType::EntryConfChange => return Ok(Committed::Skip),
        EntryType::EntryNormal if e.data.is_empty() => return Ok(Committed::Skip),
        EntryType::EntryNormal => {}
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
            Committed::Skip
            | Committed::Digest { .. }
            | Committed::Membership { entry: None, .. } => sm.skip(zxid),
            Committed::Apply(entry)
            | Committed::Membership {
                entry: Some(entry), ..
            } => {
                sm.apply(zxid, &entry);
            }
        }
        n += 1;
    }
    Ok(n)
}
