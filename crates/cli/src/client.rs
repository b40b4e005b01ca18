//! A small blocking ZooKeeper client for the shell: one session, one
//! request at a time, pings from a background thread, watch events handed
//! to a channel, and reconnection to the next server of the connect string
//! with the same session (watches re-registered with setWatches2, auth
//! replayed), as the Java client does.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use proto::frame::{finish_frame, start_frame};
use proto::{
    ConnectRequest, ConnectResponse, ErrorCode, Jute, OpCode, Reader, ReplyHeader, Request,
    RequestHeader, SetWatches2, WatcherEvent, Xid,
};

/// A watch event or a connection state change, as zkCli prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub state: &'static str,
    pub kind: &'static str,
    /// None for state changes ("path:null").
    pub path: Option<String>,
    /// The zxid in the notification's header; -1 for events the client
    /// makes itself. zkCli 3.9 prints it (`crate::ZKCLI_39`).
    pub zxid: i64,
}

impl std::fmt::Display for Event {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "WatchedEvent state:{} type:{} path:{}",
            self.state,
            self.kind,
            self.path.as_deref().unwrap_or("null")
        )?;
        if crate::ZKCLI_39.load(std::sync::atomic::Ordering::Relaxed) {
            write!(f, " zxid: {}", self.zxid)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientError {
    /// The server answered with this error code.
    Keeper(ErrorCode),
    /// No server could be reached, or the connection broke mid-request.
    ConnectionLoss,
    SessionExpired,
    /// Bytes from the server that do not decode.
    Protocol(String),
}

impl ClientError {
    pub fn code(&self) -> ErrorCode {
        match self {
            ClientError::Keeper(c) => *c,
            ClientError::ConnectionLoss => ErrorCode::ConnectionLoss,
            ClientError::SessionExpired => ErrorCode::SessionExpired,
            ClientError::Protocol(_) => ErrorCode::MarshallingError,
        }
    }
}

/// Watches this session holds, re-registered after a reconnect.
#[derive(Default, Debug, Clone)]
struct Watches {
    data: Vec<String>,
    exist: Vec<String>,
    child: Vec<String>,
    persistent: Vec<String>,
    recursive: Vec<String>,
}

struct Live {
    writer: Arc<Mutex<TcpStream>>,
    replies: mpsc::Receiver<(ReplyHeader, Vec<u8>)>,
    alive: Arc<AtomicBool>,
    server: String,
}

pub struct Client {
    pub hosts: Vec<String>,
    next: usize,
    live: Option<Live>,
    session_id: i64,
    passwd: Vec<u8>,
    pub timeout_ms: i32,
    last_zxid: Arc<Mutex<i64>>,
    xid: i32,
    events: mpsc::Sender<Event>,
    watches: Watches,
    auth: Vec<(String, Vec<u8>)>,
    closed: bool,
    /// One-shot watches the server fired, noted by the reader thread: not
    /// re-registered after a reconnect.
    fired: Arc<Mutex<Vec<Event>>>,
}

fn state_name(code: i32) -> &'static str {
    match code {
        0 => "Disconnected",
        3 => "SyncConnected",
        4 => "AuthFailed",
        5 => "ConnectedReadOnly",
        6 => "SaslAuthenticated",
        -112 => "Expired",
        7 => "Closed",
        _ => "Unknown",
    }
}

fn event_name(code: i32) -> &'static str {
    match code {
        -1 => "None",
        1 => "NodeCreated",
        2 => "NodeDeleted",
        3 => "NodeDataChanged",
        4 => "NodeChildrenChanged",
        5 => "DataWatchRemoved",
        6 => "ChildWatchRemoved",
        7 => "PersistentWatchRemoved",
        _ => "Unknown",
    }
}

fn frame(body: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut w = Vec::with_capacity(64);
    let at = start_frame(&mut w);
    body(&mut w);
    finish_frame(&mut w, at);
    w
}

fn read_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len)?;
    let len = i32::from_be_bytes(len);
    if !(0..=(64 << 20)).contains(&len) {
        return Err(std::io::Error::other(format!("bad frame length {len}")));
    }
    let mut b = vec![0u8; len as usize];
    s.read_exact(&mut b)?;
    Ok(b)
}

impl Client {
    /// `connect` is zkCli's `-server` value: host:port[,host:port...].
    pub fn new(connect: &str, timeout_ms: i32, events: mpsc::Sender<Event>) -> Client {
        let hosts = connect
            .split(',')
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .map(|h| {
                if h.contains(':') {
                    h
                } else {
                    format!("{h}:2181")
                }
            })
            .collect();
        Client {
            hosts,
            next: 0,
            live: None,
            session_id: 0,
            passwd: vec![0; 16],
            timeout_ms,
            last_zxid: Arc::new(Mutex::new(0)),
            xid: 1,
            events,
            watches: Watches::default(),
            auth: Vec::new(),
            closed: false,
            fired: Arc::new(Mutex::new(Vec::new())),
        }
    }

    pub fn connected(&self) -> bool {
        self.live
            .as_ref()
            .is_some_and(|l| l.alive.load(Ordering::Relaxed))
    }

    /// The server of the current connection, for the prompt.
    pub fn server(&self) -> Option<&str> {
        self.live.as_ref().map(|l| l.server.as_str())
    }

    /// The credentials of the last `addauth digest`, "user:password".
    pub fn digest_credentials(&self) -> Option<String> {
        self.auth
            .iter()
            .rev()
            .find(|(scheme, _)| scheme == "digest")
            .map(|(_, a)| String::from_utf8_lossy(a).into_owned())
    }

    /// `close` ended the session (a new `connect` makes a new client).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    pub fn session_id(&self) -> i64 {
        self.session_id
    }

    /// Connects (or reconnects with the same session) to the next server
    /// of the connect string that answers; tries each once.
    pub fn connect(&mut self) -> Result<(), ClientError> {
        if self.connected() {
            return Ok(());
        }
        if self.closed {
            return Err(ClientError::SessionExpired);
        }
        let was_connected = self.live.take().is_some();
        if was_connected {
            let _ = self.events.send(Event {
                state: "Disconnected",
                kind: "None",
                path: None,
                zxid: -1,
            });
        }
        // As the Java client: keep trying the servers in turn, with a
        // growing pause between rounds, until the session timeout passes.
        let deadline =
            std::time::Instant::now() + Duration::from_millis(self.timeout_ms.max(1000) as u64);
        let mut pause = Duration::from_millis(50);
        loop {
            for _ in 0..self.hosts.len().max(1) {
                let host = self.hosts.get(self.next).cloned().unwrap_or_default();
                self.next = (self.next + 1) % self.hosts.len().max(1);
                let r = self.try_connect(&host);
                if std::env::var_os("FERROKEEPER_CLI_DEBUG").is_some() {
                    eprintln!("connect to {host}: {r:?}");
                }
                match r {
                    Ok(()) => return Ok(()),
                    Err(ClientError::SessionExpired) => {
                        self.closed = true;
                        let _ = self.events.send(Event {
                            state: "Expired",
                            kind: "None",
                            path: None,
                            zxid: -1,
                        });
                        return Err(ClientError::SessionExpired);
                    }
                    Err(_) => continue,
                }
            }
            if std::time::Instant::now() + pause > deadline {
                return Err(ClientError::ConnectionLoss);
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    fn try_connect(&mut self, host: &str) -> Result<(), ClientError> {
        let addr = host
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or(ClientError::ConnectionLoss)?;
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .map_err(|_| ClientError::ConnectionLoss)?;
        let _ = s.set_nodelay(true);
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: *self.last_zxid.lock().unwrap(),
            timeout_ms: self.timeout_ms,
            session_id: self.session_id,
            passwd: Some(self.passwd.clone()),
            read_only: Some(false),
        };
        s.write_all(&frame(|w| req.write(w)))
            .map_err(|_| ClientError::ConnectionLoss)?;
        s.set_read_timeout(Some(
            Duration::from_millis(self.timeout_ms.max(1000) as u64),
        ))
        .map_err(|_| ClientError::ConnectionLoss)?;
        let body = read_frame(&mut s)
            .map_err(|e| ClientError::Protocol(format!("reading the connect response: {e}")))?;
        let resp =
            ConnectResponse::from_bytes(&body).map_err(|e| ClientError::Protocol(e.to_string()))?;
        if resp.session_id == 0 {
            return Err(ClientError::SessionExpired);
        }
        s.set_read_timeout(None)
            .map_err(|_| ClientError::ConnectionLoss)?;
        self.session_id = resp.session_id;
        self.passwd = resp.passwd.unwrap_or_default();
        self.timeout_ms = resp.timeout_ms;
        let alive = Arc::new(AtomicBool::new(true));
        let writer = Arc::new(Mutex::new(
            s.try_clone().map_err(|_| ClientError::ConnectionLoss)?,
        ));
        let (tx, rx) = mpsc::channel();
        {
            let alive = alive.clone();
            let events = self.events.clone();
            let last_zxid = self.last_zxid.clone();
            let fired = self.fired.clone();
            std::thread::spawn(move || reader(s, tx, events, alive, last_zxid, fired));
        }
        {
            let alive = alive.clone();
            let writer = writer.clone();
            let every = Duration::from_millis((self.timeout_ms / 3).max(100) as u64);
            std::thread::spawn(move || {
                let ping = frame(|w| {
                    RequestHeader {
                        xid: Xid::PING,
                        op: OpCode::Ping.code(),
                    }
                    .write(w)
                });
                while alive.load(Ordering::Relaxed) {
                    std::thread::sleep(every);
                    if writer.lock().unwrap().write_all(&ping).is_err() {
                        alive.store(false, Ordering::Relaxed);
                    }
                }
            });
        }
        self.live = Some(Live {
            writer,
            replies: rx,
            alive,
            server: host.to_string(),
        });
        let _ = self.events.send(Event {
            state: "SyncConnected",
            kind: "None",
            path: None,
            zxid: -1,
        });
        // Restore what the session had on the old connection.
        let fired: Vec<Event> = std::mem::take(&mut *self.fired.lock().unwrap());
        for e in &fired {
            self.fired(e);
        }
        for (scheme, auth) in self.auth.clone() {
            let _ = self.send(
                Xid::AUTH,
                &Request::Auth(proto::AuthPacket {
                    auth_type: 0,
                    scheme,
                    auth: Some(auth),
                }),
            );
        }
        let w = self.watches.clone();
        if !(w.data.is_empty()
            && w.exist.is_empty()
            && w.child.is_empty()
            && w.persistent.is_empty()
            && w.recursive.is_empty())
        {
            let sw = Request::SetWatches(SetWatches2 {
                relative_zxid: *self.last_zxid.lock().unwrap(),
                data_watches: w.data,
                exist_watches: w.exist,
                child_watches: w.child,
                persistent_watches: w.persistent,
                persistent_recursive_watches: w.recursive,
            });
            let _ = self.send(Xid::SET_WATCHES, &sw);
        }
        Ok(())
    }

    fn send(&mut self, xid: i32, req: &Request) -> Result<Vec<u8>, ClientError> {
        let live = self.live.as_ref().ok_or(ClientError::ConnectionLoss)?;
        let op = match req {
            Request::SetWatches(_) => OpCode::SetWatches2,
            r => r.op(),
        };
        let f = frame(|w| {
            RequestHeader { xid, op: op.code() }.write(w);
            req.encode(w);
        });
        live.writer
            .lock()
            .unwrap()
            .write_all(&f)
            .map_err(|_| ClientError::ConnectionLoss)?;
        let wait = Duration::from_millis(self.timeout_ms.max(2000) as u64);
        loop {
            let (h, body) = live
                .replies
                .recv_timeout(wait)
                .map_err(|_| ClientError::ConnectionLoss)?;
            if h.xid != xid {
                continue;
            }
            if h.err != 0 {
                return Err(ClientError::Keeper(
                    ErrorCode::from_code(h.err).unwrap_or(ErrorCode::SystemError),
                ));
            }
            return Ok(body);
        }
    }

    /// Sends a request, reconnecting first if needed; the body after the
    /// reply header on success.
    pub fn call(&mut self, req: &Request) -> Result<Vec<u8>, ClientError> {
        self.connect()?;
        let xid = match req {
            Request::Auth(_) => Xid::AUTH,
            _ => {
                self.xid += 1;
                self.xid
            }
        };
        let r = self.send(xid, req);
        if matches!(r, Err(ClientError::ConnectionLoss)) {
            if let Some(l) = &self.live {
                l.alive.store(false, Ordering::Relaxed);
            }
        }
        if r.is_ok() {
            self.remember(req);
        }
        r
    }

    /// Keeps what must be restored after a reconnect.
    fn remember(&mut self, req: &Request) {
        let w = &mut self.watches;
        match req {
            Request::GetData(r) if r.watch => w.data.push(r.path.clone()),
            Request::Exists(r) if r.watch => w.exist.push(r.path.clone()),
            Request::GetChildren(r) | Request::GetChildren2(r) if r.watch => {
                w.child.push(r.path.clone())
            }
            Request::AddWatch(a) if a.mode == 0 => w.persistent.push(a.path.clone()),
            Request::AddWatch(a) => w.recursive.push(a.path.clone()),
            Request::Auth(a) => self
                .auth
                .push((a.scheme.clone(), a.auth.clone().unwrap_or_default())),
            _ => {}
        }
    }

    /// A one-shot watch fired: forget it (it is not re-registered).
    pub fn fired(&mut self, e: &Event) {
        let Some(p) = &e.path else { return };
        let w = &mut self.watches;
        match e.kind {
            "NodeDataChanged" | "NodeCreated" | "NodeDeleted" => {
                w.data.retain(|x| x != p);
                w.exist.retain(|x| x != p);
                if e.kind == "NodeDeleted" {
                    w.child.retain(|x| x != p);
                }
            }
            "NodeChildrenChanged" => w.child.retain(|x| x != p),
            _ => {}
        }
    }

    /// removewatches: forget them locally too; returns the events the
    /// Java client raises for the watchers removed, in its order.
    pub fn forget_watches(&mut self, path: &str, kind: i32) -> Vec<&'static str> {
        let w = &mut self.watches;
        let mut out = Vec::new();
        let take = |v: &mut Vec<String>| {
            let had = v.iter().any(|x| x == path);
            v.retain(|x| x != path);
            had
        };
        if kind == 2 || kind == 3 {
            let d = take(&mut w.data);
            let e = take(&mut w.exist);
            if d || e {
                out.push("DataWatchRemoved");
            }
        }
        if (kind == 1 || kind == 3) && take(&mut w.child) {
            out.push("ChildWatchRemoved");
        }
        // Any mode (3), the persistent (4) or the recursive one (5).
        let p = (kind == 3 || kind == 4) && take(&mut w.persistent);
        let r = (kind == 3 || kind == 5) && take(&mut w.recursive);
        if p || r {
            out.push("PersistentWatchRemoved");
        }
        out
    }

    /// closeSession, then the connection ends.
    pub fn close(&mut self) {
        if self.connected() {
            let _ = self.call(&Request::CloseSession);
        }
        if let Some(l) = self.live.take() {
            l.alive.store(false, Ordering::Relaxed);
            let _ = l.writer.lock().unwrap().shutdown(std::net::Shutdown::Both);
        }
        if !self.closed {
            self.closed = true;
            let _ = self.events.send(Event {
                state: "Closed",
                kind: "None",
                path: None,
                zxid: -1,
            });
        }
    }
}

fn reader(
    mut s: TcpStream,
    replies: mpsc::Sender<(ReplyHeader, Vec<u8>)>,
    events: mpsc::Sender<Event>,
    alive: Arc<AtomicBool>,
    last_zxid: Arc<Mutex<i64>>,
    fired: Arc<Mutex<Vec<Event>>>,
) {
    while alive.load(Ordering::Relaxed) {
        let Ok(body) = read_frame(&mut s) else {
            break;
        };
        let mut r = Reader::new(&body);
        let Ok(h) = ReplyHeader::read(&mut r) else {
            break;
        };
        if h.zxid > 0 {
            let mut z = last_zxid.lock().unwrap();
            *z = (*z).max(h.zxid);
        }
        match h.xid {
            Xid::NOTIFICATION => {
                if let Ok(ev) = WatcherEvent::read(&mut r) {
                    let e = Event {
                        state: state_name(ev.state),
                        kind: event_name(ev.event_type),
                        path: Some(ev.path),
                        zxid: h.zxid,
                    };
                    fired.lock().unwrap().push(e.clone());
                    let _ = events.send(e);
                }
            }
            Xid::PING => {}
            _ => {
                let rest = r.rest().to_vec();
                if replies.send((h, rest)).is_err() {
                    break;
                }
            }
        }
    }
    alive.store(false, Ordering::Relaxed);
}
