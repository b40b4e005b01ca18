//! Snapshot files and purging.
//!
//! # Format, version 2
//!
//! Directory: `<dataDir>/ferrokeeper-snap/`. Files: `snap-<16 hex digits>.snap`,
//! named by the log index the snapshot includes.
//!
//! ```text
//! [0..8)   magic "FKSNAP02"
//! u64      index of the last entry applied into it
//! u64      term of that entry
//! u32 n, n × u64   voters        (the Raft conf state at that index)
//! u32 n, n × u64   learners
//! u64 n, n bytes   body          (the state machine's own encoding, as
//!                                 one zstd frame, level 1)
//! u32      crc32c of every byte before it
//! ```
//!
//! Version 1 ("FKSNAP01", written before 0.x of December 2026) is the
//! same with the body uncompressed; it is still read.
//!
//! A snapshot is written to `snap-….snap.tmp`, fsynced, renamed to its
//! name and the directory fsynced: a name always means a whole file. A
//! leftover `.tmp` (a crash mid-write) is removed at startup by
//! `remove_leftovers`, which only the server holding the directory's lock
//! (`lock`) calls: another process's `.tmp` may be a snapshot in progress.
//! A named file that fails its checksum is corruption: the server refuses
//! to start.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use raft::eraftpb::ConfState;

use crate::wal;

pub const DIR_NAME: &str = "ferrokeeper-snap";
const MAGIC: &[u8; 8] = b"FKSNAP02";
const MAGIC_V1: &[u8; 8] = b"FKSNAP01";
/// zstd's fastest level: a snapshot compresses to about a third at
/// hundreds of MB/s, on the snapshot thread, off the write path.
const ZSTD_LEVEL: i32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum SnapError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: unreadable snapshot: {reason}; refusing to start rather than lose data")]
    Corrupt { path: PathBuf, reason: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> SnapError + '_ {
    move |source| SnapError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotMeta {
    pub index: u64,
    pub term: u64,
    pub conf_state: ConfState,
}

pub fn snap_dir(data_dir: &Path) -> PathBuf {
    data_dir.join(DIR_NAME)
}

pub fn file_name(index: u64) -> String {
    format!("snap-{index:016x}.snap")
}

fn parse_name(name: &str) -> Option<u64> {
    let hex = name.strip_prefix("snap-")?.strip_suffix(".snap")?;
    (hex.len() == 16).then(|| u64::from_str_radix(hex, 16).ok())?
}

/// Snapshots in `data_dir`, oldest first. Changes nothing.
pub fn list(data_dir: &Path) -> Result<Vec<(u64, PathBuf)>, SnapError> {
    let dir = snap_dir(data_dir);
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(io_err(&dir)(e)),
    };
    for e in entries {
        let e = e.map_err(io_err(&dir))?;
        if let Some(i) = parse_name(&e.file_name().to_string_lossy()) {
            out.push((i, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Removes the `.tmp` files a crash left mid-write. Only for the server
/// that holds `data_dir`'s lock: anyone else's `.tmp` may be live.
pub fn remove_leftovers(_lock: &crate::lock::DirLock, data_dir: &Path) -> Result<(), SnapError> {
    let dir = snap_dir(data_dir);
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    for e in std::fs::read_dir(&dir).map_err(io_err(&dir))? {
        let e = e.map_err(io_err(&dir))?;
        if e.file_name().to_string_lossy().ends_with(".snap.tmp") {
            remove_if_there(&e.path())?;
        }
    }
    Ok(())
}

/// A file another purge (autopurge beside `ferrokeeper purge`) removed
/// first is not an error.
fn remove_if_there(path: &Path) -> Result<(), SnapError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(path)(e)),
        _ => Ok(()),
    }
}

/// Writes a snapshot durably; returns its path.
pub fn write(data_dir: &Path, meta: &SnapshotMeta, body: &[u8]) -> Result<PathBuf, SnapError> {
    write_with(data_dir, meta, |w| w.write_all(body)).map(|(path, _)| path)
}

/// Counts and checksums what passes through to the file.
struct Tally<W> {
    inner: W,
    len: u64,
    crc: u32,
}

impl<W: Write> Write for Tally<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        self.len += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Writes a snapshot durably whose body `body` writes as it is encoded
/// (compressed as it goes), so the whole body never sits in memory;
/// returns its path and the compressed body's length. The header's length
/// field is written last, in place, and the checksum is the header's
/// combined with the body's.
pub fn write_with(
    data_dir: &Path,
    meta: &SnapshotMeta,
    body: impl FnOnce(&mut dyn Write) -> io::Result<()>,
) -> Result<(PathBuf, u64), SnapError> {
    let dir = snap_dir(data_dir);
    std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
    let path = dir.join(file_name(meta.index));
    let tmp = dir.join(format!("{}.tmp", file_name(meta.index)));
    let mut head = Vec::with_capacity(64);
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&meta.index.to_be_bytes());
    head.extend_from_slice(&meta.term.to_be_bytes());
    for ids in [&meta.conf_state.voters, &meta.conf_state.learners] {
        head.extend_from_slice(&(ids.len() as u32).to_be_bytes());
        for id in ids {
            head.extend_from_slice(&id.to_be_bytes());
        }
    }
    let len_at = head.len() as u64;
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    let body_len = {
        let mut w = io::BufWriter::with_capacity(1 << 20, &mut f);
        w.write_all(&head).map_err(io_err(&tmp))?;
        w.write_all(&[0; 8]).map_err(io_err(&tmp))?;
        let t = Tally {
            inner: w,
            len: 0,
            crc: 0,
        };
        let mut z = zstd::stream::Encoder::new(t, ZSTD_LEVEL).map_err(io_err(&tmp))?;
        body(&mut z).map_err(io_err(&tmp))?;
        let t = z.finish().map_err(io_err(&tmp))?;
        let (mut w, body_len, body_crc) = (t.inner, t.len, t.crc);
        head.extend_from_slice(&body_len.to_be_bytes());
        let crc = crc32c::crc32c_combine(crc32c::crc32c(&head), body_crc, body_len as usize);
        w.write_all(&crc.to_be_bytes()).map_err(io_err(&tmp))?;
        w.flush().map_err(io_err(&tmp))?;
        body_len
    };
    use std::io::{Seek, SeekFrom};
    f.seek(SeekFrom::Start(len_at)).map_err(io_err(&tmp))?;
    f.write_all(&body_len.to_be_bytes()).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    std::fs::rename(&tmp, &path).map_err(io_err(&path))?;
    File::open(&dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(&dir))?;
    Ok((path, body_len))
}

/// Reads and checks one snapshot file.
pub fn read(path: &Path) -> Result<(SnapshotMeta, Vec<u8>), SnapError> {
    let b = std::fs::read(path).map_err(io_err(path))?;
    let corrupt = |reason: &str| SnapError::Corrupt {
        path: path.to_path_buf(),
        reason: reason.into(),
    };
    if b.len() < 8 + 16 + 8 + 8 + 4 || (&b[..8] != MAGIC && &b[..8] != MAGIC_V1) {
        return Err(corrupt(
            "not a ferrokeeper snapshot (bad magic or too short)",
        ));
    }
    let compressed = &b[..8] == MAGIC;
    let (content, crc) = b.split_at(b.len() - 4);
    if crc32c::crc32c(content) != u32::from_be_bytes(crc.try_into().unwrap()) {
        return Err(corrupt("checksum mismatch"));
    }
    let mut at = 8;
    let u64_at = |at: &mut usize| -> Result<u64, SnapError> {
        let v = content
            .get(*at..*at + 8)
            .ok_or_else(|| corrupt("truncated header"))?;
        *at += 8;
        Ok(u64::from_be_bytes(v.try_into().unwrap()))
    };
    let index = u64_at(&mut at)?;
    let term = u64_at(&mut at)?;
    let mut conf_state = ConfState::default();
    for i in 0..2 {
        let n = content
            .get(at..at + 4)
            .ok_or_else(|| corrupt("truncated header"))?;
        at += 4;
        let n = u32::from_be_bytes(n.try_into().unwrap()) as usize;
        let mut ids = Vec::with_capacity(n.min(content.len() / 8));
        for _ in 0..n {
            ids.push(u64_at(&mut at)?);
        }
        if i == 0 {
            conf_state.voters = ids;
        } else {
            conf_state.learners = ids;
        }
    }
    let len = u64_at(&mut at)? as usize;
    if content.len() - at != len {
        return Err(corrupt("body length does not match the file"));
    }
    let meta = SnapshotMeta {
        index,
        term,
        conf_state,
    };
    if compressed {
        let body = zstd::stream::decode_all(&content[at..])
            .map_err(|e| corrupt(&format!("body does not decompress: {e}")))?;
        return Ok((meta, body));
    }
    // The body in place: no second copy of a file that can be gigabytes.
    let mut b = b;
    b.truncate(b.len() - 4);
    b.drain(..at);
    Ok((meta, b))
}

/// What a purge removed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub snapshots: Vec<PathBuf>,
    pub segments: Vec<PathBuf>,
}

/// ZooKeeper's PurgeTxnLog: keeps the newest `retain` snapshots (at least
/// 3) and the log segments they need; removes older snapshots and segments
/// holding only entries at or below the oldest kept snapshot. The newest
/// segment is always kept.
pub fn purge(data_dir: &Path, log_dir: &Path, retain: usize) -> Result<Purged, SnapError> {
    let retain = retain.max(3);
    let snaps = list(data_dir)?;
    let mut purged = Purged::default();
    if snaps.len() <= retain {
        return Ok(purged);
    }
    let (old, kept) = snaps.split_at(snaps.len() - retain);
    let oldest_kept = kept[0].0;
    for (_, p) in old {
        remove_if_there(p)?;
        purged.snapshots.push(p.clone());
    }
    let segs = wal::list_segments(log_dir).map_err(|e| SnapError::Io {
        path: log_dir.to_path_buf(),
        source: io::Error::other(e.to_string()),
    })?;
    // Segment i holds entries from its first index up to the next one's first - 1.
    for w in segs.windows(2) {
        let (_, ref path) = w[0];
        let (next_first, _) = w[1];
        if next_first <= oldest_kept + 1 {
            remove_if_there(path)?;
            purged.segments.push(path.clone());
        }
    }
    Ok(purged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(index: u64) -> SnapshotMeta {
        let mut cs = ConfState::default();
        cs.voters = vec![1];
        SnapshotMeta {
            index,
            term: 2,
            conf_state: cs,
        }
    }

    #[test]
    fn write_read_round_trip_and_tmp_cleanup() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), &meta(42), b"body bytes").unwrap();
        std::fs::write(
            snap_dir(d.path()).join("snap-0000000000000099.snap.tmp"),
            b"half",
        )
        .unwrap();
        let tmp = snap_dir(d.path()).join("snap-0000000000000099.snap.tmp");
        assert_eq!(list(d.path()).unwrap(), vec![(42, p.clone())]);
        assert!(tmp.exists(), "listing removes nothing");
        let lock = crate::lock::DirLock::acquire(d.path(), "dataDir").unwrap();
        remove_leftovers(&lock, d.path()).unwrap();
        assert!(!tmp.exists());
        assert_eq!(list(d.path()).unwrap(), vec![(42, p.clone())]);
        let (m, body) = read(&p).unwrap();
        assert_eq!((m, body), (meta(42), b"body bytes".to_vec()));
    }

    #[test]
    fn a_body_written_piece_by_piece_makes_the_same_file() {
        let body: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let whole = write(a.path(), &meta(9), &body).unwrap();
        let (pieces, len) = write_with(b.path(), &meta(9), |w| {
            for c in body.chunks(1 << 20 | 17) {
                w.write_all(c)?;
            }
            Ok(())
        })
        .unwrap();
        let file = std::fs::read(&pieces).unwrap();
        assert_eq!(file.len() as u64, 8 + 16 + 4 + 8 + 4 + 8 + len + 4);
        assert!(len < body.len() as u64 / 2, "compressed: {len} bytes");
        assert_eq!(std::fs::read(&whole).unwrap(), file);
        assert_eq!(read(&pieces).unwrap().1, body);
        // A body that fails to encode leaves no snapshot behind.
        let c = tempfile::tempdir().unwrap();
        let failed = write_with(c.path(), &meta(9), |w| {
            w.write_all(b"partial")?;
            Err(io::Error::other("encoder failed"))
        });
        assert!(failed.is_err());
        assert!(list(c.path()).unwrap().is_empty());
    }

    #[test]
    fn a_version_1_snapshot_is_still_read() {
        let body = b"uncompressed body".to_vec();
        let mut f = MAGIC_V1.to_vec();
        f.extend_from_slice(&42u64.to_be_bytes());
        f.extend_from_slice(&3u64.to_be_bytes());
        f.extend_from_slice(&1u32.to_be_bytes());
        f.extend_from_slice(&1u64.to_be_bytes());
        f.extend_from_slice(&0u32.to_be_bytes());
        f.extend_from_slice(&(body.len() as u64).to_be_bytes());
        f.extend_from_slice(&body);
        let crc = crc32c::crc32c(&f);
        f.extend_from_slice(&crc.to_be_bytes());
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(snap_dir(d.path())).unwrap();
        let p = snap_dir(d.path()).join(file_name(42));
        std::fs::write(&p, &f).unwrap();
        let (m, b) = read(&p).unwrap();
        assert_eq!(b, body);
        assert_eq!((m.index, m.term, m.conf_state.voters), (42, 3, vec![1]));
    }

    #[test]
    fn any_flipped_byte_is_detected() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), &meta(7), &[5u8; 300]).unwrap();
        let good = std::fs::read(&p).unwrap();
        for i in (0..good.len()).step_by(17) {
            let mut b = good.clone();
            b[i] ^= 0x10;
            std::fs::write(&p, &b).unwrap();
            assert!(
                matches!(read(&p), Err(SnapError::Corrupt { .. })),
                "byte {i}"
            );
        }
    }

    #[test]
    fn purge_keeps_the_newest_and_the_log_they_need() {
        let d = tempfile::tempdir().unwrap();
        let (mut w, _) = wal::Wal::open(
            d.path(),
            wal::WalOptions {
                prealloc_bytes: 4096,
                force_sync: false,
            },
        )
        .unwrap();
        for i in 1..=300u64 {
            let mut e = raft::eraftpb::Entry::default();
            e.index = i;
            e.term = 1;
            e.data = vec![0u8; 100].into();
            w.append(&[e], None, None).unwrap();
        }
        drop(w);
        for idx in [50, 100, 150, 200, 250] {
            write(d.path(), &meta(idx), b"x").unwrap();
        }
        let before = wal::list_segments(d.path()).unwrap();
        let p = purge(d.path(), d.path(), 3).unwrap();
        assert_eq!(p.snapshots.len(), 2);
        assert_eq!(
            list(d.path())
                .unwrap()
                .iter()
                .map(|s| s.0)
                .collect::<Vec<_>>(),
            vec![150, 200, 250]
        );
        let after = wal::list_segments(d.path()).unwrap();
        assert!(after.len() < before.len());
        // What remains still recovers, and covers everything after index 150.
        let (_, r) = wal::Wal::open(
            d.path(),
            wal::WalOptions {
                prealloc_bytes: 4096,
                force_sync: false,
            },
        )
        .unwrap();
        assert!(r.entries.first().unwrap().index <= 151);
        assert_eq!(r.entries.last().unwrap().index, 300);
    }
}
