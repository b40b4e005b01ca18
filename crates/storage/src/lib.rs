//! Durable storage: the Raft log as checksummed segment files in
//! dataLogDir (`wal`), snapshots of the state machine in dataDir and
//! purging of old ones (`snap`). Knows nothing of the tree, tokio or
//! sockets: a snapshot body is bytes to it.

pub mod snap;
pub mod wal;

pub use snap::{SnapError, SnapshotMeta};
pub use wal::{Recovered, TornTail, Wal, WalError, WalOptions};
