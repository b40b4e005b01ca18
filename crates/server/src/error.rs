//! Why a server did not start: each failure its own variant, with what
//! an operator needs to fix it (the file, the key, the port, the holder).

use crate::config::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("cannot bind the {what} port {addr}: {source}")]
    Bind {
        what: &'static str,
        addr: String,
        source: std::io::Error,
    },
    #[error("{what} {path}: {source}")]
    Dir {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {msg}")]
    Myid { path: String, msg: String },
    #[error("{file}: server.{id}: {msg}")]
    Address { file: String, id: u64, msg: String },
    #[error("{0}")]
    ClientPort(String),
    /// TLS on the client port: a store or a setting that cannot be used.
    #[error("TLS: {0}")]
    Tls(String),
    /// The JAAS file named by `-Djava.security.auth.login.config`.
    #[error("{0}")]
    Jaas(String),
    #[error("raft: {0}")]
    Node(#[from] node::NodeError),
    #[error("{0}")]
    Storage(#[from] storage::WalError),
    #[error("{0}")]
    Snapshot(#[from] storage::SnapError),
    #[error("{0}")]
    Lock(#[from] storage::LockError),
    #[error("taking over ZooKeeper's data: {0}; nothing was changed, ZooKeeper's files are as they were")]
    Takeover(String),
    #[error("cannot start the storage thread: {0}")]
    Thread(std::io::Error),
}
