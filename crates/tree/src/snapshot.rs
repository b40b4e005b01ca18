//! The state machine as snapshot bytes: the tree, the session table and
//! the counters apply depends on. Framing, checksums and files belong to
//! the `storage` crate; this is only the body.
//!
//! Layout, version 1 (jute encoding from `proto`):
//! ```text
//! u8  version (1)
//! i64 last_zxid, i64 next_session_id
//! i32 session count, then per session: i64 id, i32 timeout_ms, buffer passwd
//! i32 node count, then per node, parents before children:
//!     ustring path, buffer data, vector<ACL> acl,
//!     i64 czxid, i64 mzxid, i64 ctime, i64 mtime, i32 version,
//!     i32 cversion (the internal count of creates), i32 aversion,
//!     i64 ephemeral_owner, i64 pzxid
//! ```

use std::collections::BTreeMap;

use proto::codec::{put_bytes, put_i32, put_i64, put_str, put_vec};
use proto::{Acl, DecodeError, Jute, Reader, Stat};

use crate::apply::{Session, StateMachine, TreeConfig};
use crate::datatree::{DataTree, Znode};

const VERSION: u8 = 1;

impl StateMachine {
    /// Encodes the whole state. Runs on the thread that owns the tree; the
    /// caller writes the bytes elsewhere.
    pub fn encode_snapshot(&self) -> Vec<u8> {
        let mut w =
            Vec::with_capacity(64 + self.tree.node_count() * 96 + self.tree.data_bytes() as usize);
        w.push(VERSION);
        put_i64(&mut w, self.last_zxid());
        put_i64(&mut w, self.next_session_id());
        put_i32(&mut w, self.sessions.len() as i32);
        for (id, s) in &self.sessions {
            put_i64(&mut w, *id);
            put_i32(&mut w, s.timeout_ms);
            put_bytes(&mut w, Some(&s.passwd));
        }
        put_i32(&mut w, self.tree.node_count() as i32);
        self.tree.visit_preorder(|path, n| {
            put_str(&mut w, path);
            put_bytes(&mut w, n.data.as_deref());
            put_vec(&mut w, &n.acl);
            let s = &n.stat;
            for v in [s.czxid, s.mzxid, s.ctime, s.mtime] {
                put_i64(&mut w, v);
            }
            for v in [s.version, s.cversion, s.aversion] {
                put_i32(&mut w, v);
            }
            put_i64(&mut w, s.ephemeral_owner);
            put_i64(&mut w, s.pzxid);
        });
        w
    }

    pub fn decode_snapshot(b: &[u8], config: TreeConfig) -> Result<StateMachine, DecodeError> {
        if b.first() != Some(&VERSION) {
            return Err(DecodeError::BadLength(
                b.first().copied().unwrap_or(0) as i32
            ));
        }
        let mut r = Reader::new(&b[1..]);
        let last_zxid = r.i64()?;
        let next_session_id = r.i64()?;
        let n = r.i32()?;
        let mut sessions = BTreeMap::new();
        for _ in 0..n.max(0) {
            let id = r.i64()?;
            let timeout_ms = r.i32()?;
            let passwd = r.bytes()?.unwrap_or_default().to_vec();
            sessions.insert(id, Session { timeout_ms, passwd });
        }
        let n = r.i32()?;
        let mut tree = DataTree::empty();
        for _ in 0..n.max(0) {
            let path = r.string()?;
            let data = Option::<Vec<u8>>::read(&mut r)?;
            let acl = Vec::<Acl>::read(&mut r)?;
            let stat = Stat {
                czxid: r.i64()?,
                mzxid: r.i64()?,
                ctime: r.i64()?,
                mtime: r.i64()?,
                version: r.i32()?,
                cversion: r.i32()?,
                aversion: r.i32()?,
                ephemeral_owner: r.i64()?,
                pzxid: r.i64()?,
                ..Stat::default()
            };
            tree.restore_node(path, Znode::new(data, acl, stat))
                .map_err(|_| DecodeError::BadLength(-1))?;
        }
        r.finish()?;
        Ok(StateMachine::from_parts(
            tree,
            sessions,
            next_session_id,
            last_zxid,
            config,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{Entry, EntryKind};
    use proto::{CreateTtlRequest, OpCode, Request};

    #[test]
    fn snapshot_round_trip_keeps_everything() {
        let cfg = TreeConfig {
            extended_types: true,
        };
        let mut sm = StateMachine::new(cfg);
        let mut zxid = 0;
        let entry = |kind| Entry {
            time_ms: 5,
            session_id: 0,
            xid: 0,
            origin: 1,
            conn: 1,
            kind,
        };
        zxid += 1;
        let a = sm.apply(
            zxid,
            &entry(EntryKind::CreateSession {
                timeout_ms: 9000,
                passwd: vec![3; 16],
            }),
        );
        let Some(crate::SessionEffect::Created { session_id, .. }) = a.session else {
            panic!()
        };
        for (path, flags, op) in [
            ("/a", 0, OpCode::Create),
            ("/a/b", 0, OpCode::Create),
            ("/a/e", 1, OpCode::Create),
            ("/c", 4, OpCode::CreateContainer),
            ("/s-", 2, OpCode::Create),
        ] {
            let req = Request::Create(
                op,
                CreateTtlRequest {
                    path: path.into(),
                    data: Some(b"d".to_vec()),
                    acl: crate::acl::open_acl_unsafe(),
                    flags,
                    ttl: -1,
                },
            );
            let mut body = Vec::new();
            req.encode(&mut body);
            zxid += 1;
            let mut e = entry(EntryKind::Request {
                op,
                body,
                auth: vec![],
            });
            e.session_id = session_id;
            sm.apply(zxid, &e);
        }
        let bytes = sm.encode_snapshot();
        let back = StateMachine::decode_snapshot(&bytes, cfg).unwrap();
        assert_eq!(back.tree.digest(), sm.tree.digest());
        assert_eq!(back.sessions, sm.sessions);
        assert_eq!(back.last_zxid(), sm.last_zxid());
        assert_eq!(back.tree.ephemerals(), sm.tree.ephemerals());
        assert_eq!(back.tree.containers().count(), 1);
        assert_eq!(back.tree.data_bytes(), sm.tree.data_bytes());
        assert_eq!(back.encode_snapshot(), bytes, "encoding is deterministic");
        // Truncated bytes are an error, never a panic.
        for cut in [0, 1, 9, bytes.len() / 2, bytes.len() - 1] {
            assert!(StateMachine::decode_snapshot(&bytes[..cut], cfg).is_err());
        }
    }
}
