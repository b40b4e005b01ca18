//! Read requests against the applied tree (ZooKeeper's
//! `FinalRequestProcessor` for non-transactional ops). Pure: the caller
//! registers the watch the result asks for.

use proto::codec::{put_bytes, put_i32, put_str};
use proto::{ClientInfo, ErrorCode, Id, Jute, MultiOp, Perms, Request};

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
    /// The hot reads — getData, exists, getChildren, getChildren2 —
    /// answered straight into `w` (the reply body, written only on
    /// success), without building a `Reply`: the data and the children's
    /// names are copied once, into the frame. Returns the error and the
    /// watch to register on the request's path; None for any other
    /// request (use `read`). Same answers as `read`.
    pub fn read_into(
        &self,
        req: &Request,
        auth: &[Id],
        w: &mut Vec<u8>,
    ) -> Option<(ErrorCode, Option<WatchKind>)> {
        let t = &self.tree;
        let schemes = self.config().schemes;
        let readable = |path: &str| -> Result<crate::Znode<'_>, ErrorCode> {
            let n = t.get(path).ok_or(ErrorCode::NoNode)?;
            acl::check(n.acl, Perms::READ, auth, schemes)?;
            Ok(n)
        };
        let (res, watch, kind) = match req {
            Request::Exists(r) => {
                // exists leaves a watch whether or not the node is there;
                // a node there needs READ (ZOOKEEPER-2590, ZooKeeper 3.8.4
                // and 3.9.2 on), and then none is left when refused.
                let res = match t.get(&r.path) {
                    None => Err(ErrorCode::NoNode),
                    Some(n) => acl::check(n.acl, Perms::READ, auth, schemes).map(|()| {
                        n.stat().write(w);
                    }),
                };
                let err = res.err().unwrap_or(ErrorCode::Ok);
                let watch = r.watch && err != ErrorCode::NoAuth;
                return Some((err, watch.then_some(WatchKind::Data)));
            }
            Request::GetData(r) => (
                readable(&r.path).map(|n| {
                    put_bytes(w, n.data);
                    n.stat().write(w);
                }),
                r.watch,
                WatchKind::Data,
            ),
            Request::GetChildren(r) => (
                readable(&r.path).map(|n| put_names(w, &n.children)),
                r.watch,
                WatchKind::Child,
            ),
            Request::GetChildren2(r) => (
                readable(&r.path).map(|n| {
                    put_names(w, &n.children);
                    n.stat().write(w);
                }),
                r.watch,
                WatchKind::Child,
            ),
            _ => return None,
        };
        Some(match res {
            Ok(()) => (ErrorCode::Ok, watch.then_some(kind)),
            Err(e) => (e, None),
        })
    }

    /// Serves a read. `auth` are the caller's identities.
    pub fn read(&self, req: &Request, session_id: i64, auth: &[Id]) -> ReadResult {
        let t = &self.tree;
        let schemes = self.config().schemes;
        let plain = |reply| ReadResult { reply, watch: None };
        let readable = |path: &str| -> Result<crate::Znode<'_>, ErrorCode> {
            let n = t.get(path).ok_or(ErrorCode::NoNode)?;
            acl::check(n.acl, Perms::READ, auth, schemes)?;
            Ok(n)
        };
        let with_watch = |reply: Reply, watch: bool, kind, path: &str| ReadResult {
            watch: (watch && reply.err() == ErrorCode::Ok).then(|| (kind, path.to_string())),
            reply,
        };
        match req {
            Request::Exists(r) => {
                let reply = match t.get(&r.path) {
                    None => Reply::Err(ErrorCode::NoNode),
                    Some(n) => match acl::check(n.acl, Perms::READ, auth, schemes) {
                        Ok(()) => Reply::Stat(n.stat()),
                        Err(e) => Reply::Err(e),
                    },
                };
                // exists leaves a watch whether or not the node is there
                // (not when refused: ZOOKEEPER-2590).
                let watch = r.watch && reply.err() != ErrorCode::NoAuth;
                ReadResult {
                    reply,
                    watch: watch.then(|| (WatchKind::Data, r.path.clone())),
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
                Some(n) => match acl::check(n.acl, Perms::READ | Perms::ADMIN, auth, schemes) {
                    Err(e) => Reply::Err(e),
                    Ok(()) => match acl::check(n.acl, Perms::ADMIN, auth, schemes) {
                        Ok(()) => Reply::Acl(n.acl.to_vec(), n.stat()),
                        Err(_) => Reply::Acl(acl::redact(n.acl), n.stat()),
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
            // As ZooKeeper (AuthUtil.getClientInfos): every identity, newest
            // first, with its provider's user name — a digest's user, not
            // its hash — or "" when the scheme has no provider (`super`,
            // `sasl` or `x509` without their providers).
            Request::WhoAmI => plain(Reply::WhoAmI(
                auth.iter()
                    .rev()
                    .map(|a| ClientInfo {
                        auth_scheme: a.scheme.clone(),
                        user: match a.scheme.as_str() {
                            "digest" => a.id.split(':').next().unwrap_or("").to_string(),
                            "ip" => a.id.clone(),
                            "sasl" if schemes.sasl => a.id.clone(),
                            "x509" if schemes.x509 => a.id.clone(),
                            _ => String::new(),
                        },
                    })
                    .collect(),
            )),
            Request::Sync(r) => plain(Reply::Path(r.path.clone())),
            _ => plain(Reply::Err(ErrorCode::Unimplemented)),
        }
    }
}

/// A `vector<ustring>` of the children's names.
fn put_names(w: &mut Vec<u8>, c: &crate::Children<'_>) {
    put_i32(w, c.len() as i32);
    for name in c.iter() {
        put_str(w, name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::entry::{Entry, EntryKind};
    use crate::{SessionEffect, TreeConfig};
    use proto::{CreateTtlRequest, OpCode, PathWatchRequest};

    #[test]
    fn read_into_answers_as_read() {
        let mut sm = StateMachine::new(TreeConfig::default());
        let entry = Entry::for_test;
        let a = sm.apply(
            1,
            &entry(
                0,
                EntryKind::CreateSession {
                    timeout_ms: 9000,
                    passwd: vec![0; 16],
                },
            ),
        );
        let Some(SessionEffect::Created { session_id, .. }) = a.session else {
            panic!()
        };
        let secret = vec![proto::Acl {
            perms: Perms::ALL,
            id: Id {
                scheme: "digest".into(),
                id: "u:x".into(),
            },
        }];
        let nodes: [(&str, Option<&[u8]>, Vec<proto::Acl>); 5] = [
            ("/a", Some(b"data"), acl::open_acl_unsafe()),
            ("/a/x", None, acl::open_acl_unsafe()),
            ("/a/y", Some(b""), acl::open_acl_unsafe()),
            ("/s", Some(b"hidden"), secret),
            ("/s/k", Some(b"k"), acl::open_acl_unsafe()),
        ];
        for (i, (path, data, acl)) in nodes.into_iter().enumerate() {
            let req = Request::Create(
                OpCode::Create,
                CreateTtlRequest {
                    path: path.into(),
                    data: data.map(<[u8]>::to_vec),
                    acl,
                    flags: 0,
                    ttl: -1,
                },
            );
            let mut body = Vec::new();
            req.encode(&mut body);
            let e = entry(
                session_id,
                EntryKind::Request {
                    op: OpCode::Create,
                    body,
                    auth: vec![Id {
                        scheme: "digest".into(),
                        id: "u:x".into(),
                    }],
                },
            );
            sm.apply(2 + i as i64, &e);
        }
        let mut checked = 0;
        for path in ["/", "/a", "/a/x", "/a/y", "/s", "/s/k", "/none", "/a/"] {
            for watch in [false, true] {
                let pw = PathWatchRequest {
                    path: path.into(),
                    watch,
                };
                for req in [
                    Request::Exists(pw.clone()),
                    Request::GetData(pw.clone()),
                    Request::GetChildren(pw.clone()),
                    Request::GetChildren2(pw.clone()),
                ] {
                    let old = sm.read(&req, session_id, &[]);
                    let mut want = Vec::new();
                    old.reply.encode(&mut want);
                    let mut got = Vec::new();
                    let (err, kind) = sm.read_into(&req, &[], &mut got).unwrap();
                    assert_eq!(err, old.reply.err(), "{req:?}");
                    assert_eq!(kind, old.watch.map(|w| w.0), "{req:?}");
                    if matches!(req, Request::GetChildren(_) | Request::GetChildren2(_)) {
                        // Same names, perhaps in another order: compare sorted.
                        let names = |b: &[u8]| {
                            let mut r = proto::Reader::new(b);
                            let mut v: Vec<String> = Jute::read(&mut r).unwrap_or_default();
                            v.sort();
                            (v, r.remaining())
                        };
                        assert_eq!(names(&got), names(&want), "{req:?}");
                        assert_eq!(got.len(), want.len(), "{req:?}");
                    } else {
                        assert_eq!(got, want, "{req:?}");
                    }
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 64);
        assert!(sm
            .read_into(&Request::WhoAmI, &[], &mut Vec::new())
            .is_none());
    }
}
