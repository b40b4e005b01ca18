//! ZooKeeper's own data files: the `version-2` folders of a ZooKeeper
//! server's dataDir (snapshots) and dataLogDir (transaction logs), read as
//! ZooKeeper 3.5–3.9 write them, so that ferrokeeper can take a ZooKeeper
//! server's data over in place. Knows nothing of ferrokeeper's tree: it
//! yields ZooKeeper's records as they are on disk.
//!
//! - `stream`: opening a snapshot file, plain or compressed (`.gz`,
//!   `.snappy`), and the Adler32 seals both file kinds end with;
//! - `snapshot`: one `snapshot.<zxid>` file (sessions, ACL table, nodes
//!   with their persisted Stat, the optional digest);
//! - `txnlog`: one `log.<zxid>` file, record by record;
//! - `txn`: the transaction records (`zookeeper.jute`'s `txn` module);
//! - `passwd`: the session password ZooKeeper derives from a session id;
//! - `dir`: finding the files and choosing what ZooKeeper would load.

pub mod dir;
pub mod passwd;
pub mod snapshot;
pub mod stream;
pub mod txn;
pub mod txnlog;

pub use dir::{Found, Loaded, ZkDirs};
pub use passwd::session_password;
pub use snapshot::{ZkNode, ZkSnapshot};
pub use txn::{Txn, TxnEntry, TxnHeader};
pub use txnlog::{LogEnd, TxnLogFile};

use std::path::PathBuf;

/// What is wrong with a ZooKeeper file, and where.
#[derive(Debug, thiserror::Error)]
pub enum ZkError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: at byte {offset}: {reason}")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
}

impl ZkError {
    pub(crate) fn corrupt(path: &std::path::Path, offset: u64, reason: impl Into<String>) -> Self {
        ZkError::Corrupt {
            path: path.to_owned(),
            offset,
            reason: reason.into(),
        }
    }
}

/// The zxid `path`'s name carries (`<prefix>.<zxid>`), or an error naming
/// the file.
pub(crate) fn zxid_of(path: &std::path::Path, prefix: &str) -> Result<i64, ZkError> {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| zxid_from_name(n, prefix))
        .ok_or_else(|| ZkError::corrupt(path, 0, format!("not a {prefix}.<zxid> file name")))
}

/// A whole file, or an error naming it.
pub(crate) fn read_file(path: &std::path::Path) -> Result<Vec<u8>, ZkError> {
    std::fs::read(path).map_err(|source| ZkError::Io {
        path: path.to_owned(),
        source,
    })
}

/// The zxid a file name carries (`snapshot.1a2b`, `log.100000001`,
/// `snapshot.5.gz`): hexadecimal, as ZooKeeper's `Util.getZxidFromName`.
pub fn zxid_from_name(name: &str, prefix: &str) -> Option<i64> {
    let rest = name.strip_prefix(prefix)?.strip_prefix('.')?;
    let hex = rest.split('.').next()?;
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().map(|z| z as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zxids_come_from_file_names_as_zookeeper_reads_them() {
        assert_eq!(zxid_from_name("snapshot.1a2b", "snapshot"), Some(0x1a2b));
        assert_eq!(
            zxid_from_name("snapshot.500000003.gz", "snapshot"),
            Some(0x5_0000_0003)
        );
        assert_eq!(zxid_from_name("log.100000001", "log"), Some(0x1_0000_0001));
        assert_eq!(zxid_from_name("log.", "log"), None);
        assert_eq!(zxid_from_name("logx.1", "log"), None);
        assert_eq!(zxid_from_name("snapshot.zz", "snapshot"), None);
        assert_eq!(zxid_from_name("acceptedEpoch", "log"), None);
    }
}

#[cfg(test)]
mod arbitrary_bytes {
    use crate::snapshot::ZkSnapshot;
    use crate::txn::TxnEntry;
    use crate::txnlog::TxnLogFile;
    use proptest::prelude::*;

    proptest! {
        /// A file of any bytes is an error or a value, never a panic or
        /// an allocation beyond the input's size.
        #[test]
        fn any_bytes_decode_or_fail_cleanly(body in proptest::collection::vec(any::<u8>(), 0..512),
                                            header in 0usize..3) {
            let mut b = match header {
                0 => b"ZKSN\0\0\0\x02\xff\xff\xff\xff\xff\xff\xff\xff".to_vec(),
                1 => b"ZKLG\0\0\0\x02\0\0\0\0\0\0\0\0".to_vec(),
                _ => Vec::new(),
            };
            b.extend_from_slice(&body);
            let _ = ZkSnapshot::decode(&b, 1);
            let _ = TxnLogFile::decode(&b);
            let _ = TxnEntry::decode(&body);
        }
    }
}
