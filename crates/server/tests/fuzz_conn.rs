//! Arbitrary bytes and frames against a live server's client port: the
//! server never panics, never hangs, and keeps serving others; a length
//! prefix beyond jute.maxbuffer is refused before anything is allocated
//! for it.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use proto::{ConnectRequest, Jute};

static PANICKED: AtomicBool = AtomicBool::new(false);

/// One server for the whole file, on its own runtime thread.
fn server_port() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICKED.store(true, Ordering::SeqCst);
            prev(info);
        }));
        let dir = tempfile::tempdir().unwrap().keep();
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let text = format!(
            "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
             admin.enableServer=false\njute.maxbuffer=65536\n4lw.commands.whitelist=*\n",
            dir.display()
        );
        let cfg = server::Config::parse(&dir.join("zoo.cfg"), &text).unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let s = server::Server::start(cfg).await.expect("server starts");
                tx.send(s.local_addr.port()).unwrap();
                std::future::pending::<()>().await;
            });
        });
        rx.recv_timeout(Duration::from_secs(30)).expect("server up")
    })
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as u32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

fn connect_frame() -> Vec<u8> {
    let mut b = Vec::new();
    ConnectRequest {
        timeout_ms: 10_000,
        passwd: Some(vec![0; 16]),
        ..Default::default()
    }
    .write(&mut b);
    frame(&b)
}

/// Reads whatever comes until the server closes or `limit` passes.
fn drain(s: &mut TcpStream, limit: Duration) {
    let end = Instant::now() + limit;
    let mut buf = [0u8; 4096];
    while Instant::now() < end {
        match s.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(_) => return,
        }
    }
}

/// A fresh client still gets a session and an answer to exists("/").
fn still_serving(port: u16) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s.write_all(&connect_frame()).unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("a connect response");
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    // exists("/"): xid 1, op 3, path "/", no watch.
    let mut req = Vec::new();
    req.extend_from_slice(&1i32.to_be_bytes());
    req.extend_from_slice(&3i32.to_be_bytes());
    req.extend_from_slice(&1i32.to_be_bytes());
    req.push(b'/');
    req.push(0);
    s.write_all(&frame(&req)).unwrap();
    s.read_exact(&mut len).expect("an exists reply");
    let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).unwrap();
    assert_eq!(&body[..4], &1i32.to_be_bytes(), "reply to xid 1");
    assert_eq!(&body[12..16], &0i32.to_be_bytes(), "no error");
}

/// A piece of what a client may send.
#[derive(Debug, Clone)]
enum Piece {
    /// A well-framed body of arbitrary bytes.
    Frame(Vec<u8>),
    /// A request header (xid, op) and arbitrary bytes after it.
    Request(i32, i32, Vec<u8>),
    /// Raw bytes, frames or not.
    Raw(Vec<u8>),
    /// A length prefix alone (huge, negative, zero...).
    Prefix(u32),
}

fn piece() -> impl Strategy<Value = Piece> {
    // Mostly requests with ZooKeeper's op codes (so bodies reach every
    // request decoder and the replica core), some anything else.
    let op = prop_oneof![4 => -11i32..=22, 2 => 100i32..=106, 1 => any::<i32>()];
    prop_oneof![
        6 => (any::<i32>(), op, prop::collection::vec(any::<u8>(), 0..120))
            .prop_map(|(x, o, b)| Piece::Request(x, o, b)),
        2 => prop::collection::vec(any::<u8>(), 0..300).prop_map(Piece::Frame),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(Piece::Raw),
        1 => prop_oneof![Just(u32::MAX), Just(0x7fff_ffff), Just(0), Just(65_537), any::<u32>()]
            .prop_map(Piece::Prefix),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_input_never_breaks_the_server(
        session_first in prop::bool::weighted(0.85),
        pieces in prop::collection::vec(piece(), 0..12),
    ) {
        let port = server_port();
        // Per case, so that shrinking blames the input that did it.
        PANICKED.store(false, Ordering::SeqCst);
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
        if session_first {
            s.write_all(&connect_frame()).unwrap();
        }
        for p in &pieces {
            let bytes = match p {
                Piece::Frame(b) => frame(b),
                Piece::Request(xid, op, rest) => {
                    let mut b = xid.to_be_bytes().to_vec();
                    b.extend_from_slice(&op.to_be_bytes());
                    b.extend_from_slice(rest);
                    frame(&b)
                }
                Piece::Raw(b) => b.clone(),
                Piece::Prefix(n) => n.to_be_bytes().to_vec(),
            };
            // The server may close on bad input: later writes may fail.
            if s.write_all(&bytes).is_err() {
                break;
            }
        }
        drain(&mut s, Duration::from_millis(300));
        drop(s);
        still_serving(port);
        prop_assert!(!PANICKED.load(Ordering::SeqCst), "a server task panicked");
    }
}

fn rss_kib() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.split("VmRSS:")
        .nth(1)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn an_oversized_length_prefix_is_refused_before_allocating() {
    let port = server_port();
    let before = rss_kib();
    for prefix in [u32::MAX, 0x7fff_ffff, 0x4000_0000, 65_537] {
        for session in [false, true] {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            if session {
                s.write_all(&connect_frame()).unwrap();
                let mut len = [0u8; 4];
                s.read_exact(&mut len).unwrap();
                let mut body = vec![0u8; u32::from_be_bytes(len) as usize];
                s.read_exact(&mut body).unwrap();
            }
            s.write_all(&prefix.to_be_bytes()).unwrap();
            s.write_all(&[0u8; 16]).unwrap();
            // Closed without waiting for the promised bytes: the read ends
            // in EOF or a reset, not in the read timeout.
            let mut buf = [0u8; 64];
            let closed = loop {
                match s.read(&mut buf) {
                    Ok(0) => break true,
                    Ok(_) => {}
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock
                            || e.kind() == std::io::ErrorKind::TimedOut =>
                    {
                        break false
                    }
                    Err(_) => break true,
                }
            };
            assert!(closed, "prefix {prefix:#x}: the connection stayed open");
        }
    }
    let grew = rss_kib().saturating_sub(before);
    assert!(grew < 64 * 1024, "resident memory grew by {grew} KiB");
    still_serving(port);
    assert!(!PANICKED.load(Ordering::SeqCst));
}
