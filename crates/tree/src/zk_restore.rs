//! Restoring a ZooKeeper snapshot (the AdminServer's `restore`, ZooKeeper
//! 3.9's snapshot-and-restore): the snapshot travels in one log entry
//! (`EntryKind::Restore`, packed with Snappy so a large tree fits a Raft
//! message) and every replica that applies it replaces its state with the
//! snapshot's, at that entry's zxid — so every replica restores the same
//! state, unlike ZooKeeper 3.9, which restores only the server asked.
//!
//! What is restored is what the snapshot holds: every znode with its
//! data, ACL and Stat as written, and its sessions with their timeouts.
//! A session also open here before keeps its password (its client can
//! reconnect and keep it); any other gets the password ZooKeeper derives
//! from its id, as after a takeover. Ephemerals of sessions the snapshot
//! does not list are deleted, as ZooKeeper does when it next starts.
//! zxids go on from the log: a snapshot from a cluster whose zxids were
//! higher keeps its Stat values, and later changes get this cluster's
//! (lower) zxids — as in ZooKeeper 3.9, whose restore keeps its own zxid
//! counter.

use std::collections::BTreeMap;

use crate::apply::{Session, StateMachine};
use crate::takeover::{delete_orphans, from_snapshot};

/// The largest snapshot a restore unpacks (a packed entry is at most the
/// Raft message size; this bounds what its bytes can claim to expand to).
pub const MAX_UNPACKED_BYTES: usize = 4 << 30;

/// Packs a ZooKeeper snapshot's bytes for a restore entry.
pub fn pack(snapshot: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(snapshot)
        .expect("snappy compresses any input below 4 GiB")
}

/// What `pack` packed; Err says why the bytes are not that.
pub fn unpack(packed: &[u8]) -> Result<Vec<u8>, String> {
    let len = snap::raw::decompress_len(packed).map_err(|e| format!("not packed: {e}"))?;
    // Snappy expands at most about 21 times (64 bytes from a 3-byte
    // copy): a length claimed beyond that is not Snappy's, and is not
    // allocated.
    if len > MAX_UNPACKED_BYTES || len > packed.len().saturating_mul(32) {
        return Err(format!("claims to unpack {} bytes to {len}", packed.len()));
    }
    snap::raw::Decoder::new()
        .decompress_vec(packed)
        .map_err(|e| format!("not packed: {e}"))
}

/// A ZooKeeper snapshot's bytes, checked: decodes, and makes a tree.
/// Returns what a restore of it holds: (znodes, sessions, the zxid the
/// snapshot says it is at).
pub fn check(snapshot: &[u8]) -> Result<(usize, usize, Option<i64>), String> {
    let snap = decode(snapshot)?;
    let (mut tree, sessions) = from_snapshot(&snap)?;
    delete_orphans(&mut tree, &sessions, 0);
    Ok((tree.node_count(), sessions.len(), at_zxid(&snap)))
}

fn decode(snapshot: &[u8]) -> Result<zkdata::ZkSnapshot, String> {
    zkdata::ZkSnapshot::decode(snapshot, 0).map_err(|(at, why)| format!("at byte {at}: {why}"))
}

/// 3.9's last processed zxid, else the digest's (3.6+), else unknown.
fn at_zxid(snap: &zkdata::ZkSnapshot) -> Option<i64> {
    snap.last_processed_zxid
        .or(snap.digest.map(|d| d.0).filter(|z| *z > 0))
}

impl StateMachine {
    /// Replaces the tree and the sessions with the packed snapshot's, at
    /// `zxid`. Err (the state unchanged) when the bytes are not a
    /// snapshot — the same on every replica, as the bytes are.
    pub(crate) fn restore_zookeeper(&mut self, packed: &[u8], zxid: i64) -> Result<(), String> {
        let snap = decode(&unpack(packed)?)?;
        let (mut tree, restored) = from_snapshot(&snap)?;
        let sessions: BTreeMap<i64, Session> = restored
            .into_iter()
            .map(|(id, s)| match self.sessions.get(&id) {
                Some(mine) => (
                    id,
                    Session {
                        timeout_ms: s.timeout_ms,
                        passwd: mine.passwd.clone(),
                    },
                ),
                None => (id, s),
            })
            .collect();
        delete_orphans(&mut tree, &sessions, zxid);
        // The membership is this ensemble's, not the snapshot's.
        if let Some(config) = self.tree.get(crate::datatree::CONFIG) {
            let data = config.data.unwrap_or_default().to_vec();
            tree.set_config(&data, config.stat.mzxid, config.stat.mtime);
        }
        tree.take_triggers();
        tree.recompute_digest();
        let next = sessions
            .keys()
            .next_back()
            .map_or(0, |id| id.wrapping_add(1))
            .max(self.next_session_id());
        self.replace(tree, sessions, next);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::TreeConfig;
    use crate::entry::{Entry, EntryKind};
    use proto::{CreateTtlRequest, OpCode, Request};

    fn create(sm: &mut StateMachine, zxid: i64, session: i64, path: &str, flags: i32) {
        let req = Request::Create(
            OpCode::Create2,
            CreateTtlRequest {
                path: path.into(),
                data: Some(b"v".to_vec()),
                acl: proto::Acl::open_unsafe(),
                flags,
                ttl: -1,
            },
        );
        let mut body = Vec::new();
        req.encode(&mut body);
        let applied = sm.apply(
            zxid,
            &Entry::for_test(
                session,
                EntryKind::Request {
                    op: req.op(),
                    body,
                    auth: vec![],
                },
            ),
        );
        assert!(
            matches!(applied.reply, Some(crate::Reply::Create { .. })),
            "{applied:?}"
        );
    }

    fn session(sm: &mut StateMachine, zxid: i64, passwd: u8) -> i64 {
        let a = sm.apply(
            zxid,
            &Entry::for_test(
                0,
                EntryKind::CreateSession {
                    timeout_ms: 5000,
                    passwd: vec![passwd; 16],
                },
            ),
        );
        match a.session {
            Some(crate::SessionEffect::Created { session_id, .. }) => session_id,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_restore_replaces_the_state_with_the_snapshots_and_keeps_known_passwords() {
        // The state a backup was taken of.
        let mut before = StateMachine::new(TreeConfig::default());
        let kept = session(&mut before, 1, 7);
        let gone = session(&mut before, 2, 8);
        create(&mut before, 3, kept, "/a", 0);
        create(&mut before, 4, kept, "/a/mine", 1);
        create(&mut before, 5, gone, "/a/theirs", 1);
        let mut snap = crate::handback::to_zookeeper(&before);
        // The backup lists only one of the sessions.
        snap.sessions.retain(|(id, _)| *id == kept);
        snap.last_processed_zxid = Some(5);
        let packed = pack(&snap.encode());
        assert_eq!(check(&unpack(&packed).unwrap()).unwrap(), (6, 1, Some(5)));

        // The state it is restored into: other nodes, the same session.
        let mut sm = StateMachine::new(TreeConfig::default());
        let s1 = session(&mut sm, 1, 7);
        assert_eq!(s1, kept, "the same first session id from the same clock");
        create(&mut sm, 2, s1, "/other", 0);
        for z in 3..=9 {
            sm.skip(z);
        }
        let a = sm.apply(
            10,
            &Entry::for_test(0, EntryKind::Restore { snapshot: packed }),
        );
        assert_eq!(a.reply, Some(crate::Reply::Empty));
        assert_eq!(sm.last_zxid(), 10);
        assert!(sm.tree.get("/other").is_none());
        let a = sm.tree.get("/a").unwrap();
        assert_eq!(a.stat.czxid, 3, "Stat values are the snapshot's");
        assert!(sm.tree.get("/a/mine").is_some());
        assert!(
            sm.tree.get("/a/theirs").is_none(),
            "the ephemeral of a session the snapshot does not list is gone"
        );
        assert_eq!(sm.sessions.len(), 1);
        assert_eq!(
            sm.sessions[&kept].passwd,
            vec![7; 16],
            "known password kept"
        );
        // The digest is the restored tree's.
        assert_eq!(sm.tree.digest(), sm.tree.digest_full());
        // New sessions do not collide with restored ones.
        let s = session(&mut sm, 11, 1);
        assert!(s > kept);
    }

    #[test]
    fn a_restore_of_bytes_that_are_no_snapshot_changes_nothing() {
        let mut sm = StateMachine::new(TreeConfig::default());
        let s = session(&mut sm, 1, 7);
        create(&mut sm, 2, s, "/x", 0);
        // The last claims 2^28 bytes from 5.
        for bad in [
            vec![1, 2, 3],
            pack(b"not a snapshot"),
            pack(&[]),
            vec![0x80, 0x80, 0x80, 0x80, 0x01],
        ] {
            let z = sm.last_zxid() + 1;
            let a = sm.apply(z, &Entry::for_test(0, EntryKind::Restore { snapshot: bad }));
            assert!(matches!(a.reply, Some(crate::Reply::Err(_))), "{a:?}");
            assert!(sm.tree.get("/x").is_some());
            assert_eq!(sm.sessions.len(), 1);
        }
    }
}
