//! `ferrokeeper bench`: a load generator speaking the ZooKeeper client
//! protocol, so it drives ZooKeeper and ferrokeeper alike. Closed loop
//! (N connections x M requests in flight, pipelined) or open loop (a
//! target rate, latency counted from each request's scheduled time so a
//! stalled server cannot hide its queue); connections spread over every
//! server of the connect string; an HDR histogram of latency; every error
//! counted by code and shown.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use proto::frame::{finish_frame, start_frame};
use proto::{
    Acl, ConnectRequest, ConnectResponse, CreateTtlRequest, Jute, MultiOp, OpCode,
    PathVersionRequest, PathWatchRequest, Reader, ReplyHeader, Request, RequestHeader,
    SetDataRequest,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::TcpStream;

pub mod budget;
pub mod floor;
mod tls;
pub use tls::TlsClient;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Workload {
    Create,
    Set,
    Get,
    Exists,
    Children,
    /// `Mixed(r)`: r% getData, the rest setData, on the same sessions
    /// (ZooKeeper's FIFO order per session holds).
    Mixed(u8),
    Multi,
    /// Session churn: connect, create an ephemeral, close.
    Ephemeral,
    /// N watchers on one node, one writer: event latency and rate.
    Watch,
    /// The lock recipe's cycle, one after another on each session: create
    /// an ephemeral sequential child of one lock node, list the children,
    /// delete the child; one op = one cycle.
    Lock,
}

impl std::str::FromStr for Workload {
    type Err = String;
    fn from_str(s: &str) -> Result<Workload, String> {
        Ok(match s {
            "create" => Workload::Create,
            "set" | "setData" => Workload::Set,
            "get" | "getData" => Workload::Get,
            "exists" => Workload::Exists,
            "children" | "getChildren" => Workload::Children,
            "multi" => Workload::Multi,
            "ephemeral" => Workload::Ephemeral,
            "watch" => Workload::Watch,
            "lock" => Workload::Lock,
            m if m.starts_with("mixed") => {
                let r = m
                    .strip_prefix("mixed:")
                    .unwrap_or("90")
                    .parse::<u8>()
                    .map_err(|_| format!("{m}: expected mixed:READ_PERCENT"))?;
                if r > 100 {
                    return Err(format!("{m}: at most 100"));
                }
                Workload::Mixed(r)
            }
            other => {
                return Err(format!(
                    "unknown workload {other} (create, set, get, exists, children, mixed:R, multi, ephemeral, watch, lock)"
                ))
            }
        })
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub servers: Vec<String>,
    pub workload: Workload,
    pub connections: usize,
    pub inflight: usize,
    pub duration: Duration,
    /// Open loop: total requests per second; None = closed loop.
    pub rate: Option<u64>,
    pub value_size: usize,
    /// Keys for set/get/exists/mixed; children of the wide node.
    pub keys: usize,
    pub root: String,
    pub json: bool,
    pub progress: bool,
    /// Server processes whose CPU time is reported per operation.
    pub pids: Vec<u32>,
    /// Stop after about this many requests in all (closed loop).
    pub total: Option<u64>,
    /// Leave the benchmark's znodes in place (to measure a loaded server).
    pub keep: bool,
    /// Connect over TLS (a server's `secureClientPort`).
    pub tls: Option<TlsClient>,
    /// Reset the servers' counters before the run and print their
    /// per-stage latency after it (`budget`).
    pub budget: bool,
}

/// The outcome of one run.
pub struct Report {
    pub ops: u64,
    pub elapsed: Duration,
    pub errors: BTreeMap<String, u64>,
    pub latency: Histogram<u64>,
    pub server_cpu: Option<Duration>,
    /// Each server's stage timings and what went wrong asking (`--budget`).
    pub budget: Option<(Vec<budget::ServerBudget>, Vec<String>)>,
}

struct Conn {
    rd: BufReader<Box<dyn AsyncRead + Send + Unpin>>,
    wr: BufWriter<Box<dyn AsyncWrite + Send + Unpin>>,
    buf: Vec<u8>,
    frame: Vec<u8>,
    xid: i32,
}

fn open_acl() -> Vec<Acl> {
    Acl::open_unsafe()
}

impl Conn {
    async fn open(server: &str, tls: Option<&TlsClient>) -> std::io::Result<Conn> {
        let s = TcpStream::connect(server).await?;
        s.set_nodelay(true)?;
        let (rd, wr): (
            Box<dyn AsyncRead + Send + Unpin>,
            Box<dyn AsyncWrite + Send + Unpin>,
        ) = match tls {
            None => {
                let (rd, wr) = s.into_split();
                (Box::new(rd), Box::new(wr))
            }
            Some(t) => {
                let (rd, wr) = tokio::io::split(t.connect(server, s).await?);
                (Box::new(rd), Box::new(wr))
            }
        };
        let mut c = Conn {
            rd: BufReader::with_capacity(64 << 10, rd),
            wr: BufWriter::with_capacity(64 << 10, wr),
            buf: Vec::with_capacity(1 << 10),
            frame: Vec::with_capacity(1 << 10),
            xid: 0,
        };
        let req = ConnectRequest {
            timeout_ms: 30_000,
            passwd: Some(vec![0; 16]),
            read_only: Some(false),
            ..Default::default()
        };
        c.buf.clear();
        let at = start_frame(&mut c.buf);
        req.write(&mut c.buf);
        finish_frame(&mut c.buf, at);
        c.wr.write_all(&c.buf).await?;
        c.wr.flush().await?;
        c.read_frame().await?;
        let r = ConnectResponse::from_bytes(&c.frame)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        if r.session_id == 0 {
            return Err(std::io::Error::other("session refused"));
        }
        Ok(c)
    }

    /// Queues one request (not flushed).
    async fn send(&mut self, req: &Request) -> std::io::Result<()> {
        self.xid += 1;
        self.buf.clear();
        let at = start_frame(&mut self.buf);
        RequestHeader {
            xid: self.xid,
            op: req.op().code(),
        }
        .write(&mut self.buf);
        req.encode(&mut self.buf);
        finish_frame(&mut self.buf, at);
        self.wr.write_all(&self.buf).await
    }

    /// A whole frame is in the read buffer: reading it will not wait.
    fn frame_buffered(&self) -> bool {
        let b = self.rd.buffer();
        b.len() >= 4 && b.len() - 4 >= u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
    }

    async fn read_frame(&mut self) -> std::io::Result<()> {
        let len = self.rd.read_u32().await? as usize;
        if len > 64 << 20 {
            return Err(std::io::Error::other("frame too large"));
        }
        self.frame.resize(len, 0);
        self.rd.read_exact(&mut self.frame).await?;
        Ok(())
    }

    /// The next reply (watch events skipped, counted by the caller via
    /// `events`): its error code.
    async fn reply(&mut self, events: &mut u64) -> std::io::Result<i32> {
        loop {
            self.read_frame().await?;
            let h = ReplyHeader::read(&mut Reader::new(&self.frame))
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            if h.xid == -1 {
                *events += 1;
                continue;
            }
            if h.xid == -2 {
                continue;
            }
            return Ok(h.err);
        }
    }

    async fn call(&mut self, req: &Request) -> std::io::Result<i32> {
        self.send(req).await?;
        self.wr.flush().await?;
        self.reply(&mut 0).await
    }

    async fn close(mut self) {
        let _ = self.call(&Request::CloseSession).await;
    }
}

fn error_name(code: i32) -> String {
    proto::ErrorCode::from_code(code)
        .map(|c| format!("{c:?}"))
        .unwrap_or_else(|| format!("error {code}"))
}

fn create(path: String, data: Vec<u8>, flags: i32) -> Request {
    Request::Create(
        OpCode::Create,
        CreateTtlRequest {
            path,
            data: Some(data),
            acl: open_acl(),
            flags,
            ttl: -1,
        },
    )
}

/// Creates the root, the keys and the wide node's children (pipelined).
async fn prepare(o: &Options) -> std::io::Result<()> {
    let mut c = Conn::open(&o.servers[0], o.tls.as_ref()).await?;
    let value = vec![b'v'; o.value_size];
    for p in [
        o.root.clone(),
        format!("{}/w", o.root),
        format!("{}/lock", o.root),
    ] {
        let _ = c.call(&create(p, vec![], 0)).await?;
    }
    let needs_keys = matches!(
        o.workload,
        Workload::Set | Workload::Get | Workload::Exists | Workload::Mixed(_) | Workload::Watch
    );
    let needs_wide = o.workload == Workload::Children;
    let n = if needs_keys || needs_wide { o.keys } else { 0 };
    let mut pending = 0;
    for i in 0..n {
        let p = if needs_wide {
            format!("{}/w/c-{i}", o.root)
        } else {
            format!("{}/k-{i}", o.root)
        };
        c.send(&create(p, value.clone(), 0)).await?;
        pending += 1;
        if pending == 256 {
            c.wr.flush().await?;
            for _ in 0..pending {
                c.reply(&mut 0).await?;
            }
            pending = 0;
        }
    }
    c.wr.flush().await?;
    for _ in 0..pending {
        c.reply(&mut 0).await?;
    }
    c.close().await;
    Ok(())
}

/// Removes what `prepare` and the run created.
pub async fn cleanup(o: &Options) -> std::io::Result<()> {
    let mut c = Conn::open(&o.servers[0], o.tls.as_ref()).await?;
    let mut stack = vec![o.root.clone()];
    let mut order = Vec::new();
    while let Some(p) = stack.pop() {
        c.send(&Request::GetChildren(PathWatchRequest {
            path: p.clone(),
            watch: false,
        }))
        .await?;
        c.wr.flush().await?;
        if c.reply(&mut 0).await? != 0 {
            continue;
        }
        let mut r = Reader::new(&c.frame);
        let _ = ReplyHeader::read(&mut r);
        let kids: Vec<String> = Jute::read(&mut r).unwrap_or_default();
        for k in kids {
            stack.push(format!("{p}/{k}"));
        }
        order.push(p);
    }
    for chunk in order.rchunks(256) {
        for p in chunk.iter().rev() {
            c.send(&Request::Delete(PathVersionRequest {
                path: p.clone(),
                version: -1,
            }))
            .await?;
        }
        c.wr.flush().await?;
        for _ in chunk {
            c.reply(&mut 0).await?;
        }
    }
    c.close().await;
    Ok(())
}

struct Shared {
    ops: AtomicU64,
    stop: AtomicBool,
}

/// One connection's loop; returns its histogram and errors.
async fn worker(
    o: Arc<Options>,
    id: usize,
    shared: Arc<Shared>,
    start: Instant,
) -> std::io::Result<(Histogram<u64>, BTreeMap<String, u64>)> {
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
    let mut errors = BTreeMap::new();
    let server = &o.servers[id % o.servers.len()];
    let value = vec![b'v'; o.value_size];
    let mut n: u64 = 0;
    let mut rng = (id as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let deadline = start + o.duration;
    if o.workload == Workload::Ephemeral {
        // Each iteration: connect, create an ephemeral, close.
        while Instant::now() < deadline && !shared.stop.load(Ordering::Relaxed) {
            let t = Instant::now();
            let mut c = Conn::open(server, o.tls.as_ref()).await?;
            let err = c
                .call(&create(format!("{}/e-{id}-{n}", o.root), value.clone(), 1))
                .await?;
            c.close().await;
            n += 1;
            if err != 0 {
                *errors.entry(error_name(err)).or_insert(0) += 1;
            }
            let _ = hist.record(t.elapsed().as_micros().max(1) as u64);
            shared.ops.fetch_add(1, Ordering::Relaxed);
        }
        return Ok((hist, errors));
    }
    if o.workload == Workload::Lock {
        let mut c = Conn::open(server, o.tls.as_ref()).await?;
        let dir = format!("{}/lock", o.root);
        while Instant::now() < deadline
            && !shared.stop.load(Ordering::Relaxed)
            && o.total
                .is_none_or(|t| shared.ops.load(Ordering::Relaxed) < t)
        {
            let t = Instant::now();
            let err = c
                .call(&create(format!("{dir}/lock-"), value.clone(), 3))
                .await?;
            let mine = match err {
                0 => {
                    let mut r = Reader::new(&c.frame);
                    let _ = ReplyHeader::read(&mut r);
                    String::read(&mut r).unwrap_or_default()
                }
                _ => String::new(),
            };
            let mut errs = vec![err];
            errs.push(
                c.call(&Request::GetChildren(PathWatchRequest {
                    path: dir.clone(),
                    watch: false,
                }))
                .await?,
            );
            if !mine.is_empty() {
                errs.push(
                    c.call(&Request::Delete(PathVersionRequest {
                        path: mine,
                        version: -1,
                    }))
                    .await?,
                );
            }
            for e in errs.into_iter().filter(|e| *e != 0) {
                *errors.entry(error_name(e)).or_insert(0) += 1;
            }
            let _ = hist.record(t.elapsed().as_micros().max(1) as u64);
            shared.ops.fetch_add(1, Ordering::Relaxed);
        }
        c.close().await;
        return Ok((hist, errors));
    }
    let mut c = Conn::open(server, o.tls.as_ref()).await?;
    let keys = o.keys.max(1) as u64;
    let make = |n: u64, r: u64| -> Request {
        let key = format!("{}/k-{}", o.root, r % keys);
        match o.workload {
            Workload::Create => create(format!("{}/c-{id}-{n}", o.root), value.clone(), 0),
            Workload::Set => Request::SetData(SetDataRequest {
                path: key,
                data: Some(value.clone()),
                version: -1,
            }),
            Workload::Get => Request::GetData(PathWatchRequest {
                path: key,
                watch: false,
            }),
            Workload::Exists => Request::Exists(PathWatchRequest {
                path: key,
                watch: false,
            }),
            Workload::Children => Request::GetChildren(PathWatchRequest {
                path: format!("{}/w", o.root),
                watch: false,
            }),
            Workload::Mixed(read) => {
                if (r >> 32) % 100 < read as u64 {
                    Request::GetData(PathWatchRequest {
                        path: key,
                        watch: false,
                    })
                } else {
                    Request::SetData(SetDataRequest {
                        path: key,
                        data: Some(value.clone()),
                        version: -1,
                    })
                }
            }
            Workload::Multi => {
                let p = format!("{}/m-{id}-{n}", o.root);
                Request::Multi(vec![
                    MultiOp::Create(
                        OpCode::Create,
                        CreateTtlRequest {
                            path: p.clone(),
                            data: Some(value.clone()),
                            acl: open_acl(),
                            flags: 0,
                            ttl: -1,
                        },
                    ),
                    MultiOp::SetData(SetDataRequest {
                        path: p.clone(),
                        data: Some(value.clone()),
                        version: 0,
                    }),
                    MultiOp::Delete(PathVersionRequest {
                        path: p,
                        version: 1,
                    }),
                ])
            }
            Workload::Ephemeral | Workload::Watch | Workload::Lock => unreachable!(),
        }
    };
    // Open loop: this connection's share of the rate, each request due at
    // its scheduled time; latency counts from then.
    let interval = o
        .rate
        .map(|r| Duration::from_secs_f64(o.connections as f64 / r.max(1) as f64));
    let mut inflight: VecDeque<Instant> = VecDeque::with_capacity(o.inflight);
    let mut scheduled = start;
    let mut events = 0;
    loop {
        let now = Instant::now();
        let stopping = now >= deadline
            || shared.stop.load(Ordering::Relaxed)
            || o.total
                .is_some_and(|t| shared.ops.load(Ordering::Relaxed) >= t);
        if !stopping {
            let mut sent = false;
            while inflight.len() < o.inflight {
                let at = match interval {
                    None => Instant::now(),
                    Some(iv) => {
                        if scheduled > Instant::now() {
                            break;
                        }
                        let at = scheduled;
                        scheduled += iv;
                        at
                    }
                };
                c.send(&make(n, next())).await?;
                n += 1;
                inflight.push_back(at);
                sent = true;
            }
            if sent {
                c.wr.flush().await?;
            }
        }
        if inflight.is_empty() {
            if stopping {
                break;
            }
            // Open loop, nothing due yet.
            if let Some(iv) = interval {
                let wait = scheduled.saturating_duration_since(Instant::now());
                tokio::time::sleep(wait.min(iv)).await;
            }
            continue;
        }
        // Every reply already here, then one refill and one flush for all
        // of them: a write per batch, not per request (lean load generator).
        let mut done = 0;
        loop {
            let err = c.reply(&mut events).await?;
            let at = inflight.pop_front().expect("in flight");
            let _ = hist.record(at.elapsed().as_micros().max(1) as u64);
            if err != 0 {
                *errors.entry(error_name(err)).or_insert(0) += 1;
            }
            done += 1;
            if inflight.is_empty() || !c.frame_buffered() {
                break;
            }
        }
        shared.ops.fetch_add(done, Ordering::Relaxed);
    }
    c.close().await;
    Ok((hist, errors))
}

/// Watch fan-out: every connection but one watches one node; the writer
/// sets it; each event's latency counts from the set being sent.
async fn watch_run(o: Arc<Options>, shared: Arc<Shared>) -> std::io::Result<Report> {
    let node = format!("{}/k-0", o.root);
    let watchers = o.connections.saturating_sub(1).max(1);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
    let mut conns = Vec::new();
    for i in 0..watchers {
        conns.push(Conn::open(&o.servers[(i + 1) % o.servers.len()], o.tls.as_ref()).await?);
    }
    let mut writer = Conn::open(&o.servers[0], o.tls.as_ref()).await?;
    let value = vec![b'w'; o.value_size];
    let start = Instant::now();
    let mut ops = 0;
    let mut errors = BTreeMap::new();
    while start.elapsed() < o.duration && !shared.stop.load(Ordering::Relaxed) {
        for c in conns.iter_mut() {
            let err = c
                .call(&Request::GetData(PathWatchRequest {
                    path: node.clone(),
                    watch: true,
                }))
                .await?;
            if err != 0 {
                *errors.entry(error_name(err)).or_insert(0) += 1;
            }
        }
        let t = Instant::now();
        let err = writer
            .call(&Request::SetData(SetDataRequest {
                path: node.clone(),
                data: Some(value.clone()),
                version: -1,
            }))
            .await?;
        if err != 0 {
            *errors.entry(error_name(err)).or_insert(0) += 1;
        }
        for c in conns.iter_mut() {
            // The event frame (xid -1).
            loop {
                c.read_frame().await?;
                let h = ReplyHeader::read(&mut Reader::new(&c.frame))
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                if h.xid == -1 {
                    break;
                }
            }
            let _ = hist.record(t.elapsed().as_micros().max(1) as u64);
            ops += 1;
            shared.ops.fetch_add(1, Ordering::Relaxed);
        }
    }
    let elapsed = start.elapsed();
    for c in conns {
        c.close().await;
    }
    writer.close().await;
    Ok(Report {
        ops,
        elapsed,
        errors,
        latency: hist,
        server_cpu: None,
        budget: None,
    })
}

/// utime + stime of these processes.
fn cpu_time(pids: &[u32]) -> Option<Duration> {
    // SAFETY: sysconf has no preconditions.
    let ticks = 100u64;
    let mut total = 0u64;
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let rest = stat.rsplit_once(')')?.1;
        let f: Vec<&str> = rest.split_whitespace().collect();
        // Fields 14 and 15 of stat (utime, stime) are 12 and 13 after ")".
        total += f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    }
    Some(Duration::from_millis(total * 1000 / ticks))
}

pub async fn run(o: Options) -> std::io::Result<Report> {
    prepare(&o).await?;
    // After the set-up writes, so that only the run's requests count.
    let budget_problems = match o.budget {
        true => Some(budget::reset(&o.servers).await),
        false => None,
    };
    let o = Arc::new(o);
    let shared = Arc::new(Shared {
        ops: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    });
    let cpu_before = cpu_time(&o.pids);
    let progress = if o.progress {
        let shared = shared.clone();
        let total = o.duration;
        Some(tokio::spawn(async move {
            let start = Instant::now();
            let mut last = 0;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let now = shared.ops.load(Ordering::Relaxed);
                let done = start.elapsed().as_secs_f64() / total.as_secs_f64();
                let bar = (done.min(1.0) * 30.0) as usize;
                eprint!(
                    "\r[{}{}] {:>3.0}%  {:>9} ops/s  {:>10} ops",
                    "#".repeat(bar),
                    " ".repeat(30 - bar),
                    done.min(1.0) * 100.0,
                    now - last,
                    now
                );
                last = now;
            }
        }))
    } else {
        None
    };
    let mut report = if o.workload == Workload::Watch {
        watch_run(o.clone(), shared.clone()).await?
    } else {
        let start = Instant::now();
        let mut tasks = Vec::new();
        for id in 0..o.connections {
            tasks.push(tokio::spawn(worker(o.clone(), id, shared.clone(), start)));
        }
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
        let mut errors: BTreeMap<String, u64> = BTreeMap::new();
        for t in tasks {
            match t.await {
                Ok(Ok((h, e))) => {
                    let _ = hist.add(&h);
                    for (k, v) in e {
                        *errors.entry(k).or_insert(0) += v;
                    }
                }
                Ok(Err(e)) => *errors.entry(format!("connection: {e}")).or_insert(0) += 1,
                Err(e) => *errors.entry(format!("task: {e}")).or_insert(0) += 1,
            }
        }
        Report {
            ops: hist.len(),
            elapsed: start.elapsed(),
            errors,
            latency: hist,
            server_cpu: None,
            budget: None,
        }
    };
    if let Some(problems) = budget_problems {
        report.budget = Some((budget::collect(&o.servers).await, problems));
    }
    if let Some(p) = progress {
        p.abort();
        eprintln!();
    }
    if let (Some(a), Some(b)) = (cpu_before, cpu_time(&o.pids)) {
        report.server_cpu = Some(b.saturating_sub(a));
    }
    if !o.keep {
        let _ = cleanup(&o).await;
    }
    Ok(report)
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

pub fn render(o: &Options, r: &Report) -> String {
    let h = &r.latency;
    let rate = r.ops as f64 / r.elapsed.as_secs_f64().max(1e-9);
    let cpu = r
        .server_cpu
        .map(|c| c.as_secs_f64() * 1e6 / r.ops.max(1) as f64);
    if o.json {
        let v = serde_json::json!({
            "workload": format!("{:?}", o.workload),
            "servers": o.servers,
            "connections": o.connections,
            "inflight": o.inflight,
            "rate_target": o.rate,
            "value_size": o.value_size,
            "duration_s": r.elapsed.as_secs_f64(),
            "ops": r.ops,
            "ops_per_s": rate,
            "errors": r.errors,
            "latency_us": {
                "p50": h.value_at_quantile(0.5), "p90": h.value_at_quantile(0.9),
                "p99": h.value_at_quantile(0.99), "p99.9": h.value_at_quantile(0.999),
                "max": h.max(), "mean": h.mean(),
            },
            "server_cpu_us_per_op": cpu,
            "budget": r.budget.as_ref().map(|(b, _)| budget::json(b)),
        });
        return serde_json::to_string_pretty(&v).unwrap_or_default() + "\n";
    }
    let mut out = format!(
        "workload {:?}: {} connections x {} in flight{}, value {} B, {:.1} s, {}\n",
        o.workload,
        o.connections,
        o.inflight,
        o.rate
            .map(|r| format!(", open loop at {r}/s"))
            .unwrap_or_default(),
        o.value_size,
        r.elapsed.as_secs_f64(),
        o.servers.join(",")
    );
    out.push_str(&format!("ops        {} ({rate:.0}/s)\n", r.ops));
    let errs: u64 = r.errors.values().sum();
    out.push_str(&format!("errors     {errs}"));
    for (k, v) in &r.errors {
        out.push_str(&format!("  {k}: {v}"));
    }
    out.push('\n');
    out.push_str(&format!(
        "latency ms p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}\n",
        ms(h.value_at_quantile(0.5)),
        ms(h.value_at_quantile(0.9)),
        ms(h.value_at_quantile(0.99)),
        ms(h.value_at_quantile(0.999)),
        ms(h.max())
    ));
    if let Some(c) = cpu {
        out.push_str(&format!("server cpu {c:.1} us/op\n"));
    }
    if let Some((b, problems)) = &r.budget {
        out.push_str(&budget::render(b, problems));
    }
    out
}
