//! What zoo.cfg and the `-Dzookeeper.` flags say about TLS on the client
//! port, under ZooKeeper 3.8's names (`ClientX509Util`'s `zookeeper.ssl.*`
//! properties, `secureClientPort`, `authProvider.x509`), parsed into
//! `TlsSettings`; the stores they name are read by `stores`.

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

/// A key or trust store: `ssl.keyStore.*` or `ssl.trustStore.*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreSettings {
    /// `.location`: the file.
    pub location: Option<PathBuf>,
    /// `.password`, or the content of the `.passwordPath` file.
    pub password: Option<String>,
    /// `.passwordPath`: read when the store is loaded.
    pub password_path: Option<PathBuf>,
    /// `.type`: JKS, PKCS12 or PEM (none: from the file's extension).
    pub kind: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsSettings {
    /// `secureClientPort`: TLS clients are served there.
    pub secure_client_port: Option<u16>,
    /// `secureClientPortAddress` (None: every address).
    pub secure_client_port_address: Option<IpAddr>,
    pub key_store: StoreSettings,
    pub trust_store: StoreSettings,
    pub client_auth: ClientAuth,
    /// `ssl.protocol` (ZooKeeper 3.8's default, TLSv1.2, when unset).
    pub protocol: Option<String>,
    /// `ssl.enabledProtocols` (default: `ssl.protocol` when that is set,
    /// else TLS 1.2 and 1.3).
    pub enabled_protocols: Vec<String>,
    /// `ssl.ciphersuites`, in Java's names (default: every suite of ours).
    pub cipher_suites: Vec<String>,
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
}

impl Default for TlsSettings {
    fn default() -> TlsSettings {
        TlsSettings {
            secure_client_port: None,
            secure_client_port_address: None,
            key_store: StoreSettings::default(),
            trust_store: StoreSettings::default(),
            client_auth: ClientAuth::default(),
            protocol: None,
            enabled_protocols: Vec::new(),
            cipher_suites: Vec::new(),
            x509_acls: false,
            x509_super_user: None,
            cert_reload: true,
            port_unification: false,
        }
    }
}

impl TlsSettings {
    /// Takes a key that belongs to TLS (the `zookeeper.` prefix already
    /// gone): None when it is not one of ours, else whether its value is
    /// good (the error says what is wrong with it).
    pub fn set(&mut self, key: &str, v: &str) -> Option<Result<(), String>> {
        let path = || (!v.is_empty()).then(|| PathBuf::from(v));
        let list = || {
            v.split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
        };
        match key {
            "secureClientPort" => {
                return Some(match v.parse::<u16>() {
                    Ok(p) => {
                        self.secure_client_port = (p != 0).then_some(p);
                        Ok(())
                    }
                    Err(_) => Err(format!("'{v}' is not a port number (0-65535)")),
                })
            }
            "secureClientPortAddress" => {
                return Some(crate::config::parse_ip(v).map(|a| {
                    self.secure_client_port_address = Some(a);
                }))
            }
            "ssl.keyStore.location" => self.key_store.location = path(),
            "ssl.keyStore.password" => self.key_store.password = Some(v.to_string()),
            "ssl.keyStore.passwordPath" => self.key_store.password_path = path(),
            "ssl.keyStore.type" => self.key_store.kind = (!v.is_empty()).then(|| v.to_string()),
            "ssl.trustStore.location" => self.trust_store.location = path(),
            "ssl.trustStore.password" => self.trust_store.password = Some(v.to_string()),
            "ssl.trustStore.passwordPath" => self.trust_store.password_path = path(),
            "ssl.trustStore.type" => self.trust_store.kind = (!v.is_empty()).then(|| v.to_string()),
            "ssl.clientAuth" => {
                // X509Util.ClientAuth.fromPropertyValue: case-insensitive,
                // empty means the default.
                self.client_auth = match v.to_ascii_lowercase().as_str() {
                    "" | "need" => ClientAuth::Need,
                    "want" => ClientAuth::Want,
                    "none" => ClientAuth::None,
                    _ => return Some(Err(format!("'{v}' is not need, want or none"))),
                }
            }
            "ssl.protocol" => self.protocol = (!v.is_empty()).then(|| v.to_string()),
            "ssl.enabledProtocols" => self.enabled_protocols = list(),
            "ssl.ciphersuites" => self.cipher_suites = list(),
            "client.certReload" => match boolean(v) {
                Ok(b) => self.cert_reload = b,
                Err(e) => return Some(Err(e)),
            },
            "client.portUnification" => match boolean(v) {
                Ok(b) => self.port_unification = b,
                Err(e) => return Some(Err(e)),
            },
            "X509AuthenticationProvider.superUser" => {
                self.x509_super_user = (!v.is_empty()).then(|| v.to_string())
            }
            _ => return None,
        }
        Some(Ok(()))
    }

    /// Whether TLS clients are served: a secure port, or TLS on the
    /// client port too.
    pub fn enabled(&self) -> bool {
        self.secure_client_port.is_some() || self.port_unification
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
        ] {
            assert_eq!(t.set(k, v), Some(Ok(())), "{k}");
        }
        assert!(t.enabled());
        assert_eq!(t.secure_client_port, Some(2281));
        assert_eq!(t.client_auth, ClientAuth::Want);
        assert_eq!(t.enabled_protocols, ["TLSv1.2", "TLSv1.3"]);
        assert_eq!(t.trust_store.password.as_deref(), Some("pw"));
        assert_eq!(t.x509_super_user.as_deref(), Some("CN=admin"));
        assert!(t.set("ssl.clientAuth", "sometimes").unwrap().is_err());
        assert!(t.set("secureClientPort", "99999").unwrap().is_err());
        assert_eq!(t.set("ssl.quorum.keyStore.location", "/x"), None);
        assert_eq!(t.set("tickTime", "2000"), None);
    }
}
