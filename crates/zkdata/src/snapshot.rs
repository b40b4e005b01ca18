//! One ZooKeeper snapshot file (`FileSnap`): a `FileHeader` ("ZKSN",
//! version 2), the sessions (id, timeout), the ACL table (`long` ids for
//! ACL lists), every node in pre-order (path, data, ACL id,
//! `StatPersisted`), the path "/" as end mark, and an Adler32 seal; then,
//! from 3.6, the digest of the tree at the snapshot's zxid with a second
//! seal, and from 3.9 the last processed zxid with a third.
//!
//! A snapshot is fuzzy: ZooKeeper writes it while it applies
//! transactions, so it holds some of those after the zxid in its name,
//! which the log replay after it applies again.

use crate::stream::{adler32, read_snapshot_bytes};
use crate::{zxid_of, ZkError};
use proto::codec::{put_bytes, put_i32, put_i64, put_str, put_vec};
use proto::{Acl, DecodeError, Jute, Reader, StatPersisted};
use std::path::Path;

pub const SNAP_MAGIC: i32 = 0x5a4b_534e; // "ZKSN"
pub const VERSION: i32 = 2;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkNode {
    /// "" for the root, as ZooKeeper writes it.
    pub path: String,
    pub data: Option<Vec<u8>>,
    /// An id in `ZkSnapshot::acls`; -1 for OPEN_ACL_UNSAFE.
    pub acl: i64,
    /// As persisted: `ephemeral_owner` is a session id (ephemeral),
    /// 0x8000000000000000 (container), 0xFF00000000000000 | ttl (TTL
    /// node) or 0.
    pub stat: StatPersisted,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkSnapshot {
    /// From the file name: every transaction up to it is in the snapshot.
    pub zxid: i64,
    pub sessions: Vec<(i64, i32)>,
    pub acls: Vec<(i64, Vec<Acl>)>,
    pub nodes: Vec<ZkNode>,
    /// (zxid, digest version, digest) when the writer had digests on
    /// (zxid 0: ZooKeeper's "digest value is empty", never compared).
    pub digest: Option<(i64, i32, i64)>,
    /// 3.9's `lastProcessedZxid` record (`serializeLastProcessedZxidEnable`):
    /// what a snapshot streamed by the AdminServer and restored from a
    /// body without a file name is at.
    pub last_processed_zxid: Option<i64>,
}

impl ZkSnapshot {
    /// Reads and checks one snapshot file: header, every record, and each
    /// seal against the Adler32 of the bytes before it.
    pub fn read(path: &Path) -> Result<ZkSnapshot, ZkError> {
        let zxid = zxid_of(path, "snapshot")?;
        let bytes = read_snapshot_bytes(path)?;
        Self::decode(&bytes, zxid).map_err(|(at, e)| ZkError::corrupt(path, at as u64, e))
    }

    /// Decodes the uncompressed bytes of a snapshot whose name says
    /// `zxid`; an error says at which byte.
    pub fn decode(bytes: &[u8], zxid: i64) -> Result<ZkSnapshot, (usize, String)> {
        let mut r = Reader::new(bytes);
        let at = |r: &Reader<'_>| bytes.len() - r.remaining();
        let err = |r: &Reader<'_>, e: DecodeError| (bytes.len() - r.remaining(), e.to_string());
        let magic = r.i32().map_err(|e| err(&r, e))?;
        if magic != SNAP_MAGIC {
            return Err((
                0,
                format!("not a ZooKeeper snapshot (magic 0x{magic:08x}, want ZKSN)"),
            ));
        }
        let version = r.i32().map_err(|e| err(&r, e))?;
        if version != VERSION {
            return Err((
                4,
                format!("snapshot format version {version}; ZooKeeper 3.x writes 2"),
            ));
        }
        r.i64().map_err(|e| err(&r, e))?; // dbid
        let body = (|| -> Result<_, DecodeError> {
            let n = r.i32()?;
            let mut sessions = Vec::with_capacity((n.max(0) as usize).min(r.remaining()));
            for _ in 0..n.max(0) {
                sessions.push((r.i64()?, r.i32()?));
            }
            let n = r.i32()?;
            let mut acls = Vec::with_capacity((n.max(0) as usize).min(r.remaining()));
            for _ in 0..n.max(0) {
                acls.push((r.i64()?, r.vec::<Acl>()?));
            }
            let mut nodes = Vec::new();
            loop {
                let path = r.string()?;
                if path == "/" {
                    break;
                }
                let data = r.bytes()?.map(<[u8]>::to_vec);
                let acl = r.i64()?;
                let stat = StatPersisted::read(&mut r)?;
                nodes.push(ZkNode {
                    path,
                    data,
                    acl,
                    stat,
                });
            }
            Ok((sessions, acls, nodes))
        })();
        let (sessions, acls, nodes) = body.map_err(|e| err(&r, e))?;
        seal(bytes, &mut r)?;
        let mut digest = None;
        if r.remaining() > 0 {
            let d = (|| -> Result<_, DecodeError> {
                let z = r.i64()?;
                let v = r.i32()?;
                // Digest version 1 kept the digest as a hex string.
                let d = if v < 2 {
                    i64::from_str_radix(&r.string()?, 16).unwrap_or(0)
                } else {
                    r.i64()?
                };
                Ok((z, v, d))
            })()
            .map_err(|e| err(&r, e))?;
            seal(bytes, &mut r)?;
            digest = Some(d);
        }
        let mut last_processed_zxid = None;
        if r.remaining() > 0 {
            // 3.9: the last processed zxid, sealed once more.
            last_processed_zxid = Some(r.i64().map_err(|e| err(&r, e))?);
            seal(bytes, &mut r)?;
        }
        if r.remaining() > 0 {
            return Err((
                at(&r),
                format!("{} unexpected bytes after the snapshot", r.remaining()),
            ));
        }
        Ok(ZkSnapshot {
            zxid,
            sessions,
            acls,
            nodes,
            digest,
            last_processed_zxid,
        })
    }
}

/// `SnapStream.sealStream`: the Adler32 of every byte written so far,
/// then "/".
fn seal_here(w: &mut Vec<u8>) {
    let sum = adler32(w);
    put_i64(w, sum);
    put_str(w, "/");
}

impl ZkSnapshot {
    /// The file's bytes as ZooKeeper's `FileSnap.serialize` lays them
    /// out, uncompressed. The digest record is written when `digest` is
    /// set (ZooKeeper reads a snapshot without one, as from before 3.6);
    /// with `last_processed_zxid` set, the digest record (an empty one if
    /// `digest` is not set: ZooKeeper 3.9 reads the records in that order)
    /// and then 3.9's last processed zxid, each sealed.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Vec::with_capacity(64 + self.nodes.len() * 100);
        put_i32(&mut w, SNAP_MAGIC);
        put_i32(&mut w, VERSION);
        put_i64(&mut w, -1); // dbid
        put_i32(&mut w, self.sessions.len() as i32);
        for (id, timeout) in &self.sessions {
            put_i64(&mut w, *id);
            put_i32(&mut w, *timeout);
        }
        put_i32(&mut w, self.acls.len() as i32);
        for (id, list) in &self.acls {
            put_i64(&mut w, *id);
            put_vec(&mut w, list);
        }
        for n in &self.nodes {
            put_str(&mut w, &n.path);
            put_bytes(&mut w, n.data.as_deref());
            put_i64(&mut w, n.acl);
            n.stat.write(&mut w);
        }
        put_str(&mut w, "/"); // the node list's end mark
        seal_here(&mut w);
        let digest = match (self.digest, self.last_processed_zxid) {
            (Some(d), _) => Some(d),
            (None, Some(_)) => Some((0, 2, 0)),
            (None, None) => None,
        };
        if let Some((zxid, version, value)) = digest {
            put_i64(&mut w, zxid);
            put_i32(&mut w, version);
            if version < 2 {
                put_str(&mut w, &format!("{value:x}"));
            } else {
                put_i64(&mut w, value);
            }
            seal_here(&mut w);
        }
        if let Some(z) = self.last_processed_zxid {
            put_i64(&mut w, z);
            seal_here(&mut w);
        }
        w
    }

    /// Writes `snapshot.<zxid in hex>` into `snap_dir` (ZooKeeper's
    /// `version-2`), durably: a temporary file, fsync, rename, fsync of
    /// the folder. Refuses to replace a file of that name.
    pub fn write(&self, snap_dir: &Path) -> Result<std::path::PathBuf, ZkError> {
        use std::io::Write;
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| ZkError::Io { path, source }
        };
        std::fs::create_dir_all(snap_dir).map_err(io(snap_dir))?;
        let path = snap_dir.join(format!("snapshot.{:x}", self.zxid));
        if path.exists() {
            return Err(ZkError::corrupt(&path, 0, "already exists; not replaced"));
        }
        let tmp = snap_dir.join(format!(".snapshot.{:x}.tmp", self.zxid));
        let mut f = std::fs::File::create(&tmp).map_err(io(&tmp))?;
        f.write_all(&self.encode()).map_err(io(&tmp))?;
        f.sync_all().map_err(io(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io(&path))?;
        std::fs::File::open(snap_dir)
            .and_then(|d| d.sync_all())
            .map_err(io(snap_dir))?;
        Ok(path)
    }
}

/// `SnapStream.checkSealIntegrity`: the Adler32 of everything read so far,
/// then the path "/".
fn seal(bytes: &[u8], r: &mut Reader<'_>) -> Result<(), (usize, String)> {
    let upto = bytes.len() - r.remaining();
    let want = adler32(&bytes[..upto]);
    let got = r.i64().map_err(|e| (upto, e.to_string()))?;
    let slash = r.string().map_err(|e| (upto + 8, e.to_string()))?;
    if got != want || slash != "/" {
        return Err((
            upto,
            format!("checksum mismatch (file says 0x{got:x}, bytes give 0x{want:x})"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A snapshot laid out as FileSnap.serialize writes one.
    pub(crate) fn build(digest: bool) -> Vec<u8> {
        let mut w = Vec::new();
        put_i32(&mut w, SNAP_MAGIC);
        put_i32(&mut w, VERSION);
        put_i64(&mut w, -1);
        put_i32(&mut w, 1);
        put_i64(&mut w, 0x100);
        put_i32(&mut w, 30_000);
        put_i32(&mut w, 1);
        put_i64(&mut w, 1);
        put_vec(&mut w, &Acl::open_unsafe());
        for (path, data) in [
            ("", None),
            ("/a", Some(&b"x"[..])),
            ("/a/b", Some(&b""[..])),
        ] {
            put_str(&mut w, path);
            put_bytes(&mut w, data);
            put_i64(&mut w, if path.is_empty() { -1 } else { 1 });
            for v in [2i64, 3, 4, 5] {
                put_i64(&mut w, v);
            }
            for v in [0i32, 1, 0] {
                put_i32(&mut w, v);
            }
            put_i64(&mut w, if path == "/a/b" { 0x100 } else { 0 });
            put_i64(&mut w, 6);
        }
        put_str(&mut w, "/");
        let sum = adler32(&w);
        put_i64(&mut w, sum);
        put_str(&mut w, "/");
        if digest {
            put_i64(&mut w, 9);
            put_i32(&mut w, 2);
            put_i64(&mut w, 0x1234);
            let sum = adler32(&w);
            put_i64(&mut w, sum);
            put_str(&mut w, "/");
        }
        w
    }

    #[test]
    fn a_snapshot_decodes_with_or_without_its_digest() {
        for digest in [false, true] {
            let s = ZkSnapshot::decode(&build(digest), 9).unwrap();
            assert_eq!(s.sessions, vec![(0x100, 30_000)]);
            assert_eq!(s.acls.len(), 1);
            let paths: Vec<&str> = s.nodes.iter().map(|n| n.path.as_str()).collect();
            assert_eq!(paths, ["", "/a", "/a/b"]);
            assert_eq!(s.nodes[2].stat.ephemeral_owner, 0x100);
            assert_eq!(s.nodes[0].data, None);
            assert_eq!(s.digest, digest.then_some((9, 2, 0x1234)));
        }
    }

    #[test]
    fn what_is_encoded_decodes_to_the_same_snapshot() {
        let s = ZkSnapshot::decode(&build(false), 9).unwrap();
        assert_eq!(s.encode(), build(false), "the layout FileSnap writes");
        let dir = tempfile::tempdir().unwrap();
        let path = s.write(dir.path()).unwrap();
        assert!(path.ends_with("snapshot.9"));
        assert_eq!(ZkSnapshot::read(&path).unwrap(), s);
        assert!(
            s.write(dir.path()).is_err(),
            "an existing snapshot is not replaced"
        );
    }

    #[test]
    fn the_last_processed_zxid_goes_after_an_empty_digest_as_zookeeper_3_9_writes_it() {
        let mut s = ZkSnapshot::decode(&build(false), 9).unwrap();
        s.last_processed_zxid = Some(0x1_0000_0007);
        let bytes = s.encode();
        // 3.9 reads a digest record before the last zxid: an empty one
        // (zxid 0) is one it never compares.
        let mut want = build(false);
        put_i64(&mut want, 0);
        put_i32(&mut want, 2);
        put_i64(&mut want, 0);
        let sum = adler32(&want);
        put_i64(&mut want, sum);
        put_str(&mut want, "/");
        put_i64(&mut want, 0x1_0000_0007);
        let sum = adler32(&want);
        put_i64(&mut want, sum);
        put_str(&mut want, "/");
        assert_eq!(bytes, want);
        let back = ZkSnapshot::decode(&bytes, 0).unwrap();
        assert_eq!(back.last_processed_zxid, Some(0x1_0000_0007));
        assert_eq!(back.digest, Some((0, 2, 0)));
        assert_eq!(back.nodes, s.nodes);
        // A decoded digest is written back as it was.
        let d = ZkSnapshot::decode(&build(true), 9).unwrap();
        assert_eq!(d.encode(), build(true));
    }

    #[test]
    fn every_flipped_byte_or_cut_is_caught() {
        let good = build(true);
        let without_digest = build(false).len();
        for i in 0..good.len() {
            let mut bad = good.clone();
            bad[i] ^= 0x40;
            // A flip may still decode only if the checksum agrees: never here.
            assert!(ZkSnapshot::decode(&bad, 9).is_err(), "flip at {i} passed");
        }
        for n in 0..good.len() {
            if n == without_digest {
                // Cut right after the first seal: a pre-3.6 snapshot, valid.
                continue;
            }
            assert!(
                ZkSnapshot::decode(&good[..n], 9).is_err(),
                "cut at {n} passed"
            );
        }
    }
}
