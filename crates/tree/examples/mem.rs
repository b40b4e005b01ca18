//! Memory and restore time of a tree of N znodes (100 bytes each under one
//! parent, named and timed as the race's load makes them: `c-<conn>-<n>`
//! from 32 connections, wall-clock ctime, zxids from 2):
//! `cargo run --release -p tree --example mem [N [REPLAYED]]`. A measuring tool, not
//! a test.
use proto::{CreateTtlRequest, OpCode, Request};
use std::time::Instant;

/// The server's allocator, so size classes round bodies as they do there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
use tree::{acl, Entry, EntryKind, SessionEffect, StateMachine, TreeConfig};

fn rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = s.lines().find(|l| l.starts_with("VmRSS:")).unwrap();
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<f64>()
        .unwrap()
        / 1024.0
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn entry(session_id: i64, kind: EntryKind) -> Entry {
    Entry {
        time_ms: now_ms(),
        session_id,
        xid: 0,
        origin: 1,
        conn: 1,
        kind,
    }
}

/// Applies the create of the i-th node (the parent first), at zxid i + 2.
fn create(sm: &mut StateMachine, session_id: i64, i: usize) {
    let path = if i == 0 {
        "/load".to_string()
    } else {
        format!("/load/c-{}-{}", i % 32, i / 32)
    };
    let req = Request::Create(
        OpCode::Create,
        CreateTtlRequest {
            path,
            data: Some(vec![b'x'; 100]),
            acl: acl::open_acl_unsafe(),
            flags: 0,
            ttl: -1,
        },
    );
    let mut body = Vec::new();
    req.encode(&mut body);
    let e = entry(
        session_id,
        EntryKind::Request {
            op: req.op(),
            body,
            auth: vec![],
        },
    );
    sm.apply(2 + i as i64, &e);
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(1_000_000, |a| a.parse().unwrap());
    // The last this many are applied after the restore, as a restart
    // replays the log written after its snapshot.
    let replayed: usize = std::env::args().nth(2).map_or(0, |a| a.parse().unwrap());
    let config = TreeConfig {
        extended_types: true,
        schemes: Default::default(),
        enforce_quota: false,
    };
    let base = rss_mib();
    let mut sm = StateMachine::new(config.clone());
    let a = sm.apply(
        1,
        &entry(
            0,
            EntryKind::CreateSession {
                timeout_ms: 30000,
                passwd: vec![0; 16],
            },
        ),
    );
    let Some(SessionEffect::Created { session_id, .. }) = a.session else {
        panic!()
    };
    let t = Instant::now();
    let mut slowest = std::time::Duration::ZERO;
    for i in 0..=n - replayed {
        let one = Instant::now();
        create(&mut sm, session_id, i);
        slowest = slowest.max(one.elapsed());
    }
    let built = t.elapsed();
    let loaded = rss_mib() - base;
    let t = Instant::now();
    let snap = sm.encode_snapshot();
    let enc = t.elapsed();
    drop(sm);
    let t = Instant::now();
    let mut sm = StateMachine::decode_snapshot(&snap, config).unwrap();
    let dec = t.elapsed();
    for i in n - replayed + 1..=n {
        create(&mut sm, session_id, i);
    }
    let snap_len = snap.len();
    drop(snap);
    // As the server does once serving: what loading freed goes back.
    // SAFETY: a documented mimalloc call; no pointers.
    unsafe { libmimalloc_sys::mi_collect(true) };
    let restored = rss_mib() - base;
    println!(
        "{n} znodes: apply {:.2?} ({:.0}/s, slowest {:.2?}), RSS {:.0} MiB ({:.0} B/znode); snapshot {:.1} MiB encode {:.2?} decode {:.2?}; RSS after restore {:.0} MiB ({:.0} B/znode); digest {:x}",
        built, n as f64 / built.as_secs_f64(), slowest, loaded, loaded * 1048576.0 / n as f64,
        snap_len as f64 / 1048576.0, enc, dec, restored, restored * 1048576.0 / n as f64, sm.tree.digest()
    );
}
