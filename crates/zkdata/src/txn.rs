//! ZooKeeper's transaction records (`zookeeper.jute`, module
//! `org.apache.zookeeper.txn`) as `SerializeUtils.deserializeTxn` reads
//! them: a `TxnHeader`, the record its type names, then — since 3.6, when
//! the writer had digests on — a `TxnDigest`.

use proto::{Acl, DecodeError, OpCode, Reader};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnHeader {
    pub client_id: i64,
    pub cxid: i32,
    pub zxid: i64,
    pub time: i64,
    pub op: i32,
}

/// One transaction's effect, already decided by the leader that logged it
/// (sequential names resolved, versions and parent cversions computed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Txn {
    /// create and create2 (`CreateTxn`); an old `CreateTxnV0` has no
    /// parent cversion and reads as -1, as ZooKeeper reads it.
    Create {
        path: String,
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        ephemeral: bool,
        parent_cversion: i32,
    },
    CreateContainer {
        path: String,
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        parent_cversion: i32,
    },
    CreateTtl {
        path: String,
        data: Option<Vec<u8>>,
        acl: Vec<Acl>,
        parent_cversion: i32,
        ttl: i64,
    },
    /// delete and deleteContainer.
    Delete {
        path: String,
    },
    /// setData, and reconfig (which sets `/zookeeper/config`).
    SetData {
        path: String,
        data: Option<Vec<u8>>,
        version: i32,
    },
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    },
    Check {
        path: String,
        version: i32,
    },
    /// The sub-transactions of a multi, each with its own type; a failed
    /// multi holds an `Error` per op.
    Multi(Vec<(i32, Txn)>),
    CreateSession {
        timeout_ms: i32,
    },
    /// The ephemerals to delete (3.6+); empty when the record has none.
    CloseSession {
        paths: Vec<String>,
    },
    Error {
        err: i32,
    },
}

/// One record of a transaction log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnEntry {
    pub header: TxnHeader,
    pub txn: Txn,
    /// (digest version, tree digest after this transaction).
    pub digest: Option<(i32, i64)>,
}

fn buf(r: &mut Reader<'_>) -> Result<Option<Vec<u8>>, DecodeError> {
    Ok(r.bytes()?.map(<[u8]>::to_vec))
}

/// The body of a transaction of type `op`.
fn body(op_code: i32, r: &mut Reader<'_>) -> Result<Txn, DecodeError> {
    Ok(match OpCode::from_code(op_code) {
        Some(OpCode::Create | OpCode::Create2) => {
            let path = r.string()?;
            let data = buf(r)?;
            let acl = r.vec()?;
            let ephemeral = r.bool()?;
            // CreateTxnV0 (before 3.3) ends here.
            let parent_cversion = if r.remaining() >= 4 { r.i32()? } else { -1 };
            Txn::Create {
                path,
                data,
                acl,
                ephemeral,
                parent_cversion,
            }
        }
        Some(OpCode::CreateContainer) => Txn::CreateContainer {
            path: r.string()?,
            data: buf(r)?,
            acl: r.vec()?,
            parent_cversion: r.i32()?,
        },
        Some(OpCode::CreateTtl) => Txn::CreateTtl {
            path: r.string()?,
            data: buf(r)?,
            acl: r.vec()?,
            parent_cversion: r.i32()?,
            ttl: r.i64()?,
        },
        Some(OpCode::Delete | OpCode::DeleteContainer) => Txn::Delete { path: r.string()? },
        Some(OpCode::SetData | OpCode::Reconfig) => Txn::SetData {
            path: r.string()?,
            data: buf(r)?,
            version: r.i32()?,
        },
        Some(OpCode::SetAcl) => Txn::SetAcl {
            path: r.string()?,
            acl: r.vec()?,
            version: r.i32()?,
        },
        Some(OpCode::Check) => Txn::Check {
            path: r.string()?,
            version: r.i32()?,
        },
        Some(OpCode::Multi) => {
            let n = r.i32()?;
            if n < -1 {
                return Err(DecodeError::BadLength(n));
            }
            let mut subs = Vec::with_capacity((n.max(0) as usize).min(r.remaining()));
            for _ in 0..n.max(0) {
                let t = r.i32()?;
                let bytes = r.bytes()?.unwrap_or_default();
                let mut sub = Reader::new(bytes);
                let txn = body(t, &mut sub)?;
                sub.finish()?;
                subs.push((t, txn));
            }
            Txn::Multi(subs)
        }
        Some(OpCode::CreateSession) => Txn::CreateSession {
            timeout_ms: r.i32()?,
        },
        Some(OpCode::CloseSession) => Txn::CloseSession { paths: r.vec()? },
        Some(OpCode::Error) => Txn::Error { err: r.i32()? },
        _ => return Err(DecodeError::UnknownOpCode(op_code)),
    })
}

/// Size of a trailing `TxnDigest` (int version, long digest).
const DIGEST_LEN: usize = 12;

impl TxnEntry {
    /// Decodes one log record's bytes.
    pub fn decode(bytes: &[u8]) -> Result<TxnEntry, DecodeError> {
        let mut r = Reader::new(bytes);
        let header = TxnHeader {
            client_id: r.i64()?,
            cxid: r.i32()?,
            zxid: r.i64()?,
            time: r.i64()?,
            op: r.i32()?,
        };
        let txn = if header.op == OpCode::CloseSession.code() {
            // Before 3.6 (or with closeSessionTxn.enabled=false) a
            // closeSession has no body; then only a digest can follow.
            if r.remaining() == 0 || r.remaining() == DIGEST_LEN {
                Txn::CloseSession { paths: Vec::new() }
            } else {
                body(header.op, &mut r)?
            }
        } else {
            body(header.op, &mut r)?
        };
        let digest = match r.remaining() {
            0 => None,
            DIGEST_LEN => Some((r.i32()?, r.i64()?)),
            n => return Err(DecodeError::TrailingBytes(n)),
        };
        Ok(TxnEntry {
            header,
            txn,
            digest,
        })
    }
}

impl Txn {
    /// The path a single-node transaction acts on.
    pub fn path(&self) -> Option<&str> {
        match self {
            Txn::Create { path, .. }
            | Txn::CreateContainer { path, .. }
            | Txn::CreateTtl { path, .. }
            | Txn::Delete { path }
            | Txn::SetData { path, .. }
            | Txn::SetAcl { path, .. }
            | Txn::Check { path, .. } => Some(path),
            _ => None,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proto::codec::{put_bool, put_bytes, put_i32, put_i64, put_str, put_vec};

    pub(crate) fn header(w: &mut Vec<u8>, zxid: i64, op_code: i32) {
        put_i64(w, 0x1234);
        put_i32(w, 7);
        put_i64(w, zxid);
        put_i64(w, 1_700_000_000_000);
        put_i32(w, op_code);
    }

    #[test]
    fn a_create_with_its_digest_decodes() {
        let mut w = Vec::new();
        header(&mut w, 5, OpCode::Create2.code());
        put_str(&mut w, "/a");
        put_bytes(&mut w, Some(b"x"));
        put_vec(&mut w, &Acl::open_unsafe());
        put_bool(&mut w, true);
        put_i32(&mut w, 3);
        put_i32(&mut w, 2);
        put_i64(&mut w, 99);
        let e = TxnEntry::decode(&w).unwrap();
        assert_eq!(e.header.zxid, 5);
        assert_eq!(e.digest, Some((2, 99)));
        assert_eq!(
            e.txn,
            Txn::Create {
                path: "/a".into(),
                data: Some(b"x".to_vec()),
                acl: Acl::open_unsafe(),
                ephemeral: true,
                parent_cversion: 3
            }
        );
    }

    #[test]
    fn a_close_session_with_or_without_its_paths_decodes() {
        for (paths, digest) in [
            (None, false),
            (None, true),
            (Some(vec!["/e".to_string()]), true),
        ] {
            let mut w = Vec::new();
            header(&mut w, 9, OpCode::CloseSession.code());
            if let Some(p) = &paths {
                put_vec(&mut w, p);
            }
            if digest {
                put_i32(&mut w, 2);
                put_i64(&mut w, 7);
            }
            let e = TxnEntry::decode(&w).unwrap();
            assert_eq!(
                e.txn,
                Txn::CloseSession {
                    paths: paths.unwrap_or_default()
                }
            );
            assert_eq!(e.digest.is_some(), digest);
        }
    }

    #[test]
    fn a_failed_multi_holds_its_errors() {
        let mut sub = Vec::new();
        put_i32(&mut sub, -101);
        let mut w = Vec::new();
        header(&mut w, 11, OpCode::Multi.code());
        put_i32(&mut w, 2);
        for _ in 0..2 {
            put_i32(&mut w, OpCode::Error.code());
            put_bytes(&mut w, Some(&sub));
        }
        let e = TxnEntry::decode(&w).unwrap();
        assert_eq!(
            e.txn,
            Txn::Multi(vec![(OpCode::Error.code(), Txn::Error { err: -101 }); 2])
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut w = Vec::new();
        header(&mut w, 1, 77);
        assert!(TxnEntry::decode(&w).is_err());
        assert!(TxnEntry::decode(&w[..10]).is_err());
        let mut w = Vec::new();
        header(&mut w, 1, OpCode::Multi.code());
        put_i32(&mut w, i32::MAX);
        assert!(TxnEntry::decode(&w).is_err());
    }
}
