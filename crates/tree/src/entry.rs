//! The log entry: what is replicated. One entry is one change request;
//! every replica applies it with `StateMachine::apply`.
//!
//! Byte layout (all integers big-endian, jute encoding from `proto`):
//! ```text
//! u8   format version (1)
//! u8   kind tag: 1 request, 2 createSession, 3 closeSession, 4 reap,
//!                5 digest, 6 restore, 7 reconfig, 8 refused
//! i64  time_ms      proposer's clock; becomes ctime/mtime
//! i64  session_id   0 for createSession and reap
//! i32  xid          the client's xid (cxid), 0 when none
//! i64  origin       the proposing server process: server id << 48 | a
//!                   per-process incarnation (routes the reply; a restarted
//!                   server never mistakes an old entry for its own)
//! i64  conn         that process's connection id waiting for the reply
//! then by kind:
//!   request:       i32 op, buffer body, vector<Id> auth
//!   createSession: i32 timeout_ms, buffer passwd
//!   closeSession:  boolean expired
//!   reap:          vector<ustring> paths
//!   digest:        i64 index, i64 digest (the proposer's tree digest
//!                  after applying that index; changes nothing)
//!   restore:       buffer snapshot (a ZooKeeper snapshot, packed by
//!                  `zk_restore::pack`)
//!   reconfig:      i64 base (the membership version it was made from),
//!                  ustring servers (the new `server.N=` lines),
//!                  vector<i64> base voters, vector<i64> base learners
//!                  (the leader's Raft membership it was made from); in
//!                  the context of the Raft membership change it goes
//!                  with, or alone when the voters and learners stay
//!   refused:       i32 error (a client's request the leader refused
//!                  before it reached the log: its answer)
//! ```
//! The Raft layer checksums and frames entries; this format does not.

use proto::codec::{put_bool, put_bytes, put_i32, put_i64, put_vec};
use proto::{DecodeError, Id, Jute, OpCode, Reader};

const FORMAT_VERSION: u8 = 1;

/// The top byte of a local session's id (`localSessionsEnabled`): a
/// session one server made without the log. The tree takes writes from
/// such a session without listing it; a CreateSession entry carrying such
/// an id makes that very session global (an upgrade).
pub const LOCAL_SESSION_TAG: i64 = 0x7e << 56;

pub fn is_local_session(id: i64) -> bool {
    id >> 56 == LOCAL_SESSION_TAG >> 56
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A client's write request, with the identities its ACL checks use.
    Request {
        op: OpCode,
        body: Vec<u8>,
        auth: Vec<Id>,
    },
    CreateSession {
        timeout_ms: i32,
        passwd: Vec<u8>,
    },
    /// closeSession from the client (`expired == false`) or expiry.
    CloseSession {
        expired: bool,
    },
    /// Remove these containers / expired TTL nodes if they still qualify.
    Reap {
        paths: Vec<String>,
    },
    /// The proposer's tree digest after it applied `index`, for every
    /// replica to compare with its own (changes nothing in the tree).
    Digest {
        index: u64,
        digest: u64,
    },
    /// Replace the state with this ZooKeeper snapshot (`zk_restore`).
    Restore {
        snapshot: Vec<u8>,
    },
    /// A reconfig the leader accepted: the membership becomes `servers`
    /// (`server.N=` lines) at this entry's zxid, if it is still at
    /// version `base`. `base_voters`/`base_learners`: the Raft membership
    /// the leader made the change from (`node::reconfig`).
    Reconfig {
        base: u64,
        servers: String,
        base_voters: Vec<u64>,
        base_learners: Vec<u64>,
    },
    /// A client's request the leader refused before it reached the log
    /// (a reconfig it cannot make): its error, answered when applied.
    Refused {
        error: i32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub time_ms: i64,
    pub session_id: i64,
    pub xid: i32,
    /// Server id << 48 | incarnation of the process that proposed it.
    pub origin: u64,
    pub conn: u64,
    pub kind: EntryKind,
}

/// The fields every entry starts with.
#[derive(Debug, Clone, Copy)]
pub struct Header {
    pub time_ms: i64,
    pub session_id: i64,
    pub xid: i32,
    pub origin: u64,
    pub conn: u64,
}

fn put_header(w: &mut Vec<u8>, tag: u8, h: Header) {
    w.push(FORMAT_VERSION);
    w.push(tag);
    put_i64(w, h.time_ms);
    put_i64(w, h.session_id);
    put_i32(w, h.xid);
    put_i64(w, h.origin as i64);
    put_i64(w, h.conn as i64);
}

/// A client write's entry, encoded straight from the request's bytes and
/// the connection's identities: the same bytes as `Entry::encode` of an
/// `EntryKind::Request`, without building one (no copy of the body, no
/// clone of the identities) — the write path's hot spot.
pub fn encode_request(h: Header, op: OpCode, body: &[u8], auth: &[Id]) -> Vec<u8> {
    let mut w = Vec::with_capacity(48 + body.len() + 16 * auth.len());
    put_header(&mut w, 1, h);
    put_i32(&mut w, op.code());
    put_bytes(&mut w, Some(body));
    put_vec(&mut w, auth);
    w
}

/// Where a request entry's op code is: after the format and kind bytes
/// and the header's five fields.
const REQUEST_OP_AT: usize = 2 + 8 + 8 + 4 + 8 + 8;

/// Whether encoded entry bytes are a client request of `op`, read without
/// decoding the entry (the leader looks at every proposal for reconfigs).
pub fn is_request(data: &[u8], op: OpCode) -> bool {
    data.len() >= REQUEST_OP_AT + 4
        && data[0] == FORMAT_VERSION
        && data[1] == 1
        && data[REQUEST_OP_AT..REQUEST_OP_AT + 4] == op.code().to_be_bytes()
}

impl Entry {
    /// An entry of `session_id` at time 5 from connection 1 of server 1,
    /// for tests that apply entries by hand.
    #[cfg(test)]
    pub(crate) fn for_test(session_id: i64, kind: EntryKind) -> Entry {
        Entry {
            time_ms: 5,
            session_id,
            xid: 0,
            origin: 1,
            conn: 1,
            kind,
        }
    }

    pub fn header(&self) -> Header {
        Header {
            time_ms: self.time_ms,
            session_id: self.session_id,
            xid: self.xid,
            origin: self.origin,
            conn: self.conn,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        if let EntryKind::Request { op, body, auth } = &self.kind {
            return encode_request(self.header(), *op, body, auth);
        }
        let mut w = Vec::with_capacity(64);
        let tag = match self.kind {
            EntryKind::Request { .. } => 1,
            EntryKind::CreateSession { .. } => 2,
            EntryKind::CloseSession { .. } => 3,
            EntryKind::Reap { .. } => 4,
            EntryKind::Digest { .. } => 5,
            EntryKind::Restore { .. } => 6,
            EntryKind::Reconfig { .. } => 7,
            EntryKind::Refused { .. } => 8,
        };
        put_header(&mut w, tag, self.header());
        match &self.kind {
            EntryKind::Request { .. } => unreachable!("encoded above"),
            EntryKind::CreateSession { timeout_ms, passwd } => {
                put_i32(&mut w, *timeout_ms);
                put_bytes(&mut w, Some(passwd));
            }
            EntryKind::CloseSession { expired } => put_bool(&mut w, *expired),
            EntryKind::Reap { paths } => put_vec(&mut w, paths),
            EntryKind::Digest { index, digest } => {
                put_i64(&mut w, *index as i64);
                put_i64(&mut w, *digest as i64);
            }
            EntryKind::Restore { snapshot } => put_bytes(&mut w, Some(snapshot)),
            EntryKind::Reconfig {
                base,
                servers,
                base_voters,
                base_learners,
            } => {
                put_i64(&mut w, *base as i64);
                proto::codec::put_str(&mut w, servers);
                for ids in [base_voters, base_learners] {
                    let ids: Vec<i64> = ids.iter().map(|i| *i as i64).collect();
                    put_vec(&mut w, &ids);
                }
            }
            EntryKind::Refused { error } => put_i32(&mut w, *error),
        }
        w
    }

    pub fn decode(b: &[u8]) -> Result<Entry, DecodeError> {
        if b.len() < 2 || b[0] != FORMAT_VERSION {
            return Err(DecodeError::BadLength(
                b.first().copied().unwrap_or(0) as i32
            ));
        }
        let tag = b[1];
        let mut r = Reader::new(&b[2..]);
        let time_ms = r.i64()?;
        let session_id = r.i64()?;
        let xid = r.i32()?;
        let origin = r.i64()? as u64;
        let conn = r.i64()? as u64;
        let kind = match tag {
            1 => {
                let code = r.i32()?;
                let op = OpCode::from_code(code).ok_or(DecodeError::UnknownOpCode(code))?;
                let body = r.bytes()?.unwrap_or_default().to_vec();
                let auth = Vec::<Id>::read(&mut r)?;
                EntryKind::Request { op, body, auth }
            }
            2 => EntryKind::CreateSession {
                timeout_ms: r.i32()?,
                passwd: r.bytes()?.unwrap_or_default().to_vec(),
            },
            3 => EntryKind::CloseSession { expired: r.bool()? },
            4 => EntryKind::Reap { paths: r.vec()? },
            5 => EntryKind::Digest {
                index: r.i64()? as u64,
                digest: r.i64()? as u64,
            },
            6 => EntryKind::Restore {
                snapshot: r.bytes()?.unwrap_or_default().to_vec(),
            },
            7 => {
                let base = r.i64()? as u64;
                let servers = r.string()?;
                let mut ids = || -> Result<Vec<u64>, DecodeError> {
                    Ok(Vec::<i64>::read(&mut r)?
                        .into_iter()
                        .map(|i| i as u64)
                        .collect())
                };
                let base_voters = ids()?;
                let base_learners = ids()?;
                EntryKind::Reconfig {
                    base,
                    servers,
                    base_voters,
                    base_learners,
                }
            }
            8 => EntryKind::Refused { error: r.i32()? },
            t => return Err(DecodeError::UnknownOpCode(t as i32)),
        };
        r.finish()?;
        Ok(Entry {
            time_ms,
            session_id,
            xid,
            origin,
            conn,
            kind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        for kind in [
            EntryKind::Request {
                op: OpCode::Create,
                body: vec![1, 2, 3],
                auth: vec![Id {
                    scheme: "ip".into(),
                    id: "127.0.0.1".into(),
                }],
            },
            EntryKind::CreateSession {
                timeout_ms: 4000,
                passwd: vec![9; 16],
            },
            EntryKind::CloseSession { expired: true },
            EntryKind::Reap {
                paths: vec!["/c".into()],
            },
            EntryKind::Digest {
                index: 1000,
                digest: u64::MAX - 7,
            },
            EntryKind::Restore {
                snapshot: vec![7; 300],
            },
            EntryKind::Reconfig {
                base: 0x1_0000_0000,
                servers: "server.1=h:1:2:participant".into(),
                base_voters: vec![1, 2, 3],
                base_learners: vec![4],
            },
            EntryKind::Refused { error: -13 },
        ] {
            let e = Entry {
                time_ms: 1,
                session_id: 2,
                xid: 3,
                origin: 4,
                conn: 5,
                kind,
            };
            assert_eq!(Entry::decode(&e.encode()).unwrap(), e);
            let is_create =
                matches!(&e.kind, EntryKind::Request { op, .. } if *op == OpCode::Create);
            assert_eq!(is_request(&e.encode(), OpCode::Create), is_create);
        }
    }
}
