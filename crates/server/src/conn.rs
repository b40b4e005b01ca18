//! Client connections: the accept loops (with `maxClientCnxns` per IP) of
//! the client port and of the secure client port (a TLS handshake first,
//! `tls::Acceptor`), and one task per connection that owns its socket —
//! it reads frames, passes them to the core task, and writes what the core
//! sends back.
//!
//! A frame over `jute.maxbuffer`, a malformed header or connect request,
//! a failed TLS handshake, or no connect request within
//! `nio.sessionlessCnxnTimeout`, closes that connection with a log line;
//! nothing else is affected.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};

use bytes::{Buf, BytesMut};
use proto::frame::{frame_len, FrameError};
use proto::{ConnectRequest, Jute};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::net::TcpListener;
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::channels::{CoreInput, ToConn, CONN_QUEUE};
use crate::config::Config;
use crate::fourlw;
use crate::tls;

/// Requests in flight over all connections (`globalOutstandingLimit`):
/// at the limit, connections stop reading from their sockets until
/// replies go out — back-pressure instead of unbounded queues.
pub(crate) struct Outstanding {
    count: std::sync::atomic::AtomicUsize,
    limit: usize,
    below: tokio::sync::Notify,
}

impl Outstanding {
    pub(crate) fn new(limit: usize) -> Arc<Outstanding> {
        Arc::new(Outstanding {
            count: Default::default(),
            limit,
            below: tokio::sync::Notify::new(),
        })
    }

    fn over(&self) -> bool {
        self.count.load(std::sync::atomic::Ordering::Relaxed) >= self.limit
    }

    fn add(&self, n: usize) {
        self.count
            .fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    }

    fn done(&self, n: usize) {
        if n == 0 {
            return;
        }
        let before = self
            .count
            .fetch_sub(n, std::sync::atomic::Ordering::Relaxed);
        if before >= self.limit && before - n < self.limit {
            self.below.notify_waiters();
        }
    }
}

/// Counts connections per client IP; a slot is released when its guard drops.
#[derive(Clone, Default)]
struct PerIp(Arc<Mutex<HashMap<IpAddr, usize>>>);

struct Slot(PerIp, IpAddr);

impl PerIp {
    fn take(&self, ip: IpAddr, max: usize) -> Option<Slot> {
        let mut m = self.0.lock().expect("per-ip table");
        let n = m.entry(ip).or_insert(0);
        if max != 0 && *n >= max {
            return None;
        }
        *n += 1;
        Some(Slot(self.clone(), ip))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut m = self.0 .0.lock().expect("per-ip table");
        if let Some(n) = m.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.1);
            }
        }
    }
}

/// What every connection task of both ports shares.
pub(crate) struct Shared {
    cfg: Arc<Config>,
    core: mpsc::Sender<CoreInput>,
    outstanding: Arc<Outstanding>,
    stop: broadcast::Sender<()>,
    /// The next connection's id, unique over both ports.
    next_conn: AtomicU64,
    /// Where answers' `to_socket` times go (`budget`).
    socket_stage: Arc<crate::budget::SocketStage>,
}

impl Shared {
    pub(crate) fn new(
        cfg: Arc<Config>,
        core: mpsc::Sender<CoreInput>,
        stop: broadcast::Sender<()>,
        socket_stage: Arc<crate::budget::SocketStage>,
    ) -> Arc<Shared> {
        Arc::new(Shared {
            socket_stage,
            outstanding: Outstanding::new(cfg.global_outstanding_limit),
            cfg,
            core,
            stop,
            next_conn: AtomicU64::new(1),
        })
    }
}

/// How a port's connections begin.
#[derive(Clone)]
pub(crate) enum Mode {
    Plain,
    Tls(Arc<tls::Current<tls::Acceptor>>),
    /// `client.portUnification`: TLS when the first byte is a TLS
    /// handshake record's, plaintext otherwise.
    Either(Arc<tls::Current<tls::Acceptor>>),
}

/// Accepts the clients of one port.
pub(crate) async fn accept_loop(listener: TcpListener, mode: Mode, shared: Arc<Shared>) {
    let per_ip = PerIp::default();
    let mut stop_rx = shared.stop.subscribe();
    let mut conns = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stop_rx.recv() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
            r = listener.accept() => match r {
                Ok((sock, peer)) => {
                    // An IPv4 client of the dual-stack wildcard arrives as
                    // ::ffff:a.b.c.d; per-IP limits, `ip` ACLs and cons
                    // see a.b.c.d, as in ZooKeeper.
                    let peer = SocketAddr::new(peer.ip().to_canonical(), peer.port());
                    let max = shared.cfg.max_client_cnxns;
                    let Some(slot) = per_ip.take(peer.ip(), max) else {
                        tracing::warn!("Too many connections from {} - max is {max}", peer.ip());
                        continue;
                    };
                    let id = shared.next_conn.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let max = shared.cfg.jute_maxbuffer_bytes;
                    let _ = sock.set_nodelay(true);
                    match &mode {
                        Mode::Plain => {
                            let (rd, wr) = sock.into_split();
                            conns.spawn(serve(Framed::new(rd, wr, peer, max), id, shared.clone(), slot, Vec::new()));
                        }
                        Mode::Tls(tls) => {
                            conns.spawn(serve_tls(sock, peer, tls.get(), id, shared.clone(), slot));
                        }
                        Mode::Either(tls) => {
                            conns.spawn(serve_either(sock, peer, tls.get(), id, shared.clone(), slot));
                        }
                    }
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
    while conns.join_next().await.is_some() {}
}

/// A TLS client: the handshake (within `nio.sessionlessCnxnTimeout`),
/// then the connection as any other, with the identities its certificate
/// gives.
async fn serve_tls(
    sock: tokio::net::TcpStream,
    peer: SocketAddr,
    tls: Arc<tls::Acceptor>,
    conn: u64,
    shared: Arc<Shared>,
    slot: Slot,
) {
    let limit = std::time::Duration::from_millis(shared.cfg.sessionless_cnxn_timeout_ms);
    let (stream, ids) = match tokio::time::timeout(limit, tls.accept(sock)).await {
        Ok(Ok(done)) => done,
        Ok(Err(why)) => {
            tracing::warn!(%peer, "Unsuccessful TLS handshake: {why}; closing");
            return;
        }
        Err(_) => {
            tracing::warn!(%peer, "Unsuccessful TLS handshake: not done within {} ms (zookeeper.nio.sessionlessCnxnTimeout); closing", limit.as_millis());
            return;
        }
    };
    let (rd, wr) = tokio::io::split(stream);
    let max = shared.cfg.jute_maxbuffer_bytes;
    serve(Framed::new(rd, wr, peer, max), conn, shared, slot, ids).await
}

/// TLS record type of a handshake: a TLS client's first byte. A client
/// frame begins with its length's high byte (0 for anything under 16 MiB)
/// and a four-letter word with a letter.
const TLS_HANDSHAKE: u8 = 0x16;

/// A client of a port that takes both (`client.portUnification`): its
/// first byte, looked at without taking it, says which it speaks.
async fn serve_either(
    sock: tokio::net::TcpStream,
    peer: SocketAddr,
    tls: Arc<tls::Acceptor>,
    conn: u64,
    shared: Arc<Shared>,
    slot: Slot,
) {
    let limit = std::time::Duration::from_millis(shared.cfg.sessionless_cnxn_timeout_ms);
    let mut first = [0u8; 1];
    match tokio::time::timeout(limit, sock.peek(&mut first)).await {
        Ok(Ok(1)) if first[0] == TLS_HANDSHAKE => {
            serve_tls(sock, peer, tls, conn, shared, slot).await
        }
        Ok(Ok(1)) => {
            let (rd, wr) = sock.into_split();
            let max = shared.cfg.jute_maxbuffer_bytes;
            serve(
                Framed::new(rd, wr, peer, max),
                conn,
                shared,
                slot,
                Vec::new(),
            )
            .await
        }
        Ok(_) => {}
        Err(_) => {
            tracing::info!(%peer, "nothing sent within {} ms (zookeeper.nio.sessionlessCnxnTimeout); closing", limit.as_millis());
        }
    }
}

/// The framing of one connection: the socket's halves (a TCP socket's or
/// a TLS stream's), what has been read and not yet handed on, and the
/// frame bound (`jute.maxbuffer`).
struct Framed<R, W> {
    rd: R,
    wr: BufWriter<W>,
    buf: BytesMut,
    max: usize,
    peer: SocketAddr,
}

/// What the buffer holds next.
enum Next {
    /// A complete frame (its length prefix removed).
    Frame(BytesMut),
    /// Not a whole frame yet: read more.
    More,
    /// Bytes no frame can be made of: the connection must close (the
    /// reason is logged).
    Bad,
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> Framed<R, W> {
    fn new(rd: R, wr: W, peer: SocketAddr, max: usize) -> Framed<R, W> {
        Framed {
            rd,
            wr: BufWriter::new(wr),
            buf: BytesMut::with_capacity(4096),
            max,
            peer,
        }
    }

    /// Reads what the socket has; false at its end or on an error.
    async fn fill(&mut self) -> bool {
        matches!(self.rd.read_buf(&mut self.buf).await, Ok(n) if n > 0)
    }

    fn next(&mut self) -> Next {
        let peer = self.peer;
        match frame_len(&self.buf, self.max) {
            Ok(Some(len)) => {
                let mut frame = self.buf.split_to(4 + len);
                frame.advance(4);
                Next::Frame(frame)
            }
            Ok(None) => Next::More,
            Err(FrameError::TooLarge { len, max_bytes }) => {
                tracing::warn!(%peer, len, max_bytes, "Len error: request larger than jute.maxbuffer; closing");
                Next::Bad
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection");
                Next::Bad
            }
        }
    }
}

/// How a connection's first frame turned out.
enum Hello {
    Connect(ConnectRequest),
    /// A four-letter word (answered) or nothing usable: the connection ends.
    Done,
}

/// The first frame: a four-letter word (answered here, then the
/// connection closes) or a ConnectRequest, within
/// `sessionlessCnxnTimeout` — a silent socket must not hold one of its
/// address's `maxClientCnxns` slots for good.
async fn handshake<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    io: &mut Framed<R, W>,
    shared: &Shared,
    stop: &mut broadcast::Receiver<()>,
) -> Hello {
    let cfg = &shared.cfg;
    let peer = io.peer;
    let sessionless = tokio::time::sleep(std::time::Duration::from_millis(
        cfg.sessionless_cnxn_timeout_ms,
    ));
    tokio::pin!(sessionless);
    loop {
        if io.buf.len() >= 4 {
            if let Some(cmd) = fourlw::detect(&io.buf[..4]) {
                let text = if cfg.four_letter_allowed(cmd) {
                    let (tx, rx) = oneshot::channel();
                    let _ = shared
                        .core
                        .send(CoreInput::FourLetter {
                            cmd: cmd.to_string(),
                            from: peer,
                            reply: tx,
                        })
                        .await;
                    rx.await.unwrap_or_default()
                } else {
                    fourlw::not_whitelisted(cmd)
                };
                let _ = io.wr.write_all(text.as_bytes()).await;
                let _ = io.wr.shutdown().await;
                return Hello::Done;
            }
            match io.next() {
                Next::Frame(body) => {
                    return match ConnectRequest::from_bytes(&body) {
                        Ok(c) => Hello::Connect(c),
                        Err(e) => {
                            tracing::warn!(%peer, error = %e, "malformed connect request; closing");
                            Hello::Done
                        }
                    }
                }
                Next::More => {}
                Next::Bad => return Hello::Done,
            }
        }
        tokio::select! {
            more = io.fill() => if !more { return Hello::Done },
            _ = &mut sessionless => {
                tracing::info!(%peer, "no connect request within {} ms (zookeeper.nio.sessionlessCnxnTimeout); closing", cfg.sessionless_cnxn_timeout_ms);
                return Hello::Done;
            }
            _ = stop.recv() => return Hello::Done,
        }
    }
}

enum Ended {
    Eof,
    ClosedByServer,
    Stop,
}

/// One connection: the handshake, then the loop that hands request frames
/// to the core and writes what the core sends back, until either side
/// ends it. `ids`: what the transport established (`CoreInput::Connect`).
async fn serve<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    mut io: Framed<R, W>,
    conn: u64,
    shared: Arc<Shared>,
    _slot: Slot,
    ids: Vec<proto::Id>,
) {
    let mut stop = shared.stop.subscribe();
    let connect = match handshake(&mut io, &shared, &mut stop).await {
        Hello::Connect(c) => c,
        Hello::Done => return,
    };
    let (tx, rx) = mpsc::channel(CONN_QUEUE);
    let hello = CoreInput::Connect {
        conn,
        req: connect,
        addr: io.peer,
        ids,
        tx,
    };
    if shared.core.send(hello).await.is_err() {
        return;
    }
    // This connection's requests not yet answered: its share of
    // `globalOutstandingLimit`, given back as replies go out or at the end.
    let mut in_flight = 0usize;
    let ended = requests_and_replies(&mut io, conn, &shared, rx, &mut stop, &mut in_flight).await;
    shared.outstanding.done(in_flight);
    if !matches!(ended, Ended::Stop) {
        let _ = shared.core.send(CoreInput::Disconnect { conn }).await;
    }
    let _ = io.wr.shutdown().await;
}

/// The connection's loop after the handshake.
async fn requests_and_replies<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    io: &mut Framed<R, W>,
    conn: u64,
    shared: &Shared,
    mut rx: mpsc::Receiver<ToConn>,
    stop: &mut broadcast::Receiver<()>,
    in_flight: &mut usize,
) -> Ended {
    let (peer, outstanding) = (io.peer, &shared.outstanding);
    let mut was_throttled = false;
    // When each answer of the batch being written was handed over.
    let mut answers: Vec<std::time::Instant> = Vec::new();
    loop {
        let read_at = std::time::Instant::now();
        // Hand over every complete frame already buffered.
        loop {
            match io.next() {
                Next::Frame(mut frame) if frame.len() >= 8 => {
                    let xid = frame.get_i32();
                    let op = frame.get_i32();
                    *in_flight += 1;
                    outstanding.add(1);
                    crate::hops::hop("conn_in", 0);
                    let req = CoreInput::Request {
                        conn,
                        xid,
                        op,
                        body: frame.freeze(),
                        read_at,
                    };
                    if shared.core.send(req).await.is_err() {
                        return Ended::Stop;
                    }
                }
                Next::Frame(frame) => {
                    tracing::warn!(%peer, len = frame.len(), "request shorter than its header; closing");
                    return Ended::Eof;
                }
                Next::More => break,
                Next::Bad => return Ended::Eof,
            }
        }
        // Over the limit: wait to be told it is below again. The waiter is
        // registered before the second look, so a wake-up between that look
        // and the wait is not lost (`notify_waiters` wakes only registered
        // waiters); below the limit, nothing is registered (no lock).
        let below = outstanding.below.notified();
        tokio::pin!(below);
        let mut throttled = outstanding.over();
        if throttled {
            below.as_mut().enable();
            throttled = outstanding.over();
        }
        if throttled && !was_throttled {
            tracing::debug!(%peer, "globalOutstandingLimit reached: not reading from this client until replies go out");
        }
        was_throttled = throttled;
        tokio::select! {
            more = io.fill(), if !throttled => if !more { return Ended::Eof },
            _ = &mut below, if throttled => {}
            m = rx.recv() => {
                let Some(first) = m else { return Ended::ClosedByServer };
                // Write everything queued, then flush once.
                let mut next = Some(first);
                while let Some(m) = next.take() {
                    match m {
                        ToConn::Frame { frame, reply, at } => {
                            if reply && *in_flight > 0 {
                                *in_flight -= 1;
                                outstanding.done(1);
                            }
                            if reply {
                                answers.push(at);
                            }
                            if io.wr.write_all(&frame).await.is_err() {
                                return Ended::Eof;
                            }
                        }
                        ToConn::Close(reason) => {
                            let _ = io.wr.flush().await;
                            tracing::debug!(%peer, reason, "closing connection");
                            return Ended::ClosedByServer;
                        }
                    }
                    next = rx.try_recv().ok();
                }
                if io.wr.flush().await.is_err() {
                    return Ended::Eof;
                }
                crate::hops::hop("conn_out", 0);
                let written = std::time::Instant::now();
                for at in answers.drain(..) {
                    shared.socket_stage.written(at, written);
                }
            }
            _ = stop.recv() => return Ended::Stop,
        }
    }
}
