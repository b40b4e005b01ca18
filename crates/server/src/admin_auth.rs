//! Who asks an AdminServer command that requires it — ZooKeeper 3.9's
//! `snapshot` and `restore`, which need ALL on `/` — as ZooKeeper's
//! `Commands.runCommand` decides: the `Authorization` header is
//! `<scheme>` or `<scheme> <data>` (split at spaces, one or two parts);
//! `digest user:password` is the digest identity (plus `super` when it is
//! `superDigest`'s), `ip` the address the request came from, `x509` the
//! subject of the client's certificate (`admin.needClientAuth`; plus
//! `super` when it is `X509AuthenticationProvider.superUser`). No header:
//! 401 "Auth info is missing for the command"; no identity from it: 401
//! "Not authenticated"; identities without ALL on `/`: 403 "Not
//! authorized".

use std::net::IpAddr;

use axum::http::{header, HeaderMap, StatusCode};
use axum::response::Response;
use proto::{Acl, Id, Perms};
use tokio::sync::{mpsc, oneshot};
use tree::acl::Schemes;

use crate::admin::{answer, unavailable};
use crate::config::Config;
use crate::CoreInput;

/// The connection a request came on.
#[derive(Debug, Clone)]
pub(crate) struct Asker {
    pub ip: IpAddr,
    /// The subject DN of the client's certificate, over HTTPS with one.
    pub x509: Option<String>,
}

/// The settings identities depend on.
pub(crate) struct Providers<'a> {
    pub super_digest: Option<&'a str>,
    pub x509_super_user: Option<&'a str>,
    pub schemes: Schemes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Denied {
    Missing,
    NotAuthenticated,
    NotAuthorized,
}

impl Denied {
    pub(crate) fn status(self) -> StatusCode {
        match self {
            Denied::NotAuthorized => StatusCode::FORBIDDEN,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    pub(crate) fn message(self) -> &'static str {
        match self {
            Denied::Missing => "Auth info is missing for the command",
            Denied::NotAuthenticated => "Not authenticated",
            Denied::NotAuthorized => "Not authorized",
        }
    }
}

/// The identities the header names, as ZooKeeper's providers give them.
pub(crate) fn identities(
    header: Option<&str>,
    asker: &Asker,
    p: &Providers<'_>,
) -> Result<Vec<Id>, Denied> {
    let header = header.ok_or(Denied::Missing)?;
    // Java's split(" "): trailing empty parts dropped.
    let mut parts: Vec<&str> = header.split(' ').collect();
    while parts.len() > 1 && parts.last() == Some(&"") {
        parts.pop();
    }
    if parts.len() > 2 {
        return Err(Denied::NotAuthenticated);
    }
    let id = |scheme: &str, id: &str| Id {
        scheme: scheme.into(),
        id: id.into(),
    };
    let ids = match (parts[0], parts.get(1)) {
        ("digest", Some(user_password)) => {
            let digest = tree::acl::digest(user_password);
            let mut ids = Vec::new();
            if p.super_digest == Some(digest.as_str()) {
                ids.push(id("super", ""));
            }
            ids.push(id("digest", &digest));
            ids
        }
        ("ip", _) => vec![id("ip", &tree::acl_ip::host_address(asker.ip))],
        ("x509", _) if p.schemes.x509 => match &asker.x509 {
            Some(dn) => {
                let mut ids = Vec::new();
                if p.x509_super_user == Some(dn.as_str()) {
                    ids.push(id("super", dn));
                }
                ids.push(id("x509", dn));
                ids
            }
            None => Vec::new(),
        },
        _ => Vec::new(),
    };
    if ids.is_empty() {
        return Err(Denied::NotAuthenticated);
    }
    Ok(ids)
}

/// Authentication and authorization for `command` (ALL on `/`, asked of
/// the core task); the refusal as the answer to send.
pub(crate) async fn require_all_on_root(
    core: &mpsc::Sender<CoreInput>,
    cfg: &Config,
    command: &str,
    headers: &HeaderMap,
    asker: &Asker,
) -> Result<(), Response> {
    let providers = Providers {
        super_digest: cfg.super_digest.as_deref(),
        x509_super_user: cfg.tls.x509_super_user.as_deref(),
        schemes: cfg.tree_config().schemes,
    };
    let header = headers
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""));
    let denied = |d: Denied| {
        tracing::warn!(command, asker = %asker.ip, "AdminServer: {}", d.message());
        answer(d.status(), command, Some(d.message()), None)
    };
    let ids = identities(header, asker, &providers).map_err(denied)?;
    let (tx, rx) = oneshot::channel();
    let asked = core.send(CoreInput::RootAcl { reply: tx }).await.is_ok();
    let acl = match (asked, rx.await) {
        (true, Ok(acl)) => acl,
        _ => return Err(unavailable(command)),
    };
    authorize(&acl, &ids, providers.schemes).map_err(denied)
}

/// `Commands.handleAuthorization`: every bit of ALL granted on the node
/// whose ACL is `acl`.
pub(crate) fn authorize(acl: &[Acl], ids: &[Id], schemes: Schemes) -> Result<(), Denied> {
    let bits = [
        Perms::READ,
        Perms::WRITE,
        Perms::CREATE,
        Perms::DELETE,
        Perms::ADMIN,
    ];
    for bit in bits {
        tree::acl::check(acl, bit, ids, schemes).map_err(|_| Denied::NotAuthorized)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn asker() -> Asker {
        Asker {
            ip: "::ffff:127.0.0.1".parse().unwrap(),
            x509: Some("CN=admin,O=ops".into()),
        }
    }

    fn providers(super_digest: Option<&str>) -> Providers<'_> {
        Providers {
            super_digest,
            x509_super_user: None,
            schemes: Schemes {
                sasl: false,
                x509: true,
                skip_acl: false,
            },
        }
    }

    #[test]
    fn the_header_gives_identities_as_zookeepers_providers_do() {
        let p = providers(None);
        assert_eq!(identities(None, &asker(), &p), Err(Denied::Missing));
        let ids = identities(Some("digest root:pw"), &asker(), &p).unwrap();
        assert_eq!(
            ids,
            vec![Id {
                scheme: "digest".into(),
                id: tree::acl::digest("root:pw")
            }]
        );
        let ids = identities(Some("ip"), &asker(), &p).unwrap();
        assert_eq!(ids[0].id, "127.0.0.1");
        let ids = identities(Some("x509"), &asker(), &p).unwrap();
        assert_eq!(ids[0].id, "CN=admin,O=ops");
        for bad in ["digest", "sasl alice", "nosuch x", "digest a b", ""] {
            assert_eq!(
                identities(Some(bad), &asker(), &p),
                Err(Denied::NotAuthenticated),
                "{bad:?}"
            );
        }
        let mut no_cert = asker();
        no_cert.x509 = None;
        assert_eq!(
            identities(Some("x509"), &no_cert, &p),
            Err(Denied::NotAuthenticated)
        );
    }

    #[test]
    fn super_digest_passes_any_acl_and_others_need_all_on_the_node() {
        let sup = tree::acl::digest("super:secret");
        let p = providers(Some(&sup));
        let ids = identities(Some("digest super:secret"), &asker(), &p).unwrap();
        let locked = vec![Acl {
            perms: Perms::ALL,
            id: Id {
                scheme: "digest".into(),
                id: tree::acl::digest("root:pw"),
            },
        }];
        assert_eq!(authorize(&locked, &ids, p.schemes), Ok(()));
        let root = identities(Some("digest root:pw"), &asker(), &p).unwrap();
        assert_eq!(authorize(&locked, &root, p.schemes), Ok(()));
        let other = identities(Some("digest other:pw"), &asker(), &p).unwrap();
        assert_eq!(
            authorize(&locked, &other, p.schemes),
            Err(Denied::NotAuthorized)
        );
        let read_only = vec![Acl {
            perms: Perms::READ | Perms::WRITE | Perms::CREATE | Perms::DELETE,
            id: root[0].clone(),
        }];
        assert_eq!(
            authorize(&read_only, &root, p.schemes),
            Err(Denied::NotAuthorized),
            "ALL means ADMIN too"
        );
        let ip = identities(Some("ip"), &asker(), &p).unwrap();
        let by_ip = vec![Acl {
            perms: Perms::ALL,
            id: Id {
                scheme: "ip".into(),
                id: "127.0.0.0/8".into(),
            },
        }];
        assert_eq!(authorize(&by_ip, &ip, p.schemes), Ok(()));
        assert_eq!(authorize(&Acl::open_unsafe(), &other, p.schemes), Ok(()));
    }
}
