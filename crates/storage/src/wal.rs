//! The write-ahead log: the Raft log (entries, hard state, conf state) in
//! segment files, checksummed, preallocated, fsynced once per batch.
//!
//! # Format, version 1
//!
//! Directory: `<dataLogDir>/ferrokeeper-wal/` (never ZooKeeper's
//! `version-2`). Files: `wal-<16 hex digits>.log`, named by the index of
//! the first entry the segment was opened for; segments are read in name
//! order.
//!
//! ```text
//! segment header (24 bytes):
//!   [0..8)   magic "FKWAL001" (the last three bytes are the format version)
//!   [8..16)  first index, u64 big-endian (equals the file name)
//!   [16..20) crc32c of bytes [0..16)
//!   [20..24) zero
//! records, each starting at an 8-byte aligned offset:
//!   u32 len     payload length in bytes (> 0)
//!   u32 crc     crc32c of the payload
//!   payload     u8 type, then the body
//!   zero padding to the next multiple of 8
//! a zero `len` (the preallocated, never written part) ends the segment.
//!
//! bodies (integers big-endian):
//!   1 entry:      u64 index, u64 term, u8 entry type, u32 n + n bytes data,
//!                 u32 n + n bytes context
//!   2 hard state: u64 term, u64 vote, u64 commit
//!   3 conf state: u32 n + n u64 voters, u32 n + n u64 learners
//!   4 restart:    u64 index, u64 term — a snapshot of the state up to
//!                 `index` was installed from the leader (its file is in
//!                 dataDir, durable before this record): every entry
//!                 before this record is void, the next one is index + 1
//! ```
//!
//! An entry record whose index is not one past the previous entry replaces
//! the entries from that index on (a new Raft leader overwrote them); the
//! newest hard state record wins.
//!
//! Each append writes all its records with one `pwrite` and one
//! `fdatasync` (group commit). A new segment is preallocated to
//! `preAllocSize` with `posix_fallocate`, so a full disk shows up when a
//! segment is opened, and appends never grow file metadata.
//!
//! # Recovery rules
//!
//! Reading stops at the first zero length or invalid record (bad length,
//! bad checksum, unknown type). Then the rest of the segment is searched,
//! at every 8-byte offset, for a valid record:
//! - one is found: the log is corrupt in the middle — fail, never drop it;
//! - none, and the stop was an invalid record in the **last** segment: a
//!   torn tail (a crash during the last, never acknowledged, write) — it is
//!   zeroed and reported, and appends continue there;
//! - none, in an earlier segment: corrupt — fail.
//!
//! A segment whose first entry leaves a gap after the previous one's last
//! entry means a segment is missing — fail. So does a gap between entries.
//! Segment names increase in write order; after an overwrite or a restart
//! record a name may be above the segment's first entry.
//!
//! A conservative consequence: a power loss that made a later page of the
//! last, unacknowledged batch durable but not an earlier one is reported as
//! corruption, and the server refuses to start rather than guess.
//!
//! After any write or fsync error the log is poisoned: every later append
//! fails (there is no retry after a failed fsync).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use raft::eraftpb::{ConfState, Entry, EntryType, HardState};

pub const DIR_NAME: &str = "ferrokeeper-wal";
const MAGIC: &[u8; 8] = b"FKWAL001";
const HEADER_BYTES: u64 = 24;
const REC_ENTRY: u8 = 1;
const REC_HARD_STATE: u8 = 2;
const REC_CONF_STATE: u8 = 3;
const REC_RESTART: u8 = 4;
/// No record may claim more than this: a larger length is garbage.
const MAX_RECORD_BYTES: u32 = 256 << 20;

#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: corrupt log at offset {offset}: {reason}; refusing to start rather than lose or invent data")]
    Corrupt {
        path: PathBuf,
        offset: u64,
        reason: String,
    },
    #[error("the log is poisoned by an earlier write or fsync failure; restart the server to recover from disk")]
    Poisoned,
    #[error("{path}: no room to preallocate a log segment of {bytes} bytes ({source}); free space on the dataLogDir's disk, or lower preAllocSize (KiB) in zoo.cfg")]
    NoRoom {
        path: PathBuf,
        bytes: u64,
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> WalError + '_ {
    move |source| WalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Clone)]
pub struct WalOptions {
    /// Bytes preallocated per segment (`preAllocSize`, ZooKeeper's 64 MiB).
    pub prealloc_bytes: u64,
    /// `forceSync`: false skips fdatasync — unsafe, for tests and benchmarks of others.
    pub force_sync: bool,
}

impl Default for WalOptions {
    fn default() -> Self {
        WalOptions {
            prealloc_bytes: 64 << 20,
            force_sync: true,
        }
    }
}

/// A torn tail found and removed at recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TornTail {
    pub segment: PathBuf,
    pub offset: u64,
    pub reason: String,
}

/// What recovery read back.
#[derive(Debug, Default)]
pub struct Recovered {
    pub hard_state: HardState,
    pub conf_state: Option<ConfState>,
    /// Contiguous, overwrites applied.
    pub entries: Vec<Entry>,
    pub torn_tail: Option<TornTail>,
    pub segments: usize,
    /// The newest restart record (index, term): the log continues after a
    /// snapshot installed from the leader.
    pub restart: Option<(u64, u64)>,
    /// The last entry read but not kept (below `keep_from`).
    pub last_skipped: Option<u64>,
}

pub struct Wal {
    dir: PathBuf,
    opts: WalOptions,
    /// The segment appends go to, and its path for messages.
    file: File,
    path: PathBuf,
    /// Where the next record goes in `file`.
    offset: u64,
    /// Index one past the last entry written: names the next segment.
    next_index: u64,
    /// The name (first index) of the segment appends go to.
    segment_first: u64,
    /// Reused encode buffer: no allocation per append once warm. Holds
    /// the records staged for the next `commit`.
    buf: Vec<u8>,
    /// The first entry staged (names a new segment if one is needed) and
    /// one past the last, once committed.
    staged_first: Option<u64>,
    staged_next: u64,
    /// Set by the first failed write or fsync; nothing is written after it.
    poisoned: bool,
    /// Records written to the current segment since its last fsync.
    unsynced: bool,
}

fn segment_name(first_index: u64) -> String {
    format!("wal-{first_index:016x}.log")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let hex = name.strip_prefix("wal-")?.strip_suffix(".log")?;
    (hex.len() == 16).then(|| u64::from_str_radix(hex, 16).ok())?
}

fn pad8(n: u64) -> u64 {
    (n + 7) & !7
}

fn fsync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))
}

fn put_u32(b: &mut Vec<u8>, v: u32) {
    b.extend_from_slice(&v.to_be_bytes());
}
fn put_u64(b: &mut Vec<u8>, v: u64) {
    b.extend_from_slice(&v.to_be_bytes());
}

/// Appends one framed record whose payload `body` writes (type byte first).
fn put_record(b: &mut Vec<u8>, body: impl FnOnce(&mut Vec<u8>)) {
    let start = b.len();
    b.extend_from_slice(&[0; 8]);
    body(b);
    let len = (b.len() - start - 8) as u32;
    let crc = crc32c::crc32c(&b[start + 8..]);
    b[start..start + 4].copy_from_slice(&len.to_be_bytes());
    b[start + 4..start + 8].copy_from_slice(&crc.to_be_bytes());
    let padded = start + pad8((b.len() - start) as u64) as usize;
    b.resize(padded, 0);
}

fn encode_entry(b: &mut Vec<u8>, e: &Entry) {
    put_record(b, |b| {
        b.push(REC_ENTRY);
        put_u64(b, e.index);
        put_u64(b, e.term);
        b.push(e.get_entry_type() as u8);
        put_u32(b, e.data.len() as u32);
        b.extend_from_slice(&e.data);
        put_u32(b, e.context.len() as u32);
        b.extend_from_slice(&e.context);
    });
}

fn encode_hard_state(b: &mut Vec<u8>, hs: &HardState) {
    put_record(b, |b| {
        b.push(REC_HARD_STATE);
        put_u64(b, hs.term);
        put_u64(b, hs.vote);
        put_u64(b, hs.commit);
    });
}

fn encode_restart(b: &mut Vec<u8>, index: u64, term: u64) {
    put_record(b, |b| {
        b.push(REC_RESTART);
        put_u64(b, index);
        put_u64(b, term);
    });
}

fn encode_conf_state(b: &mut Vec<u8>, cs: &ConfState) {
    put_record(b, |b| {
        b.push(REC_CONF_STATE);
        for ids in [&cs.voters, &cs.learners] {
            put_u32(b, ids.len() as u32);
            for id in ids {
                put_u64(b, *id);
            }
        }
    });
}

/// A bounds-checked cursor over one record's payload.
struct Cur<'a>(&'a [u8]);

impl<'a> Cur<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Some(a)
    }
    fn u8(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
}

enum Record {
    Entry(Entry),
    /// A well-formed entry below the index the caller keeps from: checked,
    /// not copied out.
    Old(u64),
    HardState(HardState),
    ConfState(ConfState),
    Restart(u64, u64),
}

fn decode_payload(p: &[u8], keep_from: u64) -> Option<Record> {
    let mut c = Cur(p);
    let rec = match c.u8()? {
        REC_ENTRY => {
            let index = c.u64()?;
            let term = c.u64()?;
            let kind = match c.u8()? {
                0 => EntryType::EntryNormal,
                1 => EntryType::EntryConfChange,
                2 => EntryType::EntryConfChangeV2,
                _ => return None,
            };
            let (data, context) = (c.bytes()?, c.bytes()?);
            if index < keep_from {
                Record::Old(index)
            } else {
                let mut e = Entry {
                    index,
                    term,
                    data: data.to_vec().into(),
                    context: context.to_vec().into(),
                    ..Default::default()
                };
                e.set_entry_type(kind);
                Record::Entry(e)
            }
        }
        REC_HARD_STATE => Record::HardState(HardState {
            term: c.u64()?,
            vote: c.u64()?,
            commit: c.u64()?,
            ..Default::default()
        }),
        REC_CONF_STATE => {
            let mut cs = ConfState::default();
            for i in 0..2 {
                let n = c.u32()? as usize;
                let mut ids = Vec::with_capacity(n.min(c.0.len() / 8));
                for _ in 0..n {
                    ids.push(c.u64()?);
                }
                if i == 0 {
                    cs.voters = ids;
                } else {
                    cs.learners = ids;
                }
            }
            Record::ConfState(cs)
        }
        REC_RESTART => Record::Restart(c.u64()?, c.u64()?),
        _ => return None,
    };
    c.0.is_empty().then_some(rec)
}

/// The record at `off`, with the offset after it; `Err` says why there is
/// no valid record there (a zero length is `Ok(None)`: end of data).
fn read_record(buf: &[u8], off: u64, keep_from: u64) -> Result<Option<(Record, u64)>, String> {
    let off = off as usize;
    if off + 8 > buf.len() {
        // Past the end (padding of the last record ran beyond a cut file) or
        // a few bytes short of a header.
        return if buf.get(off..).unwrap_or(&[]).iter().all(|b| *b == 0) {
            Ok(None)
        } else {
            Err("partial record header".into())
        };
    }
    let len = u32::from_be_bytes(buf[off..off + 4].try_into().unwrap());
    let crc = u32::from_be_bytes(buf[off + 4..off + 8].try_into().unwrap());
    if len == 0 {
        return if crc == 0 {
            Ok(None)
        } else {
            Err("zero length with a checksum".into())
        };
    }
    if len > MAX_RECORD_BYTES || off + 8 + len as usize > buf.len() {
        return Err(format!(
            "record length {len} runs past the end of the segment"
        ));
    }
    let payload = &buf[off + 8..off + 8 + len as usize];
    if crc32c::crc32c(payload) != crc {
        return Err("checksum mismatch".into());
    }
    let rec = decode_payload(payload, keep_from).ok_or_else(|| "undecodable record".to_string())?;
    Ok(Some((rec, pad8((off + 8 + len as usize) as u64))))
}

/// Whether a valid record starts at any 8-byte offset in `buf[from..]`.
fn valid_record_after(buf: &[u8], from: u64) -> Option<u64> {
    let mut off = pad8(from);
    while off + 8 <= buf.len() as u64 {
        if let Ok(Some(_)) = read_record(buf, off, u64::MAX) {
            return Some(off);
        }
        off += 8;
    }
    None
}

/// The log's segments under `log_dir`, by first index.
pub fn list_segments(log_dir: &Path) -> Result<Vec<(u64, PathBuf)>, WalError> {
    let dir = log_dir.join(DIR_NAME);
    if !dir.exists() {
        return Ok(Vec::new());
    }
    let mut names: Vec<(u64, PathBuf)> = std::fs::read_dir(&dir)
        .map_err(io_err(&dir))?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            Some((parse_segment_name(&name)?, e.path()))
        })
        .collect();
    names.sort();
    Ok(names)
}

/// Reads the log under `log_dir` without changing anything (for
/// inspection tools): the same rules as `Wal::open`, no repairs.
pub fn read_only(log_dir: &Path) -> Result<Recovered, WalError> {
    scan(log_dir, Scan::ReadOnly, 0).map(|(rec, _)| rec)
}

/// As `read_only`, for a log a running server is appending to: its newest
/// segment ends where the first record does not check out, whatever the
/// bytes after it look like (a read racing the writer can see a later
/// page of the file written and an earlier one not yet).
pub fn read_live(log_dir: &Path) -> Result<Recovered, WalError> {
    scan(log_dir, Scan::Live, 0).map(|(rec, _)| rec)
}

/// How `scan` treats what it finds.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scan {
    /// Recovery at startup: a segment whose creation never completed is removed.
    Repair,
    ReadOnly,
    /// Read-only, beside the writer (`read_live`).
    Live,
}

/// Reads every segment by the recovery rules (`Scan` says what else).
/// Returns where appends go next (the last segment and offset).
/// `keep_from`: entries below this index are checked but not kept.
fn scan(
    log_dir: &Path,
    how: Scan,
    keep_from: u64,
) -> Result<(Recovered, Option<(PathBuf, u64)>), WalError> {
    let repair = how == Scan::Repair;
    let dir = log_dir.join(DIR_NAME);
    let names = list_segments(log_dir)?;

    let mut rec = Recovered {
        segments: names.len(),
        ..Recovered::default()
    };
    let mut tail: Option<(PathBuf, u64)> = None;
    // The last entry seen below `keep_from`.
    let mut old_last: Option<u64> = None;
    for (i, (first_index, path)) in names.iter().enumerate() {
        let last = i + 1 == names.len();
        let buf = written::read_written(path).map_err(io_err(path))?;
        let corrupt = |offset: u64, reason: String| WalError::Corrupt {
            path: path.clone(),
            offset,
            reason,
        };
        if buf.len() < HEADER_BYTES as usize
            || &buf[..8] != MAGIC
            || u32::from_be_bytes(buf[16..20].try_into().unwrap()) != crc32c::crc32c(&buf[..16])
            || u64::from_be_bytes(buf[8..16].try_into().unwrap()) != *first_index
        {
            if last && repair && buf.iter().skip(8).all(|b| *b == 0) {
                // A crash while the segment was being created: its header
                // (written and fsynced before any record) never reached
                // the disk, so nothing else did either.
                std::fs::remove_file(path).map_err(io_err(path))?;
                fsync_dir(&dir)?;
                rec.segments -= 1;
                break;
            }
            return Err(corrupt(0, "bad segment header".into()));
        }
        let mut off = HEADER_BYTES;
        let mut first_in_segment = true;
        let stop = loop {
            match read_record(&buf, off, keep_from) {
                Ok(Some((r, next))) => {
                    match r {
                        Record::Entry(e) => {
                            // A segment's first entry must follow the log
                            // before it (names may run ahead of entries
                            // after an overwrite or a restart).
                            if first_in_segment {
                                first_in_segment = false;
                                let prev_last = rec.entries.last().map(|e| e.index).or(old_last);
                                if let Some(prev_last) = prev_last {
                                    if e.index > prev_last + 1 {
                                        return Err(corrupt(0, format!("segment starts at index {} but the log before it ends at {prev_last}: a segment is missing", e.index)));
                                    }
                                }
                            }
                            push_entry(&mut rec.entries, e).map_err(|m| corrupt(off, m))?
                        }
                        Record::Old(index) => {
                            // Below the newest snapshot: committed, so never
                            // overwritten by a later record (what overwrites
                            // them comes at or after `keep_from`, which the
                            // caller takes from a snapshot).
                            if first_in_segment {
                                first_in_segment = false;
                                if old_last.is_some_and(|l| index > l + 1) {
                                    return Err(corrupt(0, format!("segment starts at index {index} but the log before it ends at {}: a segment is missing", old_last.unwrap_or(0))));
                                }
                            }
                            old_last = Some(index);
                        }
                        Record::HardState(hs) => rec.hard_state = hs,
                        Record::ConfState(cs) => rec.conf_state = Some(cs),
                        Record::Restart(index, term) => {
                            rec.entries.clear();
                            old_last = None;
                            rec.restart = Some((index, term));
                        }
                    }
                    off = next;
                }
                Ok(None) => break None,
                Err(why) => break Some(why),
            }
        };
        // Search after the bad record's claimed end when its length is
        // plausible, so bytes inside its payload cannot pass for a record.
        let claimed = u32::from_be_bytes(
            buf.get(off as usize..off as usize + 4)
                .and_then(|b| b.try_into().ok())
                .unwrap_or([0; 4]),
        );
        let resume = if claimed > 0 && off + 8 + claimed as u64 <= buf.len() as u64 {
            off + 8 + claimed as u64
        } else {
            off + 8
        };
        let writer_here = how == Scan::Live && last;
        if let Some(at) = valid_record_after(&buf, resume).filter(|_| !writer_here) {
            let why = stop.unwrap_or_else(|| "a zeroed record header".into());
            return Err(corrupt(
                off,
                format!("{why}, yet a valid record follows at offset {at}"),
            ));
        }
        match stop {
            None => {}
            Some(why) if last => {
                rec.torn_tail = Some(TornTail {
                    segment: path.clone(),
                    offset: off,
                    reason: why,
                });
            }
            Some(why) => {
                return Err(corrupt(
                    off,
                    format!("{why} in a segment that is not the last"),
                ))
            }
        }
        if last {
            tail = Some((path.clone(), off));
        }
    }
    rec.last_skipped = old_last;
    Ok((rec, tail))
}

impl Wal {
    /// Opens (creating if needed) the log under `log_dir` and reads it back.
    pub fn open(log_dir: &Path, opts: WalOptions) -> Result<(Wal, Recovered), WalError> {
        Wal::open_from(log_dir, opts, 0)
    }

    /// As `open`, but entries below `keep_from` are checked and not kept
    /// (a restart needs none below its newest snapshot: reading a million
    /// of them into memory only to drop them took most of the log's read).
    /// `keep_from` must not exceed an index known committed.
    pub fn open_from(
        log_dir: &Path,
        opts: WalOptions,
        keep_from: u64,
    ) -> Result<(Wal, Recovered), WalError> {
        let dir = log_dir.join(DIR_NAME);
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        let (rec, tail) = scan(log_dir, Scan::Repair, keep_from)?;
        let next_index = [
            rec.entries.last().map(|e| e.index),
            rec.restart.map(|(i, _)| i),
            rec.last_skipped,
        ]
        .into_iter()
        .flatten()
        .max()
        .map_or(1, |i| i + 1);
        let mut wal = match tail {
            Some((path, offset)) => {
                let segment_first =
                    parse_segment_name(&path.file_name().unwrap_or_default().to_string_lossy())
                        .unwrap_or(0);
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .open(&path)
                    .map_err(io_err(&path))?;
                let mut w = Wal {
                    dir,
                    opts,
                    file,
                    path,
                    offset,
                    next_index,
                    segment_first,
                    buf: Vec::new(),
                    staged_first: None,
                    staged_next: next_index,
                    poisoned: false,
                    // A process before this one may have left records
                    // written and not fsynced.
                    unsynced: true,
                };
                if rec.torn_tail.is_some() {
                    w.zero_from(offset)?;
                }
                w
            }
            None => Wal::create_segment(dir, opts, next_index)?,
        };
        wal.buf.reserve(64 << 10);
        Ok((wal, rec))
    }

    /// Overwrites a torn tail with zeros and makes that durable.
    fn zero_from(&mut self, offset: u64) -> Result<(), WalError> {
        let len = self.file.metadata().map_err(io_err(&self.path))?.len();
        let zeros = vec![0u8; 1 << 20];
        let mut at = offset;
        while at < len {
            let n = (len - at).min(zeros.len() as u64) as usize;
            self.file
                .write_all_at(&zeros[..n], at)
                .map_err(io_err(&self.path))?;
            at += n as u64;
        }
        self.file.sync_data().map_err(io_err(&self.path))
    }

    fn create_segment(dir: PathBuf, opts: WalOptions, first_index: u64) -> Result<Wal, WalError> {
        let path = dir.join(segment_name(first_index));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(io_err(&path))?;
        let size = opts.prealloc_bytes.max(HEADER_BYTES + 4096);
        // SAFETY: a plain syscall on a file descriptor we own.
        let rc = unsafe { libc::posix_fallocate(file.as_raw_fd(), 0, size as libc::off_t) };
        if rc != 0 {
            let _ = std::fs::remove_file(&path);
            let source = io::Error::from_raw_os_error(rc);
            return Err(if rc == libc::ENOSPC {
                WalError::NoRoom {
                    path,
                    bytes: size,
                    source,
                }
            } else {
                WalError::Io { path, source }
            });
        }
        let mut header = Vec::with_capacity(HEADER_BYTES as usize);
        header.extend_from_slice(MAGIC);
        put_u64(&mut header, first_index);
        let crc = crc32c::crc32c(&header);
        put_u32(&mut header, crc);
        put_u32(&mut header, 0);
        file.write_all_at(&header, 0).map_err(io_err(&path))?;
        file.sync_all().map_err(io_err(&path))?;
        fsync_dir(&dir)?;
        Ok(Wal {
            dir,
            opts,
            file,
            path,
            offset: HEADER_BYTES,
            next_index: first_index,
            segment_first: first_index,
            buf: Vec::new(),
            staged_first: None,
            staged_next: first_index,
            poisoned: false,
            unsynced: false,
        })
    }

    /// Appends entries, then the hard state and conf state if given, with
    /// one write and (unless forceSync=no) one fdatasync. Returns once it is
    /// durable. Any failure poisons the log.
    pub fn append(
        &mut self,
        entries: &[Entry],
        hs: Option<&HardState>,
        cs: Option<&ConfState>,
    ) -> Result<(), WalError> {
        self.stage_entries(entries);
        if let Some(hs) = hs {
            self.stage_hard_state(hs);
        }
        if let Some(cs) = cs {
            encode_conf_state(&mut self.buf, cs);
        }
        self.commit()
    }

    /// Stages entries for the next `commit`; staged records are written in
    /// the order they were staged.
    pub fn stage_entries(&mut self, entries: &[Entry]) {
        for e in entries {
            encode_entry(&mut self.buf, e);
        }
        if let (Some(first), Some(last)) = (entries.first(), entries.last()) {
            self.staged_first.get_or_insert(first.index);
            self.staged_next = last.index + 1;
        }
    }

    pub fn stage_hard_state(&mut self, hs: &HardState) {
        encode_hard_state(&mut self.buf, hs);
    }

    /// Stages a restart record: a snapshot up to `index` was installed
    /// (and is durable in dataDir); the log continues at `index + 1`.
    pub fn stage_restart(&mut self, index: u64, term: u64) {
        encode_restart(&mut self.buf, index, term);
        self.staged_first.get_or_insert(index + 1);
        self.staged_next = index + 1;
    }

    /// Writes every staged record with one write and (unless
    /// forceSync=no) one fdatasync. Returns once it is durable. Any
    /// failure poisons the log.
    pub fn commit(&mut self) -> Result<(), WalError> {
        self.commit_with(true)
    }

    /// As `commit`, `sync` false: written, not fsynced — for records whose
    /// loss in a crash is harmless (a hard state that moved only the
    /// commit index). The next fsync (of this segment, or before the next
    /// segment is started) makes them durable with everything else.
    pub fn commit_with(&mut self, sync: bool) -> Result<(), WalError> {
        if self.poisoned {
            self.buf.clear();
            return Err(WalError::Poisoned);
        }
        if self.buf.is_empty() {
            return Ok(());
        }
        let first = self.staged_first.take();
        let result = self.write_batch(first, sync);
        self.buf.clear();
        if result.is_err() {
            self.poisoned = true;
        } else {
            self.next_index = self.staged_next;
        }
        result
    }

    fn write_batch(&mut self, first_entry: Option<u64>, sync: bool) -> Result<(), WalError> {
        let len = self.buf.len() as u64;
        if self.offset + len > self.opts.prealloc_bytes && self.offset > HEADER_BYTES {
            // A segment that is not the last must end whole: what was
            // written to it unsynced is made durable before the next one.
            if self.unsynced && self.opts.force_sync {
                self.file.sync_data().map_err(io_err(&self.path))?;
            }
            self.unsynced = false;
            // Names must increase in write order, even when the batch
            // overwrites or restarts the log below the current segment's.
            let first = first_entry
                .unwrap_or(self.next_index)
                .max(self.segment_first + 1);
            let next = Wal::create_segment(self.dir.clone(), self.opts.clone(), first)?;
            self.file = next.file;
            self.path = next.path;
            self.segment_first = first;
            self.offset = next.offset;
        }
        self.file
            .write_all_at(&self.buf, self.offset)
            .map_err(io_err(&self.path))?;
        if sync && self.opts.force_sync {
            self.file.sync_data().map_err(io_err(&self.path))?;
            self.unsynced = false;
        } else {
            self.unsynced = true;
        }
        self.offset += len;
        Ok(())
    }

    /// The index the next appended entry must have.
    pub fn next_index(&self) -> u64 {
        self.next_index
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

/// Adds a recovered entry: the next index appends, a lower one replaces
/// the entries from there on, a higher one is a gap.
fn push_entry(entries: &mut Vec<Entry>, e: Entry) -> Result<(), String> {
    match entries.first().map(|f| f.index) {
        None => entries.push(e),
        Some(first) => {
            let last = entries.last().map_or(0, |l| l.index);
            if e.index == last + 1 {
                entries.push(e);
            } else if e.index >= first && e.index <= last {
                entries.truncate((e.index - first) as usize);
                entries.push(e);
            } else {
                return Err(format!("entry index {} does not follow {last}", e.index));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
mod written;
