//! TLS configured as ZooKeeper 3.8's: the settings (`settings`), the key
//! and trust stores (`stores`, `jks`), the rustls configurations
//! (`rustls_config`); for the client port (`secureClientPort`) the
//! acceptor and a client's certificate identity (`acceptor`, `dn`) and
//! its reload when the files change (`reload`). Between servers:
//! `peer_stream`.

mod acceptor;
pub(crate) mod dn;
mod jks;
pub mod reload;
pub mod rustls_config;
pub mod settings;
mod stores;

pub use acceptor::{describe, Acceptor};
pub use reload::Current;
pub use settings::TlsSettings;
