//! A client request body decoded by its op code.

use crate::codec::{DecodeError, Jute, Reader};
use crate::consts::OpCode;
use crate::records::*;

/// One operation inside a `multi` or `multiRead`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    Create(OpCode, CreateTtlRequest),
    Delete(PathVersionRequest),
    SetData(SetDataRequest),
    Check(PathVersionRequest),
    GetChildren(PathWatchRequest),
    GetData(PathWatchRequest),
}

impl MultiOp {
    pub fn op(&self) -> OpCode {
        match self {
            MultiOp::Create(op, _) => *op,
            MultiOp::Delete(_) => OpCode::Delete,
            MultiOp::SetData(_) => OpCode::SetData,
            MultiOp::Check(_) => OpCode::Check,
            MultiOp::GetChildren(_) => OpCode::GetChildren,
            MultiOp::GetData(_) => OpCode::GetData,
        }
    }
    pub fn path(&self) -> &str {
        match self {
            MultiOp::Create(_, r) => &r.path,
            MultiOp::Delete(r) | MultiOp::Check(r) => &r.path,
            MultiOp::SetData(r) => &r.path,
            MultiOp::GetChildren(r) | MultiOp::GetData(r) => &r.path,
        }
    }
}

/// A decoded request. Create, create2, createContainer and createTTL all
/// decode into `Create` with the op kept (a plain create has `ttl == -1`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Create(OpCode, CreateTtlRequest),
    Delete(PathVersionRequest),
    Exists(PathWatchRequest),
    GetData(PathWatchRequest),
    SetData(SetDataRequest),
    GetAcl(PathRecord),
    SetAcl(SetAclRequest),
    GetChildren(PathWatchRequest),
    GetChildren2(PathWatchRequest),
    Sync(PathRecord),
    Ping,
    Check(PathVersionRequest),
    Multi(Vec<MultiOp>),
    MultiRead(Vec<MultiOp>),
    Reconfig(ReconfigRequest),
    CheckWatches(WatchTypeRequest),
    RemoveWatches(WatchTypeRequest),
    Auth(AuthPacket),
    Sasl(GetSaslRequest),
    SetWatches(SetWatches2),
    GetEphemerals(PathRecord),
    GetAllChildrenNumber(PathRecord),
    AddWatch(AddWatchRequest),
    WhoAmI,
    CloseSession,
}

fn create(op: OpCode, r: &mut Reader<'_>) -> Result<CreateTtlRequest, DecodeError> {
    if op == OpCode::CreateTtl {
        return CreateTtlRequest::read(r);
    }
    let c = CreateRequest::read(r)?;
    Ok(CreateTtlRequest {
        path: c.path,
        data: c.data,
        acl: c.acl,
        flags: c.flags,
        ttl: -1,
    })
}

impl CreateTtlRequest {
    /// Encodes as the op's own record (`CreateRequest` unless createTTL).
    pub fn write_as(&self, op: OpCode, w: &mut Vec<u8>) {
        if op == OpCode::CreateTtl {
            self.write(w)
        } else {
            CreateRequest {
                path: self.path.clone(),
                data: self.data.clone(),
                acl: self.acl.clone(),
                flags: self.flags,
            }
            .write(w)
        }
    }
}

fn multi(r: &mut Reader<'_>, read: bool) -> Result<Vec<MultiOp>, DecodeError> {
    let mut ops = Vec::new();
    loop {
        let h = MultiHeader::read(r)?;
        if h.done {
            return Ok(ops);
        }
        let op = OpCode::from_code(h.op).ok_or(DecodeError::UnknownOpCode(h.op))?;
        let m = match (read, op) {
            (
                false,
                OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl,
            ) => MultiOp::Create(op, create(op, r)?),
            (false, OpCode::Delete) => MultiOp::Delete(Jute::read(r)?),
            (false, OpCode::SetData) => MultiOp::SetData(Jute::read(r)?),
            (false, OpCode::Check) => MultiOp::Check(Jute::read(r)?),
            (true, OpCode::GetChildren) => MultiOp::GetChildren(Jute::read(r)?),
            (true, OpCode::GetData) => MultiOp::GetData(Jute::read(r)?),
            _ => return Err(DecodeError::UnknownOpCode(h.op)),
        };
        ops.push(m);
    }
}

fn write_multi(ops: &[MultiOp], w: &mut Vec<u8>) {
    for m in ops {
        MultiHeader {
            op: m.op().code(),
            done: false,
            err: -1,
        }
        .write(w);
        match m {
            MultiOp::Create(op, c) => c.write_as(*op, w),
            MultiOp::Delete(d) | MultiOp::Check(d) => d.write(w),
            MultiOp::SetData(s) => s.write(w),
            MultiOp::GetChildren(p) | MultiOp::GetData(p) => p.write(w),
        }
    }
    MultiHeader {
        op: -1,
        done: true,
        err: -1,
    }
    .write(w);
}

impl Request {
    /// Decodes a request body; the whole body must be consumed.
    pub fn decode(op: OpCode, body: &[u8]) -> Result<Request, DecodeError> {
        let mut r = Reader::new(body);
        let req = match op {
            OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
                Request::Create(op, create(op, &mut r)?)
            }
            OpCode::Delete => Request::Delete(Jute::read(&mut r)?),
            OpCode::Exists => Request::Exists(Jute::read(&mut r)?),
            OpCode::GetData => Request::GetData(Jute::read(&mut r)?),
            OpCode::SetData => Request::SetData(Jute::read(&mut r)?),
            OpCode::GetAcl => Request::GetAcl(Jute::read(&mut r)?),
            OpCode::SetAcl => Request::SetAcl(Jute::read(&mut r)?),
            OpCode::GetChildren => Request::GetChildren(Jute::read(&mut r)?),
            OpCode::GetChildren2 => Request::GetChildren2(Jute::read(&mut r)?),
            OpCode::Sync => Request::Sync(Jute::read(&mut r)?),
            OpCode::Ping => Request::Ping,
            OpCode::Check => Request::Check(Jute::read(&mut r)?),
            OpCode::Multi => Request::Multi(multi(&mut r, false)?),
            OpCode::MultiRead => Request::MultiRead(multi(&mut r, true)?),
            OpCode::Reconfig => Request::Reconfig(Jute::read(&mut r)?),
            OpCode::CheckWatches => Request::CheckWatches(Jute::read(&mut r)?),
            OpCode::RemoveWatches => Request::RemoveWatches(Jute::read(&mut r)?),
            OpCode::Auth => Request::Auth(Jute::read(&mut r)?),
            OpCode::Sasl => Request::Sasl(Jute::read(&mut r)?),
            OpCode::SetWatches => {
                let s = SetWatches::read(&mut r)?;
                Request::SetWatches(SetWatches2 {
                    relative_zxid: s.relative_zxid,
                    data_watches: s.data_watches,
                    exist_watches: s.exist_watches,
                    child_watches: s.child_watches,
                    persistent_watches: vec![],
                    persistent_recursive_watches: vec![],
                })
            }
            OpCode::SetWatches2 => Request::SetWatches(Jute::read(&mut r)?),
            OpCode::GetEphemerals => Request::GetEphemerals(Jute::read(&mut r)?),
            OpCode::GetAllChildrenNumber => Request::GetAllChildrenNumber(Jute::read(&mut r)?),
            OpCode::AddWatch => Request::AddWatch(Jute::read(&mut r)?),
            OpCode::WhoAmI => Request::WhoAmI,
            OpCode::CloseSession => Request::CloseSession,
            OpCode::Notification
            | OpCode::DeleteContainer
            | OpCode::CreateSession
            | OpCode::Error => return Err(DecodeError::UnknownOpCode(op.code())),
        };
        r.finish()?;
        Ok(req)
    }

    /// The op code this request is sent under.
    pub fn op(&self) -> OpCode {
        match self {
            Request::Create(op, _) => *op,
            Request::Delete(_) => OpCode::Delete,
            Request::Exists(_) => OpCode::Exists,
            Request::GetData(_) => OpCode::GetData,
            Request::SetData(_) => OpCode::SetData,
            Request::GetAcl(_) => OpCode::GetAcl,
            Request::SetAcl(_) => OpCode::SetAcl,
            Request::GetChildren(_) => OpCode::GetChildren,
            Request::GetChildren2(_) => OpCode::GetChildren2,
            Request::Sync(_) => OpCode::Sync,
            Request::Ping => OpCode::Ping,
            Request::Check(_) => OpCode::Check,
            Request::Multi(_) => OpCode::Multi,
            Request::MultiRead(_) => OpCode::MultiRead,
            Request::Reconfig(_) => OpCode::Reconfig,
            Request::CheckWatches(_) => OpCode::CheckWatches,
            Request::RemoveWatches(_) => OpCode::RemoveWatches,
            Request::Auth(_) => OpCode::Auth,
            Request::Sasl(_) => OpCode::Sasl,
            Request::SetWatches(_) => OpCode::SetWatches2,
            Request::GetEphemerals(_) => OpCode::GetEphemerals,
            Request::GetAllChildrenNumber(_) => OpCode::GetAllChildrenNumber,
            Request::AddWatch(_) => OpCode::AddWatch,
            Request::WhoAmI => OpCode::WhoAmI,
            Request::CloseSession => OpCode::CloseSession,
        }
    }

    /// Encodes the body (without the request header); `decode` inverts it.
    pub fn encode(&self, w: &mut Vec<u8>) {
        match self {
            Request::Create(op, c) => c.write_as(*op, w),
            Request::Delete(r) | Request::Check(r) => r.write(w),
            Request::Exists(r)
            | Request::GetData(r)
            | Request::GetChildren(r)
            | Request::GetChildren2(r) => r.write(w),
            Request::SetData(r) => r.write(w),
            Request::GetAcl(r)
            | Request::Sync(r)
            | Request::GetEphemerals(r)
            | Request::GetAllChildrenNumber(r) => r.write(w),
            Request::SetAcl(r) => r.write(w),
            Request::Multi(ops) | Request::MultiRead(ops) => write_multi(ops, w),
            Request::Reconfig(r) => r.write(w),
            Request::CheckWatches(r) | Request::RemoveWatches(r) => r.write(w),
            Request::Auth(r) => r.write(w),
            Request::Sasl(r) => r.write(w),
            Request::SetWatches(r) => r.write(w),
            Request::AddWatch(r) => r.write(w),
            Request::Ping | Request::WhoAmI | Request::CloseSession => {}
        }
    }

    /// True for requests that go through the log (`OpCode::is_write`).
    pub fn is_write(&self) -> bool {
        self.op().is_write()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rt(req: Request) {
        let mut w = Vec::new();
        req.encode(&mut w);
        assert_eq!(Request::decode(req.op(), &w).unwrap(), req);
    }

    #[test]
    fn every_request_round_trips() {
        let c = CreateTtlRequest {
            path: "/a".into(),
            data: Some(b"x".to_vec()),
            acl: vec![],
            flags: 1,
            ttl: -1,
        };
        let pv = PathVersionRequest {
            path: "/a".into(),
            version: 3,
        };
        let pw = PathWatchRequest {
            path: "/a".into(),
            watch: true,
        };
        let p = PathRecord { path: "/a".into() };
        rt(Request::Create(OpCode::Create, c.clone()));
        rt(Request::Create(OpCode::Create2, c.clone()));
        rt(Request::Create(OpCode::CreateContainer, c.clone()));
        rt(Request::Create(
            OpCode::CreateTtl,
            CreateTtlRequest {
                ttl: 50,
                ..c.clone()
            },
        ));
        rt(Request::Delete(pv.clone()));
        rt(Request::Check(pv.clone()));
        rt(Request::Exists(pw.clone()));
        rt(Request::GetData(pw.clone()));
        rt(Request::GetChildren(pw.clone()));
        rt(Request::GetChildren2(pw.clone()));
        rt(Request::SetData(SetDataRequest {
            path: "/a".into(),
            data: None,
            version: -1,
        }));
        rt(Request::GetAcl(p.clone()));
        rt(Request::Sync(p.clone()));
        rt(Request::GetEphemerals(p.clone()));
        rt(Request::GetAllChildrenNumber(p.clone()));
        rt(Request::SetAcl(SetAclRequest {
            path: "/a".into(),
            acl: vec![],
            version: 0,
        }));
        rt(Request::Multi(vec![
            MultiOp::Create(OpCode::Create, c.clone()),
            MultiOp::Delete(pv.clone()),
            MultiOp::SetData(SetDataRequest {
                path: "/b".into(),
                data: Some(vec![]),
                version: 2,
            }),
            MultiOp::Check(pv.clone()),
        ]));
        rt(Request::MultiRead(vec![
            MultiOp::GetData(PathWatchRequest {
                path: "/a".into(),
                watch: false,
            }),
            MultiOp::GetChildren(PathWatchRequest {
                path: "/".into(),
                watch: false,
            }),
        ]));
        rt(Request::AddWatch(AddWatchRequest {
            path: "/a".into(),
            mode: 1,
        }));
        rt(Request::RemoveWatches(WatchTypeRequest {
            path: "/a".into(),
            watcher_type: 3,
        }));
        rt(Request::CheckWatches(WatchTypeRequest {
            path: "/a".into(),
            watcher_type: 1,
        }));
        rt(Request::Auth(AuthPacket {
            auth_type: 0,
            scheme: "digest".into(),
            auth: Some(b"u:p".to_vec()),
        }));
        rt(Request::Sasl(GetSaslRequest {
            token: Some(b"realm=x".to_vec()),
        }));
        rt(Request::SetWatches(SetWatches2 {
            relative_zxid: 5,
            ..Default::default()
        }));
        rt(Request::Ping);
        rt(Request::WhoAmI);
        rt(Request::CloseSession);
    }

    #[test]
    fn trailing_bytes_are_rejected() {
        let mut w = Vec::new();
        Request::Sync(PathRecord { path: "/".into() }).encode(&mut w);
        w.push(0);
        assert_eq!(
            Request::decode(OpCode::Sync, &w),
            Err(DecodeError::TrailingBytes(1))
        );
    }
}
