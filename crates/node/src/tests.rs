//! The core driven directly: no sockets, time given by the test.

use super::*;
use crate::testing::{load, run_to_rest, MemDisk};
use proto::{CreateTtlRequest, GetDataResponse, PathWatchRequest, Reader, SetDataRequest};

fn cfg() -> NodeConfig {
    NodeConfig::for_test()
}

/// A decoded server frame.
#[derive(Debug)]
enum Frame {
    Connect(ConnectResponse),
    Reply(ReplyHeader, #[allow(dead_code)] Vec<u8>),
    Close,
}

/// Runs the node to rest on an instant disk; the other outputs in order.
fn drain(node: &mut Node) -> Vec<Output> {
    run_to_rest(node, &mut MemDisk::default())
}

fn frames(node: &mut Node, conn: ConnId) -> Vec<Frame> {
    drain(node)
        .into_iter()
        .filter_map(|o| match o {
            Output::Send {
                conn: c,
                frame,
                kind,
            } if c == conn => Some(Some((kind, frame))),
            Output::Close { conn: c, .. } if c == conn => Some(None),
            _ => None,
        })
        .map(|f| {
            let Some((kind, f)) = f else {
                return Frame::Close;
            };
            let body = &f[4..];
            if matches!(kind, FrameKind::Connect) {
                return Frame::Connect(ConnectResponse::from_bytes(body).unwrap());
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
    node.request(conn, xid, req.op().code(), &body, now, 0);
}

use crate::sim::create_request as create;

#[test]
fn reads_wait_behind_earlier_writes_of_the_connection() {
    // Programmer's guide, "ZooKeeper Guarantees": sequential consistency,
    // and a client's requests complete in order.
    let mut n = Node::new(cfg(), 0, Restored::default()).unwrap();
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
    let mut n = Node::new(cfg(), 0, Restored::default()).unwrap();
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
    let mut f = frames(&mut n, 1);
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
    f.extend(frames(&mut n, 1));
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
    let mut n = Node::new(cfg(), 0, Restored::default()).unwrap();
    session(&mut n, 1, 0);
    send(&mut n, 1, 1, create("/e", 1), 1);
    n.flush();
    frames(&mut n, 1);
    n.tick(9_000);
    assert!(frames(&mut n, 1).is_empty());
    assert!(n.state().tree.get("/e").is_some(), "not yet expired");
    n.tick(10_002);
    let f = frames(&mut n, 1);
    assert!(n.state().tree.get("/e").is_none());
    assert!(matches!(&f[..], [Frame::Close]));
    assert!(n.state().sessions.is_empty());
}

#[test]
fn reconnect_needs_the_right_password() {
    let mut n = Node::new(cfg(), 0, Restored::default()).unwrap();
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

/// ClickHouse's ZooKeeper client (before 2020) sends no readOnly flag and
/// refuses any connect response but ZooKeeper's 36 bytes; a client that
/// sends the flag gets it back (37). Found by tests/apps/test_clickhouse.py.
#[test]
fn the_read_only_flag_is_answered_only_to_a_client_that_sent_one() {
    let mut n = Node::new(cfg(), 0, Restored::default()).unwrap();
    let mut sizes = Vec::new();
    for (conn, read_only) in [(1, None), (2, Some(false))] {
        n.connect(
            conn,
            ConnectRequest {
                timeout_ms: 10_000,
                read_only,
                ..Default::default()
            },
            "127.0.0.1".into(),
            0,
        );
        n.flush();
        let out = drain(&mut n);
        let frame = out
            .iter()
            .find_map(|o| match o {
                Output::Send { conn: c, frame, .. } if *c == conn => Some(frame.clone()),
                _ => None,
            })
            .expect("a connect response");
        let r = ConnectResponse::from_bytes(&frame[4..]).unwrap();
        assert_eq!(r.read_only, read_only);
        sizes.push(frame.len() - 4);
    }
    assert_eq!(sizes, [36, 37]);
    // A reconnect with a wrong password is answered the same way.
    n.connect(
        3,
        ConnectRequest {
            session_id: 99,
            passwd: Some(vec![1; 16]),
            ..Default::default()
        },
        "127.0.0.1".into(),
        1,
    );
    n.flush();
    match &frames(&mut n, 3)[..] {
        [Frame::Connect(c), Frame::Close] => assert_eq!((c.session_id, c.read_only), (0, None)),
        f => panic!("{f:?}"),
    }
}

#[test]
fn malformed_request_closes_only_that_connection() {
    let mut n = Node::new(cfg(), 0, Restored::default()).unwrap();
    session(&mut n, 1, 0);
    session(&mut n, 2, 0);
    n.request(1, 1, OpCode::SetData.code(), &[0, 0, 0, 9, 1], 1, 0);
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
    let mut n = Node::new(cfg(), 0, Restored::default()).unwrap();
    let req = ConnectRequest {
        last_zxid_seen: 1_000,
        timeout_ms: 10_000,
        ..Default::default()
    };
    n.connect(1, req, "127.0.0.1".into(), 0);
    assert!(matches!(&frames(&mut n, 1)[..], [Frame::Close]));
}

mod no_panic_from_the_network {
    //! Whatever clients send, the core answers or closes a connection; it
    //! never panics. Paths come from a small alphabet so requests hit real
    //! nodes, the system nodes and malformed paths alike.
    use super::*;
    use proptest::prelude::*;
    use proto::{Acl, MultiOp, PathVersionRequest, SetAclRequest};

    fn path() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("/".to_string()),
            Just("/zookeeper".to_string()),
            Just("/zookeeper/config".to_string()),
            Just("/zookeeper/quota".to_string()),
            Just(String::new()),
            "(/[ab.]{0,2}){0,3}/?",
        ]
    }

    fn acl() -> impl Strategy<Value = Vec<Acl>> {
        prop_oneof![
            Just(acl::open_acl_unsafe()),
            Just(vec![]),
            (any::<i32>(), "[a-z]{0,6}", "[a-z:./0-9]{0,12}").prop_map(|(perms, scheme, id)| vec![
                Acl {
                    perms,
                    id: Id { scheme, id }
                }
            ]),
        ]
    }

    fn request() -> impl Strategy<Value = Request> {
        fn create() -> impl Strategy<Value = (OpCode, CreateTtlRequest)> {
            (0..30i32, path(), acl(), -8i32..10, -2i64..3).prop_map(|(op, p, acl, flags, ttl)| {
                let op = [
                    OpCode::Create,
                    OpCode::Create2,
                    OpCode::CreateContainer,
                    OpCode::CreateTtl,
                ][op as usize % 4];
                (
                    op,
                    CreateTtlRequest {
                        path: p,
                        data: Some(vec![1]),
                        acl,
                        flags,
                        ttl,
                    },
                )
            })
        }
        prop_oneof![
            create().prop_map(|(op, c)| Request::Create(op, c)),
            // Deletes are weighted up: deleting system nodes in the right
            // order is the kind of sequence that must be reachable here.
            (path(), -1i32..1)
                .prop_map(|(path, version)| Request::Delete(PathVersionRequest { path, version })),
            (path(), -1i32..1)
                .prop_map(|(path, version)| Request::Delete(PathVersionRequest { path, version })),
            (path(), -1i32..1)
                .prop_map(|(path, version)| Request::Delete(PathVersionRequest { path, version })),
            (path(), -2i32..3).prop_map(|(path, version)| Request::SetData(SetDataRequest {
                path,
                data: None,
                version
            })),
            (path(), acl(), -2i32..3).prop_map(|(path, acl, version)| Request::SetAcl(
                SetAclRequest { path, acl, version }
            )),
            (path(), any::<bool>())
                .prop_map(|(path, watch)| Request::GetData(PathWatchRequest { path, watch })),
            (path(), any::<bool>())
                .prop_map(|(path, watch)| Request::GetChildren2(PathWatchRequest { path, watch })),
            (path(), any::<bool>())
                .prop_map(|(path, watch)| Request::Exists(PathWatchRequest { path, watch })),
            path().prop_map(|path| Request::GetAllChildrenNumber(proto::PathRecord { path })),
            path().prop_map(|path| Request::GetEphemerals(proto::PathRecord { path })),
            (path(), -1i32..3)
                .prop_map(|(path, mode)| Request::AddWatch(proto::AddWatchRequest { path, mode })),
            (path(), -1i32..6).prop_map(|(path, watcher_type)| Request::RemoveWatches(
                proto::WatchTypeRequest { path, watcher_type }
            )),
            proptest::collection::vec(create(), 0..3).prop_map(|cs| Request::Multi(
                cs.into_iter()
                    .map(|(op, c)| MultiOp::Create(op, c))
                    .collect()
            )),
            proptest::collection::vec(path(), 0..3).prop_map(|ps| Request::Multi(
                ps.into_iter()
                    .map(|path| MultiOp::Delete(PathVersionRequest { path, version: -1 }))
                    .collect()
            )),
            proptest::collection::vec(path(), 0..3).prop_map(|ps| Request::MultiRead(
                ps.into_iter()
                    .map(|path| MultiOp::GetData(PathWatchRequest { path, watch: false }))
                    .collect()
            )),
            Just(Request::WhoAmI),
            Just(Request::Ping),
            Just(Request::CloseSession),
        ]
    }

    #[derive(Debug, Clone)]
    enum Input {
        Req(u64, Request),
        Raw(u64, i32, Vec<u8>),
        Tick(i64),
        Reconnect(u64),
    }

    fn input() -> impl Strategy<Value = Input> {
        prop_oneof![
            8 => (1u64..4, request()).prop_map(|(c, r)| Input::Req(c, r)),
            1 => (1u64..4, -12i32..110, proptest::collection::vec(any::<u8>(), 0..24)).prop_map(|(c, op, b)| Input::Raw(c, op, b)),
            1 => (0i64..30_000).prop_map(Input::Tick),
            1 => (1u64..4).prop_map(Input::Reconnect),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
        #[test]
        fn any_input_sequence(inputs in proptest::collection::vec(input(), 1..200)) {
            let mut n = Node::new(cfg(), 0, Restored::default()).unwrap();
            let mut now = 0;
            let mut next_conn = 10;
            let mut conn_of = std::collections::HashMap::new();
            for c in 1..4u64 {
                session(&mut n, c + 100, 0);
                conn_of.insert(c, c + 100);
            }
            for (xid, i) in inputs.into_iter().enumerate() {
                match i {
                    Input::Req(c, r) => send(&mut n, conn_of[&c], xid as i32, r, now),
                    Input::Raw(c, op, b) => n.request(conn_of[&c], xid as i32, op, &b, now, 0),
                    Input::Tick(dt) => { now += dt; n.tick(now); }
                    Input::Reconnect(c) => {
                        next_conn += 1;
                        n.disconnect(conn_of[&c]);
                        n.connect(next_conn, ConnectRequest { timeout_ms: 10_000, ..Default::default() }, "127.0.0.1".into(), now);
                        conn_of.insert(c, next_conn);
                    }
                }
                drain(&mut n);
            }
        }
    }
}

/// A client on connection `conn` asks for a session (10 s timeout) at time 0.
fn connect_client(n: &mut Node, conn: ConnId) {
    n.connect(
        conn,
        ConnectRequest {
            timeout_ms: 10_000,
            ..Default::default()
        },
        "127.0.0.1".into(),
        0,
    );
}

#[test]
fn restart_restores_tree_and_sessions_from_what_was_persisted() {
    let mut disk = MemDisk::default();
    let mut n = Node::new(cfg(), 0, Restored::default()).unwrap();
    run_to_rest(&mut n, &mut disk);
    connect_client(&mut n, 1);
    run_to_rest(&mut n, &mut disk);
    let sid = *n.state().sessions.keys().next().unwrap();
    let passwd = n.state().sessions[&sid].passwd.clone();
    for (i, p) in ["/a", "/a/b", "/e"].iter().enumerate() {
        send(
            &mut n,
            1,
            i as i32,
            create(p, if *p == "/e" { 1 } else { 0 }),
            1,
        );
    }
    run_to_rest(&mut n, &mut disk);
    let digest = n.state().tree.digest();
    let zxid = n.last_zxid();
    drop(n);

    let restored = Restored {
        hard_state: disk.hard_state.clone(),
        entries: disk.entries.clone(),
        snapshot: None,
    };
    let mut n = Node::new(cfg(), 5_000, restored).unwrap();
    run_to_rest(&mut n, &mut disk);
    assert_eq!(n.state().tree.digest(), digest);
    assert!(n.last_zxid() > zxid, "a new leader term adds its own entry");
    // The session survived; its timer restarted with the server.
    n.connect(
        7,
        ConnectRequest {
            session_id: sid,
            timeout_ms: 10_000,
            passwd: Some(passwd),
            ..Default::default()
        },
        "127.0.0.1".into(),
        14_000,
    );
    let out = run_to_rest(&mut n, &mut disk);
    assert!(
        matches!(&out[..], [Output::Send { conn: 7, .. }]),
        "{out:?}"
    );
    assert!(n.state().tree.get("/e").is_some());
}

#[test]
fn snapshots_every_snap_count_and_restores_from_snapshot_plus_log() {
    let cfg = || NodeConfig {
        snap_count: 20,
        snap_size_limit_bytes: u64::MAX,
        ..cfg()
    };
    let mut disk = MemDisk::default();
    let mut n = Node::new(cfg(), 0, Restored::default()).unwrap();
    connect_client(&mut n, 1);
    run_to_rest(&mut n, &mut disk);
    for i in 0..50 {
        send(&mut n, 1, i, create(&format!("/n{i}"), 0), 1);
        run_to_rest(&mut n, &mut disk);
    }
    let (snap_index, term, conf_state, data) = disk.snapshot.clone().expect("a snapshot was taken");
    // snapCount 20: the first after 10..20 entries, later ones as often.
    assert!(
        snap_index >= 10 && snap_index < n.last_zxid() as u64,
        "{snap_index}"
    );
    let digest = n.state().tree.digest();
    drop(n);
    // Only the log after the snapshot is needed.
    let entries: Vec<RaftEntry> = disk
        .entries
        .iter()
        .filter(|e| e.index > snap_index)
        .cloned()
        .collect();
    let state = load(&data);
    let restored = Restored {
        hard_state: disk.hard_state.clone(),
        entries,
        snapshot: Some(RestoredSnapshot {
            index: snap_index,
            term,
            conf_state: conf_state.clone(),
            state,
        }),
    };
    let mut n = Node::new(cfg(), 1_000, restored).unwrap();
    run_to_rest(&mut n, &mut disk);
    assert_eq!(n.state().tree.digest(), digest);
    // A log that does not reach back to the snapshot is refused.
    let state = load(&data);
    let gap = Restored {
        hard_state: disk.hard_state.clone(),
        entries: disk
            .entries
            .iter()
            .filter(|e| e.index > snap_index + 2)
            .cloned()
            .collect(),
        snapshot: Some(RestoredSnapshot {
            index: snap_index,
            term,
            conf_state,
            state,
        }),
    };
    assert!(matches!(
        Node::new(cfg(), 2_000, gap),
        Err(NodeError::LogGap { .. })
    ));
}

#[test]
fn a_restart_that_replays_a_long_log_snapshots_once_it_is_applied() {
    let cfg = |snap_count| NodeConfig {
        snap_count,
        snap_size_limit_bytes: u64::MAX,
        ..cfg()
    };
    let mut disk = MemDisk::default();
    // No snapshot before the restart (snapCount far away).
    let mut n = Node::new(cfg(1_000_000), 0, Restored::default()).unwrap();
    connect_client(&mut n, 1);
    run_to_rest(&mut n, &mut disk);
    for i in 0..40 {
        send(&mut n, 1, i, create(&format!("/n{i}"), 0), 1);
    }
    run_to_rest(&mut n, &mut disk);
    assert!(disk.snapshot.is_none());
    let last = n.last_zxid() as u64;
    drop(n);
    let restored = || Restored {
        hard_state: disk.hard_state.clone(),
        entries: disk.entries.clone(),
        snapshot: None,
    };
    // 40-odd entries replayed: under a tenth of snapCount 1,000 takes no
    // snapshot; a tenth of snapCount 100 does, at the last replayed entry.
    let mut d = MemDisk::default();
    let mut n = Node::new(cfg(1_000), 1_000, restored()).unwrap();
    run_to_rest(&mut n, &mut d);
    assert!(d.snapshot.is_none());
    drop(n);
    let mut n = Node::new(cfg(100), 1_000, restored()).unwrap();
    run_to_rest(&mut n, &mut d);
    let (index, ..) = d.snapshot.clone().expect("a snapshot after the replay");
    assert_eq!(index, last);
}

/// Connection 1 creates `/big{i}` holding `value`, and the node runs to rest.
fn create_big(n: &mut Node, disk: &mut MemDisk, i: i32, value: &[u8]) {
    let req = Request::Create(
        OpCode::Create,
        CreateTtlRequest {
            path: format!("/big{i}"),
            data: Some(value.to_vec()),
            acl: acl::open_acl_unsafe(),
            flags: 0,
            ttl: -1,
        },
    );
    let mut body = Vec::new();
    req.encode(&mut body);
    n.request(1, i + 1, OpCode::Create.code(), &body, 1, 0);
    run_to_rest(n, disk);
}

#[test]
fn large_values_trigger_snapshots_by_bytes() {
    // snapSizeLimitInKb: a few big writes take a snapshot long before
    // snapCount entries, so the in-memory log stays bounded.
    let cfg = NodeConfig {
        snap_count: 1_000_000,
        snap_size_limit_bytes: 256 << 10,
        ..cfg()
    };
    let mut disk = MemDisk::default();
    let mut n = Node::new(cfg, 0, Restored::default()).unwrap();
    connect_client(&mut n, 1);
    run_to_rest(&mut n, &mut disk);
    let big = vec![b'x'; 100 << 10];
    for i in 0..6 {
        create_big(&mut n, &mut disk, i, &big);
    }
    let (snap_index, ..) = disk.snapshot.clone().expect("a snapshot by bytes");
    assert!(
        snap_index >= 3,
        "after about 256 KiB of entries: {snap_index}"
    );
}

#[test]
fn snapshots_by_bytes_stay_in_proportion_to_the_log() {
    // A tree that grows past snapSizeLimitInKb: each snapshot holds the
    // whole tree, so one per limit's worth of writes made the bytes of
    // snapshots grow with the square of the bytes written (64 writes of
    // 64 KiB here: about 50 snapshots and 50 MiB). The next snapshot waits
    // for as many log bytes as the tree holds.
    let cfg = NodeConfig {
        snap_count: 1_000_000,
        snap_size_limit_bytes: 128 << 10,
        ..cfg()
    };
    let mut disk = MemDisk::default();
    let mut n = Node::new(cfg, 0, Restored::default()).unwrap();
    connect_client(&mut n, 1);
    run_to_rest(&mut n, &mut disk);
    let value = vec![b'x'; 64 << 10];
    let writes = 64;
    // Each write runs to rest: at most one snapshot is taken per write.
    let (mut snapshots, mut snapshot_bytes, mut last) = (0, 0, None);
    for i in 0..writes {
        create_big(&mut n, &mut disk, i, &value);
        if let Some((index, .., state)) = &disk.snapshot {
            if last != Some(*index) {
                last = Some(*index);
                snapshots += 1;
                snapshot_bytes += state.encode_snapshot().len();
            }
        }
    }
    let written = writes as usize * value.len();
    assert!(snapshots > 0, "snapshots by bytes still happen");
    assert!(
        snapshot_bytes <= 2 * written,
        "{snapshots} snapshots, {snapshot_bytes} bytes, for {written} bytes written"
    );
}

/// A replica of three that took over ZooKeeper data up to index 100.
fn taken_over() -> Node {
    let mut state = StateMachine::new(cfg().tree);
    let entry = Entry {
        time_ms: 1,
        session_id: 0,
        xid: 0,
        origin: 0,
        conn: 0,
        kind: EntryKind::Digest {
            index: 0,
            digest: 0,
        },
    };
    state.apply(100, &entry);
    let restored = Restored {
        hard_state: HardState::default(),
        entries: vec![],
        snapshot: Some(RestoredSnapshot {
            index: 100,
            term: 1,
            conf_state: ConfState::from((vec![1, 2, 3], vec![])),
            state,
        }),
    };
    let cfg = NodeConfig {
        voters: vec![1, 2, 3],
        learners: vec![],
        takeover_unconfirmed: Some(100),
        ..cfg()
    };
    Node::new(cfg, 1_000, restored).unwrap()
}

fn append(
    from: u64,
    term: u64,
    index: u64,
    log_term: u64,
    entries: &[(u64, u64)],
    commit: u64,
) -> RaftMessage {
    let mut m = RaftMessage::default();
    m.set_msg_type(MessageType::MsgAppend);
    m.from = from;
    m.to = 1;
    m.term = term;
    m.index = index;
    m.log_term = log_term;
    m.commit = commit;
    for &(index, term) in entries {
        let mut e = RaftEntry::default();
        e.index = index;
        e.term = term;
        m.mut_entries().push(e);
    }
    m
}

#[test]
fn a_leader_behind_data_taken_over_is_a_conflict_raft_never_sees() {
    // Its log ends at 95: the transactions up to 100 here were never
    // committed by ZooKeeper (node/src/takeover.rs).
    let mut n = taken_over();
    n.step(append(2, 2, 95, 2, &[], 95));
    let outs = drain(&mut n);
    assert!(
        outs.iter().any(|o| matches!(
            o,
            Output::TakeoverConflict {
                leader: 2,
                leader_index: 95,
                ours: 100
            }
        )),
        "{outs:?}"
    );
    assert_eq!(n.raw.raft.term, 1, "Raft did not see the message");
    assert_eq!(n.raw.raft.raft_log.committed, 100);
}

#[test]
fn data_taken_over_is_confirmed_once_an_entry_after_it_commits() {
    let mut n = taken_over();
    // A leader whose log holds our snapshot's index: no conflict.
    n.step(append(2, 2, 100, 1, &[(101, 2)], 100));
    let outs = drain(&mut n);
    assert!(
        !outs
            .iter()
            .any(|o| matches!(o, Output::TakeoverConflict { .. })),
        "{outs:?}"
    );
    assert!(!outs
        .iter()
        .any(|o| matches!(o, Output::TakeoverConfirmed { .. })));
    n.step(append(2, 2, 101, 2, &[], 101));
    let outs = drain(&mut n);
    assert!(
        outs.iter()
            .any(|o| matches!(o, Output::TakeoverConfirmed { index: 100 })),
        "{outs:?}"
    );
    // Once confirmed, an old probe is Raft's business again.
    n.step(append(2, 2, 95, 2, &[], 101));
    assert!(!drain(&mut n)
        .iter()
        .any(|o| matches!(o, Output::TakeoverConflict { .. })));
}

#[test]
fn requests_right_behind_the_connect_request_are_served_once_the_session_exists() {
    // The Java client's Netty socket sends its queued requests without
    // waiting for the ConnectResponse; ZooKeeper serves them after it.
    let mut n = Node::new(cfg(), 0, Restored::default()).unwrap();
    n.connect(
        1,
        ConnectRequest {
            timeout_ms: 10_000,
            ..Default::default()
        },
        "127.0.0.1".into(),
        0,
    );
    send(&mut n, 1, 1, create("/early", 0), 0);
    send(
        &mut n,
        1,
        2,
        Request::GetData(PathWatchRequest {
            path: "/early".into(),
            watch: false,
        }),
        0,
    );
    n.flush();
    let f = frames(&mut n, 1);
    assert!(
        matches!(f.first(), Some(Frame::Connect(c)) if c.session_id != 0),
        "{f:?}"
    );
    let replies: Vec<(i32, i32)> = f[1..]
        .iter()
        .map(|f| match f {
            Frame::Reply(h, _) => (h.xid, h.err),
            f => panic!("{f:?}"),
        })
        .collect();
    assert_eq!(replies, vec![(1, 0), (2, 0)]);
}

#[test]
fn a_linearizable_read_is_answered_in_its_connection_order() {
    // A read queued for its read index, then a write and a read of the
    // same connection in the same batch: the first read must not see the
    // write behind it, the second must.
    let mut n = Node::new(
        NodeConfig {
            linearizable_reads: true,
            ..cfg()
        },
        0,
        Restored::default(),
    )
    .unwrap();
    session(&mut n, 1, 0);
    send(&mut n, 1, 1, create("/a", 0), 1);
    n.flush();
    frames(&mut n, 1);
    let get = || {
        Request::GetData(PathWatchRequest {
            path: "/a".into(),
            watch: false,
        })
    };
    send(&mut n, 1, 2, get(), 2);
    send(
        &mut n,
        1,
        3,
        Request::SetData(SetDataRequest {
            path: "/a".into(),
            data: Some(b"new".to_vec()),
            version: -1,
        }),
        2,
    );
    send(&mut n, 1, 4, get(), 2);
    n.flush();
    let replies: Vec<(i32, i32, Vec<u8>)> = frames(&mut n, 1)
        .into_iter()
        .map(|f| match f {
            Frame::Reply(h, body) => (h.xid, h.err, body),
            f => panic!("{f:?}"),
        })
        .collect();
    let data = |body: &[u8]| {
        GetDataResponse::read(&mut Reader::new(body))
            .unwrap()
            .data
            .unwrap_or_default()
    };
    assert_eq!(
        replies.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(),
        vec![(2, 0), (3, 0), (4, 0)]
    );
    assert_eq!(data(&replies[0].2), b"v");
    assert_eq!(data(&replies[2].2), b"new");
    assert_eq!(n.linearizable_reads_served(), 2);
}
