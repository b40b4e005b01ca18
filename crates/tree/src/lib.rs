//! The replicated state machine: ZooKeeper's DataTree, the session table
//! and the log entry they are changed by, plus the (per-server, not
//! replicated) watch registry.
//!
//! Owns: znodes, Stat bookkeeping, ACL evaluation, ephemerals per session,
//! sequential names, containers and TTL nodes, the meaning of every op.
//! Does not own: I/O, clocks, randomness, connections, Raft.
//!
//! Invariant: `StateMachine::apply` is deterministic — the same entries in
//! the same order give the same tree, the same replies and the same watch
//! triggers on every replica. Time arrives inside the entry.

pub mod acl;
pub mod acl_ip;
pub mod apply;
pub mod datatree;
pub mod entry;
pub mod handback;
pub use proto::path;
pub mod read;
pub mod reply;
pub mod snapshot;
pub mod takeover;
pub mod watches;
pub mod zk_restore;

pub use acl::{digest, AuthId};
pub use apply::{Applied, Session, SessionEffect, StateMachine, TreeConfig};
pub use datatree::{Children, DataTree, Trigger, TriggerKind, Znode};
pub use entry::{Entry, EntryKind};
pub use reply::{MultiResult, Reply};
pub use snapshot::Frozen;
pub use watches::{ConnId, WatchRegistry};
