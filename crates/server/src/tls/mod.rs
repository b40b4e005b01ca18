//! TLS on the client port (`secureClientPort`), configured as ZooKeeper
//! 3.8's: the settings (`settings`), the key and trust stores (`stores`,
//! `jks`),
//! the rustls acceptor and a client's certificate identity (`acceptor`,
//! `dn`), and its reload when the files change (`reload`).

mod acceptor;
mod dn;
mod jks;
pub mod reload;
pub mod settings;
mod stores;

pub use acceptor::Acceptor;
pub use reload::Current;
pub use settings::TlsSettings;
