//! Read-only mode (`readonlymode.enabled`, as ZooKeeper): a server that
//! has had no leader for max(2 s, tickTime) serves the clients that asked
//! for it (the ConnectRequest's readOnly flag: `canBeReadOnly`, kazoo's
//! `read_only=True`) from its last state — reads as usual, writes answered
//! NotReadOnly — and refuses the others, as ZooKeeper's
//! ReadOnlyZooKeeperServer. A client with a session the ensemble made
//! keeps it (ZooKeeper 3.8 takes only new sessions there, so its clients
//! need `localSessionsEnabled`; keeping one is safe: nothing is written);
//! a new client gets a session of this server alone, which the ensemble
//! never knows. When a leader is back, every read-only connection closes
//! and its client moves to a server with a quorum, as ZooKeeper's do.
//!
//! Not here: the connect itself (`clients`), the four-letter words
//! (`isro` answers `ro`, `srvr` says `Mode: read-only`).

use super::*;

/// Session ids of read-only sessions: 0x7f in the top byte (the ensemble's
/// have 0x01), this server's id in the next, then a count.
const READ_ONLY_SESSION_TAG: i64 = 0x7f << 56;

impl Node {
    /// Whether this server is serving read-only clients now.
    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// The id of a session this server makes without the log (read-only,
    /// local): `tag` in the top byte, this server's id in the next, then
    /// `n`.
    pub(crate) fn own_session_id(&self, tag: i64, n: i64) -> i64 {
        tag | ((self.cfg.server_id as i64 & 0xff) << 48) | (n & ((1 << 48) - 1))
    }

    /// How long without a leader before read-only mode starts:
    /// max(2000 ms, tickTime), as ZooKeeper's QuorumPeer waits.
    pub(crate) fn read_only_delay_ms(&self) -> i64 {
        (self.cfg.tick_ms as i64 * 10).max(2000)
    }

    /// On every tick: starts read-only mode once a member of an ensemble
    /// has been without a leader long enough; held connects of read-only
    /// clients are served then, the others refused.
    pub(crate) fn check_read_only(&mut self) {
        if !self.cfg.read_only_mode
            || self.read_only
            || self.has_leader()
            || self.removed
            || self.cfg.members_text.is_empty()
            || self.now_ms - self.no_leader_since_ms < self.read_only_delay_ms()
        {
            return;
        }
        tracing::info!(
            "no quorum for {} ms: serving read-only clients (readonlymode.enabled)",
            self.now_ms - self.no_leader_since_ms
        );
        self.read_only = true;
        for h in std::mem::take(&mut self.held_connects) {
            self.open(h.conn, h.req, h.ip, h.ids, h.early, self.now_ms);
        }
    }

    /// A leader is back: read-only connections close (their clients find
    /// a server with a quorum).
    pub(crate) fn leave_read_only(&mut self) {
        if !std::mem::take(&mut self.read_only) {
            return;
        }
        tracing::info!("a leader is back: read-only mode ends");
        self.close_clients_where(
            |c| c.read_only,
            "read-only mode ended: the ensemble has a quorum again",
        );
    }

    /// A connect while read-only (after `open`'s checks): a client that
    /// asked for read-only gets its session (the ensemble's, or one of this
    /// server's), the others are refused.
    pub(crate) fn open_read_only(
        &mut self,
        conn: ConnId,
        req: ConnectRequest,
        auth: Vec<Id>,
        early: Vec<clients::EarlyRequest>,
        timeout_ms: i32,
    ) {
        if req.read_only != Some(true) {
            self.outputs.push(Output::Close {
                conn,
                reason: "not a read-only client, and this server is read-only",
            });
            return;
        }
        let (session_id, passwd) = if req.session_id == 0 {
            let id = self.own_session_id(READ_ONLY_SESSION_TAG, self.next_read_only_session);
            self.next_read_only_session += 1;
            let mut passwd = vec![0u8; 16];
            self.rng.fill(&mut passwd[..]);
            self.read_only_sessions.insert(id, passwd.clone());
            (id, passwd)
        } else {
            let known = self
                .sm
                .sessions
                .get(&req.session_id)
                .map(|s| &s.passwd)
                .or_else(|| self.read_only_sessions.get(&req.session_id));
            match known {
                Some(p) if Some(p) == req.passwd.as_ref() => (req.session_id, p.clone()),
                _ => return self.refuse_session(conn, Some(true)),
            }
        };
        tracing::debug!(conn, "read-only session 0x{session_id:x}");
        self.conns.insert(
            conn,
            Conn {
                session_id,
                timeout_ms,
                auth,
                queue: VecDeque::new(),
                sent_read_only: true,
                sasl: Default::default(),
                early: Vec::new(),
                read_only: true,
            },
        );
        self.bind_session(session_id, conn);
        let resp = ConnectResponse {
            protocol_version: 0,
            timeout_ms,
            session_id,
            passwd: Some(passwd),
            read_only: Some(true),
        };
        self.send_connect_response(conn, &resp);
        for r in early {
            self.request(conn, r.xid, r.op, &r.body, self.now_ms, r.arrived);
        }
    }

    /// A write on a read-only connection: NotReadOnly, as ZooKeeper's
    /// ReadOnlyRequestProcessor; closeSession ends the connection here.
    pub(crate) fn refuse_write(&mut self, conn: ConnId, asked: clients::Asked, req: &Request) {
        let zxid = self.sm.last_zxid();
        if matches!(req, Request::CloseSession) {
            if let Some(c) = self.conns.get(&conn) {
                self.read_only_sessions.remove(&c.session_id);
            }
            self.send_reply(conn, asked, zxid, ErrorCode::Ok, &Reply::Empty);
            self.drop_conn(conn);
            self.outputs.push(Output::Close {
                conn,
                reason: "session closed by the client",
            });
            return;
        }
        self.send_reply(conn, asked, zxid, ErrorCode::NotReadOnly, &Reply::Empty);
    }
}
