//! The storage Raft reads: the in-memory log (`log::Log`) and the metadata
//! of this replica's newest durable snapshot.

use super::*;

/// The log Raft reads, plus the metadata of this replica's newest durable
/// snapshot, which is what a leader offers a replica that needs compacted
/// entries.
pub(crate) struct Store {
    pub(crate) mem: Log,
    pub(crate) snap: Option<SnapshotMetadata>,
}

impl raft::Storage for Store {
    fn initial_state(&self) -> raft::Result<raft::RaftState> {
        self.mem.initial_state()
    }
    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: raft::GetEntriesContext,
    ) -> raft::Result<Vec<RaftEntry>> {
        self.mem.entries(low, high, max_size, context)
    }
    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.mem.term(idx)
    }
    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.mem.first_index())
    }
    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.mem.last_index())
    }
    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        match &self.snap {
            Some(m) if m.index >= request_index => {
                let mut s = Snapshot::default();
                s.set_metadata(m.clone());
                Ok(s)
            }
            _ => Err(raft::Error::Store(
                raft::StorageError::SnapshotTemporarilyUnavailable,
            )),
        }
    }
}
