//! The result of a request, typed, and its encoding as a response body.

use proto::codec::put_i32;
use proto::{
    Acl, ClientInfo, Create2Response, ErrorCode, ErrorResponse, GetChildrenResponse,
    GetDataResponse, Jute, MultiHeader, OpCode, PathRecord, Stat, StatResponse,
};

/// One result inside a multi / multiRead response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiResult {
    /// create (path only) or create2/createContainer/createTTL (with stat).
    Create {
        path: String,
        stat: Option<Stat>,
    },
    Delete,
    SetData(Stat),
    Check,
    GetChildren(Vec<String>),
    GetData(Option<Vec<u8>>, Stat),
    Error(ErrorCode),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The reply header carries the error; the body is empty.
    Err(ErrorCode),
    /// Success with an empty body (delete, check, setWatches, auth, ...).
    Empty,
    Create {
        path: String,
        stat: Option<Stat>,
    },
    Stat(Stat),
    Data(Option<Vec<u8>>, Stat),
    Children(Vec<String>),
    Children2(Vec<String>, Stat),
    Acl(Vec<Acl>, Stat),
    Count(i32),
    /// getEphemerals.
    Paths(Vec<String>),
    /// sync.
    Path(String),
    WhoAmI(Vec<ClientInfo>),
    Multi(Vec<MultiResult>),
    /// addWatch: success whose body is an `ErrorResponse` record holding 0,
    /// which is what the Java client reads.
    ErrorRecord,
    /// A SASL step's `SetSASLResponse`, whatever the header's error: none
    /// after a failure.
    Sasl(Option<Vec<u8>>),
}

impl Reply {
    pub fn err(&self) -> ErrorCode {
        match self {
            Reply::Err(e) => *e,
            _ => ErrorCode::Ok,
        }
    }

    /// Appends the response body (after the reply header).
    pub fn encode(&self, w: &mut Vec<u8>) {
        match self {
            Reply::Err(_) | Reply::Empty => {}
            Reply::Create { path, stat: None } | Reply::Path(path) => {
                PathRecord { path: path.clone() }.write(w)
            }
            Reply::Create {
                path,
                stat: Some(stat),
            } => Create2Response {
                path: path.clone(),
                stat: *stat,
            }
            .write(w),
            Reply::Stat(stat) => StatResponse { stat: *stat }.write(w),
            Reply::Data(data, stat) => {
                proto::codec::put_bytes(w, data.as_deref());
                stat.write(w);
            }
            Reply::Children(c) | Reply::Paths(c) => proto::codec::put_vec(w, c),
            Reply::Children2(c, stat) => {
                proto::codec::put_vec(w, c);
                stat.write(w);
            }
            Reply::Acl(acl, stat) => {
                proto::codec::put_vec(w, acl);
                stat.write(w);
            }
            Reply::Count(n) => put_i32(w, *n),
            Reply::ErrorRecord => ErrorResponse { err: 0 }.write(w),
            Reply::Sasl(token) => proto::codec::put_bytes(w, token.as_deref()),
            Reply::WhoAmI(infos) => proto::codec::put_vec(w, infos),
            Reply::Multi(results) => {
                for r in results {
                    let (op, err) = match r {
                        MultiResult::Create { stat: None, .. } => (OpCode::Create, 0),
                        MultiResult::Create { stat: Some(_), .. } => (OpCode::Create2, 0),
                        MultiResult::Delete => (OpCode::Delete, 0),
                        MultiResult::SetData(_) => (OpCode::SetData, 0),
                        MultiResult::Check => (OpCode::Check, 0),
                        MultiResult::GetChildren(_) => (OpCode::GetChildren, 0),
                        MultiResult::GetData(..) => (OpCode::GetData, 0),
                        MultiResult::Error(e) => (OpCode::Error, e.code()),
                    };
                    MultiHeader {
                        op: op.code(),
                        done: false,
                        err,
                    }
                    .write(w);
                    match r {
                        MultiResult::Create { path, stat: None } => {
                            PathRecord { path: path.clone() }.write(w)
                        }
                        MultiResult::Create {
                            path,
                            stat: Some(s),
                        } => Create2Response {
                            path: path.clone(),
                            stat: *s,
                        }
                        .write(w),
                        MultiResult::Delete | MultiResult::Check => {}
                        MultiResult::SetData(s) => StatResponse { stat: *s }.write(w),
                        MultiResult::GetChildren(c) => GetChildrenResponse {
                            children: c.clone(),
                        }
                        .write(w),
                        MultiResult::GetData(d, s) => GetDataResponse {
                            data: d.clone(),
                            stat: *s,
                        }
                        .write(w),
                        MultiResult::Error(e) => ErrorResponse { err: e.code() }.write(w),
                    }
                }
                MultiHeader {
                    op: -1,
                    done: true,
                    err: -1,
                }
                .write(w);
            }
        }
    }
}
