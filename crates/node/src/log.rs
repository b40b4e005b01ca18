//! The Raft log Raft reads, in memory: the entries since the point the
//! log was compacted to, plus the hard and conf state.
//!
//! It answers as raft's `MemStorage` does (same errors, same bounds), but
//! keeps an entry as its term and kind (8 bytes) and its data as a slice of
//! a shared buffer, where `MemStorage` keeps a whole `Entry` (104 bytes, in
//! a `Vec` that never gives capacity back) and the data as an allocation of
//! its own. With up to two snapshot intervals of entries kept (100,000 and
//! more), that was tens of MiB per server, and most of what a restarted
//! server held beyond its tree. Compaction pops from the front; the queues
//! shrink when mostly empty.
//!
//! Entry data is copied into `CHUNK`-byte buffers as entries are appended
//! and handed out as `Bytes` of those buffers: no allocation per entry. A
//! buffer is freed when no kept entry and no message in flight uses it.

use std::collections::{BTreeMap, VecDeque};

use bytes::{Bytes, BytesMut};
use raft::prelude::{ConfState, Entry, EntryType, HardState, SnapshotMetadata};
use raft::{Error, GetEntriesContext, RaftState, StorageError};

/// Size of the buffers entry data is copied into (an entry larger than
/// this gets a buffer of its own size).
const CHUNK: usize = 1 << 20;

#[derive(Default)]
pub(crate) struct Log {
    hard_state: HardState,
    conf_state: ConfState,
    /// Where the log was last replaced by a snapshot (its index and term
    /// answer `term` as MemStorage's do).
    snapshot: SnapshotMetadata,
    /// Index of `terms[0]` when there are entries.
    first: u64,
    /// Per entry: term << 2 | entry type.
    terms: VecDeque<u64>,
    data: VecDeque<Bytes>,
    /// The rare entries with a context, by index (Raft's own entries have
    /// none; kept so that nothing appended is lost).
    context: BTreeMap<u64, Bytes>,
    /// Where appended data is copied.
    buf: BytesMut,
}

impl Log {
    pub(crate) fn new(conf_state: ConfState) -> Log {
        Log {
            conf_state,
            first: 1,
            ..Log::default()
        }
    }

    pub(crate) fn first_index(&self) -> u64 {
        if self.terms.is_empty() {
            self.snapshot.index + 1
        } else {
            self.first
        }
    }

    pub(crate) fn last_index(&self) -> u64 {
        if self.terms.is_empty() {
            self.snapshot.index
        } else {
            self.first + self.terms.len() as u64 - 1
        }
    }

    pub(crate) fn set_hardstate(&mut self, hs: HardState) {
        self.hard_state = hs;
    }

    /// Replaces the log with a snapshot's point (as MemStorage's
    /// `apply_snapshot`).
    pub(crate) fn apply_snapshot(&mut self, mut meta: SnapshotMetadata) -> raft::Result<()> {
        let index = meta.index;
        if self.first_index() > index {
            return Err(Error::Store(StorageError::SnapshotOutOfDate));
        }
        self.hard_state.term = self.hard_state.term.max(meta.term);
        self.hard_state.commit = index;
        self.conf_state = meta.take_conf_state();
        self.snapshot = meta;
        self.terms.clear();
        self.data.clear();
        self.context.clear();
        self.first = index + 1;
        self.shrink();
        Ok(())
    }

    /// Drops the entries before `compact_index` (at most up to the end).
    /// The membership Raft starts from (`Storage::initial_state`).
    pub(crate) fn set_conf_state(&mut self, cs: ConfState) {
        self.conf_state = cs;
    }

    pub(crate) fn compact(&mut self, compact_index: u64) -> raft::Result<()> {
        if compact_index <= self.first_index() {
            return Ok(());
        }
        if compact_index > self.last_index() + 1 {
            panic!(
                "compact not received raft logs: {}, last index: {}",
                compact_index,
                self.last_index()
            );
        }
        let n = (compact_index - self.first) as usize;
        self.terms.drain(..n);
        self.data.drain(..n);
        self.context = self.context.split_off(&compact_index);
        self.first = compact_index;
        self.shrink();
        Ok(())
    }

    /// Capacity back when the queues are under a quarter full.
    fn shrink(&mut self) {
        let len = self.terms.len();
        if self.terms.capacity() > 1024 && len < self.terms.capacity() / 4 {
            self.terms.shrink_to(len * 2);
            self.data.shrink_to(len * 2);
        }
    }

    /// Appends `ents`, replacing any entries from `ents[0].index` on (as
    /// MemStorage's `append`).
    pub(crate) fn append(&mut self, ents: &[Entry]) -> raft::Result<()> {
        let Some(head) = ents.first() else {
            return Ok(());
        };
        if self.first_index() > head.index {
            panic!(
                "overwrite compacted raft logs, compacted: {}, append: {}",
                self.first_index() - 1,
                head.index,
            );
        }
        if self.last_index() + 1 < head.index {
            panic!(
                "raft logs should be continuous, last index: {}, new appended: {}",
                self.last_index(),
                head.index,
            );
        }
        if self.terms.is_empty() {
            self.first = head.index;
        }
        let keep = (head.index - self.first) as usize;
        self.terms.truncate(keep);
        self.data.truncate(keep);
        let _ = self.context.split_off(&head.index);
        for e in ents {
            if self.buf.capacity() < e.data.len() {
                // A new buffer when this entry does not fit; the old one
                // lives while its entries do (so a long append, as a
                // restart's, is not one buffer that any entry keeps alive).
                self.buf = BytesMut::with_capacity(e.data.len().max(CHUNK));
            }
            self.terms.push_back((e.term << 2) | e.entry_type as u64);
            self.buf.extend_from_slice(&e.data);
            self.data.push_back(self.buf.split().freeze());
            if !e.context.is_empty() {
                self.context.insert(e.index, e.context.clone());
            }
        }
        Ok(())
    }

    fn entry(&self, index: u64) -> Entry {
        let at = (index - self.first) as usize;
        let t = self.terms[at];
        let mut e = Entry {
            term: t >> 2,
            index,
            data: self.data[at].clone(),
            ..Default::default()
        };
        e.set_entry_type(match t & 3 {
            0 => EntryType::EntryNormal,
            1 => EntryType::EntryConfChange,
            _ => EntryType::EntryConfChangeV2,
        });
        if let Some(c) = self.context.get(&index) {
            e.context = c.clone();
        }
        e
    }
}

impl raft::Storage for Log {
    fn initial_state(&self) -> raft::Result<RaftState> {
        Ok(RaftState::new(
            self.hard_state.clone(),
            self.conf_state.clone(),
        ))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        if low < self.first_index() {
            return Err(Error::Store(StorageError::Compacted));
        }
        if high > self.last_index() + 1 {
            panic!(
                "index out of bound (last: {}, high: {})",
                self.last_index() + 1,
                high
            );
        }
        // As raft's limit_size: at least one entry, then while the total
        // protobuf size stays within max_size — built only that far.
        let max = max_size.into().unwrap_or(u64::MAX);
        let mut out = Vec::new();
        let mut size = 0u64;
        for i in low..high {
            let e = self.entry(i);
            size += u64::from(protobuf::Message::compute_size(&e));
            if !out.is_empty() && size > max {
                break;
            }
            out.push(e);
        }
        Ok(out)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        if idx == self.snapshot.index {
            return Ok(self.snapshot.term);
        }
        if idx < self.first_index() {
            return Err(Error::Store(StorageError::Compacted));
        }
        if idx > self.last_index() {
            return Err(Error::Store(StorageError::Unavailable));
        }
        Ok(self.terms[(idx - self.first) as usize] >> 2)
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(Log::first_index(self))
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(Log::last_index(self))
    }

    fn snapshot(&self, _request_index: u64, _to: u64) -> raft::Result<raft::prelude::Snapshot> {
        // The node's Store answers snapshots from its durable snapshot.
        Err(Error::Store(StorageError::SnapshotTemporarilyUnavailable))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use raft::storage::{MemStorage, Storage};

    fn ent(index: u64, term: u64, data: &[u8]) -> Entry {
        Entry {
            index,
            term,
            data: Bytes::copy_from_slice(data),
            ..Default::default()
        }
    }

    fn same(a: &Log, b: &MemStorage) {
        let (fa, fb) = (Storage::first_index(a), b.first_index());
        let (la, lb) = (Storage::last_index(a), b.last_index());
        assert_eq!((&fa, &la), (&fb, &lb));
        let (f, l) = (fa.unwrap(), la.unwrap());
        for i in f.saturating_sub(2)..l + 3 {
            assert_eq!(
                format!("{:?}", a.term(i)),
                format!("{:?}", b.term(i)),
                "term({i})"
            );
        }
        // (MemStorage panics on `entries` of an empty log.)
        if l < f {
            return;
        }
        for lo in f.saturating_sub(1)..=l + 1 {
            for hi in lo..=l + 1 {
                for max in [0, 10, 40, u64::MAX] {
                    let ea = a.entries(lo, hi, max, GetEntriesContext::empty(false));
                    let eb = b.entries(lo, hi, max, GetEntriesContext::empty(false));
                    assert_eq!(
                        format!("{ea:?}"),
                        format!("{eb:?}"),
                        "entries({lo}, {hi}, {max})"
                    );
                }
            }
        }
    }

    proptest::proptest! {
        /// Any sequence of appends (overwriting or not), compactions and
        /// snapshots leaves it answering as raft's MemStorage does.
        #[test]
        fn answers_as_mem_storage(ops in proptest::collection::vec((0u8..4, 0u64..12, 1usize..5, 0usize..30), 1..25)) {
            let a = &mut Log::new(ConfState::default());
            let b = MemStorage::new();
            let mut term = 1;
            for (op, at, n, len) in ops {
                let (first, last) = (a.first_index(), a.last_index());
                match op {
                    0 | 1 => {
                        // Append from anywhere in [first, last + 1].
                        let from = first + at % (last + 2 - first);
                        term += 1;
                        let ents: Vec<Entry> = (0..n as u64)
                            .map(|i| ent(from + i, term, &vec![i as u8; len]))
                            .collect();
                        a.append(&ents).unwrap();
                        b.wl().append(&ents).unwrap();
                    }
                    2 => {
                        let to = first + at % (last + 2 - first);
                        a.compact(to).unwrap();
                        b.wl().compact(to).unwrap();
                    }
                    _ => {
                        let mut meta = SnapshotMetadata::default();
                        meta.index = last + at % 3;
                        meta.term = term;
                        let mut s = raft::prelude::Snapshot::default();
                        s.set_metadata(meta.clone());
                        proptest::prop_assert_eq!(
                            a.apply_snapshot(meta).is_ok(),
                            b.wl().apply_snapshot(s).is_ok()
                        );
                    }
                }
                same(a, &b);
            }
        }
    }
}
