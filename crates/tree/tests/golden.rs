//! Golden wire bytes: what a real ZooKeeper 3.8 and a real client (kazoo)
//! sent each other for every op kazoo speaks (and createContainer,
//! createTTL, getAllChildrenNumber, getEphemerals, whoAmI, addWatch,
//! removeWatches and multiRead, sent through kazoo's connection with the
//! test harness's Python encodings), a watch event and the connect
//! handshake (`tests/golden/zookeeper-3.8.jsonl`, captured by
//! `tests/golden/capture.py` through a recording proxy), with the values
//! each side meant as kazoo parsed them. For every frame this test builds
//! our encoding from those values and requires ZooKeeper's bytes, and
//! decodes ZooKeeper's bytes and requires those values: an encoder and a
//! decoder that are wrong the same way (two fields swapped in a record, say)
//! cannot pass together, as they could in a round trip of our own bytes.

use proto::{
    Acl, AddWatchRequest, AuthPacket, ClientInfo, ConnectRequest, ConnectResponse,
    CreateTtlRequest, Id, Jute, MultiOp, OpCode, PathRecord, PathVersionRequest, PathWatchRequest,
    Reader, ReplyHeader, Request, RequestHeader, SetAclRequest, SetDataRequest, Stat,
    WatchTypeRequest, WatcherEvent,
};
use serde_json::Value;
use tree::{MultiResult, Reply};

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn stat(v: &Value) -> Stat {
    let f = |k: &str| v[k].as_i64().unwrap_or_else(|| panic!("stat field {k}"));
    Stat {
        czxid: f("czxid"),
        mzxid: f("mzxid"),
        ctime: f("ctime"),
        mtime: f("mtime"),
        version: f("version") as i32,
        cversion: f("cversion") as i32,
        aversion: f("aversion") as i32,
        ephemeral_owner: f("ephemeralOwner"),
        data_length: f("dataLength") as i32,
        num_children: f("numChildren") as i32,
        pzxid: f("pzxid"),
    }
}

fn acl(v: &Value) -> Vec<Acl> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|a| Acl {
            perms: a["perms"].as_i64().unwrap() as i32,
            id: Id {
                scheme: a["scheme"].as_str().unwrap().into(),
                id: a["id"].as_str().unwrap().into(),
            },
        })
        .collect()
}

fn s(v: &Value) -> String {
    v.as_str().unwrap().to_string()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(s).collect()
}

fn int(v: &Value) -> i32 {
    v.as_i64().unwrap() as i32
}

fn bytes(v: &Value) -> Option<Vec<u8>> {
    Some(unhex(v.as_str().unwrap()))
}

/// The request and the reply of an exchange as the values say they were.
fn meant(name: &str, m: &Value) -> (Request, Reply) {
    let path = || s(&m["path"]);
    let watch = || PathWatchRequest {
        path: path(),
        watch: m["watch"].as_bool().unwrap(),
    };
    let create = |op| {
        Request::Create(
            op,
            CreateTtlRequest {
                path: path(),
                data: bytes(&m["data"]),
                acl: acl(&m["acl"]),
                flags: int(&m["flags"]),
                ttl: m["ttl"].as_i64().unwrap_or(-1),
            },
        )
    };
    let created = |stat| Reply::Create {
        path: s(&m["reply_path"]),
        stat,
    };
    match name {
        "create" => (create(OpCode::Create), created(None)),
        "create2" => (create(OpCode::Create2), created(Some(stat(&m["stat"])))),
        "exists" => (Request::Exists(watch()), Reply::Stat(stat(&m["stat"]))),
        "exists_missing" => (Request::Exists(watch()), Reply::Empty),
        "getData" => (
            Request::GetData(watch()),
            Reply::Data(bytes(&m["data"]), stat(&m["stat"])),
        ),
        "setData" => (
            Request::SetData(SetDataRequest {
                path: path(),
                data: bytes(&m["data"]),
                version: int(&m["version"]),
            }),
            Reply::Stat(stat(&m["stat"])),
        ),
        "getChildren" => (
            Request::GetChildren(watch()),
            Reply::Children(strings(&m["children"])),
        ),
        "getChildren2" => (
            Request::GetChildren2(watch()),
            Reply::Children2(strings(&m["children"]), stat(&m["stat"])),
        ),
        "getACL" => (
            Request::GetAcl(PathRecord { path: path() }),
            Reply::Acl(acl(&m["acl"]), stat(&m["stat"])),
        ),
        "setACL" => (
            Request::SetAcl(SetAclRequest {
                path: path(),
                acl: acl(&m["acl"]),
                version: int(&m["version"]),
            }),
            Reply::Stat(stat(&m["stat"])),
        ),
        "auth" => (
            Request::Auth(AuthPacket {
                auth_type: 0,
                scheme: s(&m["scheme"]),
                auth: bytes(&m["auth"]),
            }),
            Reply::Empty,
        ),
        "sync" => (
            Request::Sync(PathRecord { path: path() }),
            Reply::Path(s(&m["reply_path"])),
        ),
        "delete" => (
            Request::Delete(PathVersionRequest {
                path: path(),
                version: int(&m["version"]),
            }),
            Reply::Empty,
        ),
        "close" => (Request::CloseSession, Reply::Empty),
        "createContainer" => (
            create(OpCode::CreateContainer),
            created(Some(stat(&m["stat"]))),
        ),
        "createTTL" => (create(OpCode::CreateTtl), created(Some(stat(&m["stat"])))),
        "getAllChildrenNumber" => (
            Request::GetAllChildrenNumber(PathRecord { path: path() }),
            Reply::Count(int(&m["count"])),
        ),
        "getEphemerals" => (
            Request::GetEphemerals(PathRecord { path: path() }),
            Reply::Paths(strings(&m["paths"])),
        ),
        "whoAmI" => (
            Request::WhoAmI,
            Reply::WhoAmI(
                m["client_info"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|c| ClientInfo {
                        auth_scheme: s(&c[0]),
                        user: s(&c[1]),
                    })
                    .collect(),
            ),
        ),
        "addWatch" => {
            assert_eq!(int(&m["err_record"]), 0);
            (
                Request::AddWatch(AddWatchRequest {
                    path: path(),
                    mode: int(&m["mode"]),
                }),
                Reply::ErrorRecord,
            )
        }
        "removeWatches" => (
            Request::RemoveWatches(WatchTypeRequest {
                path: path(),
                watcher_type: int(&m["watcher_type"]),
            }),
            Reply::Empty,
        ),
        "multiRead" => {
            let read = |path: &str| PathWatchRequest {
                path: path.into(),
                watch: false,
            };
            (
                Request::MultiRead(vec![
                    MultiOp::GetData(read("/g")),
                    MultiOp::GetChildren(read("/g")),
                ]),
                Reply::Multi(vec![
                    MultiResult::GetData(bytes(&m["data"]), stat(&m["stat"])),
                    MultiResult::GetChildren(strings(&m["children"])),
                ]),
            )
        }
        // The setData that fired the watch (its reply follows the event).
        "watch_event" => (
            Request::SetData(SetDataRequest {
                path: "/g".into(),
                data: Some(b"y".to_vec()),
                version: -1,
            }),
            Reply::Stat(stat(&m["stat"])),
        ),
        "multi" | "multi_failed" => multi(name, m),
        _ => panic!("no values for {name}"),
    }
}

/// The multis the capture script ran, and what came back.
fn multi(name: &str, m: &Value) -> (Request, Reply) {
    let pv = |path: &str, version| PathVersionRequest {
        path: path.into(),
        version,
    };
    let create = |path: &str, data: &[u8]| {
        MultiOp::Create(
            OpCode::Create,
            CreateTtlRequest {
                path: path.into(),
                data: Some(data.to_vec()),
                acl: tree::acl::open_acl_unsafe(),
                flags: 0,
                ttl: -1,
            },
        )
    };
    let r = &m["results"];
    if name == "multi" {
        let set = SetDataRequest {
            path: "/g".into(),
            data: Some(b"x".to_vec()),
            version: 1,
        };
        return (
            Request::Multi(vec![
                create("/g/m", b"m"),
                MultiOp::SetData(set),
                MultiOp::Check(pv("/g", 2)),
                MultiOp::Delete(pv("/g/m", -1)),
            ]),
            Reply::Multi(vec![
                MultiResult::Create {
                    path: s(&r[0]),
                    stat: None,
                },
                MultiResult::SetData(stat(&r[1])),
                MultiResult::Check,
                MultiResult::Delete,
            ]),
        );
    }
    assert_eq!(
        (s(&r[0]), s(&r[1])),
        ("RolledBackError".into(), "NoNodeError".into())
    );
    (
        Request::Multi(vec![create("/g/n", b""), MultiOp::Delete(pv("/nope", -1))]),
        Reply::Multi(vec![
            MultiResult::Error(proto::ErrorCode::Ok),
            MultiResult::Error(proto::ErrorCode::NoNode),
        ]),
    )
}

/// (direction, frame without its length prefix): '>' client to server.
fn frames(e: &Value) -> Vec<(String, Vec<u8>)> {
    e["frames"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let b = unhex(f[1].as_str().unwrap());
            let len = i32::from_be_bytes(b[..4].try_into().unwrap()) as usize;
            assert_eq!(len + 4, b.len(), "a whole frame");
            (s(&f[0]), b[4..].to_vec())
        })
        .collect()
}

fn exchanges() -> Vec<Value> {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/golden/zookeeper-3.8.jsonl"
    );
    std::fs::read_to_string(file)
        .expect("the golden file")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// A connect request and its response; `read_only` null in the capture is
/// a client that sent no readOnly flag, and then the response has none.
fn connect(m: &Value, req: &[u8], rep: &[u8]) {
    let read_only = m["read_only"].as_bool();
    let want = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms: int(&m["timeout_ms"]),
        session_id: 0,
        passwd: Some(vec![0; 16]),
        read_only,
    };
    assert_eq!(ConnectRequest::from_bytes(req).unwrap(), want);
    assert_eq!(want.to_bytes(), req, "connect request");
    let want = ConnectResponse {
        protocol_version: 0,
        timeout_ms: int(&m["negotiated_timeout_ms"]),
        session_id: m["session_id"].as_i64().unwrap(),
        passwd: bytes(&m["passwd"]),
        read_only,
    };
    assert_eq!(ConnectResponse::from_bytes(rep).unwrap(), want);
    assert_eq!(want.to_bytes(), rep, "connect response");
}

#[test]
fn every_frame_is_zookeepers_bytes_both_ways() {
    let all = exchanges();
    assert!(all.len() >= 27, "{} exchanges", all.len());
    let mut checked = 0;
    for e in &all {
        let name = e["name"].as_str().unwrap();
        let m = &e["meant"];
        let fr = frames(e);
        if name == "connect" || name == "connect_old_client" {
            connect(m, &fr[0].1, &fr[1].1);
            checked += 2;
            continue;
        }
        let req = fr.iter().find(|f| f.0 == ">").expect("a request");
        let h = RequestHeader::read(&mut Reader::new(&req.1)).unwrap();
        let op = OpCode::from_code(h.op).unwrap();
        let (want_req, want_rep) = meant(name, m);
        let body = &req.1[8..];
        assert_eq!(op, want_req.op(), "{name}: op code");
        assert_eq!(
            Request::decode(op, body).unwrap(),
            want_req,
            "{name}: decoded request"
        );
        let mut ours = Vec::new();
        want_req.encode(&mut ours);
        assert_eq!(ours, body, "{name}: our request bytes");
        checked += 1;
        for (_, b) in fr.iter().filter(|f| f.0 == "<") {
            let rh = ReplyHeader::read(&mut Reader::new(b)).unwrap();
            let body = &b[16..];
            if rh.xid == -1 {
                // A watch event: zxid -1, err 0, then the event.
                assert_eq!((rh.zxid, rh.err), (-1, 0), "{name}: event header");
                let ev = WatcherEvent {
                    event_type: int(&m["type"]),
                    state: int(&m["state"]),
                    path: s(&m["path"]),
                };
                assert_eq!(WatcherEvent::from_bytes(body).unwrap(), ev, "{name}");
                assert_eq!(ev.to_bytes(), body, "{name}: our event bytes");
                checked += 1;
                continue;
            }
            assert_eq!(rh.xid, h.xid, "{name}: reply xid");
            if name == "auth" {
                // addauth is answered with the client's xid (-4) and zxid 0.
                assert_eq!((rh.xid, rh.zxid), (-4, 0), "{name}");
            }
            assert_eq!(rh.err, m["err"].as_i64().unwrap_or(0) as i32, "{name}: err");
            let mut ours = Vec::new();
            want_rep.encode(&mut ours);
            assert_eq!(ours, body, "{name}: our reply bytes");
            checked += 1;
        }
    }
    assert!(checked >= 52, "{checked} frames checked");
}
