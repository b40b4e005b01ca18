//! TLS on the client port (`secureClientPort`), configured as ZooKeeper
//! 3.8's: the settings (`settings`), the key and trust stores (`stores`,
//! `jks`),
//! the rustls acceptor and a client's certificate identity (`acceptor`,
//! `dn`).

mod acceptor;
mod dn;
mod jks;
pub mod settings;
mod stores;

pub use acceptor::Acceptor;
pub use settings::TlsSettings;
