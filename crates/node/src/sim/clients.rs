//! The simulation's clients: connections to replicas, every request kind
//! they send (checked writes for the linearizability checker, reads,
//! watches, sessions, ACLs, containers, TTL nodes), and `deliver`, which
//! reads each reply and event and checks it against what the session has
//! seen (reply order, zxids, stale reads, watch rules).

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

/// The zxid of the newest change of `key` in `changed` (`Sim::changed`)
/// answered before `t` (0: none).
fn newest_change_before(changed: &[(i64, String, i64)], key: &str, t: i64) -> i64 {
    changed
        .iter()
        .filter(|(ret, k, _)| *ret < t && k == key)
        .map(|(_, _, z)| *z)
        .max()
        .unwrap_or(0)
}

/// How many answered reads a client keeps for the order check.
const RECENT_READS: usize = 16;

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

    pub(super) fn deliver(&mut self, node: u64, conn: ConnId, frame: &[u8]) {
        let minority = !self.in_majority(node);
        let Some(c) = self
            .clients
            .iter_mut()
            .find(|c| c.node == node && c.conn == conn)
        else {
            return;
        };
        let body = &frame[4..];
        if !c.connected {
            if let Ok(r) = ConnectResponse::from_bytes(body) {
                c.connected = r.session_id != 0;
                c.session_id = r.session_id;
                c.read_only = r.read_only == Some(true);
                if c.connected && c.read_only {
                    *self.stats.entry("read-only session").or_default() += 1;
                }
            }
            return;
        }
        let mut r = Reader::new(body);
        let Ok(h) = ReplyHeader::read(&mut r) else {
            return;
        };
        if h.xid == -1 {
            // A watch event: at most one per watch set, and for a change
            // newer than anything the session read of that node — which
            // its next reads must then show.
            if let Ok(ev) = WatcherEvent::read(&mut r) {
                // NodeChildrenChanged (4) fires child watches, the rest data
                // and exists watches.
                let table = if ev.event_type == 4 {
                    &mut c.child_watches
                } else {
                    &mut c.watches
                };
                let removed = table.remove(&ev.path);
                if ev.event_type == 4 {
                    if removed.is_none() {
                        self.session_violations.push(format!(
                            "session of conn {} on {node}: child event for {} with no child watch set (or a second one)",
                            c.conn, ev.path
                        ));
                    } else {
                        *self.stats.entry("child watch event").or_default() += 1;
                    }
                    return;
                }
                match removed {
                    None if c.recursive => {
                        *self.stats.entry("recursive watch event").or_default() += 1;
                    }
                    None if c.persistent.contains(&ev.path) => {
                        *self.stats.entry("persistent watch event").or_default() += 1;
                    }
                    None => self.session_violations.push(format!(
                        "session of conn {} on {node}: event {} for {} with no watch set (or a second one)",
                        c.conn, ev.event_type, ev.path
                    )),
                    Some(seen) => {
                        *self.stats.entry("watch event").or_default() += 1;
                        let floor = c.floor.entry(ev.path.clone()).or_insert(0);
                        *floor = (*floor).max(seen + 1);
                    }
                }
            }
            return;
        }
        if h.xid > 0 {
            // Replies come in request order, each at least as new as the
            // one before (ZooKeeper's FIFO client order).
            let who = format!("session of conn {} on {node}", c.conn);
            if h.xid <= c.last_xid {
                self.session_violations
                    .push(format!("{who}: reply {} after {}", h.xid, c.last_xid));
            }
            if h.zxid < c.last_zxid {
                self.session_violations.push(format!(
                    "{who}: reply {} has zxid {:#x} below {:#x}",
                    h.xid, h.zxid, c.last_zxid
                ));
            }
            c.last_xid = h.xid;
            c.last_zxid = c.last_zxid.max(h.zxid);
        }
        if c.read_only_writes.remove(&h.xid) {
            if h.err == 0 {
                self.violations.push(format!(
                    "read-only session of conn {} on {node}: write xid {} answered OK",
                    c.conn, h.xid
                ));
            } else if h.err == proto::ErrorCode::NotReadOnly.code() {
                *self.stats.entry("NotReadOnly").or_default() += 1;
            }
        }
        match c.pending.remove(&h.xid) {
            Some(Pending::Read(key, watch, sync, linear)) if h.err == 0 => {
                if let Ok(d) = GetDataResponse::read(&mut r) {
                    // A linearizable replica: every change of this key
                    // answered before the read was sent is visible.
                    if let Some(t) = linear {
                        let must = newest_change_before(&self.changed, &key, t);
                        *self.stats.entry("linearizable read").or_default() += 1;
                        if d.stat.mzxid < must {
                            self.violations.push(format!(
                                "linearizable read of {key} on {node} (conn {}) shows mzxid {:#x}, but {must:#x} was answered before it was sent",
                                c.conn, d.stat.mzxid
                            ));
                        }
                    }
                    // After a sync that was answered: every change of this
                    // key answered before the sync was sent is visible.
                    if let Some(t) = sync.filter(|t| c.synced.contains(t)) {
                        let must = newest_change_before(&self.changed, &key, t);
                        *self.stats.entry("read after sync").or_default() += 1;
                        if d.stat.mzxid < must {
                            self.session_violations.push(format!(
                                "session of conn {} on {node}: read of {key} after a sync shows mzxid {:#x}, but {must:#x} was answered before the sync",
                                c.conn, d.stat.mzxid
                            ));
                        }
                    }
                    // Likewise a data or exists watch still unfired.
                    if let Some(&set_at) = c.watches.get(&key) {
                        if d.stat.mzxid > set_at {
                            self.session_violations.push(format!(
                                "session of conn {} on {node}: watch on {key} set at mzxid {set_at:#x} did not fire, yet a later read shows mzxid {:#x}",
                                c.conn, d.stat.mzxid
                            ));
                        }
                    }
                    if watch {
                        let seen = c.watches.entry(key.clone()).or_insert(0);
                        *seen = (*seen).max(d.stat.mzxid);
                    }
                    // A read shows the key as of a state no older than
                    // the session's own writes and earlier reads of it.
                    let floor = c.floor.entry(key.clone()).or_insert(0);
                    if d.stat.mzxid < *floor {
                        self.session_violations.push(format!(
                            "session of conn {} on {node}: read of {key} shows mzxid {:#x}, older than {:#x} it already saw or wrote",
                            c.conn, d.stat.mzxid, *floor
                        ));
                    }
                    *floor = (*floor).max(d.stat.mzxid);
                    if c.recent_reads.len() == RECENT_READS {
                        c.recent_reads.pop_front();
                    }
                    c.recent_reads.push_back((h.xid, key, d.stat.mzxid));
                }
            }
            Some(Pending::Create(path)) if h.err == 0 => {
                self.acked.insert(path.clone(), node);
                if minority {
                    self.acked_by_minority.push(path);
                }
            }
            Some(Pending::Checked(at)) if h.err == proto::ErrorCode::NotReadOnly.code() => {
                self.refused_writes.insert(at);
            }
            Some(Pending::Checked(at)) => {
                let e = &mut self.history[at];
                let out = match (h.err, e.op) {
                    (0, Op::Set { .. }) => match Stat::read(&mut r) {
                        Ok(stat) => Outcome::Ok {
                            version: stat.version,
                        },
                        Err(_) => Outcome::Unknown,
                    },
                    (0, Op::CheckSet { .. }) => multi_outcome(&mut r),
                    (0, _) => Outcome::Ok { version: 0 },
                    (-110, _) => Outcome::NodeExists,
                    (-101, _) => Outcome::NoNode,
                    (-103, _) => Outcome::BadVersion,
                    // Any other answer claims nothing about the write.
                    _ => Outcome::Unknown,
                };
                if out != Outcome::Unknown {
                    e.out = out;
                    e.ret = self.now_ms;
                }
                // A write that changed the node: later reads show it. (Not
                // on the header's error alone: a failed multi answers 0
                // there, as ZooKeeper, and its results say what failed.)
                if let Outcome::Ok { .. } = out {
                    let floor = c.floor.entry(e.key.clone()).or_insert(0);
                    *floor = (*floor).max(h.zxid);
                    self.changed.push((self.now_ms, e.key.clone(), h.zxid));
                    // The session's order: a read it sent before this
                    // write did not show it.
                    for (xid, key, mzxid) in &c.recent_reads {
                        if *xid < h.xid && *key == e.key && *mzxid >= h.zxid {
                            self.session_violations.push(format!(
                                "session of conn {} on {node}: read xid {xid} of {key} shows mzxid {mzxid:#x}, the write xid {} the session sent after it (zxid {:#x})",
                                c.conn, h.xid, h.zxid
                            ));
                        }
                    }
                }
            }
            Some(Pending::Exists(key)) if h.err == 0 || h.err == -101 => {
                // On a missing node too: then it waits for the creation.
                let mzxid = if h.err == 0 {
                    Stat::read(&mut r).map_or(0, |s| s.mzxid)
                } else {
                    0
                };
                let seen = c.watches.entry(key).or_insert(0);
                *seen = (*seen).max(mzxid);
            }
            Some(Pending::Children(path)) if h.err == 0 => {
                if let Ok(d) = GetChildren2Response::read(&mut r) {
                    // A child watch still unfired must not be older than
                    // what this read shows: the event comes before the
                    // reply to any later read (a watch that never fired
                    // went unseen while only "at most once" was checked).
                    if let Some(&set_at) = c.child_watches.get(&path) {
                        if d.stat.pzxid > set_at {
                            self.session_violations.push(format!(
                                "session of conn {} on {node}: child watch on {path} set at pzxid {set_at:#x} did not fire, yet a later read shows pzxid {:#x}",
                                c.conn, d.stat.pzxid
                            ));
                        }
                    }
                    let seen = c.child_watches.entry(path).or_insert(0);
                    *seen = (*seen).max(d.stat.pzxid);
                }
            }
            Some(Pending::Sync(t)) if h.err == 0 => {
                c.synced.insert(t);
            }
            Some(Pending::SetAcl(key, expect)) if h.err == 0 => {
                // A conditioned setACL moves the ACL version by one.
                if let Ok(stat) = Stat::read(&mut r) {
                    *self.stats.entry("setACL").or_default() += 1;
                    if expect != -1 && stat.aversion != expect + 1 {
                        self.session_violations.push(format!(
                            "session of conn {} on {node}: setACL of {key} at version {expect} answered aversion {}",
                            c.conn, stat.aversion
                        ));
                    }
                }
            }
            Some(Pending::Persistent(key)) if h.err == 0 => {
                c.persistent.insert(key);
            }
            Some(Pending::Flagged(flags)) if h.err == 0 => {
                let Ok(path) = String::read(&mut r) else {
                    return;
                };
                if flags & 1 != 0 {
                    self.ephemerals.push((path.clone(), c.session_id));
                    c.own_ephemerals.insert(path.clone());
                } else if flags & 2 != 0 {
                    c.own_sequentials += 1;
                }
                if flags & 2 != 0 && !self.sequential_names.insert(path.clone()) {
                    self.violations
                        .push(format!("sequential name {path} given twice"));
                }
            }
            Some(Pending::Recursive) if h.err == 0 => c.recursive = true,
            Some(Pending::Ephemerals(own)) if h.err == 0 => {
                let Ok(listed) = Vec::<String>::read(&mut r) else {
                    return;
                };
                *self.stats.entry("getEphemerals").or_default() += 1;
                let who = format!("session {:#x} on {node}", c.session_id);
                for p in own.iter().filter(|p| !listed.contains(p)) {
                    self.session_violations
                        .push(format!("{who}: getEphemerals misses its own {p}"));
                }
                // Names asked for, or a sequential one made from a prefix.
                let asked = |p: &String| {
                    c.tried_ephemerals
                        .iter()
                        .any(|t| t == p || (t.ends_with('-') && p.starts_with(t.as_str())))
                };
                for p in listed.iter().filter(|p| !asked(p)) {
                    self.session_violations
                        .push(format!("{who}: getEphemerals lists {p} it never created"));
                }
            }
            Some(Pending::AllChildren(own)) if h.err == 0 => {
                *self.stats.entry("getAllChildrenNumber").or_default() += 1;
                if let Ok(n) = r.i32() {
                    // When the replica has applied nothing since, the
                    // count is exact: walk its tree by paths.
                    let tree = &self.nodes[&node].state().tree;
                    if self.nodes[&node].last_zxid() == h.zxid {
                        let mut walked = 0;
                        let mut stack = vec![String::new()];
                        while let Some(p) = stack.pop() {
                            let at = if p.is_empty() { "/" } else { p.as_str() };
                            for k in tree.get(at).iter().flat_map(|z| z.children.iter()) {
                                walked += 1;
                                stack.push(format!("{p}/{k}"));
                            }
                        }
                        *self.stats.entry("getAllChildrenNumber exact").or_default() += 1;
                        if n != walked {
                            self.session_violations.push(format!(
                                "replica {node} at zxid {:#x}: getAllChildrenNumber(/) = {n}, its tree has {walked} nodes below /",
                                h.zxid
                            ));
                        }
                    }
                    if n < own {
                        self.session_violations.push(format!(
                            "session {:#x} on {node}: getAllChildrenNumber(/) = {n} below its own {own} sequential nodes",
                            c.session_id
                        ));
                    }
                }
            }
            Some(Pending::Counted(kind)) if h.err == 0 => {
                *self.stats.entry(kind).or_default() += 1;
            }
            Some(Pending::Protected(path)) if h.err == 0 => self.protected.push(path),
            Some(Pending::Guarded { write, authed }) => {
                let what = if write { "setData" } else { "getData" };
                let allowed = match h.err {
                    0 => true,
                    -102 => false,
                    _ => return,
                };
                *self
                    .stats
                    .entry(if allowed {
                        "ACL allowed"
                    } else {
                        "ACL refused"
                    })
                    .or_default() += 1;
                if allowed != authed {
                    self.session_violations.push(format!(
                        "session {:#x} on {node}: {what} of a protected node {} with authenticated = {authed}",
                        c.session_id,
                        if allowed { "allowed" } else { "refused" }
                    ));
                }
            }
            Some(
                Pending::Create(_)
                | Pending::Recursive
                | Pending::Ephemerals(_)
                | Pending::AllChildren(_)
                | Pending::Counted(_)
                | Pending::Protected(_)
                | Pending::Read(..)
                | Pending::Flagged(_)
                | Pending::Exists(_)
                | Pending::Children(_)
                | Pending::Sync(_)
                | Pending::SetAcl(..)
                | Pending::Persistent(_),
            )
            | None => {}
        }
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

/// What a multi [check, setData] answered: per op a (type, done, err)
/// header and its result — the check's empty, setData's a Stat, a failed
/// op's an error code (type -1). The first error says why it failed.
fn multi_outcome(r: &mut Reader<'_>) -> Outcome {
    fn parse(r: &mut Reader<'_>) -> Option<Outcome> {
        let mut version = None;
        for _ in 0..2 {
            let (t, _done, _err) = (r.i32().ok()?, r.bool().ok()?, r.i32().ok()?);
            if t == -1 {
                return Some(match r.i32().ok()? {
                    -101 => Outcome::NoNode,
                    -103 => Outcome::BadVersion,
                    _ => Outcome::Unknown,
                });
            } else if t == OpCode::SetData.code() {
                version = Some(Stat::read(r).ok()?.version);
            } else if t != OpCode::Check.code() {
                return None;
            }
        }
        version.map(|version| Outcome::Ok { version })
    }
    parse(r).unwrap_or(Outcome::Unknown)
}
