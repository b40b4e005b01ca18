//! The TLS side of the secure client port: the rustls configuration made
//! from `TlsSettings` (built once at startup, so a bad store stops the
//! server with the reason) and the handshake of one connection, which
//! yields the client's identities (`x509`, and `super` for the configured
//! super user) as ZooKeeper's `X509AuthenticationProvider` grants them.

use std::sync::Arc;

use proto::Id;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use super::settings::{ClientAuth, TlsSettings};
use super::{dn, stores};

pub struct Acceptor {
    inner: tokio_rustls::TlsAcceptor,
    /// `authProvider.x509` is configured: certificates give identities.
    x509: bool,
    super_user: Option<String>,
}

/// Java's protocol names to rustls's versions.
fn versions(t: &TlsSettings) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
    let named: Vec<String> = if !t.enabled_protocols.is_empty() {
        t.enabled_protocols.clone()
    } else if let Some(p) = &t.protocol {
        vec![p.clone()]
    } else {
        // ZooKeeper 3.8 speaks TLSv1.2 only; 1.3 is offered as well.
        vec!["TLSv1.2".into(), "TLSv1.3".into()]
    };
    let mut out = Vec::new();
    for p in &named {
        let v = match p.as_str() {
            "TLSv1.2" => &rustls::version::TLS12,
            "TLSv1.3" => &rustls::version::TLS13,
            // Java's "TLS" means the newest it has.
            "TLS" => &rustls::version::TLS13,
            other => {
                return Err(format!(
                    "ssl.enabledProtocols/ssl.protocol: {other} is not supported (TLSv1.2, TLSv1.3)"
                ))
            }
        };
        if !out.contains(&v) {
            out.push(v);
        }
    }
    Ok(out)
}

/// The crypto provider with `ssl.ciphersuites` applied (Java's names;
/// TLS 1.3's `TLS_AES_128_GCM_SHA256` is rustls's `TLS13_AES_128_GCM_SHA256`).
fn provider(t: &TlsSettings) -> Result<CryptoProvider, String> {
    // ring, not aws-lc-rs: no C toolchain beyond cc to build it, and the
    // clients of ZooKeeper (Java 17, OpenSSL 3.0) offer no post-quantum key
    // exchange, which is all rustls's deprecation note is about.
    #[allow(deprecated)]
    let mut p = rustls::crypto::ring::default_provider();
    if t.cipher_suites.is_empty() {
        return Ok(p);
    }
    let java_name =
        |s: &rustls::SupportedCipherSuite| format!("{:?}", s.suite()).replacen("TLS13_", "TLS_", 1);
    let known: Vec<String> = p.cipher_suites.iter().map(java_name).collect();
    p.cipher_suites
        .retain(|s| t.cipher_suites.contains(&java_name(s)));
    if p.cipher_suites.is_empty() {
        return Err(format!(
            "ssl.ciphersuites: none of {} is supported; supported: {}",
            t.cipher_suites.join(","),
            known.join(",")
        ));
    }
    Ok(p)
}

impl Acceptor {
    pub fn new(t: &TlsSettings) -> Result<Acceptor, String> {
        let provider = Arc::new(provider(t)?);
        let identity = stores::load_identity(&t.key_store)?;
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions(t)?)
            .map_err(|e| format!("TLS settings: {e}"))?;
        let builder = match t.client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            auth => {
                let mut roots = RootCertStore::empty();
                for c in stores::load_trust(&t.trust_store)? {
                    roots.add(c).map_err(|e| {
                        format!(
                            "ssl.trustStore.location {}: a certificate in it cannot be a trust anchor: {e}",
                            t.trust_store.location.as_deref().unwrap_or("".as_ref()).display()
                        )
                    })?;
                }
                let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let v = if auth == ClientAuth::Want {
                    v.allow_unauthenticated()
                } else {
                    v
                };
                builder.with_client_cert_verifier(
                    v.build().map_err(|e| format!("ssl.trustStore: {e}"))?,
                )
            }
        };
        let config = builder
            .with_single_cert(identity.chain, identity.key)
            .map_err(|e| {
                format!(
                    "ssl.keyStore.location {}: the key does not go with the certificate, or cannot be used: {e}",
                    t.key_store.location.as_deref().unwrap_or("".as_ref()).display()
                )
            })?;
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
fn describe(e: &std::io::Error) -> String {
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
