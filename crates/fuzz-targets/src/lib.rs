//! What each `cargo fuzz` target (in `fuzz/`) does with its input, here so
//! that the stable test suite runs the same code on random inputs too (the
//! property tests below) while coverage-guided fuzzing needs nightly:
//!
//! ```sh
//! cargo +nightly fuzz run request      # or snapshot, wal, core, zookeeper
//! ```
//!
//! Each must return for any input without panicking, hanging or allocating
//! without bound.

use node::testing::{run_to_rest, MemDisk};
use node::{Node, NodeConfig, Restored};
use proto::{ConnectRequest, Jute, OpCode, Request};
use tree::{StateMachine, TreeConfig};

/// The client protocol's decoders: frame length, connect request, and a
/// request body for the op code the first four bytes give.
pub fn request(data: &[u8]) {
    let _ = proto::frame::frame_len(data, 1 << 20);
    let _ = ConnectRequest::from_bytes(data);
    if data.len() >= 4 {
        let code = i32::from_be_bytes([data[0], data[1], data[2], data[3]]);
        if let Some(op) = OpCode::from_code(code) {
            let _ = Request::decode(op, &data[4..]);
        }
    }
}

/// A snapshot file's body, as a restarting server reads it.
pub fn snapshot(data: &[u8]) {
    if let Ok(sm) = StateMachine::decode_snapshot(
        data,
        TreeConfig {
            extended_types: true,
            schemes: Default::default(),
            enforce_quota: false,
        },
    ) {
        // What loaded must also encode and load again.
        let again = sm.freeze().encode_snapshot();
        StateMachine::decode_snapshot(
            &again,
            TreeConfig {
                extended_types: true,
                schemes: Default::default(),
                enforce_quota: false,
            },
        )
        .expect("a loaded snapshot re-encodes into a loadable one");
    }
}

/// A log segment with a valid header followed by `data` as its records,
/// read by the recovery rules.
pub fn wal(data: &[u8]) {
    let dir = tempfile::tempdir().expect("temp dir");
    let seg_dir = dir.path().join(storage::wal::DIR_NAME);
    std::fs::create_dir_all(&seg_dir).expect("wal dir");
    let mut file = Vec::with_capacity(24 + data.len());
    file.extend_from_slice(b"FKWAL001");
    file.extend_from_slice(&1u64.to_be_bytes());
    let crc = crc32c::crc32c(&file);
    file.extend_from_slice(&crc.to_be_bytes());
    file.extend_from_slice(&[0; 4]);
    file.extend_from_slice(data);
    std::fs::write(seg_dir.join(format!("wal-{:016x}.log", 1)), &file).expect("segment");
    let _ = storage::wal::read_only(dir.path());
}

/// A standalone replica core with two sessions, fed requests cut from
/// `data`: per request one byte picks the session, one the op code (from
/// ZooKeeper's, or any), two the body length, then the body; every write is
/// made durable at once.
pub fn core(data: &[u8]) {
    let cfg = NodeConfig {
        seed: 1,
        snap_count: 64,
        ..NodeConfig::for_test()
    };
    let mut n = Node::new(cfg, 0, Restored::default()).expect("a core starts");
    // Every write durable at once; the log kept is what a restart would read.
    let mut disk = MemDisk::default();
    run_to_rest(&mut n, &mut disk);
    for conn in [1, 2] {
        n.connect(
            conn,
            ConnectRequest {
                timeout_ms: 10_000,
                ..Default::default()
            },
            "127.0.0.1".into(),
            0,
        );
        run_to_rest(&mut n, &mut disk);
    }
    const OPS: [i32; 24] = [
        1, 2, 3, 4, 5, 6, 7, 8, 9, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 101, 104, 105,
    ];
    let mut rest = data;
    let mut xid = 1;
    let mut now = 0;
    while rest.len() >= 4 {
        let conn = 1 + (rest[0] & 1) as u64;
        let op = if rest[1] < 240 {
            OPS[rest[1] as usize % OPS.len()]
        } else {
            rest[1] as i8 as i32
        };
        let len = (u16::from_be_bytes([rest[2], rest[3]]) as usize).min(rest.len() - 4);
        let body = &rest[4..4 + len];
        rest = &rest[4 + len..];
        n.request(conn, xid, op, body, now, 0);
        xid += 1;
        now += 7;
        n.tick(now);
        run_to_rest(&mut n, &mut disk);
    }
}

/// A ZooKeeper server's files, as a takeover reads them. The first byte
/// says where `data` splits into a snapshot body and transaction bodies;
/// the file headers and checksums are made right here, so the fuzzer
/// reaches the records rather than the seals. What decodes is taken over
/// (every transaction replayed by ZooKeeper's rules), handed back as a
/// ZooKeeper snapshot, and that must decode to the same.
pub fn zookeeper(data: &[u8]) {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let (snap_body, mut log_body) = rest.split_at((cut as usize * rest.len()) / 256);
    let mut snap = Vec::with_capacity(snap_body.len() + 40);
    snap.extend_from_slice(b"ZKSN\0\0\0\x02");
    snap.extend_from_slice(&(-1i64).to_be_bytes());
    snap.extend_from_slice(snap_body);
    let sum = zkdata::stream::adler32(&snap);
    snap.extend_from_slice(&sum.to_be_bytes());
    snap.extend_from_slice(&[0, 0, 0, 1, b'/']);
    let Ok(snapshot) = zkdata::ZkSnapshot::decode(&snap, 0) else {
        return;
    };
    // Transactions: a length byte, then that many bytes, each a record.
    let mut log = b"ZKLG\0\0\0\x02\0\0\0\0\0\0\0\0".to_vec();
    while let Some((&n, more)) = log_body.split_first() {
        let n = (n as usize).min(more.len());
        let (txn, next) = more.split_at(n);
        log.extend_from_slice(&zkdata::stream::adler32(txn).to_be_bytes());
        log.extend_from_slice(&(txn.len() as i32).to_be_bytes());
        log.extend_from_slice(txn);
        log.push(b'B');
        log_body = next;
    }
    let Ok((txns, _)) = zkdata::TxnLogFile::decode(&log) else {
        return;
    };
    let loaded = zkdata::Loaded {
        snapshot_path: "fuzz".into(),
        snapshot,
        skipped_snapshots: Vec::new(),
        log_files: Vec::new(),
        txns: txns.into_iter().filter(|t| t.header.zxid > 0).collect(),
        torn: Vec::new(),
    };
    let mut last = 0;
    let ordered = loaded.txns.iter().all(|t| {
        let ok = t.header.zxid > last;
        last = t.header.zxid;
        ok
    });
    if !ordered {
        return; // ZkDirs::load never yields zxids out of order
    }
    if let Ok((sm, _)) = tree::takeover::take_over(
        &loaded,
        TreeConfig {
            extended_types: true,
            schemes: Default::default(),
            enforce_quota: false,
        },
    ) {
        let back = tree::handback::to_zookeeper(&sm);
        let again = zkdata::ZkSnapshot::decode(&back.encode(), back.zxid)
            .expect("a handed-back snapshot decodes");
        assert_eq!(again, back, "a handed-back snapshot decodes to itself");
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn request(data in prop::collection::vec(any::<u8>(), 0..256)) {
            super::request(&data);
        }

        #[test]
        fn snapshot(data in prop::collection::vec(any::<u8>(), 0..512)) {
            super::snapshot(&data);
        }

        #[test]
        fn zookeeper(data in prop::collection::vec(any::<u8>(), 0..512)) {
            super::zookeeper(&data);
        }

        #[test]
        fn wal(data in prop::collection::vec(any::<u8>(), 0..512)) {
            super::wal(&data);
        }

        #[test]
        fn core(data in prop::collection::vec(any::<u8>(), 0..1024)) {
            super::core(&data);
        }
    }

    /// Random bytes rarely get past a snapshot's version byte: start from
    /// a real snapshot and flip bytes in it.
    #[test]
    fn snapshot_with_flipped_bytes() {
        use tree::{StateMachine, TreeConfig};
        let sm = StateMachine::new(TreeConfig {
            extended_types: true,
            schemes: Default::default(),
            enforce_quota: false,
        });
        let good = sm.freeze().encode_snapshot();
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2000 {
            let mut b = good.clone();
            for _ in 0..3 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let i = (rng as usize) % b.len();
                b[i] ^= (rng >> 32) as u8 | 1;
            }
            super::snapshot(&b);
        }
    }
}
