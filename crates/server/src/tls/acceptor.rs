//! The TLS side of the secure client port: the rustls configuration made
//! from `TlsSettings` (built once at startup, so a bad store stops the
//! server with the reason) and the handshake of one connection, which
//! yields the client's identities (`x509`, and `super` for the configured
//! super user) as ZooKeeper's `X509AuthenticationProvider` grants them.

use std::sync::Arc;

use proto::Id;
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use super::settings::TlsSettings;
use super::{dn, rustls_config};

pub struct Acceptor {
    inner: tokio_rustls::TlsAcceptor,
    /// `authProvider.x509` is configured: certificates give identities.
    x509: bool,
    super_user: Option<String>,
}

impl Acceptor {
    pub fn new(t: &TlsSettings) -> Result<Acceptor, String> {
        let config = rustls_config::server(&t.ssl, t.ssl.client_auth)?;
        Ok(Acceptor {
            inner: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            x509: t.x509_acls,
            super_user: t.x509_super_user.clone(),
        })
    }

    /// The handshake; on success the stream and the identities its
    /// certificate gives, else why it failed (for the log line).
    pub async fn accept(&self, sock: TcpStream) -> Result<(TlsStream<TcpStream>, Vec<Id>), String> {
        let stream = self.inner.accept(sock).await.map_err(|e| describe(&e))?;
        let mut ids = Vec::new();
        let subject = stream
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .and_then(|c| dn::subject(c));
        if let (true, Some(dn)) = (self.x509, subject) {
            let is_super = self.super_user.as_deref() == Some(dn.as_str());
            ids.push(Id {
                scheme: "x509".into(),
                id: dn.clone(),
            });
            // After the x509 identity: whoami lists super first, as ZooKeeper's.
            if is_super {
                ids.push(Id {
                    scheme: "super".into(),
                    id: dn,
                });
            }
        }
        Ok((stream, ids))
    }
}

/// Why a handshake failed, in words an operator can act on.
pub fn describe(e: &std::io::Error) -> String {
    let inner = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>());
    match inner {
        Some(rustls::Error::InvalidMessage(_)) | Some(rustls::Error::InappropriateMessage { .. }) => {
            "not a TLS client (a plaintext client on the secure port?)".into()
        }
        Some(rustls::Error::NoCertificatesPresented) => {
            "the client sent no certificate, and ssl.clientAuth=need requires one (an empty chain: the client holds none our trust store's CAs signed)".into()
        }
        Some(rustls::Error::InvalidCertificate(c)) => {
            format!("the client's certificate is refused: {c:?}")
        }
        Some(other) => other.to_string(),
        None => e.to_string(),
    }
}
