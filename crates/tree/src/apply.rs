//! Applying committed entries: the meaning of every write, session
//! creation and close, container/TTL reaping — ZooKeeper's
//! `PrepRequestProcessor` checks and `DataTree.processTxn` in one
//! deterministic step.
//!
//! Rule order inside each op follows ZooKeeper 3.8 so the same request
//! gets the same error code (e.g. create: mode, TTL, path shape, ACL
//! fixup, parent exists, CREATE permission, full path, exists, ephemeral
//! parent).

use std::collections::BTreeMap;

use proto::{
    CreateMode, CreateTtlRequest, ErrorCode, Id, MultiOp, OpCode, PathVersionRequest, Perms,
    Request, SetAclRequest, SetDataRequest, Stat,
};

use crate::acl;
use crate::datatree::{
    owner_kind, DataTree, OwnerKind, Trigger, CONTAINER_OWNER, MAX_TTL_MS, TTL_OWNER_MASK,
};
use crate::entry::{Entry, EntryKind};
use crate::path;
use crate::reply::{MultiResult, Reply};
use proto::members::Members;

/// Settings that change the meaning of requests; identical on every replica.
#[derive(Debug, Clone, Copy, Default)]
pub struct TreeConfig {
    /// `extendedTypesEnabled`: TTL nodes allowed.
    pub extended_types: bool,
    /// ACL schemes of the configured `authProvider.N`s.
    pub schemes: crate::acl::Schemes,
    /// `enforceQuota` (ZooKeeper's `zookeeper.enforceQuota`): a create or
    /// setData past a hard quota is refused (`datatree::quota`).
    pub enforce_quota: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub timeout_ms: i32,
    pub passwd: Vec<u8>,
}

/// What an entry did to the session table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEffect {
    Created {
        session_id: i64,
        timeout_ms: i32,
        passwd: Vec<u8>,
    },
    Closed {
        session_id: i64,
        expired: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The reply for the client that sent the entry (none for reaping).
    pub reply: Option<Reply>,
    pub triggers: Vec<Trigger>,
    pub session: Option<SessionEffect>,
}

/// A snapshot is `freeze()`, taken between entries (cheap: the tree's
/// nodes are shared copy-on-write); `clone()` is a full copy.
#[derive(Debug, Clone)]
pub struct StateMachine {
    pub tree: DataTree,
    pub sessions: BTreeMap<i64, Session>,
    /// The next session id to hand out; seeded from the first
    /// createSession's time as ZooKeeper seeds it from the clock.
    next_session_id: i64,
    /// zxid of the last applied entry: strictly increases.
    last_zxid: i64,
    config: TreeConfig,
    /// Soft quota limits passed since last taken (`take_quota_warnings`).
    quota_warnings: Vec<String>,
}

struct Ctx<'a> {
    zxid: i64,
    time_ms: i64,
    session_id: i64,
    auth: &'a [Id],
    schemes: acl::Schemes,
}

impl StateMachine {
    pub fn new(config: TreeConfig) -> StateMachine {
        StateMachine {
            tree: DataTree::new(),
            sessions: BTreeMap::new(),
            next_session_id: 0,
            last_zxid: 0,
            config,
            quota_warnings: Vec::new(),
        }
    }

    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    pub(crate) fn next_session_id(&self) -> i64 {
        self.next_session_id
    }

    pub(crate) fn config(&self) -> TreeConfig {
        self.config
    }

    /// A state machine from restored parts (a snapshot).
    pub(crate) fn from_parts(
        tree: DataTree,
        sessions: BTreeMap<i64, Session>,
        next_session_id: i64,
        last_zxid: i64,
        config: TreeConfig,
    ) -> StateMachine {
        StateMachine {
            tree,
            sessions,
            next_session_id,
            last_zxid,
            config,
            quota_warnings: Vec::new(),
        }
    }

    /// A restore: the tree and sessions replaced, the zxid kept.
    pub(crate) fn replace(
        &mut self,
        tree: DataTree,
        sessions: BTreeMap<i64, Session>,
        next_session_id: i64,
    ) {
        self.tree = tree;
        self.sessions = sessions;
        self.next_session_id = next_session_id;
    }

    /// The membership `/zookeeper/config` holds (none for a standalone
    /// server, whose node is empty).
    pub fn members(&self) -> Members {
        self.tree
            .get(crate::datatree::CONFIG)
            .and_then(|n| n.data)
            .and_then(|d| std::str::from_utf8(d).ok())
            .and_then(|t| Members::parse(t).ok())
            .unwrap_or_default()
    }

    /// Writes this server's own reading of its config files into
    /// `/zookeeper/config` (version 0), as ZooKeeper does at startup,
    /// unless a reconfig has set it through the log (a version other
    /// than 0): not replicated, and outside the digest.
    pub fn set_local_members(&mut self, servers: &str, time_ms: i64) {
        if self.members().version != 0 || servers.is_empty() {
            return;
        }
        let text = format!("{servers}\nversion=0");
        self.tree.set_config(text.as_bytes(), 0, time_ms);
        self.tree.take_triggers();
    }

    /// Sets `/zookeeper/config` to `text` at version `zxid` outside the
    /// log: a new ensemble forced from one server's state
    /// (`force-new-ensemble`), its last zxid the version.
    pub fn force_members(&mut self, text: &str, zxid: i64, time_ms: i64) {
        self.tree.set_config(text.as_bytes(), zxid, time_ms);
        self.tree.take_triggers();
    }

    /// A reconfig the leader accepted: `/zookeeper/config` becomes
    /// `servers` at version `zxid`, answered with the new text and Stat —
    /// unless the membership is no longer at `base` (BadVersion).
    fn reconfigure(&mut self, zxid: i64, time_ms: i64, base: u64, servers: &str) -> Reply {
        if self.members().version != base {
            return Reply::Err(ErrorCode::BadVersion);
        }
        let text = format!("{servers}\nversion={zxid:x}");
        let stat = self.tree.set_config(text.as_bytes(), zxid, time_ms);
        Reply::Data(Some(text.into_bytes()), stat)
    }

    /// Records that `zxid` was used by an entry with no state change (a
    /// Raft no-op or membership change), keeping zxids dense.
    pub fn skip(&mut self, zxid: i64) {
        assert!(
            zxid > self.last_zxid,
            "zxid must strictly increase at apply"
        );
        self.last_zxid = zxid;
    }

    pub fn apply(&mut self, zxid: i64, entry: &Entry) -> Applied {
        assert!(
            zxid > self.last_zxid,
            "zxid must strictly increase at apply: {zxid} after {}",
            self.last_zxid
        );
        self.last_zxid = zxid;
        self.tree.begin();
        let mut session = None;
        let reply = match &entry.kind {
            EntryKind::CreateSession { timeout_ms, passwd } => {
                let id = if crate::entry::is_local_session(entry.session_id) {
                    // A local session upgraded: global under its own id
                    // (once).
                    Some(entry.session_id).filter(|id| !self.sessions.contains_key(id))
                } else {
                    if self.next_session_id == 0 {
                        // ZooKeeper: (time << 24) >>> 8 | (server id << 56).
                        self.next_session_id =
                            (((entry.time_ms as u64) << 24) >> 8) as i64 | (1 << 56);
                    }
                    self.next_session_id += 1;
                    Some(self.next_session_id - 1)
                };
                if let Some(id) = id {
                    self.sessions.insert(
                        id,
                        Session {
                            timeout_ms: *timeout_ms,
                            passwd: passwd.clone(),
                        },
                    );
                    session = Some(SessionEffect::Created {
                        session_id: id,
                        timeout_ms: *timeout_ms,
                        passwd: passwd.clone(),
                    });
                }
                Some(Reply::Empty)
            }
            EntryKind::CloseSession { expired } => {
                if self.sessions.remove(&entry.session_id).is_some() {
                    let paths: Vec<String> = self
                        .tree
                        .ephemerals()
                        .get(&entry.session_id)
                        .map(|s| s.iter().cloned().collect())
                        .unwrap_or_default();
                    // Deepest first, so an ephemeral's parent never goes first.
                    for p in paths.iter().rev() {
                        self.tree.delete(p, zxid);
                    }
                    session = Some(SessionEffect::Closed {
                        session_id: entry.session_id,
                        expired: *expired,
                    });
                }
                Some(Reply::Empty)
            }
            EntryKind::Reap { paths } => {
                for p in paths {
                    self.reap(p, zxid, entry.time_ms);
                }
                None
            }
            // Checked by the replica core, against its own digest.
            EntryKind::Digest { .. } => None,
            EntryKind::Restore { snapshot } => Some(match self.restore_zookeeper(snapshot, zxid) {
                Ok(()) => Reply::Empty,
                Err(_) => Reply::Err(ErrorCode::BadArguments),
            }),
            EntryKind::Reconfig { base, servers, .. } => {
                Some(self.reconfigure(zxid, entry.time_ms, *base, servers))
            }
            EntryKind::Refused { error } => Some(Reply::Err(
                ErrorCode::from_code(*error).unwrap_or(ErrorCode::SystemError),
            )),
            EntryKind::Request { op, body, auth } => {
                let ctx = Ctx {
                    zxid,
                    time_ms: entry.time_ms,
                    session_id: entry.session_id,
                    auth,
                    schemes: self.config.schemes,
                };
                Some(
                    if !self.sessions.contains_key(&entry.session_id)
                        && !crate::entry::is_local_session(entry.session_id)
                    {
                        Reply::Err(ErrorCode::SessionExpired)
                    } else {
                        match Request::decode(*op, body) {
                            Ok(req) => self.write(&req, &ctx),
                            Err(_) => Reply::Err(ErrorCode::MarshallingError),
                        }
                    },
                )
            }
        };
        Applied {
            reply,
            triggers: self.tree.take_triggers(),
            session,
        }
    }

    /// Container: childless and once had a child. TTL: childless and not
    /// modified for longer than its TTL.
    fn reap(&mut self, p: &str, zxid: i64, now_ms: i64) {
        let Some(n) = self.tree.get(p) else { return };
        if !n.children.is_empty() {
            return;
        }
        let due = match owner_kind(n.stat.ephemeral_owner) {
            OwnerKind::Container => n.stat.cversion > 0,
            OwnerKind::Ttl(ttl) => now_ms - n.stat.mtime > ttl,
            _ => false,
        };
        if due {
            self.tree.delete(p, zxid);
        }
    }

    fn write(&mut self, req: &Request, ctx: &Ctx<'_>) -> Reply {
        let one = |r: Result<MultiResult, ErrorCode>| match r {
            Err(e) => Reply::Err(e),
            Ok(MultiResult::Create { path, stat }) => Reply::Create { path, stat },
            Ok(MultiResult::SetData(s)) => Reply::Stat(s),
            Ok(_) => Reply::Empty,
        };
        match req {
            Request::Create(op, c) => one(self.create(*op, c, ctx)),
            Request::Delete(d) => one(self.delete(d, ctx)),
            Request::SetData(s) => one(self.set_data(s, ctx)),
            Request::Check(c) => one(self.check(c, ctx)),
            Request::SetAcl(s) => match self.set_acl(s, ctx) {
                Ok(stat) => Reply::Stat(stat),
                Err(e) => Reply::Err(e),
            },
            Request::Multi(ops) => Reply::Multi(self.multi(ops, ctx)),
            Request::Reconfig(_) => Reply::Err(ErrorCode::ReconfigDisabled),
            // A barrier: it changes nothing; its answer comes when it is applied.
            Request::Sync(p) => Reply::Path(p.path.clone()),
            _ => Reply::Err(ErrorCode::Unimplemented),
        }
    }

    /// All or nothing: on the first failure everything is rolled back; ops
    /// before it report `Ok` (rolled back), it reports its error, ops after
    /// it `RuntimeInconsistency` — as ZooKeeper.
    fn multi(&mut self, ops: &[MultiOp], ctx: &Ctx<'_>) -> Vec<MultiResult> {
        self.tree.keep_undo();
        let mut results = Vec::with_capacity(ops.len());
        for (i, op) in ops.iter().enumerate() {
            let r = match op {
                MultiOp::Create(code, c) => self.create(*code, c, ctx),
                MultiOp::Delete(d) => self.delete(d, ctx),
                MultiOp::SetData(s) => self.set_data(s, ctx),
                MultiOp::Check(c) => self.check(c, ctx),
                MultiOp::GetChildren(_) | MultiOp::GetData(_) => Err(ErrorCode::BadArguments),
            };
            match r {
                Ok(r) => results.push(r),
                Err(e) => {
                    self.tree.rollback();
                    return (0..ops.len())
                        .map(|j| {
                            MultiResult::Error(match j.cmp(&i) {
                                std::cmp::Ordering::Less => ErrorCode::Ok,
                                std::cmp::Ordering::Equal => e,
                                std::cmp::Ordering::Greater => ErrorCode::RuntimeInconsistency,
                            })
                        })
                        .collect();
                }
            }
        }
        results
    }

    fn create(
        &mut self,
        op: OpCode,
        c: &CreateTtlRequest,
        ctx: &Ctx<'_>,
    ) -> Result<MultiResult, ErrorCode> {
        let mode = CreateMode::from_code(c.flags).ok_or(ErrorCode::BadArguments)?;
        // A local session creates no ephemeral: it is upgraded first.
        if mode.is_ephemeral() && !self.sessions.contains_key(&ctx.session_id) {
            return Err(ErrorCode::EphemeralOnLocalSession);
        }
        if mode.is_ttl() && !self.config.extended_types {
            return Err(ErrorCode::Unimplemented);
        }
        if mode.is_ttl() {
            if c.ttl <= 0 || c.ttl > MAX_TTL_MS {
                return Err(ErrorCode::BadArguments);
            }
        } else if c.ttl >= 0 || op == OpCode::CreateTtl {
            // ZooKeeper 3.8 answers BadArguments for ttl >= 0 here and crashes
            // on a negative one; both are bad arguments.
            return Err(ErrorCode::BadArguments);
        }
        if c.path.contains('\0') {
            return Err(ErrorCode::BadArguments);
        }
        let (parent_path, _) = path::split(&c.path).ok_or(ErrorCode::BadArguments)?;
        let acl = acl::fixup(&c.acl, ctx.auth, ctx.schemes)?;
        let (pid, parent) = self.tree.find(parent_path).ok_or(ErrorCode::NoNode)?;
        acl::check(parent.acl, Perms::CREATE, ctx.auth, ctx.schemes)?;
        let parent_cversion = parent.stat.cversion;
        let parent_owner = parent.stat.ephemeral_owner;
        let full = if mode.is_sequential() {
            format!("{}{:010}", c.path, parent_cversion)
        } else {
            c.path.clone()
        };
        if !path::is_valid(&full) {
            return Err(ErrorCode::BadArguments);
        }
        // Valid, so it has a parent path (the one found above) and a name,
        // unless it is "/" (which exists).
        let (_, name) = path::split(&full).ok_or(ErrorCode::BadArguments)?;
        if name.is_empty() || self.tree.has_child(pid, name) {
            return Err(ErrorCode::NodeExists);
        }
        if matches!(owner_kind(parent_owner), OwnerKind::Ephemeral(_)) {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        self.check_quota(&full, c.data.as_deref().map_or(0, <[u8]>::len) as i64, 1)?;
        // The node's kind comes from the op, as ZooKeeper picks the txn by op:
        // createContainer makes a container whatever the flags say, a plain
        // create with the container flag makes a persistent node.
        let owner = match op {
            OpCode::CreateContainer => CONTAINER_OWNER,
            OpCode::CreateTtl => TTL_OWNER_MASK | c.ttl,
            _ if mode.is_ephemeral() => ctx.session_id,
            _ => 0,
        };
        let stat = Stat {
            czxid: ctx.zxid,
            mzxid: ctx.zxid,
            ctime: ctx.time_ms,
            mtime: ctx.time_ms,
            ephemeral_owner: owner,
            pzxid: ctx.zxid,
            ..Stat::default()
        };
        let stat = self.tree.create_under(
            pid,
            &full,
            c.data.as_deref(),
            acl,
            stat,
            parent_cversion.wrapping_add(1),
            ctx.zxid,
        );
        Ok(MultiResult::Create {
            path: full,
            stat: (op != OpCode::Create).then_some(stat),
        })
    }

    fn delete(&mut self, d: &PathVersionRequest, ctx: &Ctx<'_>) -> Result<MultiResult, ErrorCode> {
        // ZooKeeper checks only for a slash and NUL here, not the full path
        // rules, and refuses "/", "/zookeeper" and its two system children.
        if d.path.contains('\0') || path::is_system(&d.path) {
            return Err(ErrorCode::BadArguments);
        }
        let (parent_path, _) = path::split(&d.path).ok_or(ErrorCode::BadArguments)?;
        let parent = self.tree.get(parent_path).ok_or(ErrorCode::NoNode)?;
        acl::check(parent.acl, Perms::DELETE, ctx.auth, ctx.schemes)?;
        let node = self.tree.get(&d.path).ok_or(ErrorCode::NoNode)?;
        check_version(d.version, node.stat.version)?;
        if !node.children.is_empty() {
            return Err(ErrorCode::NotEmpty);
        }
        self.tree.delete(&d.path, ctx.zxid);
        Ok(MultiResult::Delete)
    }

    fn set_data(&mut self, s: &SetDataRequest, ctx: &Ctx<'_>) -> Result<MultiResult, ErrorCode> {
        if !path::is_valid(&s.path) {
            return Err(ErrorCode::BadArguments);
        }
        let (id, node) = self.tree.find(&s.path).ok_or(ErrorCode::NoNode)?;
        acl::check(node.acl, Perms::WRITE, ctx.auth, ctx.schemes)?;
        let (version, old_len) = (node.stat.version, node.data.map_or(0, <[u8]>::len));
        let new_len = s.data.as_deref().map_or(0, <[u8]>::len);
        self.check_quota(&s.path, new_len as i64 - old_len as i64, 0)?;
        check_version(s.version, version)?;
        Ok(MultiResult::SetData(self.tree.set_data_at(
            id,
            &s.path,
            s.data.as_deref(),
            ctx.zxid,
            ctx.time_ms,
        )))
    }

    /// `enforceQuota`, where ZooKeeper's PrepRequestProcessor checks it:
    /// a hard limit refuses the write; a soft one is noted for the log.
    /// Exact where ZooKeeper's is not: each write is checked against the
    /// state the writes before it left (ZooKeeper checks against its last
    /// committed state, so writes in flight together, or a multi's, can
    /// pass a hard limit there).
    fn check_quota(&mut self, path: &str, bytes: i64, count: i64) -> Result<(), ErrorCode> {
        if !self.config.enforce_quota {
            return Ok(());
        }
        let mut soft = self.tree.check_quota(path, bytes, count)?;
        self.quota_warnings.append(&mut soft);
        Ok(())
    }

    /// The warnings of soft quota limits passed since the last call.
    pub fn take_quota_warnings(&mut self) -> Vec<String> {
        std::mem::take(&mut self.quota_warnings)
    }

    fn check(&mut self, c: &PathVersionRequest, ctx: &Ctx<'_>) -> Result<MultiResult, ErrorCode> {
        if !path::is_valid(&c.path) {
            return Err(ErrorCode::BadArguments);
        }
        let node = self.tree.get(&c.path).ok_or(ErrorCode::NoNode)?;
        acl::check(node.acl, Perms::READ, ctx.auth, ctx.schemes)?;
        check_version(c.version, node.stat.version)?;
        Ok(MultiResult::Check)
    }

    fn set_acl(&mut self, s: &SetAclRequest, ctx: &Ctx<'_>) -> Result<Stat, ErrorCode> {
        if !path::is_valid(&s.path) {
            return Err(ErrorCode::BadArguments);
        }
        let acl = acl::fixup(&s.acl, ctx.auth, ctx.schemes)?;
        let node = self.tree.get(&s.path).ok_or(ErrorCode::NoNode)?;
        acl::check(node.acl, Perms::ADMIN, ctx.auth, ctx.schemes)?;
        check_version(s.version, node.stat.aversion)?;
        Ok(self.tree.set_acl(&s.path, acl))
    }
}

/// -1 matches any version.
fn check_version(expected: i32, actual: i32) -> Result<(), ErrorCode> {
    if expected == -1 || expected == actual {
        Ok(())
    } else {
        Err(ErrorCode::BadVersion)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datatree::TriggerKind;
    use proto::Acl;

    struct T {
        sm: StateMachine,
        zxid: i64,
        sid: i64,
    }

    impl T {
        fn new() -> T {
            T::enforcing_quota(false)
        }
        fn enforcing_quota(enforce_quota: bool) -> T {
            let mut sm = StateMachine::new(TreeConfig {
                extended_types: true,
                schemes: Default::default(),
                enforce_quota,
            });
            let e = Entry {
                time_ms: 1000,
                session_id: 0,
                xid: 0,
                origin: 1,
                conn: 1,
                kind: EntryKind::CreateSession {
                    timeout_ms: 30000,
                    passwd: vec![0; 16],
                },
            };
            let a = sm.apply(1, &e);
            let Some(SessionEffect::Created { session_id, .. }) = a.session else {
                panic!()
            };
            T {
                sm,
                zxid: 1,
                sid: session_id,
            }
        }
        fn run(&mut self, req: Request) -> Applied {
            self.zxid += 1;
            let mut body = Vec::new();
            req.encode(&mut body);
            let e = Entry {
                time_ms: 1000 + self.zxid,
                session_id: self.sid,
                xid: 0,
                origin: 1,
                conn: 1,
                kind: EntryKind::Request {
                    op: req.op(),
                    body,
                    auth: vec![],
                },
            };
            self.sm.apply(self.zxid, &e)
        }
        fn create(&mut self, path: &str, flags: i32) -> Reply {
            self.run(Request::Create(
                OpCode::Create2,
                CreateTtlRequest {
                    path: path.into(),
                    data: Some(vec![]),
                    acl: acl::open_acl_unsafe(),
                    flags,
                    ttl: -1,
                },
            ))
            .reply
            .unwrap()
        }
    }

    #[test]
    fn sequential_suffix_comes_from_parent_cversion() {
        // Programmer's guide, "Sequence Nodes -- Unique Naming".
        let mut t = T::new();
        assert!(matches!(t.create("/q", 0), Reply::Create { .. }));
        assert!(
            matches!(t.create("/q/n-", 2), Reply::Create { ref path, .. } if path == "/q/n-0000000000")
        );
        t.run(Request::Delete(PathVersionRequest {
            path: "/q/n-0000000000".into(),
            version: -1,
        }));
        assert!(
            matches!(t.create("/q/n-", 2), Reply::Create { ref path, .. } if path == "/q/n-0000000001")
        );
        let q = t.sm.tree.get("/q").unwrap().stat();
        // Two creates and one delete: three changes to the children.
        assert_eq!((q.cversion, q.num_children, q.pzxid), (3, 1, t.zxid));
    }

    #[test]
    fn a_parent_cversion_at_its_maximum_stays_there_as_in_zookeeper() {
        // ZooKeeper's sequential suffix is the parent's cversion, an i32,
        // as %010d; past i32::MAX its createNode does not take the
        // wrapped value, so the next sequential name is taken.
        let mut t = T::new();
        t.create("/p", 0);
        t.sm.tree.set_cversion("/p", i32::MAX - 1);
        for n in ["/p/s-2147483646", "/p/s-2147483647"] {
            assert!(
                matches!(t.create("/p/s-", 2), Reply::Create { ref path, .. } if path == n),
                "{n}"
            );
        }
        let before = t.sm.tree.get("/p").unwrap().stat;
        assert_eq!(before.cversion, i32::MAX);
        assert_eq!(t.create("/p/s-", 2), Reply::Err(ErrorCode::NodeExists));
        // A plain create still works; cversion and pzxid stay, as ZooKeeper's.
        assert!(matches!(t.create("/p/plain", 0), Reply::Create { .. }));
        let after = t.sm.tree.get("/p").unwrap().stat;
        assert_eq!((after.cversion, after.pzxid), (i32::MAX, before.pzxid));
        let digest = t.sm.tree.digest();
        t.sm.tree.recompute_digest();
        assert_eq!(t.sm.tree.digest(), digest);
    }

    #[test]
    fn a_local_session_writes_and_is_upgraded_under_its_own_id() {
        let mut t = T::new();
        let global = t.sid;
        t.sid = crate::entry::LOCAL_SESSION_TAG | 2 << 48 | 1;
        assert!(matches!(t.create("/p", 0), Reply::Create { .. }));
        assert_eq!(
            t.create("/p/e", 1),
            Reply::Err(ErrorCode::EphemeralOnLocalSession)
        );
        t.zxid += 1;
        let upgrade = Entry {
            time_ms: 5000,
            session_id: t.sid,
            xid: 0,
            origin: 1,
            conn: 0,
            kind: EntryKind::CreateSession {
                timeout_ms: 10_000,
                passwd: vec![7; 16],
            },
        };
        let a = t.sm.apply(t.zxid, &upgrade);
        assert!(
            matches!(a.session, Some(SessionEffect::Created { session_id, .. }) if session_id == t.sid)
        );
        assert_eq!(t.sm.sessions[&t.sid].passwd, vec![7; 16]);
        assert!(matches!(t.create("/p/e", 1), Reply::Create { .. }));
        // Again: nothing more; the next global session's id is not taken.
        t.zxid += 1;
        assert!(t.sm.apply(t.zxid, &upgrade).session.is_none());
        assert_eq!(t.sm.sessions.len(), 2);
        assert!(t.sm.sessions.contains_key(&global));
        // A session that is neither global nor local has expired.
        t.sid = 0x0100_0000_0000_0999;
        assert_eq!(t.create("/q", 0), Reply::Err(ErrorCode::SessionExpired));
    }

    #[test]
    fn create_errors_in_zookeeper_order() {
        let mut t = T::new();
        assert_eq!(t.create("/a/b", 0), Reply::Err(ErrorCode::NoNode));
        assert_eq!(t.create("/a", 9), Reply::Err(ErrorCode::BadArguments));
        t.create("/e", 1);
        assert_eq!(t.create("/e", 0), Reply::Err(ErrorCode::NodeExists));
        assert_eq!(
            t.create("/e/c", 0),
            Reply::Err(ErrorCode::NoChildrenForEphemerals)
        );
        assert_eq!(t.create("/x/", 0), Reply::Err(ErrorCode::NoNode));
        t.create("/x", 0);
        assert_eq!(t.create("/x/", 0), Reply::Err(ErrorCode::BadArguments));
        // The root exists, whatever the flags (found by the network fuzz
        // test: an ephemeral "/" once got made, and its expiry took the root).
        for flags in [0, 1, 4] {
            assert_eq!(t.create("/", flags), Reply::Err(ErrorCode::NodeExists));
        }
        let bad_acl = CreateTtlRequest {
            path: "/y".into(),
            data: None,
            acl: vec![],
            flags: 0,
            ttl: -1,
        };
        assert_eq!(
            t.run(Request::Create(OpCode::Create, bad_acl)).reply,
            Some(Reply::Err(ErrorCode::InvalidAcl))
        );
    }

    #[test]
    fn multi_is_all_or_nothing() {
        let mut t = T::new();
        let before = t.sm.tree.digest();
        let ops = vec![
            MultiOp::Create(
                OpCode::Create,
                CreateTtlRequest {
                    path: "/m".into(),
                    data: None,
                    acl: acl::open_acl_unsafe(),
                    flags: 0,
                    ttl: -1,
                },
            ),
            MultiOp::Delete(PathVersionRequest {
                path: "/nope".into(),
                version: -1,
            }),
            MultiOp::Check(PathVersionRequest {
                path: "/m".into(),
                version: 0,
            }),
        ];
        let a = t.run(Request::Multi(ops));
        assert_eq!(
            a.reply,
            Some(Reply::Multi(vec![
                MultiResult::Error(ErrorCode::Ok),
                MultiResult::Error(ErrorCode::NoNode),
                MultiResult::Error(ErrorCode::RuntimeInconsistency),
            ]))
        );
        assert!(a.triggers.is_empty());
        assert_eq!(t.sm.tree.digest(), before);
    }

    fn put(path: &str, data: &str) -> CreateTtlRequest {
        CreateTtlRequest {
            path: path.into(),
            data: Some(data.as_bytes().to_vec()),
            acl: acl::open_acl_unsafe(),
            flags: 0,
            ttl: -1,
        }
    }

    #[test]
    fn quotas_are_counted_and_enforced_as_in_zookeeper() {
        let stats = |t: &T| {
            let n = t.sm.tree.get("/zookeeper/quota/q/zookeeper_stats").unwrap();
            (
                String::from_utf8(n.data.unwrap().to_vec()).unwrap(),
                n.stat.version,
            )
        };
        let mut t = T::enforcing_quota(true);
        let create = |t: &mut T, p: &str, d: &str| {
            t.run(Request::Create(OpCode::Create, put(p, d)))
                .reply
                .unwrap()
        };
        create(&mut t, "/q", "ab");
        create(&mut t, "/q/a", "x");
        // zkCli's `setquota -N 3 /q`.
        create(&mut t, "/zookeeper/quota/q", "");
        create(
            &mut t,
            "/zookeeper/quota/q/zookeeper_limits",
            "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=3",
        );
        create(
            &mut t,
            "/zookeeper/quota/q/zookeeper_stats",
            "count=0,bytes=0",
        );
        // The subtree counted when the stats node comes, the root included.
        assert_eq!(stats(&t), ("count=2,bytes=3".into(), 0));
        assert!(matches!(create(&mut t, "/q/b", "yy"), Reply::Create { .. }));
        assert_eq!(stats(&t).0, "count=3,bytes=5");
        let digest = t.sm.tree.digest();
        assert_eq!(
            create(&mut t, "/q/c", ""),
            Reply::Err(ErrorCode::QuotaExceeded)
        );
        assert_eq!(t.sm.tree.digest(), digest);
        // No byte limit: a bigger value is fine; a delete frees a place.
        let set = |t: &mut T, d: &str| {
            t.run(Request::SetData(SetDataRequest {
                path: "/q/a".into(),
                data: Some(d.as_bytes().to_vec()),
                version: -1,
            }))
            .reply
            .unwrap()
        };
        assert!(matches!(set(&mut t, "xxxx"), Reply::Stat(..)));
        assert_eq!(stats(&t).0, "count=3,bytes=8");
        t.run(Request::Delete(PathVersionRequest {
            path: "/q/b".into(),
            version: -1,
        }));
        assert_eq!(stats(&t).0, "count=2,bytes=6");
        // A multi of two creates with one place left fails whole, and the
        // counts stay.
        let a = t.run(Request::Multi(vec![
            MultiOp::Create(OpCode::Create, put("/q/c", "")),
            MultiOp::Create(OpCode::Create, put("/q/d", "")),
        ]));
        assert_eq!(
            a.reply,
            Some(Reply::Multi(vec![
                MultiResult::Error(ErrorCode::Ok),
                MultiResult::Error(ErrorCode::QuotaExceeded),
            ]))
        );
        assert_eq!(stats(&t), ("count=2,bytes=6".into(), 0));
        // A byte hard limit is checked on setData; a soft one only warns.
        t.run(Request::SetData(SetDataRequest {
            path: "/zookeeper/quota/q/zookeeper_limits".into(),
            data: Some(b"count=2,bytes=-1=;byteHardLimit=7".to_vec()),
            version: -1,
        }));
        assert_eq!(set(&mut t, "xxxxxx"), Reply::Err(ErrorCode::QuotaExceeded));
        assert!(t.sm.take_quota_warnings().is_empty());
        assert!(matches!(create(&mut t, "/q/c", ""), Reply::Create { .. }));
        assert_eq!(
            t.sm.take_quota_warnings(),
            vec!["Quota exceeded: /q [current count=3, softCountLimit=2]".to_string()]
        );
        // The limits node gone, nothing is counted or enforced.
        t.run(Request::Delete(PathVersionRequest {
            path: "/zookeeper/quota/q/zookeeper_limits".into(),
            version: -1,
        }));
        create(&mut t, "/q/d", "zzz");
        assert_eq!(stats(&t).0, "count=3,bytes=6");
        // Loaded from a snapshot, the roots are found again.
        create(
            &mut t,
            "/zookeeper/quota/q/zookeeper_limits",
            "count=-1,bytes=-1=;countHardLimit=1",
        );
        let back =
            StateMachine::decode_snapshot(&t.sm.freeze().encode_snapshot(), t.sm.config()).unwrap();
        assert_eq!(back.tree.quota_root("/q/d/x"), Some("/q"));
        assert_eq!(back.tree.digest(), t.sm.tree.digest());
    }

    #[test]
    fn quotas_are_counted_without_enforcement() {
        let mut t = T::new();
        for (p, d) in [
            ("/q", ""),
            ("/zookeeper/quota/q", ""),
            (
                "/zookeeper/quota/q/zookeeper_limits",
                "count=-1,bytes=-1=;countHardLimit=1",
            ),
            ("/zookeeper/quota/q/zookeeper_stats", "count=0,bytes=0"),
            ("/q/a", "1"),
            ("/q/a/b", "22"),
        ] {
            assert!(
                matches!(
                    t.run(Request::Create(OpCode::Create, put(p, d))).reply,
                    Some(Reply::Create { .. })
                ),
                "{p}"
            );
        }
        let n = t.sm.tree.get("/zookeeper/quota/q/zookeeper_stats").unwrap();
        assert_eq!(n.data, Some(&b"count=3,bytes=3"[..]));
        assert!(t.sm.take_quota_warnings().is_empty());
    }

    #[test]
    fn close_session_deletes_ephemerals_and_triggers() {
        let mut t = T::new();
        t.create("/p", 0);
        t.create("/p/e", 1);
        let sid = t.sid;
        let a = t.sm.apply(
            t.zxid + 1,
            &Entry {
                time_ms: 5,
                session_id: sid,
                xid: 0,
                origin: 1,
                conn: 1,
                kind: EntryKind::CloseSession { expired: true },
            },
        );
        assert!(t.sm.tree.get("/p/e").is_none());
        assert_eq!(a.triggers[0].kind, TriggerKind::Deleted);
        assert_eq!(a.triggers[0].path, "/p/e");
        assert_eq!(
            a.session,
            Some(SessionEffect::Closed {
                session_id: sid,
                expired: true
            })
        );
        t.zxid += 1;
        assert_eq!(t.create("/q", 0), Reply::Err(ErrorCode::SessionExpired));
    }

    #[test]
    fn system_nodes_cannot_be_deleted() {
        let mut t = T::new();
        for p in ["/zookeeper/config", "/zookeeper/quota", "/zookeeper", "/"] {
            let r = t.run(Request::Delete(PathVersionRequest {
                path: p.into(),
                version: -1,
            }));
            assert_eq!(r.reply, Some(Reply::Err(ErrorCode::BadArguments)), "{p}");
        }
    }

    #[test]
    fn versions_and_acls() {
        let mut t = T::new();
        t.create("/v", 0);
        let set = |v| {
            Request::SetData(SetDataRequest {
                path: "/v".into(),
                data: Some(b"x".to_vec()),
                version: v,
            })
        };
        assert_eq!(t.run(set(3)).reply, Some(Reply::Err(ErrorCode::BadVersion)));
        let Some(Reply::Stat(s)) = t.run(set(0)).reply else {
            panic!()
        };
        assert_eq!((s.version, s.data_length, s.mzxid), (1, 1, t.zxid));
        let ro = vec![Acl {
            perms: Perms::READ,
            id: Id {
                scheme: "world".into(),
                id: "anyone".into(),
            },
        }];
        let Some(Reply::Stat(s)) = t
            .run(Request::SetAcl(SetAclRequest {
                path: "/v".into(),
                acl: ro,
                version: 0,
            }))
            .reply
        else {
            panic!()
        };
        assert_eq!(s.aversion, 1);
        assert_eq!(t.run(set(-1)).reply, Some(Reply::Err(ErrorCode::NoAuth)));
    }

    #[test]
    fn containers_and_ttls_are_reaped_when_due() {
        let mut t = T::new();
        t.run(Request::Create(
            OpCode::CreateContainer,
            CreateTtlRequest {
                path: "/c".into(),
                data: None,
                acl: acl::open_acl_unsafe(),
                flags: 4,
                ttl: -1,
            },
        ));
        t.create("/c/x", 0);
        t.run(Request::Delete(PathVersionRequest {
            path: "/c/x".into(),
            version: -1,
        }));
        t.run(Request::Create(
            OpCode::CreateTtl,
            CreateTtlRequest {
                path: "/t".into(),
                data: None,
                acl: acl::open_acl_unsafe(),
                flags: 5,
                ttl: 100,
            },
        ));
        let t_mtime = t.sm.tree.get("/t").unwrap().stat.mtime;
        let reap = |time_ms| Entry {
            time_ms,
            session_id: 0,
            xid: 0,
            origin: 1,
            conn: 0,
            kind: EntryKind::Reap {
                paths: vec!["/c".into(), "/t".into()],
            },
        };
        t.zxid += 1;
        t.sm.apply(t.zxid, &reap(t_mtime + 50));
        assert!(t.sm.tree.get("/c").is_none());
        assert!(t.sm.tree.get("/t").is_some());
        t.zxid += 1;
        t.sm.apply(t.zxid, &reap(t_mtime + 101));
        assert!(t.sm.tree.get("/t").is_none());
    }
}
