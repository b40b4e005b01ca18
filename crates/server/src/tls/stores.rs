//! Key and trust stores as ZooKeeper 3.8 reads them (`X509Util`,
//! `KeyStoreFileType`): JKS (`jks`), PKCS12 and PEM files, the type named
//! by `ssl.*.type` or else taken from the extension (`.jks`, `.p12`/`.pfx`,
//! `.pem`). Like Java (`keystore.type.compat`), what a file holds decides
//! between JKS and PKCS12: a `.jks` holding PKCS12 — what keytool writes
//! since JDK 9 — is read as PKCS12.
//! Every error names the file and the key that named it.

use std::path::Path;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use super::settings::StoreSettings;

/// A key store's content: the certificate chain (the server's own first)
/// and its private key.
pub struct Identity {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivateKeyDer<'static>,
}

/// The file formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Pem,
    Pkcs12,
    Jks,
}

/// The store's format: what the file holds decides between JKS and
/// PKCS12 (both binary); the type or extension decides PEM.
fn format(path: &Path, kind: Option<&str>, data: &[u8]) -> Result<Format, String> {
    if data.starts_with(&super::jks::MAGIC) {
        return Ok(Format::Jks);
    }
    let declared = match kind.map(|k| k.to_ascii_uppercase()) {
        Some(k) => match k.as_str() {
            "PEM" => Format::Pem,
            "PKCS12" | "JKS" => Format::Pkcs12,
            other => return Err(format!("store type {other} is not supported (JKS, PKCS12 or PEM)")),
        },
        None => match path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .as_deref()
        {
            Some("pem") | Some("crt") => Format::Pem,
            Some("p12") | Some("pfx") | Some("jks") => Format::Pkcs12,
            // KeyStoreFileType.fromFilename: an unknown extension is an error.
            _ => {
                return Err(
                    "cannot tell the store type from the file name (.pem, .p12, .pfx or .jks): set its .type key"
                        .into(),
                )
            }
        },
    };
    // A PEM file named .p12 (or the other way round) is read as what it is.
    let looks_pem = data
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'-');
    Ok(match (declared, looks_pem) {
        (Format::Pkcs12, true) => Format::Pem,
        (Format::Pem, false) if data.first() == Some(&0x30) => Format::Pkcs12,
        (f, _) => f,
    })
}

fn read(settings: &StoreSettings) -> Result<(Vec<u8>, Format, String), String> {
    let what = settings.key;
    let path = settings
        .location
        .as_deref()
        .ok_or_else(|| format!("{what}.location is not set"))?;
    let data = std::fs::read(path)
        .map_err(|e| format!("{what}.location {}: cannot read: {e}", path.display()))?;
    let format = format(path, settings.kind.as_deref(), &data)
        .map_err(|e| format!("{what}.location {}: {e}", path.display()))?;
    let password = match (&settings.password, &settings.password_path) {
        (Some(p), _) => p.clone(),
        (None, Some(file)) => std::fs::read_to_string(file)
            .map_err(|e| format!("{what}.passwordPath {}: cannot read: {e}", file.display()))?
            .trim_end_matches(['\r', '\n'])
            .to_string(),
        (None, None) => String::new(),
    };
    Ok((data, format, password))
}

fn pkcs12(data: &[u8], password: &str) -> Result<p12_keystore::KeyStore, String> {
    p12_keystore::KeyStore::from_pkcs12(data, password, p12_keystore::Pkcs12ImportPolicy::Strict)
        .map_err(|e| format!("not a PKCS12 store this password opens: {e}"))
}

/// An error about the store's file, named by its key and path.
fn located(settings: &StoreSettings, e: String) -> String {
    let path = settings.location.as_deref().unwrap_or(Path::new(""));
    format!("{}.location {}: {e}", settings.key, path.display())
}

/// `ssl.keyStore.*`: the server's certificate chain and key.
pub fn load_identity(settings: &StoreSettings) -> Result<Identity, String> {
    let (data, format, password) = read(settings)?;
    let at = |e: String| located(settings, e);
    match format {
        Format::Pem => {
            if data
                .windows(29)
                .any(|w| w == b"BEGIN ENCRYPTED PRIVATE KEY--")
            {
                return Err(at("encrypted PEM private keys are not supported yet; store the key unencrypted (and the file readable by this server only) or use PKCS12".into()));
            }
            let key = PrivateKeyDer::from_pem_slice(&data)
                .map_err(|e| at(format!("no private key in it: {e}")))?;
            let chain = CertificateDer::pem_slice_iter(&data)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| at(format!("a certificate in it cannot be read: {e}")))?;
            if chain.is_empty() {
                return Err(at("no certificate in it".into()));
            }
            Ok(Identity { chain, key })
        }
        Format::Pkcs12 => {
            let store = pkcs12(&data, &password).map_err(at)?;
            let (_, entry) = store
                .private_key_chain()
                .ok_or_else(|| at("no private key entry in it".into()))?;
            let chain: Vec<CertificateDer<'static>> = entry
                .certs()
                .iter()
                .map(|c| CertificateDer::from(c.as_der().to_vec()))
                .collect();
            if chain.is_empty() {
                return Err(at("its private key has no certificate".into()));
            }
            let key = PrivateKeyDer::try_from(entry.key().as_der().to_vec())
                .map_err(|e| at(format!("its private key cannot be read: {e}")))?;
            Ok(Identity { chain, key })
        }
        Format::Jks => {
            let store = super::jks::parse(&data, &password).map_err(at)?;
            let Some((key, chain)) = store.keys.into_iter().next() else {
                return Err(at("no private key entry in it".into()));
            };
            if chain.is_empty() {
                return Err(at("its private key has no certificate".into()));
            }
            let key = PrivateKeyDer::try_from(key)
                .map_err(|e| at(format!("its private key cannot be read: {e}")))?;
            Ok(Identity {
                chain: chain.into_iter().map(CertificateDer::from).collect(),
                key,
            })
        }
    }
}

/// `ssl.trustStore.*`: the certificates that anchor a client's chain. As
/// Java's `TrustStoreUtil`, a PKCS12 store's trusted certificate entries
/// and the certificate of each key entry.
pub fn load_trust(settings: &StoreSettings) -> Result<Vec<CertificateDer<'static>>, String> {
    let (data, format, password) = read(settings)?;
    let at = |e: String| located(settings, e);
    let certs: Vec<CertificateDer<'static>> = match format {
        Format::Pem => CertificateDer::pem_slice_iter(&data)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| at(format!("a certificate in it cannot be read: {e}")))?,
        Format::Pkcs12 => {
            let store = pkcs12(&data, &password).map_err(at)?;
            store
                .entries()
                .filter_map(|(_, entry)| match entry {
                    p12_keystore::KeyStoreEntry::Certificate(c) => Some(c.as_der().to_vec()),
                    p12_keystore::KeyStoreEntry::PrivateKeyChain(k) => {
                        k.certs().first().map(|c| c.as_der().to_vec())
                    }
                    _ => None,
                })
                .map(CertificateDer::from)
                .collect()
        }
        Format::Jks => {
            let store = super::jks::parse(&data, &password).map_err(at)?;
            store
                .trusted
                .into_iter()
                .chain(
                    store
                        .keys
                        .into_iter()
                        .filter_map(|(_, chain)| chain.into_iter().next()),
                )
                .map(CertificateDer::from)
                .collect()
        }
    };
    if certs.is_empty() {
        return Err(at("no trusted certificate in it".into()));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_format_comes_from_the_content_then_the_type_then_the_name() {
        let p = Path::new;
        let pem = b"-----BEGIN CERTIFICATE-----\n";
        let der = [0x30u8, 0x82, 0x01];
        assert_eq!(
            format(p("a.jks"), None, &[0xFE, 0xED, 0xFE, 0xED, 0]),
            Ok(Format::Jks)
        );
        assert_eq!(format(p("a.jks"), None, &der), Ok(Format::Pkcs12));
        assert_eq!(format(p("a.p12"), None, &der), Ok(Format::Pkcs12));
        assert_eq!(format(p("a.pem"), None, pem), Ok(Format::Pem));
        assert_eq!(format(p("a.bin"), Some("pem"), pem), Ok(Format::Pem));
        assert_eq!(format(p("a.p12"), Some("PKCS12"), pem), Ok(Format::Pem));
        assert!(format(p("a.bin"), None, &der).is_err());
        assert!(format(p("a.bin"), Some("BCFKS"), &der).is_err());
    }
}
