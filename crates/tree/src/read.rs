//! Read requests against the applied tree (ZooKeeper's
//! `FinalRequestProcessor` for non-transactional ops). Pure: the caller
//! registers the watch the result asks for.

use proto::{ClientInfo, ErrorCode, Id, MultiOp, Perms, Request};

use crate::acl;
use crate::apply::StateMachine;
use crate::reply::{MultiResult, Reply};
use crate::watches::WatchKind;

/// The reply, and the watch to register for the caller if any.
pub struct ReadResult {
    pub reply: Reply,
    pub watch: Option<(WatchKind, String)>,
}

impl StateMachine {
    /// Serves a read. `auth` are the caller's identities.
    pub fn read(&self, req: &Request, session_id: i64, auth: &[Id]) -> ReadResult {
        let t = &self.tree;
        let plain = |reply| ReadResult { reply, watch: None };
        let readable = |path: &str| -> Result<crate::Znode<'_>, ErrorCode> {
            let n = t.get(path).ok_or(ErrorCode::NoNode)?;
            acl::check(&n.acl, Perms::READ, auth)?;
            Ok(n)
        };
        let with_watch = |reply: Reply, watch: bool, kind, path: &str| ReadResult {
            watch: (watch && reply.err() == ErrorCode::Ok).then(|| (kind, path.to_string())),
            reply,
        };
        match req {
            Request::Exists(r) => {
                let reply = t
                    .get(&r.path)
                    .map_or(Reply::Err(ErrorCode::NoNode), |n| Reply::Stat(n.stat()));
                // exists leaves a watch whether or not the node is there.
                ReadResult {
                    reply,
                    watch: r.watch.then(|| (WatchKind::Data, r.path.clone())),
                }
            }
            Request::GetData(r) => {
                let reply = readable(&r.path).map_or_else(Reply::Err, |n| {
                    Reply::Data(n.data.map(<[u8]>::to_vec), n.stat())
                });
                with_watch(reply, r.watch, WatchKind::Data, &r.path)
            }
            Request::GetChildren(r) => {
                let reply = readable(&r.path)
                    .map_or_else(Reply::Err, |n| Reply::Children(n.children.names()));
                with_watch(reply, r.watch, WatchKind::Child, &r.path)
            }
            Request::GetChildren2(r) => {
                let reply = readable(&r.path).map_or_else(Reply::Err, |n| {
                    Reply::Children2(n.children.names(), n.stat())
                });
                with_watch(reply, r.watch, WatchKind::Child, &r.path)
            }
            Request::GetAcl(r) => plain(match t.get(&r.path) {
                None => Reply::Err(ErrorCode::NoNode),
                Some(n) => match acl::check(&n.acl, Perms::READ | Perms::ADMIN, auth) {
                    Err(e) => Reply::Err(e),
                    Ok(()) => match acl::check(&n.acl, Perms::ADMIN, auth) {
                        Ok(()) => Reply::Acl(n.acl.to_vec(), n.stat()),
                        Err(_) => Reply::Acl(acl::redact(&n.acl), n.stat()),
                    },
                },
            }),
            Request::GetAllChildrenNumber(r) => {
                plain(readable(&r.path).map_or_else(Reply::Err, |_| {
                    Reply::Count(t.count_descendants(&r.path) as i32)
                }))
            }
            Request::GetEphemerals(r) => {
                let paths = t
                    .ephemerals()
                    .get(&session_id)
                    .map(|s| {
                        s.iter()
                            .filter(|p| {
                                r.path.is_empty() || r.path == "/" || p.starts_with(&r.path)
                            })
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                plain(Reply::Paths(paths))
            }
            Request::MultiRead(ops) => plain(Reply::Multi(
                ops.iter()
                    .map(|op| match op {
                        MultiOp::GetData(r) => readable(&r.path)
                            .map_or_else(MultiResult::Error, |n| {
                                MultiResult::GetData(n.data.map(<[u8]>::to_vec), n.stat())
                            }),
                        MultiOp::GetChildren(r) => readable(&r.path)
                            .map_or_else(MultiResult::Error, |n| {
                                MultiResult::GetChildren(n.children.names())
                            }),
                        _ => MultiResult::Error(ErrorCode::BadArguments),
                    })
                    .collect(),
            )),
            // As ZooKeeper: the provider's user name (a digest's user, not
            // its hash), newest identity first.
            Request::WhoAmI => plain(Reply::WhoAmI(
                auth.iter()
                    .rev()
                    .filter(|a| a.scheme != "super")
                    .map(|a| ClientInfo {
                        auth_scheme: a.scheme.clone(),
                        user: match a.scheme.as_str() {
                            "digest" => a.id.split(':').next().unwrap_or("").to_string(),
                            _ => a.id.clone(),
                        },
                    })
                    .collect(),
            )),
            Request::Sync(r) => plain(Reply::Path(r.path.clone())),
            _ => plain(Reply::Err(ErrorCode::Unimplemented)),
        }
    }
}
