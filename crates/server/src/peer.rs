//! The peer transport: TCP between ensemble members. Vote and pre-vote
//! traffic goes to a peer's election port, everything else (replication,
//! heartbeats, forwarded writes, liveness reports) to its quorum port, as
//! ZooKeeper splits its two ports.
//!
//! Each server dials every peer on both ports and keeps those connections
//! up, reconnecting with backoff; it accepts peers' connections on its own
//! two ports, over TCP or TLS (`peer_stream`). A connection starts with
//! the dialer's server id (u64 BE),
//! then, when quorum authentication is on, the exchange of `quorum_auth`,
//! then carries frames (`peer_frame`). An id that is not another member's
//! is refused — unless reconfig is enabled: then the dialer is asked where
//! it listens (`peer_joiner`) and the core hears of a would-be non-voting
//! follower — and so is a Raft message that names another sender.
//!
//! Raft tolerates lost messages: when a peer's queue is full or its
//! connection is down, messages to it are dropped.
//!
//! A snapshot goes on a connection of its own (`snap_transfer`), which
//! starts with frame kind 3.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;
use std::time::Duration;

use protobuf::Message as PbMessage;
use raft::prelude::{Message as RaftMessage, MessageType};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc};

use crate::peer_lane::Lane;
use crate::peer_stream::{Prefixed, Stream};
use crate::{peer_frame, CoreInput};

/// Frames queued per peer and port before new ones are dropped.
const PEER_QUEUE: usize = 4096;
/// The largest frame a peer may send: a batch of entries, bounded.
pub(crate) const MAX_FRAME_BYTES: usize = 64 << 20;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(2);

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
    quorum: BTreeMap<u64, Arc<Lane>>,
    election: BTreeMap<u64, Arc<Lane>>,
    quorum_addr: BTreeMap<u64, String>,
    /// Where each peer listens, to notice a reconfig that moves one.
    addrs: BTreeMap<u64, PeerAddr>,
    core: mpsc::Sender<CoreInput>,
    /// Peers a snapshot is being sent to: one transfer each at a time.
    sending_snapshot: Arc<Mutex<BTreeSet<u64>>>,
    /// Shutdown: a transfer still running when it comes is dropped.
    stop: broadcast::Sender<()>,
    gate: Arc<Gate>,
}

/// Where a receiver keeps snapshots, and how it decodes them.
#[derive(Clone)]
pub(crate) struct SnapshotHome {
    pub data_dir: PathBuf,
    pub tree: tree::TreeConfig,
}

/// Who a connection may come from, how both ends prove it, and what
/// they speak over.
pub(crate) struct Gate {
    pub my_id: u64,
    /// Where this server listens, told to an acceptor that asks.
    pub me: PeerAddr,
    /// Servers that are not members are let in (`reconfigEnabled`).
    pub joiners_allowed: bool,
    /// The other members' ids; a reconfig changes them (`Peers::update`).
    pub members: std::sync::RwLock<BTreeSet<u64>>,
    /// Rings when a peer connects to us: our dialers to it, waiting out a
    /// backoff after it was unreachable, try again now (it is up). Without
    /// it a leader reached a server that started after it only after up
    /// to a whole backoff, and counted it out of a quorum meanwhile.
    pub came_up: Arc<tokio::sync::Notify>,
    pub auth: crate::quorum_auth::QuorumAuth,
    /// Replaced when the `ssl.quorum.*` files change (`tls::reload`).
    pub tls: Arc<crate::tls::Current<crate::peer_stream::PeerTls>>,
}

/// How long a peer has to name itself and authenticate.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);

/// The dialer's start of a connection: TLS when `sslQuorum` says so, its
/// id, then quorum authentication. With the stream, the plain TCP socket
/// under it (none under TLS), for `Lane`'s direct writes.
async fn hello(
    sock: TcpStream,
    addr: &str,
    gate: &Gate,
    peer: u64,
) -> Result<(Stream, Option<Arc<TcpStream>>), String> {
    let (mut sock, shared) = gate.tls.get().dial(addr, sock).await?;
    sock.write_all(&gate.my_id.to_be_bytes())
        .await
        .map_err(|e| e.to_string())?;
    match tokio::time::timeout(
        HANDSHAKE_LIMIT,
        crate::quorum_auth::dial(&mut sock, &gate.auth, gate.my_id, peer),
    )
    .await
    {
        Ok(r) => r.map(|_| (sock, shared)),
        Err(_) => Err(format!(
            "server {peer} did not finish quorum authentication within {} s",
            HANDSHAKE_LIMIT.as_secs()
        )),
    }
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
    /// Streams the snapshot `msg` names (this server's newest, in
    /// `data_dir`) to `msg.to` on a connection of its own, then reports
    /// the outcome to the core. A transfer already running to that peer
    /// makes this one a no-op (Raft waits for the running one's report).
    pub(crate) fn send_snapshot(&self, msg: Box<RaftMessage>, data_dir: &Path) {
        let to = msg.to;
        let Some(addr) = self.quorum_addr.get(&to).cloned() else {
            return;
        };
        if !self.sending_snapshot.lock().unwrap().insert(to) {
            return;
        }
        let index = msg.get_snapshot().get_metadata().index;
        let file = storage::snap::snap_dir(data_dir).join(storage::snap::file_name(index));
        let (gate, core, running) = (
            self.gate.clone(),
            self.core.clone(),
            self.sending_snapshot.clone(),
        );
        let mut stop = self.stop.subscribe();
        let transfer = async move {
            tracing::info!("sending snapshot at index {index} to server {to} at {addr}");
            let started = std::time::Instant::now();
            let result = async {
                let sock = TcpStream::connect(&addr).await?;
                let _ = sock.set_nodelay(true);
                let (mut sock, _) = hello(sock, &addr, &gate, to)
                    .await
                    .map_err(std::io::Error::other)?;
                crate::snap_transfer::send(&mut sock, &msg, &file)
                    .await
                    .map_err(|e| std::io::Error::other(e.to_string()))
            }
            .await;
            let ok = match result {
                Ok(true) => {
                    tracing::info!(
                        "snapshot at index {index} sent to server {to} in {:.2} s",
                        started.elapsed().as_secs_f64()
                    );
                    true
                }
                Ok(false) => {
                    tracing::warn!("server {to} rejected the snapshot at index {index}");
                    false
                }
                Err(e) => {
                    tracing::warn!(
                        "sending the snapshot at index {index} to server {to} failed: {e}"
                    );
                    false
                }
            };
            running.lock().unwrap().remove(&to);
            let _ = core.send(CoreInput::SnapshotSent { peer: to, ok }).await;
        };
        // Ends with the server: shutdown does not wait for a transfer.
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.recv() => {}
                _ = transfer => {}
            }
        });
    }

    /// A Raft message's frame and the link it goes by, for a thread
    /// outside the core to send (`Lane::send_now`); None when there is no
    /// such peer or the message does not encode.
    pub(crate) fn prepare(&self, m: &RaftMessage) -> Option<(Arc<Lane>, Vec<u8>)> {
        let map = if is_vote(m.get_msg_type()) {
            &self.election
        } else {
            &self.quorum
        };
        let size = m.compute_size() as usize;
        let frame = peer_frame::build(peer_frame::KIND_RAFT, size, |f| m.write_to_vec(f)).ok()?;
        Some((map.get(&m.to)?.clone(), frame))
    }

    /// Queues a message for `to`; false when it had to be dropped.
    pub(crate) fn send(&self, to: u64, out: PeerOut) -> bool {
        let (map, frame) = match out {
            PeerOut::Raft(m) => {
                // A heartbeat queued while the link is down would reach
                // the peer only once it is back, stale, after the fresh
                // one the leader sends then (`Node::peer_up`); a follower
                // that is behind answers each, and a leader probing it
                // sends its whole catch-up again on every answer (raft-rs
                // resumes a probe on each heartbeat response): a follower
                // back after 20 s got the same 1 MiB seven times in 8 ms,
                // the leader's core building each.
                if m.get_msg_type() == raft::prelude::MessageType::MsgHeartbeat
                    && !self.quorum.get(&m.to).is_some_and(|l| l.is_up())
                {
                    return false;
                }
                return self
                    .prepare(&m)
                    .is_some_and(|(lane, frame)| lane.queue(frame));
            }
            PeerOut::Liveness(sessions) => {
                let f = peer_frame::build::<()>(
                    peer_frame::KIND_LIVENESS,
                    4 + 8 * sessions.len(),
                    |f| {
                        f.extend_from_slice(&(sessions.len() as u32).to_be_bytes());
                        for s in sessions {
                            f.extend_from_slice(&s.to_be_bytes());
                        }
                        Ok(())
                    },
                );
                (&self.quorum, f.unwrap_or_default())
            }
        };
        map.get(&to).is_some_and(|lane| lane.queue(frame))
    }
}

/// Starts listeners on our two ports and dialers to every peer.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn start(
    me: PeerAddr,
    joiners_allowed: bool,
    quorum_addr: SocketAddr,
    election_addr: SocketAddr,
    peers: Vec<PeerAddr>,
    core: mpsc::Sender<CoreInput>,
    home: SnapshotHome,
    auth: crate::quorum_auth::QuorumAuth,
    tls: Arc<crate::tls::Current<crate::peer_stream::PeerTls>>,
    stop: &broadcast::Sender<()>,
    tasks: &mut tokio::task::JoinSet<()>,
) -> Result<Peers, crate::ServerError> {
    let gate = Arc::new(Gate {
        my_id: me.id,
        me,
        joiners_allowed,
        members: std::sync::RwLock::new(peers.iter().map(|p| p.id).collect()),
        came_up: Arc::new(tokio::sync::Notify::new()),
        auth,
        tls,
    });
    for (what, addr) in [("quorum", quorum_addr), ("election", election_addr)] {
        let listener =
            TcpListener::bind(addr)
                .await
                .map_err(|source| crate::ServerError::Bind {
                    what,
                    addr: addr.to_string(),
                    source,
                })?;
        tasks.spawn(accept_loop(
            listener,
            core.clone(),
            home.clone(),
            gate.clone(),
            stop.subscribe(),
        ));
    }
    let mut out = Peers {
        quorum: BTreeMap::new(),
        election: BTreeMap::new(),
        quorum_addr: BTreeMap::new(),
        addrs: BTreeMap::new(),
        core: core.clone(),
        sending_snapshot: Arc::new(Mutex::new(BTreeSet::new())),
        stop: stop.clone(),
        gate: gate.clone(),
    };
    for p in peers {
        out.dial(p, |f| {
            tasks.spawn(f);
        });
    }
    Ok(out)
}

impl Peers {
    /// Starts the two dialers to peer `p`; `spawn` runs each.
    fn dial(
        &mut self,
        p: PeerAddr,
        mut spawn: impl FnMut(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>),
    ) {
        for (port, addr) in [
            ("quorum", p.quorum.clone()),
            ("election", p.election.clone()),
        ] {
            let (tx, rx) = mpsc::channel(PEER_QUEUE);
            let lane = Arc::new(Lane::new(tx));
            if port == "quorum" {
                self.quorum.insert(p.id, lane.clone());
            } else {
                self.election.insert(p.id, lane.clone());
            }
            spawn(Box::pin(dial_loop(
                self.gate.clone(),
                p.id,
                port,
                addr,
                rx,
                lane,
                self.core.clone(),
                self.stop.subscribe(),
            )));
        }
        self.quorum_addr.insert(p.id, p.quorum.clone());
        self.addrs.insert(p.id, p);
    }

    /// A reconfig changed the membership: the other members are now
    /// `peers`, and Raft also replicates to `also` (non-voting followers:
    /// kept at the address known for them, if any). New ones are dialed
    /// and let in, gone ones dropped (their dialers end), moved ones
    /// dialed at their new addresses.
    pub(crate) fn update(&mut self, peers: Vec<PeerAddr>, also: &[u64]) {
        let mut wanted: BTreeMap<u64, PeerAddr> = peers.into_iter().map(|p| (p.id, p)).collect();
        for id in also {
            if let (false, Some(a)) = (wanted.contains_key(id), self.addrs.get(id)) {
                wanted.insert(*id, a.clone());
            }
        }
        let stale: Vec<u64> = self
            .addrs
            .iter()
            .filter(|(id, a)| {
                wanted
                    .get(id)
                    .is_none_or(|w| w.quorum != a.quorum || w.election != a.election)
            })
            .map(|(id, _)| *id)
            .collect();
        for id in stale {
            tracing::info!("server {id} left the ensemble or moved: its connections close");
            self.quorum.remove(&id);
            self.election.remove(&id);
            self.quorum_addr.remove(&id);
            self.addrs.remove(&id);
        }
        for (id, p) in wanted {
            if !self.addrs.contains_key(&id) {
                tracing::info!(
                    "server {id} is a member now: reaching it at {} (quorum) and {} (election)",
                    p.quorum,
                    p.election
                );
                self.dial(p, |f| {
                    tokio::spawn(f);
                });
            }
        }
        *self.gate.members.write().unwrap() = self.addrs.keys().copied().collect();
    }

    /// A server that is not a member called in from `p` (`peer_joiner`):
    /// dialed and let in like a member until a membership leaves it out.
    pub(crate) fn add_joiner(&mut self, p: PeerAddr) {
        if p.id == self.gate.my_id {
            return;
        }
        if let Some(known) = self.addrs.get(&p.id) {
            if known.quorum == p.quorum && known.election == p.election {
                return;
            }
            self.quorum.remove(&p.id);
            self.election.remove(&p.id);
        }
        self.dial(p, |f| {
            tokio::spawn(f);
        });
        *self.gate.members.write().unwrap() = self.addrs.keys().copied().collect();
    }

    /// Every peer is dialed again on new connections (`Output::Rejoin`):
    /// one that no longer knows this server asks where it listens.
    pub(crate) fn redial(&mut self) {
        let all: Vec<PeerAddr> = self.addrs.values().cloned().collect();
        self.quorum.clear();
        self.election.clear();
        for p in all {
            self.dial(p, |f| {
                tokio::spawn(f);
            });
        }
    }
}

/// A dialer's way back after a failed attempt.
struct Retry<'a> {
    backoff: Duration,
    core: &'a mpsc::Sender<CoreInput>,
    peer: u64,
    came_up: &'a tokio::sync::Notify,
}

impl Retry<'_> {
    /// Tells the core the peer is lost (once per outage), drops what piled
    /// up meanwhile (Raft resends what matters) and waits the backoff;
    /// false when the server stops meanwhile, or the peer left.
    async fn wait(
        &mut self,
        reported: &mut bool,
        rx: &mut mpsc::Receiver<Vec<u8>>,
        stop: &mut broadcast::Receiver<()>,
    ) -> bool {
        if !*reported {
            *reported = true;
            let _ = self.core.try_send(CoreInput::PeerLost(self.peer));
        }
        loop {
            match rx.try_recv() {
                Ok(_) => {}
                // The peer left the ensemble (`Peers::update`).
                Err(mpsc::error::TryRecvError::Disconnected) => return false,
                Err(mpsc::error::TryRecvError::Empty) => break,
            }
        }
        tokio::select! {
            _ = stop.recv() => return false,
            _ = tokio::time::sleep(self.backoff) => {}
            _ = self.came_up.notified() => self.backoff = BACKOFF_MIN,
        }
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        true
    }
}

/// Keeps one outgoing connection up and writes queued frames to it.
#[allow(clippy::too_many_arguments)]
async fn dial_loop(
    gate: Arc<Gate>,
    peer: u64,
    port: &'static str,
    addr: String,
    mut rx: mpsc::Receiver<Vec<u8>>,
    lane: Arc<Lane>,
    core: mpsc::Sender<CoreInput>,
    mut stop: broadcast::Receiver<()>,
) {
    // Whatever way this ends, no thread writes to the socket any more.
    struct Down(Arc<Lane>);
    impl Drop for Down {
        fn drop(&mut self) {
            self.0.down();
        }
    }
    let lane = Down(lane);
    let mut down = Retry {
        backoff: BACKOFF_MIN,
        core: &core,
        peer,
        came_up: &gate.came_up,
    };
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
                }
                if !down.wait(&mut reported_down, &mut rx, &mut stop).await {
                    return;
                }
                continue;
            }
        };
        let _ = sock.set_nodelay(true);
        let (sock, shared) = match hello(sock, &addr, &gate, peer).await {
            Ok(s) => s,
            Err(why) => {
                if !reported_down {
                    tracing::warn!("server {peer} at {addr} ({port} port): {why}; retrying");
                }
                if !down.wait(&mut reported_down, &mut rx, &mut stop).await {
                    return;
                }
                continue;
            }
        };
        tracing::info!("connected to server {peer} at {addr} ({port} port)");
        // Up before the core hears it: the heartbeat it sends then
        // (`Node::peer_up`) must find the link up.
        lane.0.up(shared);
        let _ = core.try_send(CoreInput::PeerUp {
            peer,
            quorum: port == "quorum",
        });
        let up_since = std::time::Instant::now();
        let mut w = BufWriter::new(sock);
        let mut byte = [0u8; 1];
        loop {
            // The peer never writes on this connection: reading ends only
            // when it goes away. Without this, a peer that restarted would
            // be noticed at the next write — a vote, say, lost on the way
            // while the election waits for it.
            let f = tokio::select! {
                _ = stop.recv() => return,
                f = rx.recv() => f,
                r = w.get_mut().read(&mut byte) => {
                    if matches!(r, Ok(1)) && byte[0] == crate::peer_joiner::WHO {
                        // The peer does not know us: tell it where we listen.
                        let frame = crate::peer_joiner::address_frame(&gate.me);
                        let rest = lane.0.busy();
                        if w.write_all(&rest).await.is_ok()
                            && w.write_all(&frame).await.is_ok()
                            && w.flush().await.is_ok()
                        {
                            lane.0.idle(0);
                            tracing::info!("server {peer} ({port} port) asked where this server listens: told it");
                            continue;
                        }
                    }
                    tracing::info!(
                        "lost the connection to server {peer} at {addr} ({port} port){}",
                        match r {
                            Ok(0) => String::new(),
                            Ok(_) => ": it wrote on a connection only this server writes on".into(),
                            Err(e) => format!(": {e}"),
                        }
                    );
                    let _ = core.try_send(CoreInput::PeerLost(peer));
                    break;
                }
            };
            let Some(f) = f else { return };
            // A frame a direct write left unfinished goes first.
            let rest = lane.0.busy();
            let mut ok = w.write_all(&rest).await.is_ok() && w.write_all(&f).await.is_ok();
            let mut sent = crate::hops::on().then(Vec::new);
            if let Some(sent) = sent.as_mut() {
                sent.push(f);
            }
            let mut taken = 1;
            while ok {
                match rx.try_recv() {
                    Ok(more) => {
                        taken += 1;
                        ok = w.write_all(&more).await.is_ok();
                        if let Some(sent) = sent.as_mut() {
                            sent.push(more);
                        }
                    }
                    Err(_) => break,
                }
            }
            ok = ok && w.flush().await.is_ok();
            for f in sent.iter().flatten() {
                crate::hops::frame(crate::hops::Prefix::Flushed, f);
            }
            if !ok {
                tracing::info!("lost the connection to server {peer} at {addr} ({port} port)");
                let _ = core.try_send(CoreInput::PeerLost(peer));
                break;
            }
            lane.0.idle(taken);
        }
        lane.0.down();
        // A peer that drops us at once (one that does not count us as a
        // member, say, or crashes on start) is dialed again after the
        // backoff, not in a tight loop; after a long connection, at once.
        reported_down = true;
        if up_since.elapsed() < BACKOFF_MAX {
            if !down.wait(&mut reported_down, &mut rx, &mut stop).await {
                return;
            }
        } else {
            down.backoff = BACKOFF_MIN;
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    core: mpsc::Sender<CoreInput>,
    home: SnapshotHome,
    gate: Arc<Gate>,
    mut stop: broadcast::Receiver<()>,
) {
    let core = Arc::new(core);
    let home = Arc::new(home);
    // The peers' connections, read by tasks of their own: aborted when
    // this loop ends at shutdown (dropping the set aborts them).
    let mut readers = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stop.recv() => return,
            Some(_) = readers.join_next(), if !readers.is_empty() => {}
            r = listener.accept() => match r {
                Ok((sock, addr)) => {
                    let core = core.clone();
                    let home = home.clone();
                    let gate = gate.clone();
                    readers.spawn(async move { read_peer(sock, addr, &core, &home, &gate).await });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "peer accept failed");
                    tokio::time::sleep(BACKOFF_MIN).await;
                }
            }
        }
    }
}

/// Read buffer per peer connection.
const PEER_READ_BUFFER: usize = 256 * 1024;

/// Who is on the other end of an accepted connection: TLS when
/// configured, then its id, which must be another member's, or (when
/// servers that are not members are let in) any other; and whether it is
/// a member's.
async fn identify(sock: TcpStream, gate: &Gate) -> Result<(u64, Stream, bool), String> {
    let mut sock = gate.tls.get().accept(sock).await?;
    let mut id = [0u8; 8];
    sock.read_exact(&mut id)
        .await
        .map_err(|e| format!("no server id: {e}"))?;
    let from = u64::from_be_bytes(id);
    let member = gate.members.read().unwrap().contains(&from);
    if from == gate.my_id || from == 0 || (!member && !gate.joiners_allowed) {
        return Err(format!(
            "it calls itself server {from}, which is not another server of this ensemble"
        ));
    }
    Ok((from, sock, member))
}

/// Quorum authentication, given the 4 bytes after the id: its magic, or
/// the first frame's length (put back for the frame reader).
async fn authenticate(
    mut sock: Stream,
    from: u64,
    first: [u8; 4],
    gate: &Gate,
) -> Result<Stream, String> {
    let authenticated =
        crate::quorum_auth::accept(&mut sock, &gate.auth, gate.my_id, from, first).await?;
    if authenticated {
        tracing::debug!("server {from} authenticated (quorum SASL)");
    }
    if first == crate::quorum_auth::MAGIC {
        return Ok(sock);
    }
    Ok(Box::new(Prefixed::new(first.to_vec(), sock)))
}

/// Reads one peer connection until it ends; a malformed frame ends it.
/// However it ends, the core hears that the peer was lost.
async fn read_peer(
    sock: TcpStream,
    addr: SocketAddr,
    core: &mpsc::Sender<CoreInput>,
    home: &SnapshotHome,
    gate: &Gate,
) {
    let _ = sock.set_nodelay(true);
    let refused = |why: String| {
        tracing::warn!("refused a connection from {addr} on a quorum/election port: {why}");
    };
    let late = || {
        format!(
            "it did not name itself and authenticate within {} s",
            HANDSHAKE_LIMIT.as_secs()
        )
    };
    let (from, mut sock, member) =
        match tokio::time::timeout(HANDSHAKE_LIMIT, identify(sock, gate)).await {
            Ok(Ok(known)) => known,
            Ok(Err(why)) => return refused(why),
            Err(_) => return refused(late()),
        };
    gate.came_up.notify_waiters();
    // Not bounded in time: a dialer without quorum authentication sends
    // its first frame when it has one (an election connection may stay
    // quiet for long); one with it sends the magic at once. One that is
    // not a member is asked where it listens if it says nothing.
    let first = if member {
        let mut first = [0u8; 4];
        if sock.read_exact(&mut first).await.is_err() {
            return;
        }
        Some(first)
    } else {
        match crate::peer_joiner::first_bytes(&mut sock).await {
            Ok(first) => first,
            Err(_) => return,
        }
    };
    let mut sock = match first {
        Some(first) => {
            match tokio::time::timeout(HANDSHAKE_LIMIT, authenticate(sock, from, first, gate)).await
            {
                Ok(Ok(sock)) => sock,
                Ok(Err(why)) => return refused(why),
                Err(_) => return refused(late()),
            }
        }
        None if gate.auth.enabled && gate.auth.server_require => {
            return refused(format!(
                "server {from} did not authenticate and quorum.auth.serverRequireSasl is on"
            ))
        }
        None => sock,
    };
    if !member {
        match tokio::time::timeout(
            HANDSHAKE_LIMIT,
            crate::peer_joiner::ask_address(&mut sock, from),
        )
        .await
        {
            Ok(Ok(addr)) => {
                tracing::info!(
                    "server {from}, not a member, calls in from {addr_q} (quorum) and {addr_e} (election)",
                    addr_q = addr.quorum,
                    addr_e = addr.election
                );
                if core.send(CoreInput::Joiner(addr)).await.is_err() {
                    return;
                }
            }
            Ok(Err(why)) => return refused(why),
            Err(_) => return refused(late()),
        }
    }
    // Buffered: a peer's frames are small and many (appends, acks,
    // heartbeats); reading each with two syscalls cost a quarter of a
    // leader's CPU under writes.
    let mut sock = tokio::io::BufReader::with_capacity(PEER_READ_BUFFER, sock);
    if read_frames(&mut sock, from, core, home).await {
        let _ = core.send(CoreInput::PeerLost(from)).await;
    }
}

/// Returns whether this was a replication connection (its end means the
/// peer may be lost), not a snapshot stream.
async fn read_frames<S: AsyncRead + AsyncWrite + Unpin>(
    sock: &mut S,
    from: u64,
    core: &mpsc::Sender<CoreInput>,
    home: &SnapshotHome,
) -> bool {
    let mut buf = Vec::new();
    loop {
        match peer_frame::read(sock, &mut buf, MAX_FRAME_BYTES).await {
            Ok(()) => {}
            Err(peer_frame::ReadError::Io(_)) => return true,
            Err(e) => {
                tracing::warn!(from, "bad frame from a peer ({e}); closing its connection");
                return true;
            }
        }
        let input = match buf[0] {
            peer_frame::KIND_RAFT => match RaftMessage::parse_from_bytes(&buf[1..]) {
                // A follower passes a leadership transfer on to the leader
                // as Raft words it: `from` names the server to lead (any
                // member may ask for that; it changes no data).
                Ok(m) if m.from != from && m.get_msg_type() != MessageType::MsgTransferLeader => {
                    tracing::warn!(
                        from,
                        "a raft message on server {from}'s connection says it is from server {}; closing",
                        m.from
                    );
                    return true;
                }
                Ok(m) => {
                    crate::hops::raft(crate::hops::Prefix::Read, &m);
                    CoreInput::Peer(Box::new(m))
                }
                Err(e) => {
                    tracing::warn!(from, error = %e, "undecodable raft message; closing");
                    return true;
                }
            },
            peer_frame::KIND_LIVENESS => {
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
                        return true;
                    }
                }
            }
            peer_frame::KIND_SNAP_OFFER => {
                if let Err(e) =
                    crate::snap_transfer::receive(sock, &buf[1..], &home.data_dir, home.tree, core)
                        .await
                {
                    tracing::warn!("receiving a snapshot from server {from} failed: {e}");
                }
                return false;
            }
            k => {
                tracing::warn!(from, kind = k, "unknown frame kind from a peer; closing");
                return true;
            }
        };
        if core.send(input).await.is_err() {
            return true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn home() -> SnapshotHome {
        SnapshotHome {
            data_dir: std::env::temp_dir(),
            tree: tree::TreeConfig {
                extended_types: false,
                schemes: Default::default(),
                enforce_quota: false,
            },
        }
    }

    /// Frames of Raft messages of `kind` naming `senders`, read as from
    /// server 2: whether the connection ended, and the senders passed on.
    async fn read_as_server_2(kind: MessageType, senders: &[u64]) -> (bool, Vec<u64>) {
        let (mut w, mut r) = tokio::io::duplex(1 << 16);
        for &from in senders {
            let mut m = RaftMessage::default();
            m.set_msg_type(kind);
            m.from = from;
            m.to = 1;
            let body = m.write_to_bytes().unwrap();
            peer_frame::write(&mut w, peer_frame::KIND_RAFT, &[&body])
                .await
                .unwrap();
        }
        drop(w);
        let (tx, mut rx) = mpsc::channel(16);
        let lost = read_frames(&mut r, 2, &tx, &home()).await;
        drop(tx);
        let mut got = Vec::new();
        while let Some(i) = rx.recv().await {
            if let CoreInput::Peer(m) = i {
                got.push(m.from);
            }
        }
        (lost, got)
    }

    #[tokio::test]
    async fn a_raft_message_must_name_its_connections_server() {
        let append = MessageType::MsgAppend;
        assert_eq!(read_as_server_2(append, &[2, 2]).await, (true, vec![2, 2]));
        // A message claiming server 3 on server 2's connection ends it.
        assert_eq!(read_as_server_2(append, &[2, 3, 2]).await, (true, vec![2]));
    }

    #[tokio::test]
    async fn a_forwarded_leadership_transfer_names_the_server_to_lead() {
        let transfer = MessageType::MsgTransferLeader;
        assert_eq!(read_as_server_2(transfer, &[3]).await, (true, vec![3]));
    }
}
