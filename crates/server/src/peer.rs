//! The peer transport: TCP between ensemble members. Vote and pre-vote
//! traffic goes to a peer's election port, everything else (replication,
//! heartbeats, forwarded writes, liveness reports) to its quorum port, as
//! ZooKeeper splits its two ports.
//!
//! Each server dials every peer on both ports and keeps those connections
//! up, reconnecting with backoff; it accepts peers' connections on its own
//! two ports. A connection starts with the dialer's server id (u64 BE),
//! then carries frames: u32 length, u8 kind (1 raft message in protobuf,
//! 2 liveness report: u32 n + n × i64 session ids), body.
//!
//! Raft tolerates lost messages: when a peer's queue is full or its
//! connection is down, messages to it are dropped.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use protobuf::Message as PbMessage;
use raft::prelude::{Message as RaftMessage, MessageType};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc};

use crate::CoreInput;

/// Frames queued per peer and port before new ones are dropped.
const PEER_QUEUE: usize = 4096;
/// The largest frame a peer may send: a batch of entries, bounded.
const MAX_FRAME_BYTES: usize = 64 << 20;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

const KIND_RAFT: u8 = 1;
const KIND_LIVENESS: u8 = 2;

/// What goes to a peer.
pub(crate) enum PeerOut {
    Raft(Box<RaftMessage>),
    Liveness(Vec<i64>),
}

/// Where a peer listens.
#[derive(Clone, Debug)]
pub(crate) struct PeerAddr {
    pub id: u64,
    pub quorum: String,
    pub election: String,
}

/// Senders to each peer, by port: the core task routes through this.
pub(crate) struct Peers {
    quorum: BTreeMap<u64, mpsc::Sender<Vec<u8>>>,
    election: BTreeMap<u64, mpsc::Sender<Vec<u8>>>,
}

fn is_vote(t: MessageType) -> bool {
    matches!(
        t,
        MessageType::MsgRequestVote
            | MessageType::MsgRequestVoteResponse
            | MessageType::MsgRequestPreVote
            | MessageType::MsgRequestPreVoteResponse
    )
}

impl Peers {
    /// Queues a message for `to`; false when it had to be dropped.
    pub(crate) fn send(&self, to: u64, out: PeerOut) -> bool {
        let (map, frame) = match out {
            PeerOut::Raft(m) => {
                let map = if is_vote(m.get_msg_type()) {
                    &self.election
                } else {
                    &self.quorum
                };
                let Ok(body) = m.write_to_bytes() else {
                    return false;
                };
                (map, frame(KIND_RAFT, &body))
            }
            PeerOut::Liveness(sessions) => {
                let mut body = Vec::with_capacity(4 + 8 * sessions.len());
                body.extend_from_slice(&(sessions.len() as u32).to_be_bytes());
                for s in sessions {
                    body.extend_from_slice(&s.to_be_bytes());
                }
                (&self.quorum, frame(KIND_LIVENESS, &body))
            }
        };
        map.get(&to).is_some_and(|tx| tx.try_send(frame).is_ok())
    }
}

fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(5 + body.len());
    f.extend_from_slice(&((body.len() + 1) as u32).to_be_bytes());
    f.push(kind);
    f.extend_from_slice(body);
    f
}

/// Starts listeners on our two ports and dialers to every peer.
pub(crate) async fn start(
    my_id: u64,
    quorum_addr: SocketAddr,
    election_addr: SocketAddr,
    peers: Vec<PeerAddr>,
    core: mpsc::Sender<CoreInput>,
    stop: &broadcast::Sender<()>,
    tasks: &mut tokio::task::JoinSet<()>,
) -> std::io::Result<Peers> {
    for addr in [quorum_addr, election_addr] {
        let listener = TcpListener::bind(addr).await?;
        tasks.spawn(accept_loop(listener, core.clone(), stop.subscribe()));
    }
    let mut out = Peers {
        quorum: BTreeMap::new(),
        election: BTreeMap::new(),
    };
    for p in peers {
        for (port, addr) in [
            ("quorum", p.quorum.clone()),
            ("election", p.election.clone()),
        ] {
            let (tx, rx) = mpsc::channel(PEER_QUEUE);
            if port == "quorum" {
                out.quorum.insert(p.id, tx);
            } else {
                out.election.insert(p.id, tx);
            }
            tasks.spawn(dial_loop(
                my_id,
                p.id,
                port,
                addr,
                rx,
                core.clone(),
                stop.subscribe(),
            ));
        }
    }
    Ok(out)
}

/// Keeps one outgoing connection up and writes queued frames to it.
async fn dial_loop(
    my_id: u64,
    peer: u64,
    port: &'static str,
    addr: String,
    mut rx: mpsc::Receiver<Vec<u8>>,
    core: mpsc::Sender<CoreInput>,
    mut stop: broadcast::Receiver<()>,
) {
    let mut backoff = BACKOFF_MIN;
    let mut reported_down = false;
    loop {
        let conn = tokio::select! {
            _ = stop.recv() => return,
            c = TcpStream::connect(&addr) => c,
        };
        let sock = match conn {
            Ok(s) => s,
            Err(e) => {
                if !reported_down {
                    tracing::info!(
                        "cannot connect to server {peer} at {addr} ({port} port): {e}; retrying"
                    );
                    reported_down = true;
                    let _ = core.try_send(CoreInput::PeerLost(peer));
                }
                // Drop what piled up meanwhile: Raft resends what matters.
                while rx.try_recv().is_ok() {}
                tokio::select! {
                    _ = stop.recv() => return,
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
        };
        let _ = sock.set_nodelay(true);
        tracing::info!("connected to server {peer} at {addr} ({port} port)");
        reported_down = false;
        backoff = BACKOFF_MIN;
        let mut w = BufWriter::new(sock);
        if w.write_all(&my_id.to_be_bytes()).await.is_err() {
            continue;
        }
        loop {
            let f = tokio::select! {
                _ = stop.recv() => return,
                f = rx.recv() => f,
            };
            let Some(f) = f else { return };
            let mut ok = w.write_all(&f).await.is_ok();
            while ok {
                match rx.try_recv() {
                    Ok(more) => ok = w.write_all(&more).await.is_ok(),
                    Err(_) => break,
                }
            }
            if !ok || w.flush().await.is_err() {
                tracing::info!("lost the connection to server {peer} at {addr} ({port} port)");
                let _ = core.try_send(CoreInput::PeerLost(peer));
                break;
            }
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    core: mpsc::Sender<CoreInput>,
    mut stop: broadcast::Receiver<()>,
) {
    let core = Arc::new(core);
    loop {
        tokio::select! {
            _ = stop.recv() => return,
            r = listener.accept() => match r {
                Ok((sock, _)) => {
                    let core = core.clone();
                    tokio::spawn(async move { read_peer(sock, &core).await });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "peer accept failed");
                    tokio::time::sleep(BACKOFF_MIN).await;
                }
            }
        }
    }
}

/// Reads one peer connection until it ends; a malformed frame ends it.
/// However it ends, the core hears that the peer was lost.
async fn read_peer(mut sock: TcpStream, core: &mpsc::Sender<CoreInput>) {
    let _ = sock.set_nodelay(true);
    let mut id = [0u8; 8];
    if sock.read_exact(&mut id).await.is_err() {
        return;
    }
    let from = u64::from_be_bytes(id);
    read_frames(&mut sock, from, core).await;
    let _ = core.send(CoreInput::PeerLost(from)).await;
}

async fn read_frames(sock: &mut TcpStream, from: u64, core: &mpsc::Sender<CoreInput>) {
    let mut buf = Vec::new();
    loop {
        let mut len = [0u8; 4];
        if sock.read_exact(&mut len).await.is_err() {
            return;
        }
        let len = u32::from_be_bytes(len) as usize;
        if len == 0 || len > MAX_FRAME_BYTES {
            tracing::warn!(from, len, "bad frame from a peer; closing its connection");
            return;
        }
        buf.resize(len, 0);
        if sock.read_exact(&mut buf).await.is_err() {
            return;
        }
        let input = match buf[0] {
            KIND_RAFT => match RaftMessage::parse_from_bytes(&buf[1..]) {
                Ok(m) => CoreInput::Peer(Box::new(m)),
                Err(e) => {
                    tracing::warn!(from, error = %e, "undecodable raft message; closing");
                    return;
                }
            },
            KIND_LIVENESS => {
                let b = &buf[1..];
                let n = b
                    .get(..4)
                    .map(|n| u32::from_be_bytes(n.try_into().unwrap()) as usize);
                match n {
                    Some(n) if b.len() == 4 + 8 * n => CoreInput::Liveness(
                        b[4..]
                            .chunks_exact(8)
                            .map(|c| i64::from_be_bytes(c.try_into().unwrap()))
                            .collect(),
                    ),
                    _ => {
                        tracing::warn!(from, "malformed liveness report; closing");
                        return;
                    }
                }
            }
            k => {
                tracing::warn!(from, kind = k, "unknown frame kind from a peer; closing");
                return;
            }
        };
        if core.send(input).await.is_err() {
            return;
        }
    }
}
