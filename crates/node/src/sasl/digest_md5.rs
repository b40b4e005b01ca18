//! DIGEST-MD5 (RFC 2831), the server's side, as the JDK's `DigestMD5Server`
//! answers ZooKeeper's clients: the challenge, the checks of the client's
//! response, and `rspauth`. Pure functions: the nonce comes from the caller
//! and the password from a lookup.
//!
//! ZooKeeper creates its SASL server with protocol `zookeeper` and server
//! name `zk-sasl-md5`, which is also the one realm it offers; clients put
//! `zookeeper/zk-sasl-md5` in `digest-uri`. Only `qop=auth` is offered
//! (ZooKeeper's default): no integrity or privacy layer follows.
//!
//! Not here: which users exist (the JAAS `Server` section) and what a
//! session gets for passing (`sasl::exchange`).

use md5::{Digest, Md5};

/// ZooKeeper's SASL server name, and the realm it offers.
pub const REALM: &str = "zk-sasl-md5";
/// The protocol (service) ZooKeeper's SASL server runs as.
pub const SERVICE: &str = "zookeeper";
/// How many random bytes a nonce is made of: the JDK's 30, which encode
/// to 40 base64 characters.
pub const NONCE_BYTES: usize = 30;

/// Why a client's response was refused. Every one of them ends the
/// exchange with AuthFailed, as a `SaslException` does in ZooKeeper.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("digest response format violation: {0}")]
    Format(String),
    #[error("user '{0}' not found in the list of DIGEST-MD5 users")]
    UnknownUser(String),
    #[error("wrong password for user '{0}'")]
    Mismatch(String),
}

/// A response that passed: who the client is, and the `rspauth=...` token
/// that proves to the client that the server knows the password too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub user: String,
    pub rspauth: Vec<u8>,
}

/// The first token the server sends, byte for byte what ZooKeeper 3.8
/// sends (captured): no `qop` (so `auth`), UTF-8 names, `md5-sess`.
pub fn challenge(nonce: &str) -> Vec<u8> {
    format!("realm=\"{REALM}\",nonce=\"{nonce}\",charset=utf-8,algorithm=md5-sess").into_bytes()
}

/// `name=value` or `name="quoted value"` pairs separated by commas, as
/// RFC 2831 section 7.1 writes them (names compared lowercase; a name may
/// appear once).
fn directives(text: &str) -> Result<Vec<(String, String)>, DigestError> {
    let bad = |m: &str| DigestError::Format(m.to_string());
    let mut out: Vec<(String, String)> = Vec::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches(|c: char| c == ',' || c.is_ascii_whitespace());
        if rest.is_empty() {
            return Ok(out);
        }
        let name_len = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
            .unwrap_or(rest.len());
        if name_len == 0 {
            return Err(bad("expected a directive name"));
        }
        let name = rest[..name_len].to_ascii_lowercase();
        rest = rest[name_len..].trim_start();
        rest = rest
            .strip_prefix('=')
            .ok_or_else(|| bad("expected '=' after a directive name"))?
            .trim_start();
        let value = if let Some(q) = rest.strip_prefix('"') {
            let mut v = String::new();
            let mut chars = q.char_indices();
            let end = loop {
                match chars.next() {
                    None => return Err(bad("unterminated quoted value")),
                    Some((i, '"')) => break i + 1,
                    Some((_, '\\')) => match chars.next() {
                        Some((_, c)) => v.push(c),
                        None => return Err(bad("unterminated quoted value")),
                    },
                    Some((_, c)) => v.push(c),
                }
            };
            rest = &q[end..];
            v
        } else {
            let end = rest
                .find(|c: char| c == ',' || c.is_ascii_whitespace())
                .unwrap_or(rest.len());
            let v = rest[..end].to_string();
            rest = &rest[end..];
            v
        };
        rest = rest.trim_start();
        if !(rest.is_empty() || rest.starts_with(',')) {
            return Err(bad("expected ',' between directives"));
        }
        if out.iter().any(|(n, _)| *n == name) {
            return Err(DigestError::Format(format!("directive {name} given twice")));
        }
        out.push((name, value));
    }
}

/// Bytes of a name or password as RFC 2831 hashes them with
/// `charset=utf-8`: ISO 8859-1 when every character fits, UTF-8 otherwise.
fn latin1_or_utf8(s: &str) -> Vec<u8> {
    if s.chars().all(|c| (c as u32) < 0x100) {
        s.chars().map(|c| c as u8).collect()
    } else {
        s.as_bytes().to_vec()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The inputs of the response value (RFC 2831 section 2.1.2.1).
pub struct Exchange<'a> {
    pub user: &'a str,
    pub realm: &'a str,
    pub password: &'a str,
    pub nonce: &'a str,
    pub cnonce: &'a str,
    pub nc: &'a str,
    pub qop: &'a str,
    pub digest_uri: &'a str,
    pub authzid: Option<&'a str>,
}

impl Exchange<'_> {
    /// `response-value` with `md5-sess`: the client's proof when
    /// `a2_prefix` is "AUTHENTICATE", the server's `rspauth` when it is "".
    pub fn response_value(&self, a2_prefix: &str) -> String {
        let mut inner = Md5::new();
        inner.update(latin1_or_utf8(self.user));
        inner.update(b":");
        inner.update(latin1_or_utf8(self.realm));
        inner.update(b":");
        inner.update(latin1_or_utf8(self.password));
        let mut a1 = inner.finalize().to_vec();
        a1.extend_from_slice(format!(":{}:{}", self.nonce, self.cnonce).as_bytes());
        if let Some(z) = self.authzid {
            a1.push(b':');
            a1.extend_from_slice(z.as_bytes());
        }
        let ha1 = hex(&Md5::digest(&a1));
        let ha2 = hex(&Md5::digest(format!("{a2_prefix}:{}", self.digest_uri)));
        let kd = format!(
            "{ha1}:{}:{}:{}:{}:{ha2}",
            self.nonce, self.nc, self.cnonce, self.qop
        );
        hex(&Md5::digest(kd))
    }
}

/// Checks the client's answer to `challenge(nonce)` as the JDK's server
/// does, with `password` looking users up. On success, the `rspauth`
/// token to send back.
pub fn verify(
    response: &[u8],
    nonce: &str,
    password: impl Fn(&str) -> Option<String>,
) -> Result<Verified, DigestError> {
    let text = std::str::from_utf8(response)
        .map_err(|_| DigestError::Format("response is not UTF-8".into()))?;
    let d = directives(text)?;
    let get = |n: &str| d.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str());
    let need = |n: &str| get(n).ok_or_else(|| DigestError::Format(format!("missing {n}")));
    if let Some(cs) = get("charset") {
        if !cs.eq_ignore_ascii_case("utf-8") {
            return Err(DigestError::Format(format!("charset {cs} was not offered")));
        }
    }
    let user = need("username")?;
    let realm = get("realm").unwrap_or("");
    if get("realm").is_some() && realm != REALM {
        return Err(DigestError::Format(format!("nonexistent realm {realm}")));
    }
    if need("nonce")? != nonce {
        return Err(DigestError::Format("mismatched nonce".into()));
    }
    let cnonce = need("cnonce")?;
    let nc = need("nc")?;
    if nc != "00000001" {
        return Err(DigestError::Format(format!(
            "nonce count {nc} is not 00000001"
        )));
    }
    let qop = get("qop").unwrap_or("auth");
    if qop != "auth" {
        return Err(DigestError::Format(format!("qop {qop} was not offered")));
    }
    let digest_uri = need("digest-uri")?;
    let mut uri = digest_uri.split('/');
    let (serv, host) = (uri.next().unwrap_or(""), uri.next().unwrap_or(""));
    if !serv.eq_ignore_ascii_case(SERVICE) || !host.eq_ignore_ascii_case(REALM) {
        return Err(DigestError::Format(format!(
            "digest-uri {digest_uri} is not {SERVICE}/{REALM}"
        )));
    }
    let claimed = need("response")?;
    let password = password(user).ok_or_else(|| DigestError::UnknownUser(user.to_string()))?;
    let ex = Exchange {
        user,
        realm,
        password: &password,
        nonce,
        cnonce,
        nc,
        qop,
        digest_uri,
        authzid: get("authzid"),
    };
    let expected = ex.response_value("AUTHENTICATE");
    // Compared whole, not stopping at the first differing byte.
    let differ = expected
        .bytes()
        .zip(claimed.to_ascii_lowercase().bytes())
        .fold(expected.len() ^ claimed.len(), |acc, (a, b)| {
            acc | usize::from(a ^ b)
        });
    if differ != 0 {
        return Err(DigestError::Mismatch(user.to_string()));
    }
    Ok(Verified {
        user: user.to_string(),
        rspauth: format!("rspauth={}", ex.response_value("")).into_bytes(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: &str = "bOjHtPQ3bcugBtBJ8FafXdJNuReW1h1/FwjBG7eA";
    /// What kazoo's SASL library (pure-sasl 0.6.2) answered to
    /// `challenge(NONCE)` for jaasuser / jaas_password.
    const PURESASL: &[u8] = b"qop=auth,realm=\"zk-sasl-md5\",username=\"jaasuser\",\
nonce=\"bOjHtPQ3bcugBtBJ8FafXdJNuReW1h1/FwjBG7eA\",cnonce=\"3499337090244867\",nc=00000001,\
digest-uri=\"zookeeper/zk-sasl-md5\",response=7994faa8852917de1ed2287c54804a1a";

    fn users(u: &str) -> Option<String> {
        (u == "jaasuser").then(|| "jaas_password".to_string())
    }

    #[test]
    fn rfc_2831_example() {
        // RFC 2831 section 4, the IMAP example.
        let ex = Exchange {
            user: "chris",
            realm: "elwood.innosoft.com",
            password: "secret",
            nonce: "OA6MG9tEQGm2hh",
            cnonce: "OA6MHXh6VqTrRk",
            nc: "00000001",
            qop: "auth",
            digest_uri: "imap/elwood.innosoft.com",
            authzid: None,
        };
        assert_eq!(
            ex.response_value("AUTHENTICATE"),
            "d388dad90d4bbd760a152321f2143af7"
        );
        assert_eq!(ex.response_value(""), "ea40f60335c427b5527b84dbabcdfffd");
    }

    #[test]
    fn challenge_is_zookeepers() {
        assert_eq!(
            challenge(NONCE),
            b"realm=\"zk-sasl-md5\",nonce=\"bOjHtPQ3bcugBtBJ8FafXdJNuReW1h1/FwjBG7eA\",charset=utf-8,algorithm=md5-sess"
        );
    }

    #[test]
    fn a_real_clients_response_passes() {
        let v = verify(PURESASL, NONCE, users).unwrap();
        assert_eq!(v.user, "jaasuser");
        assert!(v.rspauth.starts_with(b"rspauth="));
        assert_eq!(v.rspauth.len(), 8 + 32);
    }

    #[test]
    fn wrong_password_unknown_user_and_replays_fail() {
        let wrong = |_: &str| Some("other".to_string());
        assert_eq!(
            verify(PURESASL, NONCE, wrong),
            Err(DigestError::Mismatch("jaasuser".into()))
        );
        assert_eq!(
            verify(PURESASL, NONCE, |_| None),
            Err(DigestError::UnknownUser("jaasuser".into()))
        );
        // The same response against another nonce (a replay).
        assert!(matches!(
            verify(PURESASL, "another", users),
            Err(DigestError::Format(_))
        ));
    }

    #[test]
    fn malformed_responses_are_format_errors() {
        let text = std::str::from_utf8(PURESASL).unwrap();
        for bad in [
            text.replace("nc=00000001", "nc=00000002"),
            text.replace("qop=auth", "qop=auth-conf"),
            text.replace("zookeeper/zk-sasl-md5", "imap/zk-sasl-md5"),
            text.replace("realm=\"zk-sasl-md5\"", "realm=\"elsewhere\""),
            text.replace(",cnonce=\"3499337090244867\"", ""),
            format!("{text},username=\"x\""),
            text.replace("username=\"jaasuser\"", "username=\"jaasuser"),
            "=x".to_string(),
            "a b".to_string(),
        ] {
            assert!(
                matches!(
                    verify(bad.as_bytes(), NONCE, users),
                    Err(DigestError::Format(_))
                ),
                "{bad}"
            );
        }
        assert!(matches!(
            verify(&[0xff, 0xfe], NONCE, users),
            Err(DigestError::Format(_))
        ));
    }

    #[test]
    fn quoted_values_unescape_and_whitespace_is_allowed() {
        let d = directives(r#" a = "x\"y" ,b=z,, c="""#).unwrap();
        assert_eq!(
            d,
            vec![
                ("a".into(), "x\"y".into()),
                ("b".into(), "z".into()),
                ("c".into(), "".into())
            ]
        );
    }

    #[test]
    fn names_outside_latin1_hash_as_utf8() {
        assert_eq!(latin1_or_utf8("é"), vec![0xe9]);
        assert_eq!(latin1_or_utf8("€"), "€".as_bytes().to_vec());
    }
}
