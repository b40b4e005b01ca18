//! One ZooKeeper transaction log file (`FileTxnLog`): a `FileHeader`
//! ("ZKLG", version 2), then records — the Adler32 of the transaction
//! bytes (a long), the bytes (an int length, then the bytes: `TxnHeader`,
//! record, optional `TxnDigest`), and the end-of-record byte 'B'. The
//! file is preallocated with zeros: a record of length 0 ends it.
//!
//! As ZooKeeper reads it: a record cut short at the end of the file (a
//! crash while it was written) ends the file; a checksum that does not
//! match is an error, naming the file and offset.

use crate::stream::adler32;
use crate::txn::TxnEntry;
use crate::{read_file, zxid_of, ZkError};
use std::path::{Path, PathBuf};

pub const LOG_MAGIC: i32 = 0x5a4b_4c47; // "ZKLG"
const EOR: u8 = b'B';

/// How a log file ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogEnd {
    /// At the preallocated zeros, or exactly at the end of the file.
    Clean,
    /// A record cut short at `offset`: ZooKeeper logs "Last transaction
    /// was partial" and treats it as the end.
    Torn { offset: u64 },
}

#[derive(Debug)]
pub struct TxnLogFile {
    pub path: PathBuf,
    /// From the file name: the zxid of its first transaction.
    pub first_zxid: i64,
    pub entries: Vec<TxnEntry>,
    pub end: LogEnd,
}

impl TxnLogFile {
    pub fn read(path: &Path) -> Result<TxnLogFile, ZkError> {
        let first_zxid = zxid_of(path, "log")?;
        let bytes = read_file(path)?;
        let (entries, end) =
            Self::decode(&bytes).map_err(|(at, e)| ZkError::corrupt(path, at as u64, e))?;
        Ok(TxnLogFile {
            path: path.to_owned(),
            first_zxid,
            entries,
            end,
        })
    }

    /// Decodes a whole log file's bytes; an error says at which byte.
    pub fn decode(bytes: &[u8]) -> Result<(Vec<TxnEntry>, LogEnd), (usize, String)> {
        let be32 = |at: usize| {
            i32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let be64 = |at: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&bytes[at..at + 8]);
            i64::from_be_bytes(a)
        };
        if bytes.len() < 16 {
            return Err((0, "shorter than a log file header".into()));
        }
        let magic = be32(0);
        if magic != LOG_MAGIC {
            return Err((
                0,
                format!("not a ZooKeeper transaction log (magic 0x{magic:08x}, want ZKLG)"),
            ));
        }
        let version = be32(4);
        if version != 2 {
            return Err((
                4,
                format!("log format version {version}; ZooKeeper 3.x writes 2"),
            ));
        }
        let mut at = 16;
        let mut entries = Vec::new();
        loop {
            // crc (8) + length (4)
            if bytes.len() - at < 12 {
                let rest = &bytes[at..];
                return Ok((
                    entries,
                    if rest.iter().all(|&b| b == 0) {
                        LogEnd::Clean
                    } else {
                        LogEnd::Torn { offset: at as u64 }
                    },
                ));
            }
            let crc = be64(at);
            let len = be32(at + 8);
            if len == 0 {
                // The preallocated zeros after the last record.
                return Ok((entries, LogEnd::Clean));
            }
            if len < 0 {
                return Err((at + 8, format!("negative record length {len}")));
            }
            let start = at + 12;
            let len = len as usize;
            if bytes.len() - start < len + 1 {
                return Ok((entries, LogEnd::Torn { offset: at as u64 }));
            }
            let txn = &bytes[start..start + len];
            if bytes[start + len] != EOR {
                // ZooKeeper: "Last transaction was partial."
                return Ok((entries, LogEnd::Torn { offset: at as u64 }));
            }
            let want = adler32(txn);
            if crc != want {
                return Err((
                    at,
                    format!(
                        "record checksum mismatch (file says 0x{crc:x}, bytes give 0x{want:x})"
                    ),
                ));
            }
            let entry = TxnEntry::decode(txn).map_err(|e| (start, format!("transaction: {e}")))?;
            entries.push(entry);
            at = start + len + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::txn::{tests::header, Txn};
    use proto::codec::{put_bytes, put_i32, put_i64, put_str};
    use proto::OpCode;

    fn record(w: &mut Vec<u8>, zxid: i64) {
        let mut t = Vec::new();
        header(&mut t, zxid, OpCode::SetData.code());
        put_str(&mut t, "/a");
        put_bytes(&mut t, Some(b"v"));
        put_i32(&mut t, zxid as i32);
        put_i64(w, adler32(&t));
        put_bytes(w, Some(&t));
        w.push(EOR);
    }

    fn file(n: i64) -> Vec<u8> {
        let mut w = Vec::new();
        put_i32(&mut w, LOG_MAGIC);
        put_i32(&mut w, 2);
        put_i64(&mut w, 0);
        for z in 1..=n {
            record(&mut w, z);
        }
        w
    }

    #[test]
    fn records_end_at_the_preallocated_zeros() {
        let mut f = file(3);
        f.resize(f.len() + 4096, 0);
        let (entries, end) = TxnLogFile::decode(&f).unwrap();
        assert_eq!(end, LogEnd::Clean);
        let zxids: Vec<i64> = entries.iter().map(|e| e.header.zxid).collect();
        assert_eq!(zxids, [1, 2, 3]);
        assert!(matches!(entries[2].txn, Txn::SetData { version: 3, .. }));
    }

    #[test]
    fn a_torn_last_record_ends_the_file_and_a_bad_checksum_is_an_error() {
        let f = file(2);
        let one = file(1).len();
        for cut in one + 1..f.len() {
            let (entries, end) = TxnLogFile::decode(&f[..cut]).unwrap();
            assert_eq!(entries.len(), 1, "cut at {cut}");
            // A cut inside leading zero bytes looks like the preallocation.
            let want = if f[one..cut].iter().all(|&b| b == 0) {
                LogEnd::Clean
            } else {
                LogEnd::Torn { offset: one as u64 }
            };
            assert_eq!(end, want, "cut at {cut}");
        }
        let mut bad = f.clone();
        bad[one + 20] ^= 1; // inside the second record's transaction bytes
        let (at, why) = TxnLogFile::decode(&bad).unwrap_err();
        assert_eq!(at, one);
        assert!(why.contains("checksum"), "{why}");
        assert!(TxnLogFile::decode(b"ZKSN\0\0\0\x02\0\0\0\0\0\0\0\0").is_err());
    }
}
