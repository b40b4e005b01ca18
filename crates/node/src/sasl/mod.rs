//! SASL on a client connection, as ZooKeeper's `processSasl` runs it: the
//! session already exists (the client saw SyncConnected), then sasl
//! requests (op 102) carry the mechanism's tokens, each answered at once,
//! outside the connection's request queue, with zxid 0. Passing adds the
//! identity ("sasl", user) to the connection, and ("super", "") when the
//! user is one of `zookeeper.superUser`. Failing answers AuthFailed with
//! no token and closes the connection (the session stays until it
//! expires), unless `zookeeper.allowSaslFailedClients` keeps it open.
//!
//! DIGEST-MD5 is the mechanism (`digest_md5`); GSSAPI is not supported.
//!
//! Not here: reading the JAAS file (the server crate hands over
//! `SaslConfig`), `sasl` ACL matching (`tree::acl`).

pub mod digest_md5;

use super::*;
use crate::clients::Asked;
use base64::Engine;
use std::collections::BTreeMap;

/// The users a SASL client may authenticate as, and what passing means.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SaslConfig {
    /// DIGEST-MD5 users and their passwords: the `user_NAME="password"`
    /// options of the JAAS `Server` section.
    pub users: BTreeMap<String, String>,
    /// `zookeeper.SASLAuthenticationProvider.superPassword`: the password
    /// of user `super` instead of the JAAS one (the user must still be in
    /// the JAAS section, as in ZooKeeper).
    pub super_password: Option<String>,
    /// `zookeeper.superUser` (and `zookeeper.superUser.*`): SASL users who
    /// also get the `super` identity.
    pub super_users: Vec<String>,
    /// `zookeeper.allowSaslFailedClients`: a failed exchange is logged and
    /// the connection kept, without an identity.
    pub allow_failed: bool,
}

impl SaslConfig {
    /// The password DIGEST-MD5 checks `user` against, as ZooKeeper's
    /// `SaslServerCallbackHandler` finds it.
    fn password(&self, user: &str) -> Option<String> {
        let jaas = self.users.get(user)?;
        Some(match &self.super_password {
            Some(p) if user == "super" => p.clone(),
            _ => jaas.clone(),
        })
    }
}

/// Where a connection's SASL exchange stands (`Conn::sasl`).
#[derive(Debug, Default)]
pub(crate) enum SaslState {
    /// No token yet: the next one is answered with a challenge.
    #[default]
    Start,
    /// The challenge carrying this nonce was sent; the next token is the
    /// client's response to it.
    Challenged { nonce: String },
    /// Authenticated; a further token is a failure, as the JDK's server
    /// refuses to evaluate after completion.
    Done,
}

impl Node {
    /// A sasl request (op 102) arrived with `token`.
    pub(crate) fn sasl(&mut self, conn: ConnId, asked: Asked, token: Vec<u8>) {
        // ZooKeeper answers SASL with zxid 0.
        let zxid = 0;
        let Some(cfg) = &self.cfg.sasl else {
            // A ZooKeeper without a JAAS Server section has no SASL server:
            // processSasl's NullPointerException is caught and the reply is
            // OK with no token.
            self.send_reply(conn, asked, zxid, ErrorCode::Ok, &Reply::Sasl(None));
            return;
        };
        // With `sasl` enforced, a failed login is never let through, and is
        // answered SessionClosedRequireSaslAuth (ZooKeeper's processSasl).
        let required = self.cfg.enforce_auth.iter().any(|s| s == "sasl");
        let allow_failed = cfg.allow_failed && !required;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let session_id = c.session_id;
        let step = match std::mem::take(&mut c.sasl) {
            SaslState::Start => {
                let mut raw = [0u8; digest_md5::NONCE_BYTES];
                self.rng.fill(&mut raw[..]);
                let nonce = base64::engine::general_purpose::STANDARD.encode(raw);
                let challenge = digest_md5::challenge(&nonce);
                c.sasl = SaslState::Challenged { nonce };
                Ok(challenge)
            }
            SaslState::Challenged { nonce } => {
                match digest_md5::verify(&token, &nonce, |u| cfg.password(u)) {
                    Ok(v) => {
                        tracing::info!(
                            "Session 0x{session_id:x}: adding SASL authorization for authorizationID: {}",
                            v.user
                        );
                        let mut ids = vec![Id {
                            scheme: "sasl".into(),
                            id: v.user.clone(),
                        }];
                        if cfg.super_users.contains(&v.user) {
                            tracing::info!(
                                "Session 0x{session_id:x}: Authenticated Id '{}' as super user",
                                v.user
                            );
                            ids.push(Id {
                                scheme: "super".into(),
                                id: String::new(),
                            });
                        }
                        for id in ids {
                            if !c.auth.contains(&id) {
                                c.auth.push(id);
                            }
                        }
                        c.sasl = SaslState::Done;
                        Ok(v.rspauth)
                    }
                    Err(e) => Err(e.to_string()),
                }
            }
            SaslState::Done => Err("DIGEST-MD5 authentication already completed".to_string()),
        };
        match step {
            Ok(token) => {
                self.send_reply(conn, asked, zxid, ErrorCode::Ok, &Reply::Sasl(Some(token)));
            }
            Err(why) if allow_failed => {
                tracing::warn!(
                    "Session 0x{session_id:x}: client failed to SASL authenticate: {why}; \
                     maintaining client connection despite SASL authentication failure"
                );
                self.send_reply(conn, asked, zxid, ErrorCode::Ok, &Reply::Sasl(None));
            }
            Err(why) => {
                tracing::warn!(
                    "Session 0x{session_id:x}: client failed to SASL authenticate: {why}; \
                     closing the connection"
                );
                let code = if required {
                    ErrorCode::SessionClosedRequireSaslAuth
                } else {
                    ErrorCode::AuthFailed
                };
                self.send_reply(conn, asked, zxid, code, &Reply::Sasl(None));
                self.outputs.push(Output::Close {
                    conn,
                    reason: "SASL authentication failed",
                });
                self.drop_conn(conn);
            }
        }
    }
}
