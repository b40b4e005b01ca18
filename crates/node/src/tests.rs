//! The core driven directly: no sockets, time given by the test.

use super::*;
use proto::{CreateTtlRequest, PathWatchRequest, Reader, SetDataRequest};

fn cfg() -> NodeConfig {
    NodeConfig {
        server_id: 1,
        tick_ms: 2000,
        min_session_timeout_ms: 4000,
        max_session_timeout_ms: 40000,
        container_check_interval_ms: 60_000,
        super_digest: None,
        tree: TreeConfig {
            extended_types: true,
        },
        seed: 7,
    }
}

/// A decoded server frame.
#[derive(Debug)]
enum Frame {
    Connect(ConnectResponse),
    Reply(ReplyHeader, #[allow(dead_code)] Vec<u8>),
    Close,
}

fn frames(node: &mut Node, conn: ConnId) -> Vec<Frame> {
    node.take_outputs()
        .into_iter()
        .filter_map(|o| match o {
            Output::Send { conn: c, frame } if c == conn => Some(frame),
            Output::Close { conn: c, .. } if c == conn => Some(vec![]),
            _ => None,
        })
        .map(|f| {
            if f.is_empty() {
                return Frame::Close;
            }
            let body = &f[4..];
            if let Ok(cr) = ConnectResponse::from_bytes(body) {
                if body.len() == 37 {
                    return Frame::Connect(cr);
                }
            }
            let mut r = Reader::new(body);
            let h = ReplyHeader::read(&mut r).unwrap();
            Frame::Reply(h, r.rest().to_vec())
        })
        .collect()
}

fn session(node: &mut Node, conn: ConnId, now: i64) -> i64 {
    node.connect(
        conn,
        ConnectRequest {
            timeout_ms: 10_000,
            ..Default::default()
        },
        "127.0.0.1".into(),
        now,
    );
    node.flush();
    match &frames(node, conn)[..] {
        [Frame::Connect(c)] => {
            assert_eq!(c.timeout_ms, 10_000);
            c.session_id
        }
        f => panic!("{f:?}"),
    }
}

fn send(node: &mut Node, conn: ConnId, xid: i32, req: Request, now: i64) {
    let mut body = Vec::new();
    req.encode(&mut body);
    node.request(conn, xid, req.op().code(), &body, now);
}

fn create(path: &str, flags: i32) -> Request {
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

#[test]
fn reads_wait_behind_earlier_writes_of_the_connection() {
    // Programmer's guide, "ZooKeeper Guarantees": sequential consistency,
    // and a client's requests complete in order.
    let mut n = Node::new_standalone(cfg(), 0).unwrap();
    session(&mut n, 1, 0);
    send(&mut n, 1, 1, create("/a", 0), 1);
    send(
        &mut n,
        1,
        2,
        Request::GetData(PathWatchRequest {
            path: "/a".into(),
            watch: false,
        }),
        1,
    );
    n.flush();
    let f = frames(&mut n, 1);
    let xids: Vec<(i32, i32)> = f
        .iter()
        .map(|f| match f {
            Frame::Reply(h, _) => (h.xid, h.err),
            f => panic!("{f:?}"),
        })
        .collect();
    assert_eq!(
        xids,
        vec![(1, 0), (2, 0)],
        "the read saw the write before it"
    );
}

#[test]
fn watch_event_precedes_the_reply_that_follows_the_change() {
    let mut n = Node::new_standalone(cfg(), 0).unwrap();
    session(&mut n, 1, 0);
    session(&mut n, 2, 0);
    send(
        &mut n,
        1,
        1,
        Request::Exists(PathWatchRequest {
            path: "/w".into(),
            watch: true,
        }),
        1,
    );
    n.flush();
    assert!(
        matches!(&frames(&mut n, 1)[..], [Frame::Reply(h, _)] if h.err == ErrorCode::NoNode.code())
    );
    send(&mut n, 2, 1, create("/w", 0), 2);
    n.flush();
    send(
        &mut n,
        1,
        2,
        Request::Exists(PathWatchRequest {
            path: "/w".into(),
            watch: false,
        }),
        2,
    );
    n.flush();
    let f = frames(&mut n, 1);
    assert!(
        matches!(&f[0], Frame::Reply(h, _) if h.xid == Xid::NOTIFICATION),
        "{f:?}"
    );
    assert!(
        matches!(&f[1], Frame::Reply(h, _) if h.xid == 2 && h.err == 0),
        "{f:?}"
    );
}

#[test]
fn session_expires_without_traffic_and_its_ephemerals_go() {
    // Programmer's guide, "ZooKeeper Sessions": expiry deletes ephemerals.
    let mut n = Node::new_standalone(cfg(), 0).unwrap();
    session(&mut n, 1, 0);
    send(&mut n, 1, 1, create("/e", 1), 1);
    n.flush();
    frames(&mut n, 1);
    n.tick(9_000);
    n.flush();
    assert!(n.state().tree.get("/e").is_some(), "not yet expired");
    n.tick(10_002);
    n.flush();
    assert!(n.state().tree.get("/e").is_none());
    assert!(matches!(&frames(&mut n, 1)[..], [Frame::Close]));
    assert!(n.state().sessions.is_empty());
}

#[test]
fn reconnect_needs_the_right_password() {
    let mut n = Node::new_standalone(cfg(), 0).unwrap();
    let sid = session(&mut n, 1, 0);
    n.disconnect(1);
    let req = |p: Vec<u8>| ConnectRequest {
        session_id: sid,
        timeout_ms: 10_000,
        passwd: Some(p),
        ..Default::default()
    };
    n.connect(2, req(vec![1; 16]), "127.0.0.1".into(), 5);
    assert!(
        matches!(&frames(&mut n, 2)[..], [Frame::Connect(c), Frame::Close] if c.session_id == 0)
    );
    let passwd = n.state().sessions[&sid].passwd.clone();
    n.connect(3, req(passwd), "127.0.0.1".into(), 5);
    assert!(matches!(&frames(&mut n, 3)[..], [Frame::Connect(c)] if c.session_id == sid));
}

#[test]
fn malformed_request_closes_only_that_connection() {
    let mut n = Node::new_standalone(cfg(), 0).unwrap();
    session(&mut n, 1, 0);
    session(&mut n, 2, 0);
    n.request(1, 1, OpCode::SetData.code(), &[0, 0, 0, 9, 1], 1);
    assert!(matches!(&frames(&mut n, 1)[..], [Frame::Close]));
    send(
        &mut n,
        2,
        1,
        Request::SetData(SetDataRequest {
            path: "/".into(),
            data: None,
            version: -1,
        }),
        1,
    );
    n.flush();
    assert!(matches!(&frames(&mut n, 2)[..], [Frame::Reply(h, _)] if h.xid == 1 && h.err == 0));
}

#[test]
fn stale_client_is_refused() {
    let mut n = Node::new_standalone(cfg(), 0).unwrap();
    let req = ConnectRequest {
        last_zxid_seen: 1_000,
        timeout_ms: 10_000,
        ..Default::default()
    };
    n.connect(1, req, "127.0.0.1".into(), 0);
    assert!(matches!(&frames(&mut n, 1)[..], [Frame::Close]));
}
