//! The simulation's clients: connections to replicas and every request
//! kind they send (checked writes for the linearizability checker, reads,
//! watches, sessions, ACLs, containers, TTL nodes). What comes back is
//! checked in `deliver`.

use super::*;
use std::collections::VecDeque;

/// A client: one connection to one replica at a time.
pub(super) struct Client {
    pub(super) node: u64,
    pub(super) conn: ConnId,
    /// Established session, once the connect response arrived.
    pub(super) connected: bool,
    pub(super) next_xid: i32,
    /// xid -> writes sent and not yet answered.
    pub(super) pending: BTreeMap<i32, Pending>,
    /// The session checks: the last reply's xid and zxid, and per key the
    /// lowest mzxid a read may still show (the session's own writes and
    /// what it has read already).
    pub(super) last_xid: i32,
    pub(super) last_zxid: i64,
    pub(super) floor: BTreeMap<String, i64>,
    /// The session the connect response gave (0 before).
    pub(super) session_id: i64,
    /// Data watches set by reads and not fired yet: key -> newest mzxid
    /// the session had read of it.
    pub(super) watches: BTreeMap<String, i64>,
    /// Child watches (getChildren2) not fired yet: path -> pzxid read.
    pub(super) child_watches: BTreeMap<String, i64>,
    /// Send times of this session's syncs that were answered OK.
    pub(super) synced: BTreeSet<i64>,
    /// Send time of the session's latest sync.
    pub(super) last_sync_sent: Option<i64>,
    /// Keys with a persistent watch (addWatch) in place.
    pub(super) persistent: BTreeSet<String>,
    /// A recursive persistent watch on "/" is in place.
    pub(super) recursive: bool,
    /// The session sent addauth digest `AUTH_USER`.
    pub(super) authed: bool,
    /// Ephemerals this session created: acknowledged, and all it asked for.
    pub(super) own_ephemerals: BTreeSet<String>,
    pub(super) tried_ephemerals: BTreeSet<String>,
    /// Persistent sequential nodes this session made (nobody deletes them).
    pub(super) own_sequentials: i32,
    /// The client asks for read-only (its ConnectRequest's readOnly flag),
    /// and the server answered it read-only.
    pub(super) wants_read_only: bool,
    pub(super) read_only: bool,
    /// Writes sent on a read-only session: none may be answered OK.
    pub(super) read_only_writes: BTreeSet<i32>,
    /// The session's last reads answered: (xid, key, mzxid shown). A
    /// write it sent after one of them must not be in what it showed.
    pub(super) recent_reads: VecDeque<(i32, String, i64)>,
}

/// How many answered reads a client keeps for the order check.
pub(super) const RECENT_READS: usize = 16;

impl Client {
    fn new(node: u64, conn: ConnId) -> Client {
        Client {
            node,
            conn,
            connected: false,
            next_xid: 1,
            pending: BTreeMap::new(),
            last_xid: 0,
            last_zxid: 0,
            floor: BTreeMap::new(),
            session_id: 0,
            watches: BTreeMap::new(),
            child_watches: BTreeMap::new(),
            synced: BTreeSet::new(),
            last_sync_sent: None,
            persistent: BTreeSet::new(),
            recursive: false,
            authed: false,
            own_ephemerals: BTreeSet::new(),
            tried_ephemerals: BTreeSet::new(),
            own_sequentials: 0,
            wants_read_only: false,
            read_only: false,
            read_only_writes: BTreeSet::new(),
            recent_reads: VecDeque::new(),
        }
    }
}

pub(super) enum Pending {
    /// A create whose acknowledgement goes to `Sim::acked`.
    Create(String),
    /// A write recorded in `Sim::history` at this index.
    Checked(usize),
    /// A getData of this key (with a watch or not), for the session
    /// checks, the send time of the session's latest sync before it, and
    /// its own send time when a linearizable replica serves it
    /// (`linearizable_replica`, a read-write session).
    Read(String, bool, Option<i64>, Option<i64>),
    /// An exists with a watch.
    Exists(String),
    /// A getChildren2 with a watch.
    Children(String),
    /// A sync sent at this time.
    Sync(i64),
    /// A setACL of this key conditioned on this ACL version.
    SetAcl(String, i32),
    /// An addWatch (persistent) of this key.
    Persistent(String),
    /// A create with these flags (ephemeral, sequential).
    Flagged(i32),
    /// An addWatch (persistent recursive) of "/".
    Recursive,
    /// A getEphemerals("/"): the session's acknowledged ephemerals when it
    /// was sent.
    Ephemerals(BTreeSet<String>),
    /// A getAllChildrenNumber("/"): the session's own persistent
    /// sequential nodes when it was sent (a lower bound).
    AllChildren(i32),
    /// A create whose answer only counts (containers, TTL nodes).
    Counted(&'static str),
    /// A create of a node only `AUTH_USER` may use.
    Protected(String),
    /// A getData (false) or setData (true) of a protected node, by a
    /// session with the digest (true) or without.
    Guarded { write: bool, authed: bool },
}

/// The digest identity protected nodes are made for.
const AUTH_USER: &str = "sim:secret";

/// The simulated ensemble's super user (its `superDigest`), who may
/// reconfig.
pub(crate) const SUPER_USER: &str = "super:sim";

impl Sim {
    pub fn add_client(&mut self, node: u64) -> usize {
        let conn = self.next_conn;
        self.next_conn += 1;
        self.clients.push(Client::new(node, conn));
        let i = self.clients.len() - 1;
        self.connect(i);
        i
    }

    pub(super) fn connect(&mut self, i: usize) {
        let now = self.clock(self.clients[i].node);
        let c = &self.clients[i];
        if let Some(n) = self.nodes.get_mut(&c.node) {
            n.connect(
                c.conn,
                ConnectRequest {
                    timeout_ms: 10_000,
                    read_only: c.wants_read_only.then_some(true),
                    ..Default::default()
                },
                "127.0.0.1".into(),
                now,
            );
        }
    }

    /// Moves a client to another replica with a fresh connection and session.
    pub fn move_client(&mut self, i: usize, node: u64) {
        let conn = self.next_conn;
        self.next_conn += 1;
        let c = &mut self.clients[i];
        if let Some(n) = self.nodes.get_mut(&c.node) {
            n.disconnect(c.conn);
        }
        let wants_read_only = c.wants_read_only;
        *c = Client::new(node, conn);
        c.wants_read_only = wants_read_only;
        self.connect(i);
    }

    /// From its next connection on, the client asks for read-only.
    pub fn wants_read_only(&mut self, i: usize) {
        self.clients[i].wants_read_only = true;
    }

    /// Sends a create of `path` if the client is connected.
    pub fn create(&mut self, i: usize, path: &str) -> bool {
        let req = create_request(path, 0);
        self.send_request(i, OpCode::Create, req, Pending::Create(path.to_string()))
    }

    /// Sends a checked write of `key` if the client is connected; its
    /// outcome goes to `history`.
    pub fn write(&mut self, i: usize, key: &str, op: Op) -> bool {
        let (code, req) = match op {
            Op::Create { value } => (
                OpCode::Create,
                Request::Create(
                    OpCode::Create,
                    CreateTtlRequest {
                        path: key.into(),
                        data: Some(vec![value]),
                        acl: acl::open_acl_unsafe(),
                        flags: 0,
                        ttl: -1,
                    },
                ),
            ),
            Op::Set { value, expect } => (
                OpCode::SetData,
                Request::SetData(SetDataRequest {
                    path: key.into(),
                    data: Some(vec![value]),
                    version: expect,
                }),
            ),
            Op::Delete { expect } => (
                OpCode::Delete,
                Request::Delete(PathVersionRequest {
                    path: key.into(),
                    version: expect,
                }),
            ),
            Op::CheckSet { value, expect } => (
                OpCode::Multi,
                Request::Multi(vec![
                    MultiOp::Check(PathVersionRequest {
                        path: key.into(),
                        version: expect,
                    }),
                    MultiOp::SetData(SetDataRequest {
                        path: key.into(),
                        data: Some(vec![value]),
                        version: -1,
                    }),
                ]),
            ),
        };
        // The history's times are the simulation's; the replica gets its own.
        let at = self.history.len();
        if !self.send_request(i, code, req, Pending::Checked(at)) {
            return false;
        }
        self.history.push(Event {
            key: key.into(),
            call: self.now_ms,
            ret: i64::MAX,
            op,
            out: Outcome::Unknown,
        });
        true
    }

    /// Sends a getData of `key` if the client is connected; its answer
    /// goes through the session checks.
    pub fn read(&mut self, i: usize, key: &str, watch: bool) -> bool {
        let req = Request::GetData(PathWatchRequest {
            path: key.into(),
            watch,
        });
        let c = &self.clients[i];
        let sync = c.last_sync_sent;
        let linear = (linearizable_replica(c.node) && !c.read_only).then_some(self.now_ms);
        self.send_request(
            i,
            OpCode::GetData,
            req,
            Pending::Read(key.into(), watch, sync, linear),
        )
    }

    /// Sends a create of `path` with `flags` (1 ephemeral, 2 sequential).
    pub fn create_flags(&mut self, i: usize, path: &str, flags: i32) -> bool {
        let req = create_request(path, flags);
        let sent = self.send_request(i, OpCode::Create, req, Pending::Flagged(flags));
        if sent && flags & 1 != 0 {
            self.clients[i].tried_ephemerals.insert(path.into());
        }
        sent
    }

    /// A ping keeps an idle session alive.
    pub fn ping(&mut self, i: usize) {
        if self.is_paused(self.clients[i].node) {
            return;
        }
        let now = self.clock(self.clients[i].node);
        let c = &self.clients[i];
        if let (true, Some(n)) = (c.connected, self.nodes.get_mut(&c.node)) {
            n.request(c.conn, -2, OpCode::Ping.code(), &[], now, 0);
        }
    }

    /// Debug: which client had this session, and its state.
    pub fn describe_session(&self, sid: i64) -> String {
        let mut out = String::new();
        for (i, c) in self.clients.iter().enumerate() {
            if c.session_id == sid {
                out += &format!(
                    "client {i} node {} conn {} connected {} pending {}; ",
                    c.node,
                    c.conn,
                    c.connected,
                    c.pending.len()
                );
            }
        }
        for (id, n) in &self.nodes {
            let l = n
                .liveness
                .get(&sid)
                .map(|l| (l.last_heard_ms, l.timeout_ms, l.expiring));
            out += &format!(
                "node {id} leader {} now {}: session known {} liveness {:?}; ",
                n.is_leader(),
                self.now_ms,
                n.state().sessions.contains_key(&sid),
                l
            );
        }
        out
    }

    /// Sessions of clients connected now.
    pub fn live_sessions(&self) -> BTreeSet<i64> {
        self.clients
            .iter()
            .filter(|c| c.connected && c.session_id != 0)
            .map(|c| c.session_id)
            .collect()
    }

    /// Every ephemeral node on replica `id`: (path, owner from its Stat).
    pub fn ephemeral_nodes(&self, id: u64) -> Vec<(String, i64)> {
        let tree = &self.nodes[&id].state().tree;
        let mut out = Vec::new();
        for (session, paths) in tree.ephemerals() {
            for p in paths {
                let owner = tree.get(p).map_or(0, |z| z.stat.ephemeral_owner);
                if owner != *session {
                    out.push((format!("{p} (indexed under {session:#x})"), owner));
                } else {
                    out.push((p.clone(), owner));
                }
            }
        }
        out
    }

    /// Sends `req` if the client is connected and its replica runs,
    /// remembering what to check in its answer.
    fn send_request(&mut self, i: usize, op: OpCode, req: Request, p: Pending) -> bool {
        if self.is_paused(self.clients[i].node) {
            return false;
        }
        let now = self.clock(self.clients[i].node);
        let c = &mut self.clients[i];
        if !c.connected {
            return false;
        }
        let Some(n) = self.nodes.get_mut(&c.node) else {
            return false;
        };
        let mut body = Vec::new();
        req.encode(&mut body);
        let xid = c.next_xid;
        c.next_xid += 1;
        if c.read_only && op.is_write() {
            c.read_only_writes.insert(xid);
        }
        c.pending.insert(xid, p);
        n.request(c.conn, xid, op.code(), &body, now, 0);
        true
    }

    /// exists(key) with a watch.
    pub fn exists_watch(&mut self, i: usize, key: &str) -> bool {
        let req = Request::Exists(PathWatchRequest {
            path: key.into(),
            watch: true,
        });
        self.send_request(i, OpCode::Exists, req, Pending::Exists(key.into()))
    }

    /// getChildren2(path) with a watch.
    pub fn children_watch(&mut self, i: usize, path: &str) -> bool {
        let req = Request::GetChildren2(PathWatchRequest {
            path: path.into(),
            watch: true,
        });
        self.send_request(i, OpCode::GetChildren2, req, Pending::Children(path.into()))
    }

    /// setACL(key, open ACL, `expect`): changes only the ACL version.
    pub fn set_acl(&mut self, i: usize, key: &str, expect: i32) -> bool {
        let req = Request::SetAcl(SetAclRequest {
            path: key.into(),
            acl: acl::open_acl_unsafe(),
            version: expect,
        });
        self.send_request(i, OpCode::SetAcl, req, Pending::SetAcl(key.into(), expect))
    }

    /// addWatch(key, PERSISTENT).
    pub fn persistent_watch(&mut self, i: usize, key: &str) -> bool {
        let req = Request::AddWatch(AddWatchRequest {
            path: key.into(),
            mode: 0,
        });
        self.send_request(i, OpCode::AddWatch, req, Pending::Persistent(key.into()))
    }

    /// sync("/"): the session's later reads must show every write answered
    /// before the sync was sent.
    pub fn sync(&mut self, i: usize) -> bool {
        let t = self.now_ms;
        let req = Request::Sync(PathRecord { path: "/".into() });
        let sent = self.send_request(i, OpCode::Sync, req, Pending::Sync(t));
        if sent {
            self.clients[i].last_sync_sent = Some(t);
        }
        sent
    }

    /// addWatch("/", PERSISTENT_RECURSIVE): data events for every node.
    pub fn recursive_watch(&mut self, i: usize) -> bool {
        let req = Request::AddWatch(AddWatchRequest {
            path: "/".into(),
            mode: 1,
        });
        self.send_request(i, OpCode::AddWatch, req, Pending::Recursive)
    }

    /// getEphemerals("/"): must list every ephemeral the session was
    /// answered for, and only ones it asked for.
    pub fn get_ephemerals(&mut self, i: usize) -> bool {
        let own = self.clients[i].own_ephemerals.clone();
        let req = Request::GetEphemerals(PathRecord { path: "/".into() });
        self.send_request(i, OpCode::GetEphemerals, req, Pending::Ephemerals(own))
    }

    /// getAllChildrenNumber("/"): counts at least the session's own
    /// persistent sequential nodes.
    pub fn get_all_children_number(&mut self, i: usize) -> bool {
        let own = self.clients[i].own_sequentials;
        let req = Request::GetAllChildrenNumber(PathRecord { path: "/".into() });
        self.send_request(
            i,
            OpCode::GetAllChildrenNumber,
            req,
            Pending::AllChildren(own),
        )
    }

    /// A container `path` with an ephemeral child: once the session ends
    /// the child goes, and then the leader reaps the container.
    pub fn create_container(&mut self, i: usize, path: &str) -> bool {
        let mut req = create_request(path, 4);
        if let Request::Create(op, _) = &mut req {
            *op = OpCode::CreateContainer;
        }
        if !self.send_request(
            i,
            OpCode::CreateContainer,
            req,
            Pending::Counted("container"),
        ) {
            return false;
        }
        self.create_flags(i, &format!("{path}/x"), 1)
    }

    /// A persistent node with a TTL of `ttl_ms`: reaped once unchanged
    /// that long with no children.
    pub fn create_ttl(&mut self, i: usize, path: &str, ttl_ms: i64) -> bool {
        let mut req = create_request(path, 5);
        if let Request::Create(op, r) = &mut req {
            *op = OpCode::CreateTtl;
            r.ttl = ttl_ms;
        }
        self.send_request(i, OpCode::CreateTtl, req, Pending::Counted("TTL node"))
    }

    /// addauth digest `AUTH_USER` (answered with xid -4, unchecked).
    pub fn add_auth(&mut self, i: usize) {
        if self.send_auth(i, AUTH_USER) {
            self.clients[i].authed = true;
        }
    }

    /// addauth digest `user` on the client's connection, if it is up.
    fn send_auth(&mut self, i: usize, user: &str) -> bool {
        if self.is_paused(self.clients[i].node) {
            return false;
        }
        let now = self.clock(self.clients[i].node);
        let c = &mut self.clients[i];
        let (true, Some(n)) = (c.connected, self.nodes.get_mut(&c.node)) else {
            return false;
        };
        let mut body = Vec::new();
        Request::Auth(proto::AuthPacket {
            auth_type: 0,
            scheme: "digest".into(),
            auth: Some(user.as_bytes().to_vec()),
        })
        .encode(&mut body);
        n.request(c.conn, -4, OpCode::Auth.code(), &body, now, 0);
        true
    }

    /// reconfig as the super user (addauth first, on this connection):
    /// `joining` server lines or `leaving` ids; an answer without error is
    /// counted as "reconfig".
    pub fn reconfig(&mut self, i: usize, joining: Option<String>, leaving: Option<String>) -> bool {
        if !self.send_auth(i, SUPER_USER) {
            return false;
        }
        let req = Request::Reconfig(proto::ReconfigRequest {
            joining_servers: joining.unwrap_or_default(),
            leaving_servers: leaving.unwrap_or_default(),
            new_members: String::new(),
            cur_config_id: -1,
        });
        let sent = self.send_request(i, OpCode::Reconfig, req, Pending::Counted("reconfig"));
        if sent {
            *self.stats.entry("reconfig asked").or_default() += 1;
        }
        sent
    }

    /// A node readable and writable only with `AUTH_USER`'s digest.
    pub fn create_protected(&mut self, i: usize, path: &str) -> bool {
        let mut req = create_request(path, 0);
        if let Request::Create(_, r) = &mut req {
            r.acl = vec![proto::Acl {
                perms: 31,
                id: proto::Id {
                    scheme: "digest".into(),
                    id: acl::digest(AUTH_USER),
                },
            }];
        }
        self.send_request(i, OpCode::Create, req, Pending::Protected(path.into()))
    }

    /// getData or setData of a protected node: allowed exactly when the
    /// session authenticated.
    pub fn guarded(&mut self, i: usize, path: &str, write: bool) -> bool {
        let authed = self.clients[i].authed;
        let p = Pending::Guarded { write, authed };
        if write {
            let req = Request::SetData(SetDataRequest {
                path: path.into(),
                data: Some(b"w".to_vec()),
                version: -1,
            });
            self.send_request(i, OpCode::SetData, req, p)
        } else {
            let req = Request::GetData(PathWatchRequest {
                path: path.into(),
                watch: false,
            });
            self.send_request(i, OpCode::GetData, req, p)
        }
    }

    /// Containers that held a child and are empty, and TTL nodes with no
    /// children, on replica `id`: the leader's reaper must have removed
    /// them once they qualified long enough ago.
    pub fn reapable_left(&self, id: u64) -> Vec<String> {
        let tree = &self.nodes[&id].state().tree;
        let empty = |p: &str, used: bool| {
            tree.get(p)
                .is_some_and(|n| n.children.is_empty() && (!used || n.stat.cversion > 0))
        };
        tree.containers()
            .filter(|p| empty(p, true))
            .chain(tree.ttls().filter(|p| empty(p, false)))
            .map(str::to_string)
            .collect()
    }

    /// Election timeouts held back during unpersisted snapshot installs,
    /// on every replica this run had.
    /// Client writes the live replicas sent again after a leader change
    /// (`resend`).
    pub fn writes_resent(&self) -> u64 {
        self.nodes.values().map(|n| n.writes_resent()).sum()
    }

    pub fn campaigns_deferred(&self) -> u64 {
        self.deferred_by_gone
            + self
                .nodes
                .values()
                .map(|n| n.campaigns_deferred)
                .sum::<u64>()
    }

    pub fn client_authed(&self, i: usize) -> bool {
        self.clients[i].authed
    }

    pub fn client_connected(&self, i: usize) -> bool {
        self.clients[i].connected
    }

    /// The replica client `i` is connected to (or was, if it died).
    pub fn client_node(&self, i: usize) -> u64 {
        self.clients[i].node
    }

    /// Requests client `i` sent that are not answered yet.
    pub fn client_pending(&self, i: usize) -> usize {
        self.clients[i].pending.len()
    }
}

/// A create of `path` with one byte of data, open to all.
pub(crate) fn create_request(path: &str, flags: i32) -> Request {
    Request::Create(
        OpCode::Create,
        CreateTtlRequest {
            path: path.into(),
            data: Some(b"v".to_vec()),
            acl: acl::open_acl_unsafe(),
            flags,
            ttl: -1,
        },
    )
}
