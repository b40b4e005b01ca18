//! Durable storage: the Raft log as checksummed segment files in
//! dataLogDir (`wal`). Knows nothing of the tree, tokio or sockets.

pub mod wal;

pub use wal::{Recovered, TornTail, Wal, WalError, WalOptions};
