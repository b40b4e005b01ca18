//! Client connections: the accept loop (with `maxClientCnxns` per IP) and
//! one task per connection that owns its socket — it reads frames, passes
//! them to the core task, and writes what the core sends back.
//!
//! A frame over `jute.maxbuffer`, a malformed header or connect request,
//! or no connect request within `nio.sessionlessCnxnTimeout`, closes that
//! connection with a log line; nothing else is affected.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use bytes::{Buf, BytesMut};
use proto::frame::{frame_len, FrameError};
use proto::{ConnectRequest, Jute};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::channels::{CoreInput, ToConn, CONN_QUEUE};
use crate::config::Config;
use crate::fourlw;

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

pub(crate) async fn accept_loop(
    listener: TcpListener,
    cfg: Arc<Config>,
    core: mpsc::Sender<CoreInput>,
    stop: broadcast::Sender<()>,
) {
    let outstanding = Outstanding::new(cfg.global_outstanding_limit);
    let per_ip = PerIp::default();
    let mut stop_rx = stop.subscribe();
    let mut next_conn: u64 = 1;
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
                    let Some(slot) = per_ip.take(peer.ip(), cfg.max_client_cnxns) else {
                        tracing::warn!("Too many connections from {} - max is {}", peer.ip(), cfg.max_client_cnxns);
                        continue;
                    };
                    let id = next_conn;
                    next_conn += 1;
                    conns.spawn(serve(sock, peer, id, cfg.clone(), core.clone(), stop.subscribe(), slot, outstanding.clone()));
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

enum Ended {
    Eof,
    ClosedByServer,
    Stop,
}

async fn serve(
    sock: TcpStream,
    peer: SocketAddr,
    conn: u64,
    cfg: Arc<Config>,
    core: mpsc::Sender<CoreInput>,
    mut stop: broadcast::Receiver<()>,
    _slot: Slot,
    outstanding: Arc<Outstanding>,
) {
    let _ = sock.set_nodelay(true);
    let (mut rd, wr) = sock.into_split();
    let mut wr = BufWriter::new(wr);
    let mut buf = BytesMut::with_capacity(4096);
    let max = cfg.jute_maxbuffer_bytes;

    // The first frame: a four-letter word or a ConnectRequest, within
    // `sessionlessCnxnTimeout` — a silent socket must not hold one of its
    // address's `maxClientCnxns` slots for good.
    let sessionless = tokio::time::sleep(std::time::Duration::from_millis(
        cfg.sessionless_cnxn_timeout_ms,
    ));
    tokio::pin!(sessionless);
    let connect = loop {
        if buf.len() >= 4 {
            if let Some(cmd) = fourlw::detect(&buf[..4]) {
                let text = if cfg.four_letter_allowed(cmd) {
                    let (tx, rx) = oneshot::channel();
                    let _ = core
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
                let _ = wr.write_all(text.as_bytes()).await;
                let _ = wr.shutdown().await;
                return;
            }
            match frame_len(&buf, max) {
                Ok(Some(len)) => {
                    let body = buf.split_to(4 + len);
                    match ConnectRequest::from_bytes(&body[4..]) {
                        Ok(c) => break c,
                        Err(e) => {
                            tracing::warn!(%peer, error = %e, "malformed connect request; closing");
                            return;
                        }
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "closing connection");
                    return;
                }
            }
        }
        tokio::select! {
            r = rd.read_buf(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
            _ = &mut sessionless => {
                tracing::info!(%peer, "no connect request within {} ms (zookeeper.nio.sessionlessCnxnTimeout); closing", cfg.sessionless_cnxn_timeout_ms);
                return;
            }
            _ = stop.recv() => return,
        }
    };

    let (tx, mut rx) = mpsc::channel(CONN_QUEUE);
    if core
        .send(CoreInput::Connect {
            conn,
            req: connect,
            addr: peer,
            tx,
        })
        .await
        .is_err()
    {
        return;
    }
    // This connection's requests not yet answered.
    let mut in_flight = 0usize;
    let mut was_throttled = false;
    let ended = 'io: loop {
        // Hand over every complete frame already buffered.
        loop {
            match frame_len(&buf, max) {
                Ok(Some(len)) if len >= 8 => {
                    let mut frame = buf.split_to(4 + len);
                    frame.advance(4);
                    let xid = frame.get_i32();
                    let op = frame.get_i32();
                    in_flight += 1;
                    outstanding.add(1);
                    if core
                        .send(CoreInput::Request {
                            conn,
                            xid,
                            op,
                            body: frame.freeze(),
                        })
                        .await
                        .is_err()
                    {
                        break 'io Ended::Stop;
                    }
                }
                Ok(Some(len)) => {
                    tracing::warn!(%peer, len, "request shorter than its header; closing");
                    break 'io Ended::Eof;
                }
                Ok(None) => break,
                Err(FrameError::TooLarge { len, max_bytes }) => {
                    tracing::warn!(%peer, len, max_bytes, "Len error: request larger than jute.maxbuffer; closing");
                    break 'io Ended::Eof;
                }
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "closing connection");
                    break 'io Ended::Eof;
                }
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
            r = rd.read_buf(&mut buf), if !throttled => match r {
                Ok(0) | Err(_) => break Ended::Eof,
                Ok(_) => {}
            },
            _ = &mut below, if throttled => {}
            m = rx.recv() => match m {
                Some(first @ ToConn::Frame { .. }) => {
                    // Write everything queued, then flush once.
                    let mut out = Some(first);
                    while let Some(m) = out.take() {
                        match m {
                            ToConn::Frame { frame, reply } => {
                                if reply && in_flight > 0 {
                                    in_flight -= 1;
                                    outstanding.done(1);
                                }
                                if wr.write_all(&frame).await.is_err() {
                                    break 'io Ended::Eof;
                                }
                            }
                            ToConn::Close(reason) => {
                                let _ = wr.flush().await;
                                tracing::debug!(%peer, reason, "closing connection");
                                break 'io Ended::ClosedByServer;
                            }
                        }
                        out = rx.try_recv().ok();
                    }
                    if wr.flush().await.is_err() {
                        break Ended::Eof;
                    }
                }
                Some(ToConn::Close(reason)) => {
                    let _ = wr.flush().await;
                    tracing::debug!(%peer, reason, "closing connection");
                    break Ended::ClosedByServer;
                }
                None => break Ended::ClosedByServer,
            },
            _ = stop.recv() => break Ended::Stop,
        }
    };
    outstanding.done(in_flight);
    if !matches!(ended, Ended::Stop) {
        let _ = core.send(CoreInput::Disconnect { conn }).await;
    }
    let _ = wr.shutdown().await;
}
