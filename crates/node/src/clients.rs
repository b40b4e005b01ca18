//! Client connections on this replica: connect (held while there is no
//! leader), sessions attached to connections, requests in each
//! connection's FIFO queue (writes proposed, reads served locally once the
//! connection's earlier writes are applied), addauth, and the frames of
//! replies and watch events.
//!
//! Not here: the log hand-off (`ready`), session expiry (`timers`).
//! Invariants: a connection's replies leave in request order; a watch
//! event leaves before any reply that follows its change.

use super::*;

/// A connect request waiting for a leader (`Node::held_connects`).
pub(crate) struct HeldConnect {
    pub(crate) conn: ConnId,
    pub(crate) req: ConnectRequest,
    pub(crate) ip: String,
    /// Identities the transport established (`Node::connect_as`).
    pub(crate) ids: Vec<Id>,
    /// Requests that came after the ConnectRequest (`Conn::early`).
    pub(crate) early: Vec<EarlyRequest>,
    /// When the client's session timeout has passed (ms since the epoch).
    pub(crate) until_ms: i64,
}

/// A request that arrived before its connection's session was
/// established: the Java client's Netty socket sends its queued requests
/// right behind the ConnectRequest, and ZooKeeper holds them (it stops
/// reading the connection) until the session is there.
#[derive(Debug)]
pub(crate) struct EarlyRequest {
    pub(crate) xid: i32,
    pub(crate) op: i32,
    pub(crate) body: Vec<u8>,
    pub(crate) arrived: u64,
}

/// Early requests one connection may send before its session exists.
const MAX_EARLY: usize = 1000;

/// A request as its reply names it: the client's xid and op, and the
/// driver's stamp of its arrival, handed back in `FrameKind::Reply` (so
/// the driver keeps no queue of its own to time replies).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Asked {
    pub(crate) xid: i32,
    pub(crate) op: i32,
    pub(crate) arrived: u64,
    /// How many of the connection's identities it had when the request
    /// arrived (they are only ever added): a read queued behind a write or
    /// a read index is checked against those, as ZooKeeper copies a
    /// request's identities on arrival — an `addauth` answered meanwhile
    /// does not reach back.
    pub(crate) ids: u32,
}

impl Asked {
    /// What the reply to this request is, for the driver.
    pub(crate) fn reply_kind(&self, zxid: i64, err: ErrorCode) -> FrameKind {
        FrameKind::Reply {
            xid: self.xid,
            zxid,
            err: err.code(),
            op: self.op,
            arrived: self.arrived,
        }
    }
}

/// A request waiting in a connection's FIFO queue: this queue is the one
/// account of a connection's requests in flight.
#[derive(Debug)]
pub(crate) enum Pending {
    /// Proposed; completes when its entry is applied.
    Write(Asked, Sent),
    /// Served once every earlier write of the connection has applied.
    Read(Asked, Request),
    /// A read of a linearizable server (`linearizable`): served once
    /// every earlier request of the connection is answered and the read
    /// index of its batch is applied here.
    Linear(Asked, Request, u64),
    /// A write not proposed yet (its entry's bytes), behind a `Linear`
    /// read or a write that may have to be sent again (`must_hold`): it
    /// becomes a `Write` once nothing ahead holds it (`propose_held`).
    Held(Asked, Vec<u8>),
}

/// A write proposed to the leader (`resend`): the term it was sent in (0:
/// not sent yet) and when, and its entry's bytes (shared with the Raft
/// entry, not copied).
#[derive(Debug)]
pub(crate) struct Sent {
    pub(crate) term: u64,
    pub(crate) at_ms: i64,
    pub(crate) data: bytes::Bytes,
}

#[derive(Debug)]
pub(crate) struct Conn {
    /// 0 until the session is established.
    pub(crate) session_id: i64,
    /// The negotiated timeout, answered on connect.
    pub(crate) timeout_ms: i32,
    /// ip plus identities added by `addauth`; ACL checks use them.
    pub(crate) auth: Vec<Id>,
    pub(crate) queue: VecDeque<Pending>,
    /// The ConnectRequest carried the readOnly flag (clients since 3.4);
    /// only then does the ConnectResponse carry one back, as ZooKeeper's.
    pub(crate) sent_read_only: bool,
    /// The SASL exchange on this connection (`sasl`).
    pub(crate) sasl: sasl::SaslState,
    /// Requests that came before the session was established, served in
    /// order once it is (`attach`).
    pub(crate) early: Vec<EarlyRequest>,
    /// Served by this server in read-only mode (`read_only`).
    pub(crate) read_only: bool,
}

impl Node {
    /// A client sent its ConnectRequest. `ip` becomes its ("ip", addr) identity.
    pub fn connect(&mut self, conn: ConnId, req: ConnectRequest, ip: String, now_ms: i64) {
        self.connect_as(conn, req, ip, Vec::new(), now_ms)
    }

    /// `connect` for a client whose transport already established who it
    /// is: `ids` (a TLS client's `x509` identity, and `super` when that is
    /// the configured super user) join its `ip` identity, as ZooKeeper's
    /// `X509AuthenticationProvider` adds them at the handshake.
    pub fn connect_as(
        &mut self,
        conn: ConnId,
        req: ConnectRequest,
        ip: String,
        ids: Vec<Id>,
        now_ms: i64,
    ) {
        self.open(conn, req, ip, ids, Vec::new(), now_ms)
    }

    /// `connect_as` with the requests that already came behind the
    /// ConnectRequest (a held connection's, `ready`).
    pub(crate) fn open(
        &mut self,
        conn: ConnId,
        req: ConnectRequest,
        ip: String,
        ids: Vec<Id>,
        early: Vec<EarlyRequest>,
        now_ms: i64,
    ) {
        self.now_ms = now_ms;
        let timeout_ms = req.timeout_ms.clamp(
            self.cfg.min_session_timeout_ms,
            self.cfg.max_session_timeout_ms,
        );
        if !self.has_leader() && !self.read_only {
            // A server without a quorum serves no client; this one waits.
            self.held_connects.push(HeldConnect {
                conn,
                req,
                ip,
                ids,
                early,
                until_ms: now_ms + timeout_ms as i64,
            });
            return;
        }
        if req.last_zxid_seen > self.sm.last_zxid() {
            // ZooKeeper refuses a client that has seen a newer state than ours.
            self.outputs.push(Output::Close {
                conn,
                reason: "client has seen a zxid newer than this server's",
            });
            return;
        }
        let mut auth = vec![Id {
            scheme: "ip".into(),
            id: ip,
        }];
        auth.extend(ids);
        if !self.has_leader() {
            // Read-only mode (`read_only`).
            self.open_read_only(conn, req, auth, early, timeout_ms);
            return;
        }
        self.conns.insert(
            conn,
            Conn {
                session_id: 0,
                timeout_ms,
                auth,
                queue: VecDeque::new(),
                sent_read_only: req.read_only.is_some(),
                sasl: Default::default(),
                early,
                read_only: false,
            },
        );
        if req.session_id == 0 && self.local_sessions_on() {
            return self.open_local(conn, timeout_ms);
        }
        if let Some(known) = self.reopen_local(conn, &req, timeout_ms) {
            if !known {
                self.conns.remove(&conn);
                self.refuse_session(conn, req.read_only.map(|_| false));
            }
            return;
        }
        if req.session_id == 0 {
            let mut passwd = vec![0u8; 16];
            self.rng.fill(&mut passwd[..]);
            self.propose(Entry {
                time_ms: now_ms,
                session_id: 0,
                xid: 0,
                origin: self.origin,
                conn,
                kind: EntryKind::CreateSession { timeout_ms, passwd },
            });
            return;
        }
        let valid = self
            .sm
            .sessions
            .get(&req.session_id)
            .is_some_and(|s| Some(&s.passwd) == req.passwd.as_ref());
        if !valid {
            self.conns.remove(&conn);
            self.refuse_session(conn, req.read_only.map(|_| false));
            return;
        }
        self.attach(
            conn,
            req.session_id,
            timeout_ms,
            req.passwd.unwrap_or_default(),
        );
    }

    /// As ZooKeeper: a zero session in the connect response tells the
    /// client its session expired (or its password is wrong); then close.
    pub(crate) fn refuse_session(&mut self, conn: ConnId, read_only: Option<bool>) {
        let resp = ConnectResponse {
            passwd: Some(vec![0; 16]),
            read_only,
            ..Default::default()
        };
        self.send_connect_response(conn, &resp);
        self.outputs.push(Output::Close {
            conn,
            reason: "session expired or wrong password",
        });
    }

    /// `conn` speaks for `session_id` now; a connection that did before
    /// is closed (the client moved).
    pub(crate) fn bind_session(&mut self, session_id: i64, conn: ConnId) {
        if let Some(old) = self.session_conn.insert(session_id, conn) {
            if old != conn {
                self.drop_conn(old);
                self.outputs.push(Output::Close {
                    conn: old,
                    reason: "session moved to another connection",
                });
            }
        }
    }

    /// Binds a connection to an established session and answers it.
    pub(crate) fn attach(
        &mut self,
        conn: ConnId,
        session_id: i64,
        timeout_ms: i32,
        passwd: Vec<u8>,
    ) {
        tracing::debug!(
            conn,
            "Established session 0x{session_id:x} with negotiated timeout {timeout_ms} ms"
        );
        self.bind_session(session_id, conn);
        let mut sent_read_only = true;
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session_id = session_id;
            sent_read_only = c.sent_read_only;
        }
        let session_timeout = self
            .sm
            .sessions
            .get(&session_id)
            .map_or(timeout_ms, |s| s.timeout_ms);
        let l = self.liveness.entry(session_id).or_insert(Liveness {
            timeout_ms: session_timeout as i64,
            last_heard_ms: self.now_ms,
            expiring: false,
        });
        l.last_heard_ms = self.now_ms;
        let resp = ConnectResponse {
            protocol_version: 0,
            timeout_ms,
            session_id,
            passwd: Some(passwd),
            read_only: sent_read_only.then_some(false),
        };
        self.send_connect_response(conn, &resp);
        let early = self
            .conns
            .get_mut(&conn)
            .map(|c| std::mem::take(&mut c.early))
            .unwrap_or_default();
        for r in early {
            self.request(conn, r.xid, r.op, &r.body, self.now_ms, r.arrived);
        }
    }

    /// The connection is gone (socket closed or failed). Its session lives
    /// on until it expires.
    pub fn disconnect(&mut self, conn: ConnId) {
        self.drop_conn(conn);
    }

    pub(crate) fn drop_conn(&mut self, conn: ConnId) {
        self.held_connects.retain(|h| h.conn != conn);
        if let Some(c) = self.conns.remove(&conn) {
            if self.session_conn.get(&c.session_id) == Some(&conn) {
                self.session_conn.remove(&c.session_id);
            }
        }
        self.watches.remove_conn(conn);
    }

    /// A request that came before its connection's session exists (or
    /// while the connection waits for a leader): kept in order until the
    /// session is there (`attach`); too many close the connection.
    fn hold_early(&mut self, conn: ConnId, asked: Asked, body: &[u8]) {
        let queue = match self.conns.get_mut(&conn) {
            Some(c) => &mut c.early,
            None => match self.held_connects.iter_mut().find(|h| h.conn == conn) {
                Some(h) => &mut h.early,
                None => return,
            },
        };
        if queue.len() >= MAX_EARLY {
            self.outputs.push(Output::Close {
                conn,
                reason: "too many requests before the session was established",
            });
            self.drop_conn(conn);
            return;
        }
        queue.push(EarlyRequest {
            xid: asked.xid,
            op: asked.op,
            body: body.to_vec(),
            arrived: asked.arrived,
        });
    }

    /// A request frame arrived on an established connection. An
    /// undecodable one closes the connection. `arrived` is the driver's
    /// stamp, handed back with the reply (`FrameKind::Reply`); the node
    /// does not read it.
    pub fn request(
        &mut self,
        conn: ConnId,
        xid: i32,
        op: i32,
        body: &[u8],
        now_ms: i64,
        arrived: u64,
    ) {
        self.now_ms = now_ms;
        let mut asked = Asked {
            xid,
            op,
            arrived,
            ids: 0,
        };
        let Some(c) = self.conns.get(&conn).filter(|c| c.session_id != 0) else {
            return self.hold_early(conn, asked, body);
        };
        asked.ids = c.auth.len() as u32;
        let session_id = c.session_id;
        // AuthenticationHelper.enforceAuthentication: every request but
        // auth and SASL needs an identity of an enforced scheme.
        if !self.cfg.enforce_auth.is_empty()
            && op != OpCode::Auth.code()
            && op != OpCode::Sasl.code()
            && !c
                .auth
                .iter()
                .any(|i| self.cfg.enforce_auth.contains(&i.scheme))
        {
            let schemes: Vec<&str> = c.auth.iter().map(|i| i.scheme.as_str()).collect();
            tracing::error!(
                "Client authentication scheme(s) {schemes:?} does not match with any of the expected authentication scheme {:?}, closing session 0x{session_id:x}",
                self.cfg.enforce_auth
            );
            self.send_reply(
                conn,
                asked,
                0,
                ErrorCode::SessionClosedRequireSaslAuth,
                &Reply::Empty,
            );
            self.outputs.push(Output::Close {
                conn,
                reason: "authentication required (enforce.auth.schemes)",
            });
            self.drop_conn(conn);
            return;
        }
        if let Some(l) = self.liveness.get_mut(&session_id) {
            l.last_heard_ms = now_ms;
        } else {
            self.heard_local(session_id);
        }
        let Some(req) = OpCode::from_code(op).and_then(|op| Request::decode(op, body).ok()) else {
            self.outputs.push(Output::Close {
                conn,
                reason: "malformed or unknown request",
            });
            self.drop_conn(conn);
            return;
        };
        if let Request::Sasl(s) = req {
            self.sasl(conn, asked, s.token.unwrap_or_default());
            return;
        }
        if let Request::Auth(a) = &req {
            self.auth(
                conn,
                asked,
                a.scheme.clone(),
                a.auth.clone().unwrap_or_default(),
            );
            return;
        }
        if req.is_write() && self.conns.get(&conn).is_some_and(|c| c.read_only) {
            return self.refuse_write(conn, asked, &req);
        }
        if req.is_write() && self.is_local_session(session_id) {
            if matches!(req, Request::CloseSession) {
                return self.close_local(conn, asked);
            }
            if let Err(e) = self.upgrade_if_needed(session_id, &req) {
                let zxid = self.sm.last_zxid();
                return self.send_reply(conn, asked, zxid, e, &Reply::Empty);
            }
        }
        if req.is_write() {
            let c = self.conns.get_mut(&conn).expect("checked above");
            let header = tree::entry::Header {
                time_ms: now_ms,
                session_id,
                xid,
                origin: self.origin,
                conn,
            };
            let data = match req {
                Request::CloseSession => Entry {
                    time_ms: now_ms,
                    session_id,
                    xid,
                    origin: self.origin,
                    conn,
                    kind: EntryKind::CloseSession { expired: false },
                }
                .encode(),
                // Straight from the request's bytes: no copy of the body,
                // no clone of the connection's identities.
                _ => tree::entry::encode_request(header, req.op(), body, &c.auth),
            };
            if self.must_hold(conn) {
                // An earlier read waits for its read index and will be
                // served from the state then, or an earlier write may have
                // to be sent again: this write must not apply before them
                // (`propose_held`).
                let c = self.conns.get_mut(&conn).expect("checked above");
                c.queue.push_back(Pending::Held(asked, data));
                return;
            }
            self.propose_write(conn, asked, data);
            return;
        }
        let c = self.conns.get_mut(&conn).expect("checked above");
        if self.cfg.linearizable_reads && !c.read_only && linearizable::reads_state(&req) {
            return self.queue_linearizable(conn, asked, req);
        }
        if c.queue.is_empty() {
            self.serve_read(conn, asked, &req);
        } else {
            c.queue.push_back(Pending::Read(asked, req));
        }
    }

    /// addauth: digest identities are added; any other scheme fails and
    /// closes the connection, as ZooKeeper. The reply carries the xid the
    /// client sent (the Java client and kazoo send -4, the Go client an
    /// ordinary one) and zxid 0, as ZooKeeper's `processPacket` answers.
    pub(crate) fn auth(&mut self, conn: ConnId, asked: Asked, scheme: String, auth: Vec<u8>) {
        let zxid = 0;
        if scheme != "digest" {
            self.send_reply(conn, asked, zxid, ErrorCode::AuthFailed, &Reply::Empty);
            self.outputs.push(Output::Close {
                conn,
                reason: "authentication failed",
            });
            self.drop_conn(conn);
            return;
        }
        let id = acl::digest(&String::from_utf8_lossy(&auth));
        let is_super = self.cfg.super_digest.as_deref() == Some(id.as_str());
        if let Some(c) = self.conns.get_mut(&conn) {
            let mut add = |i: Id| {
                if !c.auth.contains(&i) {
                    c.auth.push(i)
                }
            };
            if is_super {
                add(Id {
                    scheme: "super".into(),
                    id: String::new(),
                });
            }
            add(Id {
                scheme: "digest".into(),
                id,
            });
        }
        self.send_reply(conn, asked, zxid, ErrorCode::Ok, &Reply::Empty);
    }

    pub(crate) fn serve_read(&mut self, conn: ConnId, asked: Asked, req: &Request) {
        let xid = asked.xid;
        let zxid = self.sm.last_zxid();
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let session_id = c.session_id;
        let auth = &c.auth[..(asked.ids as usize).min(c.auth.len())];
        let reply = match req {
            Request::Ping => {
                // ZooKeeper answers a ping with the ping xid (-2) whatever
                // xid the client sent (FinalRequestProcessor).
                let ping = Asked {
                    xid: Xid::PING,
                    ..asked
                };
                self.send_reply(conn, ping, zxid, ErrorCode::Ok, &Reply::Empty);
                return;
            }
            Request::SetWatches(sw) => {
                // Events for what changed since the client's zxid first, then the reply.
                // ZooKeeper 3.9 marks these with no zxid (-1), as 3.8 did all.
                for n in self.watches.replay(&self.sm.tree, sw, conn) {
                    self.send_notification(&n, -1);
                }
                Reply::Empty
            }
            Request::AddWatch(a) => match a.mode {
                0 | 1 => {
                    self.watches.add_persistent(&a.path, conn, a.mode == 1);
                    Reply::ErrorRecord
                }
                _ => Reply::Err(ErrorCode::BadArguments),
            },
            Request::RemoveWatches(r) | Request::CheckWatches(r) => {
                let remove = matches!(req, Request::RemoveWatches(_));
                match self
                    .watches
                    .remove_or_check(&r.path, conn, r.watcher_type, remove)
                {
                    ErrorCode::Ok => Reply::Empty,
                    e => Reply::Err(e),
                }
            }
            Request::Exists(r)
            | Request::GetData(r)
            | Request::GetChildren(r)
            | Request::GetChildren2(r) => {
                // The hot reads: answered straight into the frame.
                let mut w = Vec::with_capacity(160);
                let at = start_frame(&mut w);
                let header = w.len();
                ReplyHeader { xid, zxid, err: 0 }.write(&mut w);
                let (err, watch) = self.sm.read_into(req, auth, &mut w).expect("a hot read");
                w[header + 12..header + 16].copy_from_slice(&err.code().to_be_bytes());
                if let Some(kind) = watch {
                    self.watches.add(kind, &r.path, conn);
                }
                finish_frame(&mut w, at);
                self.outputs.push(Output::Send {
                    conn,
                    frame: w,
                    kind: asked.reply_kind(zxid, err),
                });
                return;
            }
            _ => {
                let r = self.sm.read(req, session_id, auth);
                if let Some((kind, path)) = r.watch {
                    self.watches.add(kind, &path, conn);
                }
                r.reply
            }
        };
        self.send_reply(conn, asked, zxid, reply.err(), &reply);
    }

    /// Closes every client connection (in id order, for replay).
    pub(crate) fn close_all_clients(&mut self, reason: &'static str) {
        self.close_clients_where(|_| true, reason);
        self.forget_read_indexes();
    }

    /// Closes the connections `which` picks (in id order, for replay).
    pub(crate) fn close_clients_where(
        &mut self,
        which: impl Fn(&Conn) -> bool,
        reason: &'static str,
    ) {
        let mut conns: Vec<ConnId> = self
            .conns
            .iter()
            .filter(|(_, c)| which(c))
            .map(|(id, _)| *id)
            .collect();
        conns.sort_unstable();
        for conn in conns {
            self.drop_conn(conn);
            self.outputs.push(Output::Close { conn, reason });
        }
    }

    /// Answers the write at the head of the connection's queue, then every
    /// read queued behind it up to the next write.
    pub(crate) fn complete_write(&mut self, conn: ConnId, xid: i32, zxid: i64, reply: &Reply) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let asked = match c.queue.front() {
            Some(Pending::Write(head, _)) if head.xid == xid => {
                let head = *head;
                c.queue.pop_front();
                head
            }
            _ => {
                // An earlier write of this connection never reached the log
                // (a forwarded proposal lost with a leader change or a broken
                // link): answering this one would break the connection's
                // order. Close it; the client sees ConnectionLoss and
                // retries, as with ZooKeeper.
                if c.queue
                    .iter()
                    .any(|p| matches!(p, Pending::Write(w, _) if w.xid == xid))
                {
                    self.drop_conn(conn);
                    self.outputs.push(Output::Close {
                        conn,
                        reason: "an earlier write of this connection was lost",
                    });
                }
                return;
            }
        };
        self.send_reply(conn, asked, zxid, reply.err(), reply);
        self.serve_queued_reads(conn);
        self.propose_held(conn);
    }

    /// Serves the reads at the head of the connection's queue, up to its
    /// next write or linearizable read whose index is not applied yet.
    pub(crate) fn serve_queued_reads(&mut self, conn: ConnId) {
        loop {
            let Some(c) = self.conns.get(&conn) else {
                return;
            };
            let ready = match c.queue.front() {
                Some(Pending::Read(..)) => true,
                Some(Pending::Linear(_, _, ctx)) => self.read_index_reached(*ctx),
                _ => false,
            };
            if !ready {
                return;
            }
            let c = self.conns.get_mut(&conn).expect("checked above");
            match c.queue.pop_front() {
                Some(Pending::Read(asked, req)) => self.serve_read(conn, asked, &req),
                Some(Pending::Linear(asked, req, _)) => {
                    self.read_indexes.served += 1;
                    self.serve_read(conn, asked, &req);
                    self.propose_held(conn);
                }
                _ => unreachable!("a read was at the head"),
            }
        }
    }

    /// The connect response (ConnectResponse, no reply header).
    pub(crate) fn send_connect_response(&mut self, conn: ConnId, r: &ConnectResponse) {
        let mut w = Vec::with_capacity(64);
        let at = start_frame(&mut w);
        r.write(&mut w);
        finish_frame(&mut w, at);
        self.outputs.push(Output::Send {
            conn,
            frame: w,
            kind: FrameKind::Connect,
        });
    }

    pub(crate) fn send_reply(
        &mut self,
        conn: ConnId,
        asked: Asked,
        zxid: i64,
        err: ErrorCode,
        reply: &Reply,
    ) {
        let xid = asked.xid;
        let mut w = Vec::with_capacity(64);
        let at = start_frame(&mut w);
        ReplyHeader {
            xid,
            zxid,
            err: err.code(),
        }
        .write(&mut w);
        reply.encode(&mut w);
        finish_frame(&mut w, at);
        self.outputs.push(Output::Send {
            conn,
            frame: w,
            kind: asked.reply_kind(zxid, err),
        });
    }

    /// A watch event; its header carries `zxid`, the change that fired it,
    /// as ZooKeeper 3.9 sends (ZOOKEEPER-4655; 3.8 sent -1, and 3.8
    /// clients do not read it).
    pub(crate) fn send_notification(&mut self, n: &Notification, zxid: i64) {
        let mut w = Vec::with_capacity(32 + n.path.len());
        let at = start_frame(&mut w);
        ReplyHeader {
            xid: Xid::NOTIFICATION,
            zxid,
            err: 0,
        }
        .write(&mut w);
        WatcherEvent {
            event_type: n.event.code(),
            state: KeeperState::SyncConnected.code(),
            path: n.path.clone(),
        }
        .write(&mut w);
        finish_frame(&mut w, at);
        self.outputs.push(Output::Send {
            conn: n.conn,
            frame: w,
            kind: FrameKind::Event,
        });
    }
}
