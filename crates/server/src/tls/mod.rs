//! TLS on the client port (`secureClientPort`), configured as ZooKeeper
//! 3.8's: the settings (`settings`), the key and trust stores (`stores`),
//! the rustls acceptor and a client's certificate identity (`acceptor`,
//! `dn`).

mod acceptor;
mod dn;
pub mod settings;
mod stores;

pub use acceptor::Acceptor;
pub use settings::TlsSettings;
