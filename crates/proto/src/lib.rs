//! The ZooKeeper client wire protocol: the jute encoding, the records of
//! `zookeeper.jute`, op codes, error codes and framing — and ZooKeeper's
//! facts that every other crate needs once: the path rules and system
//! paths (`path`), each op's name and class (`op`), the ensemble
//! membership's text as `/zookeeper/config` and reconfig carry it
//! (`members`).
//!
//! Owns: bytes <-> typed records. Does not own: any I/O, sockets, time or
//! the tree's semantics (that is the `tree` crate).
//!
//! Invariants: every record round-trips (`decode(encode(r)) == r`); decoding
//! never panics on any input and never allocates more than the input could
//! describe (lengths are checked against the remaining bytes first).

pub mod codec;
pub mod consts;
pub mod frame;
pub mod members;
pub mod op;
pub mod path;
pub mod records;
pub mod request;
pub mod time;

pub use codec::{DecodeError, Jute, Reader};
pub use consts::{
    AddWatchMode, CreateMode, ErrorCode, EventType, KeeperState, OpCode, Perms, WatcherType, Xid,
};
pub use records::*;
pub use request::{MultiOp, Request};
pub use time::java_date;
