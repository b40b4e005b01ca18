//! Who may talk on the quorum and election ports. Always: only the
//! ensemble's other members (a connection names its server id first; an
//! id not in the `server.N` lines, or this server's own, is refused).
//! With ZooKeeper's quorum SASL settings (`quorum.auth.enableSasl`,
//! `quorum.auth.serverRequireSasl`, `quorum.auth.learnerRequireSasl`, the
//! JAAS `QuorumServer` section's `user_NAME="password"` and the
//! `QuorumLearner` section's `username`/`password`): both ends prove they
//! hold the shared password before a frame is read.
//!
//! The exchange, after the dialer's server id (ferrokeeper's own; servers
//! of one ensemble talk only to each other, never to ZooKeeper's):
//!
//! ```text
//! dialer   -> MAGIC, version 1, user name, nonce_d (32 bytes)
//! acceptor -> 0 (no quorum auth here) | 2 + reason (refused)
//!           | 1, nonce_a (32), HMAC-SHA256(password, "acceptor" ids nonce_d nonce_a)
//! dialer   -> HMAC-SHA256(password, "dialer" ids nonce_a nonce_d)
//! acceptor -> 1 (accepted) | 2 + reason
//! ```
//!
//! MAGIC cannot begin a frame (as a length it is over any frame's bound),
//! so an acceptor tells a dialer that authenticates from one that does not.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

type HmacSha256 = Hmac<Sha256>;

pub(crate) const MAGIC: [u8; 4] = *b"FKQA";
const VERSION: u8 = 1;
const NO_AUTH: u8 = 0;
const OK: u8 = 1;
const REFUSED: u8 = 2;
const NONCE: usize = 32;

/// `quorum.auth.*` and the JAAS sections they name.
#[derive(Debug, Clone, Default)]
pub struct QuorumAuth {
    /// `quorum.auth.enableSasl`.
    pub enabled: bool,
    /// `quorum.auth.serverRequireSasl`: refuse peers that do not prove
    /// the password.
    pub server_require: bool,
    /// `quorum.auth.learnerRequireSasl`: refuse to talk to peers that do
    /// not prove it.
    pub learner_require: bool,
    /// The `QuorumServer` section's users.
    pub users: BTreeMap<String, String>,
    /// The `QuorumLearner` section's username and password.
    pub me: Option<(String, String)>,
}

/// The quorum authentication `auth` asks for: the JAAS file's
/// `QuorumServer` and `QuorumLearner` sections (or the ones named by
/// `quorum.auth.*.saslLoginContext`). With `quorum.auth.enableSasl` on, a
/// file or section that is missing stops the server, as in ZooKeeper.
pub fn load(auth: &crate::config::AuthSettings) -> Result<QuorumAuth, String> {
    let mut out = QuorumAuth {
        enabled: auth.quorum_sasl,
        server_require: auth.quorum_server_require,
        learner_require: auth.quorum_learner_require,
        ..Default::default()
    };
    if !out.enabled {
        return Ok(out);
    }
    let Some(file) = &auth.jaas_file else {
        return Err("quorum.auth.enableSasl is on, but no JAAS file is given (-Djava.security.auth.login.config=FILE)".into());
    };
    let sections = crate::jaas::read(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let section = |name: &str| {
        sections
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, m)| m)
            .ok_or_else(|| {
                format!(
                    "No JAAS configuration section named '{name}' was found in '{}'",
                    file.display()
                )
            })
    };
    let digest_only = |name: &str, modules: &[crate::jaas::Module]| {
        match modules.iter().find(|m| !m.class.ends_with("DigestLoginModule")) {
            Some(m) => Err(format!(
                "{}: JAAS section '{name}' uses {}: only DigestLoginModule is supported for quorum authentication; Kerberos is not yet",
                file.display(),
                m.class
            )),
            None => Ok(()),
        }
    };
    let server = auth
        .quorum_server_context
        .as_deref()
        .unwrap_or("QuorumServer");
    let modules = section(server)?;
    digest_only(server, modules)?;
    for m in modules {
        for (k, v) in &m.options {
            if let Some(user) = k.strip_prefix("user_") {
                out.users.insert(user.to_string(), v.clone());
            }
        }
    }
    let learner = auth
        .quorum_learner_context
        .as_deref()
        .unwrap_or("QuorumLearner");
    let modules = section(learner)?;
    digest_only(learner, modules)?;
    out.me = modules.iter().find_map(|m| {
        Some((
            m.options.get("username")?.clone(),
            m.options.get("password")?.clone(),
        ))
    });
    if out.me.is_none() {
        return Err(format!(
            "{}: JAAS section '{learner}' gives no username and password",
            file.display()
        ));
    }
    tracing::info!(
        "quorum authentication on: {} users from '{server}', this server is '{}' (serverRequireSasl {}, learnerRequireSasl {})",
        out.users.len(),
        out.me.as_ref().map_or("", |m| m.0.as_str()),
        out.server_require,
        out.learner_require
    );
    Ok(out)
}

fn proof(password: &str, role: &[u8], ids: (u64, u64), first: &[u8], second: &[u8]) -> [u8; 32] {
    let mut m = HmacSha256::new_from_slice(password.as_bytes()).expect("HMAC takes any key");
    m.update(b"ferrokeeper quorum auth ");
    m.update(role);
    m.update(&ids.0.to_be_bytes());
    m.update(&ids.1.to_be_bytes());
    m.update(first);
    m.update(second);
    m.finalize().into_bytes().into()
}

fn verify(expected: &[u8; 32], got: &[u8]) -> bool {
    // Constant time: the difference is not found byte by byte.
    got.len() == 32 && expected.iter().zip(got).fold(0u8, |a, (x, y)| a | (x ^ y)) == 0
}

async fn read_str<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<String> {
    let n = s.read_u16().await? as usize;
    let mut b = vec![0u8; n];
    s.read_exact(&mut b).await?;
    Ok(String::from_utf8_lossy(&b).into_owned())
}

async fn write_str<S: AsyncWrite + Unpin>(s: &mut S, v: &str) -> std::io::Result<()> {
    let b = &v.as_bytes()[..v.len().min(u16::MAX as usize)];
    s.write_u16(b.len() as u16).await?;
    s.write_all(b).await
}

async fn refuse<S: AsyncWrite + Unpin>(s: &mut S, why: String) -> Result<bool, String> {
    let _ = s.write_u8(REFUSED).await;
    let _ = write_str(s, &why).await;
    let _ = s.flush().await;
    Err(why)
}

/// The dialer's side, right after it sent its id: Ok(true) when both ends
/// proved the password, Ok(false) when the connection goes on without
/// (allowed by the settings), Err(why) when it must close.
pub(crate) async fn dial<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    auth: &QuorumAuth,
    my_id: u64,
    peer: u64,
) -> Result<bool, String> {
    if !auth.enabled {
        return Ok(false);
    }
    let Some((user, password)) = &auth.me else {
        return Err("quorum.auth.enableSasl is on but the JAAS QuorumLearner section gives no username and password".into());
    };
    let io = |e: std::io::Error| format!("during quorum authentication: {e}");
    let nonce_d: [u8; NONCE] = rand::random();
    s.write_all(&MAGIC).await.map_err(io)?;
    s.write_u8(VERSION).await.map_err(io)?;
    write_str(s, user).await.map_err(io)?;
    s.write_all(&nonce_d).await.map_err(io)?;
    s.flush().await.map_err(io)?;
    match s.read_u8().await.map_err(io)? {
        NO_AUTH if auth.learner_require => {
            return Err(format!(
                "server {peer} does not authenticate (its quorum.auth.enableSasl is off) and quorum.auth.learnerRequireSasl is on"
            ))
        }
        NO_AUTH => return Ok(false),
        OK => {}
        REFUSED => {
            let why = read_str(s).await.unwrap_or_default();
            return Err(format!("server {peer} refused our quorum authentication: {why}"));
        }
        b => return Err(format!("server {peer} answered quorum authentication with {b}")),
    }
    let mut nonce_a = [0u8; NONCE];
    let mut theirs = [0u8; 32];
    s.read_exact(&mut nonce_a).await.map_err(io)?;
    s.read_exact(&mut theirs).await.map_err(io)?;
    let ids = (my_id, peer);
    let acceptor_knows = verify(
        &proof(password, b"acceptor", ids, &nonce_d, &nonce_a),
        &theirs,
    );
    // Our proof goes in any case: the acceptor judges it, and says why
    // when it refuses, so both ends' logs tell what is wrong.
    s.write_all(&proof(password, b"dialer", ids, &nonce_a, &nonce_d))
        .await
        .map_err(io)?;
    s.flush().await.map_err(io)?;
    match s.read_u8().await.map_err(io)? {
        OK => {}
        REFUSED => {
            let why = read_str(s).await.unwrap_or_default();
            return Err(format!(
                "server {peer} refused our quorum authentication: {why}"
            ));
        }
        b => {
            return Err(format!(
                "server {peer} answered quorum authentication with {b}"
            ))
        }
    }
    if !acceptor_knows {
        if auth.learner_require {
            return Err(format!(
                "server {peer} does not know user {user}'s password (quorum.auth.learnerRequireSasl is on)"
            ));
        }
        tracing::warn!("server {peer} does not know user {user}'s password; going on (quorum.auth.learnerRequireSasl is off)");
    }
    Ok(acceptor_knows)
}

/// The acceptor's side, once the dialer's id `from` is read. `first` is
/// what came next: MAGIC (the dialer authenticates) or the start of its
/// first frame. Ok(true) when the dialer proved the password, Ok(false)
/// when it goes on without, Err(why) when it must close.
pub(crate) async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    auth: &QuorumAuth,
    my_id: u64,
    from: u64,
    first: [u8; 4],
) -> Result<bool, String> {
    if first != MAGIC {
        if auth.enabled && auth.server_require {
            return Err(format!(
                "server {from} did not authenticate and quorum.auth.serverRequireSasl is on"
            ));
        }
        return Ok(false);
    }
    let io = |e: std::io::Error| format!("during quorum authentication: {e}");
    let version = s.read_u8().await.map_err(io)?;
    let user = read_str(s).await.map_err(io)?;
    let mut nonce_d = [0u8; NONCE];
    s.read_exact(&mut nonce_d).await.map_err(io)?;
    if version != VERSION {
        return refuse(
            s,
            format!("quorum authentication version {version} is not known"),
        )
        .await;
    }
    if !auth.enabled {
        s.write_u8(NO_AUTH).await.map_err(io)?;
        s.flush().await.map_err(io)?;
        return Ok(false);
    }
    let Some(password) = auth.users.get(&user) else {
        if auth.server_require {
            return refuse(
                s,
                format!("no user {user} in the JAAS QuorumServer section"),
            )
            .await;
        }
        tracing::warn!("server {from} authenticates as {user}, who is not in the JAAS QuorumServer section; going on (quorum.auth.serverRequireSasl is off)");
        s.write_u8(NO_AUTH).await.map_err(io)?;
        s.flush().await.map_err(io)?;
        return Ok(false);
    };
    let nonce_a: [u8; NONCE] = rand::random();
    let ids = (from, my_id);
    s.write_u8(OK).await.map_err(io)?;
    s.write_all(&nonce_a).await.map_err(io)?;
    s.write_all(&proof(password, b"acceptor", ids, &nonce_d, &nonce_a))
        .await
        .map_err(io)?;
    s.flush().await.map_err(io)?;
    let mut theirs = [0u8; 32];
    s.read_exact(&mut theirs).await.map_err(io)?;
    if !verify(
        &proof(password, b"dialer", ids, &nonce_a, &nonce_d),
        &theirs,
    ) {
        if auth.server_require {
            return refuse(s, format!("wrong password for user {user}")).await;
        }
        tracing::warn!("server {from} gave a wrong password for user {user}; going on (quorum.auth.serverRequireSasl is off)");
        s.write_u8(OK).await.map_err(io)?;
        s.flush().await.map_err(io)?;
        return Ok(false);
    }
    s.write_u8(OK).await.map_err(io)?;
    s.flush().await.map_err(io)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn auth(user: &str, pw: &str, known: &[(&str, &str)], require: bool) -> QuorumAuth {
        QuorumAuth {
            enabled: true,
            server_require: require,
            learner_require: require,
            users: known
                .iter()
                .map(|(u, p)| (u.to_string(), p.to_string()))
                .collect(),
            me: Some((user.into(), pw.into())),
        }
    }

    /// Runs both sides over an in-memory pipe.
    async fn pair(d: QuorumAuth, a: QuorumAuth) -> (Result<bool, String>, Result<bool, String>) {
        let (mut x, mut y) = tokio::io::duplex(4096);
        let acceptor = async move {
            let mut first = [0u8; 4];
            y.read_exact(&mut first).await.unwrap();
            accept(&mut y, &a, 1, 2, first).await
        };
        let dialer = async move { dial(&mut x, &d, 2, 1).await };
        tokio::join!(dialer, acceptor)
    }

    #[tokio::test]
    async fn the_same_password_passes_both_ways_and_a_wrong_one_is_refused() {
        let known = [("zk", "secret")];
        let (d, a) = pair(
            auth("zk", "secret", &known, true),
            auth("zk", "secret", &known, true),
        )
        .await;
        assert_eq!((d, a), (Ok(true), Ok(true)));
        let (d, a) = pair(
            auth("zk", "wrong", &known, true),
            auth("zk", "secret", &known, true),
        )
        .await;
        assert!(d.is_err() && a.is_err(), "{d:?} {a:?}");
        let (d, a) = pair(
            auth("who", "secret", &known, true),
            auth("zk", "secret", &known, true),
        )
        .await;
        assert!(a.unwrap_err().contains("no user who"));
        assert!(d.unwrap_err().contains("refused"));
        // Not required: the wrong password goes on, unauthenticated.
        let (d, a) = pair(
            auth("zk", "wrong", &known, false),
            auth("zk", "secret", &known, false),
        )
        .await;
        assert_eq!((d, a), (Ok(false), Ok(false)));
    }

    #[tokio::test]
    async fn an_acceptor_without_quorum_auth_says_so() {
        let off = QuorumAuth::default();
        let (d, a) = pair(auth("zk", "s", &[], false), off.clone()).await;
        assert_eq!((d, a), (Ok(false), Ok(false)));
        let (d, _) = pair(auth("zk", "s", &[], true), off).await;
        assert!(d.unwrap_err().contains("learnerRequireSasl"));
    }
}
