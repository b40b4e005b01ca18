//! What zoo.cfg and the `-Dzookeeper.` flags say about TLS, under
//! ZooKeeper 3.8's names: the client port's (`ClientX509Util`'s
//! `zookeeper.ssl.*`, `secureClientPort`, `client.portUnification`,
//! `authProvider.x509`) and the servers' among themselves
//! (`QuorumX509Util`'s `zookeeper.ssl.quorum.*`, `sslQuorum`,
//! `portUnification`), parsed into `TlsSettings`; the stores they name are
//! read by `stores`.

use std::net::IpAddr;
use std::path::PathBuf;

/// `ssl.clientAuth`: whether the server asks TLS clients for a
/// certificate (ZooKeeper's default: `need`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    #[default]
    Need,
    Want,
    None,
}

/// A key or trust store: `ssl.keyStore.*` or `ssl.trustStore.*` (or their
/// `ssl.quorum.` forms).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreSettings {
    /// The keys' common part, for messages: `ssl.keyStore`, `ssl.quorum.trustStore`, ...
    pub key: &'static str,
    /// `.location`: the file.
    pub location: Option<PathBuf>,
    /// `.password`, or the content of the `.passwordPath` file.
    pub password: Option<String>,
    /// `.passwordPath`: read when the store is loaded.
    pub password_path: Option<PathBuf>,
    /// `.type`: JKS, PKCS12 or PEM (none: from the file's extension).
    pub kind: Option<String>,
}

/// The settings of one of ZooKeeper's `X509Util`s: `ssl.*` for the
/// client port, `ssl.quorum.*` between servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SslSettings {
    pub key_store: StoreSettings,
    pub trust_store: StoreSettings,
    pub client_auth: ClientAuth,
    /// `.protocol` (ZooKeeper 3.8's default, TLSv1.2, when unset).
    pub protocol: Option<String>,
    /// `.enabledProtocols` (default: `.protocol` when that is set, else
    /// TLS 1.2 and 1.3).
    pub enabled_protocols: Vec<String>,
    /// `.ciphersuites`, in Java's names (default: every suite of ours).
    pub cipher_suites: Vec<String>,
    /// `.hostnameVerification` (default true): a server's certificate
    /// must name the host it was dialled at.
    pub hostname_verification: bool,
}

impl SslSettings {
    fn new(quorum: bool) -> SslSettings {
        let (k, t) = if quorum {
            ("ssl.quorum.keyStore", "ssl.quorum.trustStore")
        } else {
            ("ssl.keyStore", "ssl.trustStore")
        };
        SslSettings {
            key_store: StoreSettings {
                key: k,
                ..Default::default()
            },
            trust_store: StoreSettings {
                key: t,
                ..Default::default()
            },
            client_auth: ClientAuth::Need,
            protocol: None,
            enabled_protocols: Vec::new(),
            cipher_suites: Vec::new(),
            hostname_verification: true,
        }
    }

    /// `sub`: the key after `ssl.` or `ssl.quorum.`.
    fn set(&mut self, sub: &str, v: &str) -> Option<Result<(), String>> {
        let path = || (!v.is_empty()).then(|| PathBuf::from(v));
        let text = || (!v.is_empty()).then(|| v.to_string());
        let list = || {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
        };
        match sub {
            "keyStore.location" => self.key_store.location = path(),
            "keyStore.password" => self.key_store.password = Some(v.to_string()),
            "keyStore.passwordPath" => self.key_store.password_path = path(),
            "keyStore.type" => self.key_store.kind = text(),
            "trustStore.location" => self.trust_store.location = path(),
            "trustStore.password" => self.trust_store.password = Some(v.to_string()),
            "trustStore.passwordPath" => self.trust_store.password_path = path(),
            "trustStore.type" => self.trust_store.kind = text(),
            "clientAuth" => {
                // X509Util.ClientAuth.fromPropertyValue: case-insensitive,
                // empty means the default.
                self.client_auth = match v.to_ascii_lowercase().as_str() {
                    "" | "need" => ClientAuth::Need,
                    "want" => ClientAuth::Want,
                    "none" => ClientAuth::None,
                    _ => return Some(Err(format!("'{v}' is not need, want or none"))),
                }
            }
            "protocol" => self.protocol = text(),
            "enabledProtocols" => self.enabled_protocols = list(),
            "ciphersuites" => self.cipher_suites = list(),
            "hostnameVerification" => match boolean(v) {
                Ok(b) => self.hostname_verification = b,
                Err(e) => return Some(Err(e)),
            },
            _ => return None,
        }
        Some(Ok(()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// `secureClientPort`: TLS clients are served there.
    pub secure_client_port: Option<u16>,
    /// `secureClientPortAddress` (None: every address).
    pub secure_client_port_address: Option<IpAddr>,
    /// `ssl.*`: the client port's stores and options.
    pub ssl: SslSettings,
    /// `authProvider.N=...X509AuthenticationProvider`: a TLS client's
    /// certificate gives it an `x509:<subject DN>` identity, and `x509`
    /// ACLs are accepted.
    pub x509_acls: bool,
    /// `zookeeper.X509AuthenticationProvider.superUser`: the subject DN
    /// that is super.
    pub x509_super_user: Option<String>,
    /// `client.certReload` (ZooKeeper 3.9; its default is false, ours
    /// true): changed store files are used without a restart (`reload`).
    pub cert_reload: bool,
    /// `client.portUnification`: the plaintext client port takes TLS
    /// clients too (a rolling switch of clients to TLS).
    pub port_unification: bool,
    /// `ssl.quorum.*`: the stores and options between servers.
    pub quorum: SslSettings,
    /// `sslQuorum`: servers dial each other over TLS.
    pub ssl_quorum: bool,
    /// `portUnification`: the quorum and election ports take TLS and
    /// plaintext peers (ZooKeeper's rolling switch to `sslQuorum`).
    pub quorum_port_unification: bool,
    /// `sslQuorumReloadCertFiles` (ZooKeeper's default false, ours true):
    /// changed `ssl.quorum.*` store files are used without a restart.
    pub quorum_cert_reload: bool,
}

impl Default for TlsSettings {
    fn default() -> TlsSettings {
        TlsSettings {
            secure_client_port: None,
            secure_client_port_address: None,
            ssl: SslSettings::new(false),
            x509_acls: false,
            x509_super_user: None,
            cert_reload: true,
            port_unification: false,
            quorum: SslSettings::new(true),
            ssl_quorum: false,
            quorum_port_unification: false,
            quorum_cert_reload: true,
        }
    }
}

impl TlsSettings {
    /// Takes a key that belongs to TLS (the `zookeeper.` prefix already
    /// gone): None when it is not one of ours, else whether its value is
    /// good (the error says what is wrong with it).
    pub fn set(&mut self, key: &str, v: &str) -> Option<Result<(), String>> {
        if let Some(sub) = key.strip_prefix("ssl.quorum.") {
            return self.quorum.set(sub, v);
        }
        if let Some(sub) = key.strip_prefix("ssl.") {
            return self.ssl.set(sub, v);
        }
        let flag = |b: &mut bool| Some(boolean(v).map(|x| *b = x));
        match key {
            "secureClientPort" => Some(match v.parse::<u16>() {
                Ok(p) => {
                    self.secure_client_port = (p != 0).then_some(p);
                    Ok(())
                }
                Err(_) => Err(format!("'{v}' is not a port number (0-65535)")),
            }),
            "secureClientPortAddress" => {
                Some(crate::config::parse_ip(v).map(|a| self.secure_client_port_address = Some(a)))
            }
            "client.certReload" => flag(&mut self.cert_reload),
            "client.portUnification" => flag(&mut self.port_unification),
            "sslQuorum" => flag(&mut self.ssl_quorum),
            "portUnification" => flag(&mut self.quorum_port_unification),
            "sslQuorumReloadCertFiles" => flag(&mut self.quorum_cert_reload),
            "X509AuthenticationProvider.superUser" => {
                self.x509_super_user = (!v.is_empty()).then(|| v.to_string());
                Some(Ok(()))
            }
            _ => None,
        }
    }

    /// Whether TLS clients are served: a secure port, or TLS on the
    /// client port too.
    pub fn enabled(&self) -> bool {
        self.secure_client_port.is_some() || self.port_unification
    }

    /// Whether servers speak TLS among themselves, or accept it.
    pub fn quorum_enabled(&self) -> bool {
        self.ssl_quorum || self.quorum_port_unification
    }
}

/// Java's `Boolean.parseBoolean` would take anything but "true" as false;
/// a typing mistake is better refused.
fn boolean(v: &str) -> Result<bool, String> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" => Ok(true),
        "false" | "no" => Ok(false),
        _ => Err(format!("'{v}' is not true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_zookeepers_and_bad_values_are_named() {
        let mut t = TlsSettings::default();
        for (k, v) in [
            ("secureClientPort", "2281"),
            ("ssl.keyStore.location", "/k.pem"),
            ("ssl.keyStore.type", "PEM"),
            ("ssl.trustStore.location", "/t.p12"),
            ("ssl.trustStore.password", "pw"),
            ("ssl.clientAuth", "WANT"),
            ("ssl.enabledProtocols", "TLSv1.2, TLSv1.3"),
            ("X509AuthenticationProvider.superUser", "CN=admin"),
            ("ssl.quorum.keyStore.location", "/q.p12"),
            ("ssl.quorum.hostnameVerification", "false"),
            ("sslQuorum", "true"),
        ] {
            assert_eq!(t.set(k, v), Some(Ok(())), "{k}");
        }
        assert!(t.enabled() && t.quorum_enabled());
        assert_eq!(t.secure_client_port, Some(2281));
        assert_eq!(t.ssl.client_auth, ClientAuth::Want);
        assert_eq!(t.ssl.enabled_protocols, ["TLSv1.2", "TLSv1.3"]);
        assert_eq!(t.ssl.trust_store.password.as_deref(), Some("pw"));
        assert_eq!(t.x509_super_user.as_deref(), Some("CN=admin"));
        assert_eq!(
            t.quorum.key_store.location.as_deref(),
            Some("/q.p12".as_ref())
        );
        assert_eq!(t.quorum.key_store.key, "ssl.quorum.keyStore");
        assert!(!t.quorum.hostname_verification && t.ssl.hostname_verification);
        assert_eq!(t.ssl.key_store.location.as_deref(), Some("/k.pem".as_ref()));
        assert!(t.set("ssl.clientAuth", "sometimes").unwrap().is_err());
        assert!(t.set("secureClientPort", "99999").unwrap().is_err());
        assert!(t.set("sslQuorum", "maybe").unwrap().is_err());
        assert_eq!(t.set("ssl.crl", "true"), None);
        assert_eq!(t.set("tickTime", "2000"), None);
    }
}
