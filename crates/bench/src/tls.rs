//! The bench's TLS client, to measure what TLS costs a server: a rustls
//! client configuration from PEM files (the CA that signed the server's
//! certificate, and the client's own certificate and key when the server
//! asks for one, as ZooKeeper's `ssl.clientAuth=need` does).

use std::path::Path;
use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;

#[derive(Clone)]
pub struct TlsClient {
    connector: tokio_rustls::TlsConnector,
}

impl std::fmt::Debug for TlsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsClient")
    }
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    CertificateDer::pem_file_iter(path)
        .and_then(|i| i.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))
}

impl TlsClient {
    pub fn new(ca: &Path, cert: Option<&Path>, key: Option<&Path>) -> Result<TlsClient, String> {
        let mut roots = rustls::RootCertStore::empty();
        for c in certs(ca)? {
            roots.add(c).map_err(|e| format!("{}: {e}", ca.display()))?;
        }
        // ring, as the server (see server::tls::acceptor).
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots);
        let config = match (cert, key) {
            (Some(cert), Some(key)) => builder
                .with_client_auth_cert(
                    certs(cert)?,
                    PrivateKeyDer::from_pem_file(key)
                        .map_err(|e| format!("{}: {e}", key.display()))?,
                )
                .map_err(|e| e.to_string())?,
            (None, None) => builder.with_no_client_auth(),
            _ => return Err("--tls-cert and --tls-key go together".into()),
        };
        Ok(TlsClient {
            connector: tokio_rustls::TlsConnector::from(Arc::new(config)),
        })
    }

    /// A TLS stream to `server` ("host:port"), its certificate checked
    /// for that host.
    pub async fn connect(
        &self,
        server: &str,
        sock: TcpStream,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let host = server.rsplit_once(':').map_or(server, |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(host.to_string())
            .map_err(|e| std::io::Error::other(format!("{host}: {e}")))?;
        self.connector.connect(name, sock).await
    }
}
