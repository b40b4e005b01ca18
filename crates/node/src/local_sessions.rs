//! Local sessions (`localSessionsEnabled`, ZooKeeper 3.5+): a new session
//! lives on the server its client connected to and costs the log nothing —
//! no entry to create it, expire it or close it. Its writes go through the
//! log as any (the tree takes them from a session it does not list: ids
//! tagged `LOCAL_SESSION_TAG`). Creating an ephemeral node upgrades it to
//! a global session first (with `localSessionsUpgradingEnabled`, off by
//! default as in ZooKeeper: a CreateSession entry for the same id and
//! password), or is refused with EphemeralOnLocalSession. As in ZooKeeper, a local session cannot move:
//! another server does not know it (SessionExpired), and it ends with its
//! server. Only in an ensemble (ZooKeeper's standalone server has none).

use super::*;
use proto::{CreateMode, MultiOp};
use tree::entry::LOCAL_SESSION_TAG;

/// A session this server made without the log.
#[derive(Debug, Clone)]
pub(crate) struct LocalSession {
    passwd: Vec<u8>,
    timeout_ms: i32,
    last_heard_ms: i64,
}

impl Node {
    /// New sessions are local here.
    pub(crate) fn local_sessions_on(&self) -> bool {
        self.cfg.local_sessions && !self.cfg.members_text.is_empty()
    }

    /// How many local sessions this server holds (`zk_local_sessions`).
    pub fn local_session_count(&self) -> usize {
        self.local_sessions.len()
    }

    /// A connect without a session: a local one, answered at once.
    pub(crate) fn open_local(&mut self, conn: ConnId, timeout_ms: i32) {
        let id = self.own_session_id(LOCAL_SESSION_TAG, self.next_local_session);
        self.next_local_session += 1;
        let mut passwd = vec![0u8; 16];
        self.rng.fill(&mut passwd[..]);
        self.local_sessions.insert(
            id,
            LocalSession {
                passwd: passwd.clone(),
                timeout_ms,
                last_heard_ms: self.now_ms,
            },
        );
        tracing::debug!(conn, "local session 0x{id:x}");
        self.attach_local(conn, id, timeout_ms, passwd);
    }

    /// A reconnect with one of this server's local sessions, if it is one
    /// and the password is right (Some(answered)); None when it is not a
    /// local session of this server.
    pub(crate) fn reopen_local(
        &mut self,
        conn: ConnId,
        req: &ConnectRequest,
        timeout_ms: i32,
    ) -> Option<bool> {
        let s = self.local_sessions.get_mut(&req.session_id)?;
        if Some(&s.passwd) != req.passwd.as_ref() {
            return Some(false);
        }
        s.last_heard_ms = self.now_ms;
        let passwd = s.passwd.clone();
        self.attach_local(conn, req.session_id, timeout_ms, passwd);
        Some(true)
    }

    fn attach_local(&mut self, conn: ConnId, id: i64, timeout_ms: i32, passwd: Vec<u8>) {
        self.attach(conn, id, timeout_ms, passwd);
        // Its timer is its own (`expire_local_sessions`), not the leader's.
        self.liveness.remove(&id);
    }

    /// The client of local session `id` spoke.
    pub(crate) fn heard_local(&mut self, id: i64) {
        if let Some(s) = self.local_sessions.get_mut(&id) {
            s.last_heard_ms = self.now_ms;
        }
    }

    pub(crate) fn is_local_session(&self, id: i64) -> bool {
        self.local_sessions.contains_key(&id)
    }

    /// closeSession of a local session: ended here.
    pub(crate) fn close_local(&mut self, conn: ConnId, asked: clients::Asked) {
        if let Some(c) = self.conns.get(&conn) {
            self.local_sessions.remove(&c.session_id);
        }
        let zxid = self.sm.last_zxid();
        self.send_reply(conn, asked, zxid, ErrorCode::Ok, &Reply::Empty);
        self.drop_conn(conn);
        self.outputs.push(Output::Close {
            conn,
            reason: "session closed by the client",
        });
    }

    /// On every tick: local sessions not heard from for their timeout end,
    /// with their connection.
    pub(crate) fn expire_local_sessions(&mut self) {
        if self.local_sessions.is_empty() {
            return;
        }
        let now = self.now_ms;
        let expired: Vec<i64> = self
            .local_sessions
            .iter()
            .filter(|(_, s)| now - s.last_heard_ms > s.timeout_ms as i64)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            tracing::info!("Expiring local session 0x{id:x}");
            self.local_sessions.remove(&id);
            if let Some(conn) = self.session_conn.get(&id).copied() {
                self.drop_conn(conn);
                self.outputs.push(Output::Close {
                    conn,
                    reason: "local session expired",
                });
            }
        }
    }

    /// Before a write of local session `id` that creates an ephemeral node
    /// (a create, or a multi with one, as ZooKeeper's checkUpgradeSession):
    /// Ok(true) when an upgrade was proposed ahead of it, Ok(false) when
    /// none is needed, Err when upgrading is off (EphemeralOnLocalSession).
    pub(crate) fn upgrade_if_needed(&mut self, id: i64, req: &Request) -> Result<bool, ErrorCode> {
        let Some(s) = self.local_sessions.get(&id) else {
            return Ok(false);
        };
        let ephemeral = |flags: i32| CreateMode::from_code(flags).is_some_and(|m| m.is_ephemeral());
        let needs = match req {
            Request::Create(OpCode::Create | OpCode::Create2, c) => ephemeral(c.flags),
            Request::Multi(ops) => ops.iter().any(|op| {
                matches!(op, MultiOp::Create(OpCode::Create | OpCode::Create2, c) if ephemeral(c.flags))
            }),
            _ => false,
        };
        if !needs {
            return Ok(false);
        }
        if !self.cfg.local_sessions_upgrading {
            return Err(ErrorCode::EphemeralOnLocalSession);
        }
        tracing::info!(
            "Upgrading local session 0x{id:x} to a global one: it creates an ephemeral node"
        );
        let (timeout_ms, passwd) = (s.timeout_ms, s.passwd.clone());
        // No connection: the upgrade answers nobody; the write behind it does.
        self.propose(Entry {
            time_ms: self.now_ms,
            session_id: id,
            xid: 0,
            origin: self.origin,
            conn: 0,
            kind: EntryKind::CreateSession { timeout_ms, passwd },
        });
        Ok(true)
    }

    /// A session was created through the log: if it was one of ours, it is
    /// global now.
    pub(crate) fn upgraded(&mut self, id: i64) {
        if self.local_sessions.remove(&id).is_some() {
            tracing::info!("local session 0x{id:x} is global now");
        }
    }
}
