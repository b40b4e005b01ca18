//! The messages the server's tasks pass each other over their bounded
//! channels, and the bounds: what the core task takes in (`CoreInput`,
//! from connections, peers, storage and the HTTP endpoints) and what it
//! sends a connection (`ToConn`). A leaf: it names no task.

use std::net::SocketAddr;

use tokio::sync::mpsc;

/// Inputs of the core task; bounded (see `CORE_QUEUE`).
pub(crate) enum CoreInput {
    Connect {
        conn: u64,
        req: proto::ConnectRequest,
        addr: SocketAddr,
        /// Identities the transport established (a TLS client's certificate).
        ids: Vec<proto::Id>,
        tx: mpsc::Sender<ToConn>,
    },
    Request {
        conn: u64,
        xid: i32,
        op: i32,
        /// The frame after its header, not copied out of the read buffer.
        body: bytes::Bytes,
        /// When the connection read it (the latency budget's start).
        read_at: std::time::Instant,
    },
    Disconnect {
        conn: u64,
    },
    FourLetter {
        cmd: String,
        /// The connection asking: cons and dump list it.
        from: SocketAddr,
        reply: tokio::sync::oneshot::Sender<String>,
    },
    /// A Raft message from a peer.
    Peer(Box<raft::prelude::Message>),
    /// A peer's report of sessions alive on it.
    Liveness(Vec<i64>),
    /// The connection from or to this peer broke.
    PeerLost(u64),
    /// A server that is not a member called in and named where it
    /// listens (`peer::ask_address`): a would-be non-voting follower.
    Joiner(crate::peer::PeerAddr),
    /// Our connection to this peer is up (dialed, greeted); `quorum`: the
    /// one on its quorum port, which carries appends and heartbeats (the
    /// other carries votes).
    PeerUp {
        peer: u64,
        quorum: bool,
    },
    /// The leader's snapshot arrived whole and is durable here.
    InstallSnapshot {
        msg: Box<raft::prelude::Message>,
        state: Box<tree::StateMachine>,
    },
    /// An AdminServer command (a resolved name).
    Admin {
        cmd: &'static str,
        reply: tokio::sync::oneshot::Sender<serde_json::Value>,
    },
    /// A Prometheus scrape.
    Metrics {
        reply: tokio::sync::oneshot::Sender<String>,
    },
    /// Stopping: a leader hands leadership to another voter first; the
    /// reply comes once another server leads and this one's clients have
    /// their answers, or the hand-off gave up.
    HandOff {
        reply: tokio::sync::oneshot::Sender<()>,
    },
    /// The ACL of `/` (who may run the AdminServer's guarded commands).
    RootAcl {
        reply: tokio::sync::oneshot::Sender<Vec<proto::Acl>>,
    },
    /// Move leadership to server `to` (the AdminServer's
    /// `transfer_leadership`); the answer is the leader once it leads.
    TransferLeader {
        to: u64,
        reply: tokio::sync::oneshot::Sender<Result<u64, String>>,
    },
    /// The AdminServer's snapshot and restore commands.
    Backup(crate::admin_backup::BackupAsk),
    /// A snapshot transfer this leader started ended.
    SnapshotSent {
        peer: u64,
        ok: bool,
    },
}

/// Requests queued for the core task before connections wait.
pub(crate) const CORE_QUEUE: usize = 8192;

/// Frames queued for one connection before it counts as too slow and is closed.
pub(crate) const CONN_QUEUE: usize = 4096;

pub(crate) enum ToConn {
    /// A frame to write; `reply` when it answers one of the connection's
    /// requests (not the connect response, not a watch event).
    Frame {
        frame: Vec<u8>,
        reply: bool,
        /// When the core handed it over (`budget`'s `to_socket`).
        at: std::time::Instant,
    },
    Close(&'static str),
}
