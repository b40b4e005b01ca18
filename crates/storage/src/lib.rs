//! Durable storage: the Raft log as checksummed segment files in
//! dataLogDir (`wal`), snapshots of the state machine in dataDir and
//! purging of old ones (`snap`), and the lock a server holds on both
//! directories (`lock`). Knows nothing of the tree, tokio or
//! sockets: a snapshot body is bytes to it.

pub mod lock;
pub mod snap;
pub mod wal;

pub use lock::{DirLock, LockError};
pub use snap::{SnapError, SnapshotMeta};
pub use wal::{Recovered, TornTail, Wal, WalError, WalOptions};
