//! rustls configurations made from one `SslSettings` (the client port's
//! `ssl.*` or the servers' `ssl.quorum.*`): the protocols and cipher
//! suites, a server's (its certificate, and how it checks the other
//! end's), and a dialling server's (its certificate, and the host name it
//! dialled checked in the other's, unless `hostnameVerification=false`).
//! Built at startup, so a store that cannot be used stops the server with
//! the reason.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{
    ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme,
    SupportedProtocolVersion,
};

use super::settings::{ClientAuth, SslSettings};
use super::stores;

/// Java's protocol names to rustls's versions.
fn versions(t: &SslSettings) -> Result<Vec<&'static SupportedProtocolVersion>, String> {
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
fn provider(t: &SslSettings) -> Result<CryptoProvider, String> {
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

fn roots(s: &SslSettings) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for c in stores::load_trust(&s.trust_store)? {
        roots.add(c).map_err(|e| {
            format!(
                "{}.location {}: a certificate in it cannot be a trust anchor: {e}",
                s.trust_store.key,
                s.trust_store
                    .location
                    .as_deref()
                    .unwrap_or("".as_ref())
                    .display()
            )
        })?;
    }
    Ok(roots)
}

fn key_error(s: &SslSettings, e: rustls::Error) -> String {
    format!(
        "{}.location {}: the key does not go with the certificate, or cannot be used: {e}",
        s.key_store.key,
        s.key_store
            .location
            .as_deref()
            .unwrap_or("".as_ref())
            .display()
    )
}

/// The accepting end: its certificate, and the other end's checked
/// against the trust store as `client_auth` says (the settings' own
/// `clientAuth`, or none for the AdminServer, as ZooKeeper's Jetty).
pub fn server(s: &SslSettings, client_auth: ClientAuth) -> Result<ServerConfig, String> {
    let provider = Arc::new(provider(s)?);
    let identity = stores::load_identity(&s.key_store)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions(s)?)
        .map_err(|e| format!("TLS settings: {e}"))?;
    let builder = match client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        auth => {
            let v = WebPkiClientVerifier::builder_with_provider(Arc::new(roots(s)?), provider);
            let v = if auth == ClientAuth::Want {
                v.allow_unauthenticated()
            } else {
                v
            };
            builder.with_client_cert_verifier(
                v.build()
                    .map_err(|e| format!("{}: {e}", s.trust_store.key))?,
            )
        }
    };
    builder
        .with_single_cert(identity.chain, identity.key)
        .map_err(|e| key_error(s, e))
}

/// A server's certificate checked against the trust store, its name not
/// (`hostnameVerification=false`).
#[derive(Debug)]
struct AnyName(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for AnyName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
        {
            Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName))
            | Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls12_signature(message, cert, dss)
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.0.verify_tls13_signature(message, cert, dss)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

/// The dialling end (a server connecting to another): its certificate
/// for the other's `clientAuth`, and the other's checked against the
/// trust store and, unless `hostnameVerification=false`, for the host it
/// was dialled at.
pub fn client(s: &SslSettings) -> Result<ClientConfig, String> {
    let provider = Arc::new(provider(s)?);
    let identity = stores::load_identity(&s.key_store)?;
    let verifier =
        WebPkiServerVerifier::builder_with_provider(Arc::new(roots(s)?), provider.clone())
            .build()
            .map_err(|e| format!("{}: {e}", s.trust_store.key))?;
    let builder = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions(s)?)
        .map_err(|e| format!("TLS settings: {e}"))?;
    let builder = if s.hostname_verification {
        builder.with_webpki_verifier(verifier)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyName(verifier)))
    };
    builder
        .with_client_auth_cert(identity.chain, identity.key)
        .map_err(|e| key_error(s, e))
}
