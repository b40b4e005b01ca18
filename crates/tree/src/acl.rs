//! ACL evaluation with ZooKeeper's built-in schemes: world, auth, digest,
//! ip; `sasl` and `x509` when their providers are configured (`Schemes`);
//! and the `super` identity granted by `superDigest`, `zookeeper.superUser`
//! or `zookeeper.X509AuthenticationProvider.superUser`.

use base64::Engine;
use proto::{Acl, ErrorCode, Id, Perms};
use sha1::{Digest, Sha1};

/// An authenticated identity of a connection, as ZooKeeper's `authInfo`:
/// ("ip", "127.0.0.1"), ("digest", "user:hash"), ("super", "").
pub type AuthId = Id;

/// The authentication providers configured beyond the built-in ones
/// (ZooKeeper's `authProvider.N`): their schemes are valid in ACLs and
/// matched. Part of `TreeConfig`, so identical on every replica.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Schemes {
    /// `SASLAuthenticationProvider`: `sasl:<user>` ACLs.
    pub sasl: bool,
    /// `X509AuthenticationProvider`: `x509:<subject DN>` ACLs, matched
    /// against a TLS client's certificate.
    pub x509: bool,
    /// `zookeeper.skipACL=yes`: no ACL is checked at all (ZooKeeper's
    /// `checkACL` returns at once): every client may do anything.
    pub skip_acl: bool,
}

impl Schemes {
    /// `ProviderRegistry.getProvider(scheme).isAuthenticated()`: the
    /// identities an `auth` ACL expands to.
    fn authenticated(&self, scheme: &str) -> bool {
        scheme == "digest" || (self.sasl && scheme == "sasl") || (self.x509 && scheme == "x509")
    }
}

/// `X509AuthenticationProvider.isValid` (`new X500Principal(id)`), as far
/// as it matters here: `key=value` parts separated by unescaped commas.
fn x509_acl_valid(id: &str) -> bool {
    let mut part = String::new();
    let mut parts = Vec::new();
    let mut escaped = false;
    for ch in id.chars() {
        if ch == ',' && !escaped {
            parts.push(std::mem::take(&mut part));
            continue;
        }
        escaped = ch == '\\' && !escaped;
        part.push(ch);
    }
    parts.push(part);
    parts
        .iter()
        .all(|p| matches!(p.split_once('='), Some((k, _)) if !k.trim().is_empty()))
}

/// `SASLAuthenticationProvider.isValid`: the id parses as a Kerberos
/// name — no `@`, or `service[/host]@realm` with no further `/` or `@`.
fn sasl_acl_valid(id: &str) -> bool {
    match id.split_once('@') {
        None => true,
        Some((principal, realm)) => {
            !realm.contains(['@', '/'])
                && principal.matches('/').count() <= 1
                && !principal.contains('@')
        }
    }
}

/// `DigestAuthenticationProvider.generateDigest`: "user:pass" ->
/// "user:" + base64(sha1("user:pass")).
pub fn digest(user_password: &str) -> String {
    let user = user_password.split(':').next().unwrap_or("");
    let hash = Sha1::digest(user_password.as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// `DigestAuthenticationProvider.isValid`: exactly "user:hash" (Java's
/// `split(":")`, which drops trailing empty parts, must give two parts).
fn digest_acl_valid(id: &str) -> bool {
    let parts: Vec<&str> = id.split(':').collect();
    let mut n = parts.len();
    while n > 0 && parts[n - 1].is_empty() {
        n -= 1;
    }
    n == 2
}

/// `PrepRequestProcessor.checkACL`: `super` passes everything; an empty
/// ACL passes; otherwise some entry must grant `perm` to world:anyone or to
/// one of `auth`.
pub fn check(acl: &[Acl], perm: i32, auth: &[AuthId], schemes: Schemes) -> Result<(), ErrorCode> {
    if schemes.skip_acl || auth.iter().any(|a| a.scheme == "super") || acl.is_empty() {
        return Ok(());
    }
    for a in acl {
        if a.perms & perm == 0 {
            continue;
        }
        if a.id.scheme == "world" && a.id.id == "anyone" {
            return Ok(());
        }
        for id in auth {
            let m = match a.id.scheme.as_str() {
                "digest" => id.scheme == "digest" && id.id == a.id.id,
                "ip" => id.scheme == "ip" && crate::acl_ip::matches(&id.id, &a.id.id),
                // SASLAuthenticationProvider.matches (an identity named
                // "super" matches any sasl ACL).
                "sasl" => {
                    schemes.sasl && id.scheme == "sasl" && (id.id == "super" || id.id == a.id.id)
                }
                // X509AuthenticationProvider.matches: the exact DN.
                "x509" => schemes.x509 && id.scheme == "x509" && id.id == a.id.id,
                _ => false,
            };
            if m {
                return Ok(());
            }
        }
    }
    Err(ErrorCode::NoAuth)
}

/// `PrepRequestProcessor.fixupACL`: drops duplicates, expands `auth` into
/// the caller's authenticated identities, validates the rest.
pub fn fixup(acl: &[Acl], auth: &[AuthId], schemes: Schemes) -> Result<Vec<Acl>, ErrorCode> {
    if acl.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    let mut out: Vec<Acl> = Vec::with_capacity(acl.len());
    let push = |a: Acl, out: &mut Vec<Acl>| {
        if !out.contains(&a) {
            out.push(a)
        }
    };
    for a in acl {
        let (scheme, id) = (a.id.scheme.as_str(), a.id.id.as_str());
        if scheme == "world" && id == "anyone" {
            push(a.clone(), &mut out);
        } else if scheme == "auth" {
            let mut any = false;
            for cid in auth.iter().filter(|c| schemes.authenticated(&c.scheme)) {
                any = true;
                push(
                    Acl {
                        perms: a.perms,
                        id: cid.clone(),
                    },
                    &mut out,
                );
            }
            if !any {
                return Err(ErrorCode::InvalidAcl);
            }
        } else {
            let valid = match scheme {
                "digest" => digest_acl_valid(id),
                "ip" => crate::acl_ip::valid(id),
                "sasl" => schemes.sasl && sasl_acl_valid(id),
                "x509" => schemes.x509 && x509_acl_valid(id),
                _ => false,
            };
            if !valid {
                return Err(ErrorCode::InvalidAcl);
            }
            push(a.clone(), &mut out);
        }
    }
    if out.is_empty() {
        return Err(ErrorCode::InvalidAcl);
    }
    Ok(out)
}

/// What getACL shows a caller without ADMIN: digest hashes masked ("user:x").
pub fn redact(acl: &[Acl]) -> Vec<Acl> {
    acl.iter()
        .map(|a| {
            if a.id.scheme == "digest" {
                let user = a.id.id.split(':').next().unwrap_or("");
                Acl {
                    perms: a.perms,
                    id: Id {
                        scheme: "digest".into(),
                        id: format!("{user}:x"),
                    },
                }
            } else {
                a.clone()
            }
        })
        .collect()
}

pub fn open_acl_unsafe() -> Vec<Acl> {
    vec![Acl {
        perms: Perms::ALL,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }]
}

pub fn read_acl_unsafe() -> Vec<Acl> {
    vec![Acl {
        perms: Perms::READ,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }]
}

#[cfg(test)]
mod tests {
    use super::*;

    const N: Schemes = Schemes {
        sasl: false,
        x509: false,
        skip_acl: false,
    };
    const SASL: Schemes = Schemes {
        sasl: true,
        x509: false,
        skip_acl: false,
    };
    const X509: Schemes = Schemes {
        sasl: false,
        x509: true,
        skip_acl: false,
    };

    #[test]
    fn skip_acl_lets_anyone_do_anything() {
        let only_bob = vec![Acl {
            perms: Perms::READ,
            id: id("digest", "bob:x"),
        }];
        let skip = Schemes {
            skip_acl: true,
            ..N
        };
        assert_eq!(
            check(&only_bob, Perms::WRITE, &[], N),
            Err(ErrorCode::NoAuth)
        );
        assert_eq!(check(&only_bob, Perms::WRITE, &[], skip), Ok(()));
        assert_eq!(
            check(&only_bob, Perms::ADMIN, &[id("ip", "1.2.3.4")], skip),
            Ok(())
        );
    }

    fn id(s: &str, i: &str) -> Id {
        Id {
            scheme: s.into(),
            id: i.into(),
        }
    }

    #[test]
    fn digest_matches_zookeeper() {
        // The value zkCli / DigestAuthenticationProvider produce for super:test.
        assert_eq!(digest("super:test"), "super:D/InIHSb7yEEbrWz8b9l71RjZJU=");
    }

    #[test]
    fn check_by_scheme() {
        let acl = vec![Acl {
            perms: Perms::READ,
            id: id("digest", &digest("u:p")),
        }];
        assert_eq!(check(&acl, Perms::READ, &[], N), Err(ErrorCode::NoAuth));
        assert_eq!(
            check(&acl, Perms::READ, &[id("digest", &digest("u:p"))], N),
            Ok(())
        );
        assert_eq!(
            check(&acl, Perms::WRITE, &[id("digest", &digest("u:p"))], N),
            Err(ErrorCode::NoAuth)
        );
        assert_eq!(check(&acl, Perms::WRITE, &[id("super", "")], N), Ok(()));
        let ip = vec![Acl {
            perms: Perms::ALL,
            id: id("ip", "127.0.0.0/8"),
        }];
        assert_eq!(check(&ip, Perms::READ, &[id("ip", "127.0.0.1")], N), Ok(()));
        assert_eq!(
            check(&ip, Perms::READ, &[id("ip", "10.0.0.1")], N),
            Err(ErrorCode::NoAuth)
        );
    }

    #[test]
    fn fixup_rules() {
        let w = open_acl_unsafe();
        assert_eq!(fixup(&w, &[], N), Ok(w.clone()));
        assert_eq!(fixup(&[], &[], N), Err(ErrorCode::InvalidAcl));
        let auth = vec![Acl {
            perms: 31,
            id: id("auth", ""),
        }];
        assert_eq!(
            fixup(&auth, &[id("ip", "127.0.0.1")], N),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup(&auth, &[id("digest", "u:h")], N).unwrap()[0].id,
            id("digest", "u:h")
        );
        assert_eq!(
            fixup(
                &[Acl {
                    perms: 31,
                    id: id("world", "x")
                }],
                &[],
                N
            ),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup(
                &[Acl {
                    perms: 31,
                    id: id("digest", "nohash")
                }],
                &[],
                N
            ),
            Err(ErrorCode::InvalidAcl)
        );
        assert_eq!(
            fixup(
                &[Acl {
                    perms: 31,
                    id: id("ip", "1.2.3.400")
                }],
                &[],
                N
            ),
            Err(ErrorCode::InvalidAcl)
        );
        assert!(fixup(
            &[Acl {
                perms: 31,
                id: id("ip", "10.0.0.0/8")
            }],
            &[],
            N
        )
        .is_ok());
    }

    #[test]
    fn sasl_acls_only_with_the_provider() {
        let acl = vec![Acl {
            perms: Perms::ALL,
            id: id("sasl", "jaasuser"),
        }];
        let me = [id("ip", "127.0.0.1"), id("sasl", "jaasuser")];
        // SASLAuthenticationProvider.matches: the same user, or "super".
        assert_eq!(check(&acl, Perms::READ, &me, SASL), Ok(()));
        assert_eq!(
            check(&acl, Perms::READ, &[id("sasl", "super")], SASL),
            Ok(())
        );
        assert_eq!(
            check(&acl, Perms::READ, &[id("sasl", "other")], SASL),
            Err(ErrorCode::NoAuth)
        );
        // A digest identity of the same name is not a sasl one.
        assert_eq!(
            check(&acl, Perms::READ, &[id("digest", "jaasuser")], SASL),
            Err(ErrorCode::NoAuth)
        );
        // Without the provider the scheme is unknown: never matched, never valid.
        assert_eq!(check(&acl, Perms::READ, &me, N), Err(ErrorCode::NoAuth));
        assert_eq!(fixup(&acl, &me, N), Err(ErrorCode::InvalidAcl));
        assert_eq!(fixup(&acl, &me, SASL), Ok(acl.clone()));
        // KerberosName's shape.
        for (ok, name) in [
            (true, "u"),
            (true, "zk/host@REALM"),
            (true, "u@R"),
            (false, "a/b/c@R"),
            (false, "a@b@c"),
            (false, "a@R/x"),
        ] {
            assert_eq!(sasl_acl_valid(name), ok, "{name}");
        }
        // `auth` takes the sasl identity too (it is authenticated), not ip.
        let auth = vec![Acl {
            perms: 31,
            id: id("auth", ""),
        }];
        assert_eq!(
            fixup(&auth, &me, SASL).unwrap(),
            vec![Acl {
                perms: 31,
                id: id("sasl", "jaasuser")
            }]
        );
        assert_eq!(fixup(&auth, &me, N), Err(ErrorCode::InvalidAcl));
    }

    #[test]
    fn x509_acls_match_the_exact_subject_dn_and_only_with_the_provider() {
        let dn = "CN=app1,OU=ops,O=example";
        let acl = vec![Acl {
            perms: Perms::ALL,
            id: id("x509", dn),
        }];
        let me = [id("ip", "127.0.0.1"), id("x509", dn)];
        assert_eq!(check(&acl, Perms::READ, &me, X509), Ok(()));
        // Exact string: another spacing of the same name does not match.
        assert_eq!(
            check(
                &acl,
                Perms::READ,
                &[id("x509", "CN=app1, OU=ops, O=example")],
                X509
            ),
            Err(ErrorCode::NoAuth)
        );
        assert_eq!(check(&acl, Perms::READ, &me, N), Err(ErrorCode::NoAuth));
        assert_eq!(fixup(&acl, &me, N), Err(ErrorCode::InvalidAcl));
        assert_eq!(fixup(&acl, &me, X509), Ok(acl.clone()));
        for (ok, name) in [
            (true, "CN=a"),
            (true, "CN=a\\,b,O=x"),
            (false, "app1"),
            (false, "CN=a,,O=x"),
            (false, "=a"),
        ] {
            assert_eq!(x509_acl_valid(name), ok, "{name}");
        }
        // `auth` expands to the certificate's identity.
        let auth = vec![Acl {
            perms: 31,
            id: id("auth", ""),
        }];
        assert_eq!(
            fixup(&auth, &me, X509).unwrap(),
            vec![Acl {
                perms: 31,
                id: id("x509", dn)
            }]
        );
    }
}
