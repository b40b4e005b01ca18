//! Four-letter words on the client port (`echo ruok | nc host 2181`), with
//! ZooKeeper's whitelist semantics (`4lw.commands.whitelist`, default
//! `srvr` only) and ZooKeeper 3.8's output formats, checked against a
//! real ZooKeeper in tests/python/test_fourlw.py.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Instant;

/// The commands ZooKeeper 3.8 knows.
pub const COMMANDS: &[&str] = &[
    "conf", "cons", "crst", "dump", "envi", "ruok", "srst", "srvr", "stat", "wchs", "wchc", "wchp",
    "mntr", "isro", "hash", "dirs", "gtmk", "stmk",
];

/// The command if these first four bytes of a connection spell one.
pub fn detect(first: &[u8]) -> Option<&'static str> {
    let s = std::str::from_utf8(first.get(..4)?).ok()?;
    COMMANDS.iter().copied().find(|c| *c == s)
}

/// What a command not in the whitelist answers.
pub fn not_whitelisted(cmd: &str) -> String {
    format!("{cmd} is not executed because it is not in the whitelist.\n")
}

/// As ZooKeeper's: `<version>-<build id>, built on YYYY-MM-DD HH:MM UTC`
/// (the date from build.rs), the form tools parse.
pub const VERSION: &str = concat!(
    "3.8.4-ferrokeeper-",
    env!("CARGO_PKG_VERSION"),
    ", built on ",
    env!("FERROKEEPER_BUILD_DATE")
);

/// ZooKeeper's default trace mask, answered by gtmk.
pub const TRACE_MASK: u64 = 306;

/// Request latencies in ms, as ZooKeeper's ServerStats and per-connection
/// stats keep them.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    pub count: u64,
    pub total_ms: u64,
    pub min_ms: u64,
    pub max_ms: u64,
}

impl Latency {
    pub fn add(&mut self, ms: u64) {
        if self.count == 0 || ms < self.min_ms {
            self.min_ms = ms;
        }
        self.max_ms = self.max_ms.max(ms);
        self.total_ms += ms;
        self.count += 1;
    }

    /// The average as ZooKeeper prints it: rounded to 4 decimals, Java's
    /// double formatting ("0.0", "2.5833").
    pub fn avg(&self) -> String {
        let avg = if self.count == 0 {
            0.0
        } else {
            (self.total_ms as f64 * 10000.0 / self.count as f64).round() / 10000.0
        };
        java_double(avg)
    }

    pub fn min(&self) -> u64 {
        if self.count == 0 {
            0
        } else {
            self.min_ms
        }
    }
}

fn java_double(x: f64) -> String {
    if x.fract() == 0.0 {
        format!("{x:.1}")
    } else {
        format!("{x}")
    }
}

/// Counters of the whole server since start or `srst`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServerStats {
    pub received: u64,
    pub sent: u64,
    pub latency: Latency,
}

/// One client connection as the core task tracks it.
#[derive(Debug, Clone)]
pub struct ConnStats {
    pub addr: SocketAddr,
    /// When the session was established here (ms since the epoch).
    pub established_ms: i64,
    pub recved: u64,
    pub sent: u64,
    pub last_op: &'static str,
    pub last_cxid: i32,
    pub last_zxid: i64,
    /// ms on the monotonic clock when the last reply went out.
    pub last_resp_ms: u64,
    pub last_latency_ms: u64,
    pub latency: Latency,
}

impl ConnStats {
    pub fn new(addr: SocketAddr, now_ms: i64) -> ConnStats {
        ConnStats {
            addr,
            established_ms: now_ms,
            recved: 1,
            sent: 0,
            last_op: "NA",
            last_cxid: -1,
            last_zxid: -1,
            last_resp_ms: 0,
            last_latency_ms: 0,
            latency: Latency::default(),
        }
    }

    /// `crst`.
    pub fn reset(&mut self) {
        self.recved = 0;
        self.sent = 0;
        self.last_op = "NA";
        self.last_cxid = -1;
        self.last_zxid = -1;
        self.last_resp_ms = 0;
        self.last_latency_ms = 0;
        self.latency = Latency::default();
    }
}

/// Everything the commands print, gathered by the core task.
pub struct View<'a> {
    pub cfg: &'a crate::Config,
    pub node: &'a node::Node,
    pub server: &'a ServerStats,
    /// Established connections, by connection id.
    pub conns: &'a std::collections::HashMap<u64, ConnStats>,
    /// standalone, leader or follower.
    pub mode: &'static str,
    /// The connection asking (shown by cons/stat as ZooKeeper does); None
    /// for the AdminServer.
    pub asking: Option<SocketAddr>,
    pub started: Instant,
    /// ms on the monotonic clock (for lresp), and since the epoch.
    pub mono_ms: u64,
    pub now_ms: i64,
    /// The summaries kept under ZooKeeper's names (`metrics_zk`).
    pub zk: &'a crate::metrics_zk::ZkSummaries,
    /// The latency budget since the last `srst`.
    pub budget: &'a crate::budget::Budget,
}

/// A client's address as Java 14+ prints an InetSocketAddress: an IPv6
/// one in brackets.
fn addr(a: &SocketAddr) -> String {
    let host = tree::acl_ip::host_address(a.ip());
    if host.contains(':') {
        format!("/[{host}]:{}", a.port())
    } else {
        format!("/{host}:{}", a.port())
    }
}

impl View<'_> {
    /// Connections as ZooKeeper counts them: the asking one included.
    pub(crate) fn connections(&self) -> usize {
        self.conns.len() + usize::from(self.asking.is_some())
    }

    /// Serving clients: with a leader, or read-only without one.
    pub(crate) fn serving(&self) -> bool {
        self.node.has_leader() || self.node.is_read_only()
    }

    pub(crate) fn outstanding(&self) -> usize {
        self.node.queued_total()
    }

    /// The node count as ZooKeeper reports it: its root is stored twice.
    pub(crate) fn node_count(&self) -> usize {
        self.node.state().tree.node_count() + 1
    }

    pub(crate) fn sorted_conns(&self) -> Vec<(&u64, &ConnStats)> {
        let mut v: Vec<_> = self.conns.iter().collect();
        v.sort_by_key(|(id, _)| **id);
        v
    }

    pub(crate) fn session_of(&self, conn: u64) -> i64 {
        self.node.conn_session(conn).map_or(0, |(s, _)| s)
    }

    fn cons(&self, full: bool) -> String {
        let mut out = String::new();
        if let Some(a) = &self.asking {
            let _ = writeln!(out, " {}[0](queued=0,recved=1,sent=0)", addr(a));
        }
        for (id, c) in self.sorted_conns() {
            let _ = write!(
                out,
                " {}[1](queued={},recved={},sent={}",
                addr(&c.addr),
                self.node.queued(*id),
                c.recved,
                c.sent
            );
            if full {
                let (sid, to) = self.node.conn_session(*id).unwrap_or((0, 0));
                let _ = write!(
                    out,
                    ",sid=0x{sid:x},lop={},est={},to={to}",
                    c.last_op, c.established_ms
                );
                // ZooKeeper leaves lcxid out until a request was answered.
                if c.last_cxid >= 0 {
                    let _ = write!(out, ",lcxid=0x{:x}", c.last_cxid);
                }
                let _ = write!(
                    out,
                    ",lzxid=0x{:x},lresp={},llat={},minlat={},avglat={},maxlat={}",
                    c.last_zxid,
                    c.last_resp_ms,
                    c.last_latency_ms,
                    c.latency.min(),
                    c.latency.total_ms / c.latency.count.max(1),
                    c.latency.max_ms
                );
            }
            out.push_str(")\n");
        }
        out.push('\n');
        out
    }

    fn srvr(&self, with_clients: bool) -> String {
        if !self.serving() {
            return "This ZooKeeper instance is not currently serving requests\n".into();
        }
        let mut out = format!("Zookeeper version: {VERSION}\n");
        if with_clients {
            out.push_str("Clients:\n");
            out.push_str(&self.cons(false));
        }
        let l = &self.server.latency;
        let _ = write!(
            out,
            "Latency min/avg/max: {}/{}/{}\nReceived: {}\nSent: {}\nConnections: {}\nOutstanding: {}\nZxid: 0x{:x}\nMode: {}\nNode count: {}\n",
            l.min(),
            l.avg(),
            l.max_ms,
            self.server.received,
            self.server.sent,
            self.connections(),
            self.outstanding(),
            self.node.last_zxid(),
            self.mode,
            self.node_count()
        );
        if self.mode == "leader" {
            let _ = writeln!(out, "Proposal sizes last/min/max: -1/-1/-1");
        }
        out
    }

    fn conf(&self) -> String {
        let cfg = self.cfg;
        let (data_size, log_size) = dir_sizes(cfg);
        let mut out = format!(
            "clientPort={}\nsecureClientPort=-1\ndataDir={}\ndataDirSize={data_size}\ndataLogDir={}\ndataLogSize={log_size}\ntickTime={}\nmaxClientCnxns={}\nminSessionTimeout={}\nmaxSessionTimeout={}\nclientPortListenBacklog=-1\nserverId={}\n",
            cfg.client_port,
            storage::snap::snap_dir(&cfg.data_dir).display(),
            cfg.log_dir().join(storage::wal::DIR_NAME).display(),
            cfg.tick_ms,
            cfg.max_client_cnxns,
            cfg.min_session_timeout_ms,
            cfg.max_session_timeout_ms,
            cfg.server_id().unwrap_or(0),
        );
        if cfg.distributed() {
            let _ = write!(
                out,
                "initLimit={}\nsyncLimit={}\nelectionAlg=3\nelectionPort={}\nquorumPort={}\npeerType={}\nmembership: \n",
                cfg.init_limit,
                cfg.sync_limit,
                cfg.server_id()
                    .and_then(|i| cfg.servers.get(&i))
                    .map_or(0, |s| s.election_port),
                cfg.server_id()
                    .and_then(|i| cfg.servers.get(&i))
                    .map_or(0, |s| s.quorum_port),
                // ZooKeeper's LearnerType: 0 participant, 1 observer.
                u8::from(self.node.is_observer()),
            );
            // The membership now: the config files', or a reconfig's (no
            // newline after its version line, as ZooKeeper's).
            out.push_str(&self.node.state().members().render());
        }
        out
    }

    pub(crate) fn envi(&self) -> String {
        let var = |k: &str| std::env::var(k).unwrap_or_default();
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        let os_version = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .map(|h| h.trim().to_string())
            .unwrap_or_default();
        format!(
            "Environment:\nzookeeper.version={VERSION}\nhost.name={host}\nos.name={}\nos.arch={}\nos.version={os_version}\nuser.name={}\nuser.home={}\nuser.dir={}\n",
            if std::env::consts::OS == "linux" { "Linux" } else { std::env::consts::OS },
            if std::env::consts::ARCH == "x86_64" { "amd64" } else { std::env::consts::ARCH },
            user_name(),
            var("HOME"),
            std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default(),
        )
    }

    fn dump(&self) -> String {
        let tick = self.cfg.tick_ms.max(1) as i64;
        // ZooKeeper groups expiry times into tickTime buckets.
        let bucket = |deadline: i64| (deadline / tick + 1) * tick;
        let deadlines = self.node.session_deadlines();
        let mut sets: std::collections::BTreeMap<i64, Vec<i64>> = Default::default();
        for (s, d) in &deadlines {
            sets.entry(bucket(*d)).or_default().push(*s);
        }
        let mut out = format!(
            "SessionTracker dump:\nSession Sets ({})/({}):\n",
            sets.len(),
            deadlines.len()
        );
        for (at, ss) in &sets {
            let _ = writeln!(out, "{} expire at {}:", ss.len(), java_date(*at));
            for s in ss {
                let _ = writeln!(out, "\t0x{s:x}");
            }
        }
        let eph = self.node.state().tree.ephemerals();
        let mut owners: Vec<_> = eph.iter().filter(|(_, p)| !p.is_empty()).collect();
        owners.sort_by_key(|(s, _)| **s);
        let _ = writeln!(
            out,
            "ephemeral nodes dump:\nSessions with Ephemerals ({}):",
            owners.len()
        );
        for (s, paths) in owners {
            let _ = writeln!(out, "0x{s:x}:");
            for p in paths.iter() {
                let _ = writeln!(out, "\t{p}");
            }
        }
        let by_session: std::collections::HashMap<i64, i64> = deadlines.into_iter().collect();
        let mut csets: std::collections::BTreeMap<i64, Vec<String>> = Default::default();
        if let Some(a) = &self.asking {
            csets
                .entry(bucket(self.now_ms + self.cfg.tick_ms as i64 * 2))
                .or_default()
                .push(format!("ip: {} sessionId: 0x0", addr(a)));
        }
        for (id, c) in self.sorted_conns() {
            let sid = self.session_of(*id);
            let at = by_session.get(&sid).copied().unwrap_or(self.now_ms);
            csets
                .entry(bucket(at))
                .or_default()
                .push(format!("ip: {} sessionId: 0x{sid:x}", addr(&c.addr)));
        }
        let _ = writeln!(
            out,
            "Connections dump:\nConnections Sets ({})/({}):",
            csets.len(),
            self.conns.len() + usize::from(self.asking.is_some())
        );
        for (at, cs) in &csets {
            let _ = writeln!(out, "{} expire at {}:", cs.len(), java_date(*at));
            for c in cs {
                let _ = writeln!(out, "\t{c}");
            }
        }
        out
    }

    /// Data watches by path with the watching sessions, sorted.
    pub(crate) fn watches_by_path(&self) -> Vec<(String, Vec<i64>)> {
        let mut v: Vec<(String, Vec<i64>)> = self
            .node
            .watches()
            .data_watches()
            .map(|(p, conns)| {
                let mut s: Vec<i64> = conns.map(|c| self.session_of(c)).collect();
                s.sort_unstable();
                s.dedup();
                (p.to_string(), s)
            })
            .filter(|(_, s)| !s.is_empty())
            .collect();
        v.sort();
        v
    }

    fn wchs(&self) -> String {
        let by_path = self.watches_by_path();
        let total: usize = by_path.iter().map(|(_, s)| s.len()).sum();
        let sessions: std::collections::BTreeSet<i64> = by_path
            .iter()
            .flat_map(|(_, s)| s.iter().copied())
            .collect();
        format!(
            "{} connections watching {} paths\nTotal watches:{total}\n",
            sessions.len(),
            by_path.len()
        )
    }

    fn wchc(&self) -> String {
        let mut by_session: std::collections::BTreeMap<i64, Vec<String>> = Default::default();
        for (p, ss) in self.watches_by_path() {
            for s in ss {
                by_session.entry(s).or_default().push(p.clone());
            }
        }
        let mut out = String::new();
        for (s, paths) in by_session {
            let _ = writeln!(out, "0x{s:x}");
            for p in paths {
                let _ = writeln!(out, "\t{p}");
            }
        }
        out.push('\n');
        out
    }

    fn wchp(&self) -> String {
        let mut out = String::new();
        for (p, ss) in self.watches_by_path() {
            let _ = writeln!(out, "{p}");
            for s in ss {
                let _ = writeln!(out, "\t0x{s:x}");
            }
        }
        out.push('\n');
        out
    }

    /// ferrokeeper's value of one of ZooKeeper's simple `mntr` keys; None
    /// for those it has no counterpart of (ZooKeeper's zero is printed).
    pub(crate) fn mntr_value(&self, key: &str) -> Option<String> {
        let sm = self.node.state();
        let l = &self.server.latency;
        Some(match key {
            "zk_server_state" => self.mode.into(),
            "zk_ephemerals_count" => sm
                .tree
                .ephemerals()
                .values()
                .map(|s| s.len())
                .sum::<usize>()
                .to_string(),
            "zk_num_alive_connections" => self.connections().to_string(),
            "zk_avg_latency" => l.avg(),
            "zk_min_latency" => l.min().to_string(),
            "zk_max_latency" => l.max_ms.to_string(),
            "zk_outstanding_requests" => self.outstanding().to_string(),
            "zk_znode_count" => self.node_count().to_string(),
            "zk_global_sessions" => sm.sessions.len().to_string(),
            "zk_local_sessions" => self.node.local_session_count().to_string(),
            "zk_packets_sent" => self.server.sent.to_string(),
            "zk_packets_received" => self.server.received.to_string(),
            "zk_watch_count" => self.node.watch_count().to_string(),
            "zk_approximate_data_size" => sm.tree.approximate_data_size().to_string(),
            "zk_open_file_descriptor_count" => file_descriptors().0.to_string(),
            "zk_max_file_descriptor_count" => file_descriptors().1.to_string(),
            "zk_uptime" => self.started.elapsed().as_millis().to_string(),
            "zk_snap_count" => self.zk.snapshottime.count().to_string(),
            // Here a mismatch stops the server: a running one has seen none.
            "zk_digest_mismatches_count" => "0".into(),
            _ => return None,
        })
    }

    /// Every key ZooKeeper 3.8's `mntr` prints (`mntr_keys`), in its
    /// order, then the ensemble's and the leader's, then ferrokeeper's own.
    pub(crate) fn mntr(&self) -> String {
        let sm = self.node.state();
        let mut out = String::new();
        let mut kv = |k: &str, v: String| {
            let _ = writeln!(out, "{k}\t{v}");
        };
        kv("zk_version", VERSION.into());
        kv("zk_server_state", self.mode.into());
        for (key, zero) in crate::mntr_keys::SIMPLE {
            if *key != "zk_server_state" {
                kv(
                    key,
                    self.mntr_value(key).unwrap_or_else(|| zero.to_string()),
                );
            }
        }
        self.zk.mntr(&mut kv);
        kv("zk_last_zxid", format!("0x{:x}", self.node.last_zxid()));
        if self.mode != "standalone" {
            let state = match self.mode {
                "leader" => "leading - broadcast",
                "observer" => "observing - broadcast",
                "follower" => "following - broadcast",
                _ => "looking",
            };
            kv("zk_peer_state", state.into());
            kv("zk_quorum_size", self.node.voter_count().to_string());
        }
        if self.mode == "leader" {
            let (followers, synced) = self.node.followers();
            let (observers, synced_observers) = self.node.observers();
            kv("zk_learners", (followers + observers).to_string());
            kv("zk_followers", followers.to_string());
            kv("zk_synced_followers", synced.to_string());
            kv(
                "zk_synced_non_voting_followers",
                self.node.synced_non_voting().to_string(),
            );
            kv("zk_synced_observers", synced_observers.to_string());
            kv("zk_pending_syncs", "0".into());
            for key in [
                "zk_leader_uptime",
                "zk_last_proposal_size",
                "zk_max_proposal_size",
                "zk_min_proposal_size",
            ] {
                kv(key, "0".into());
            }
        }
        kv("ferrokeeper_tree_digest", sm.tree.digest().to_string());
        kv(
            "ferrokeeper_digest_checks",
            self.node.digest_checks().to_string(),
        );
        kv(
            "ferrokeeper_linearizable_reads",
            self.node.linearizable_reads_served().to_string(),
        );
        kv(
            "ferrokeeper_writes_resent",
            self.node.writes_resent().to_string(),
        );
        kv(
            "ferrokeeper_leader_changes",
            self.node.leader_changes().to_string(),
        );
        for (k, v) in self.budget.mntr() {
            kv(&k, v);
        }
        out
    }
}

/// The user this process runs as, from $USER or /etc/passwd.
fn user_name() -> String {
    if let Ok(u) = std::env::var("USER") {
        return u;
    }
    // SAFETY: getuid cannot fail.
    let uid = unsafe { libc::getuid() }.to_string();
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let f: Vec<&str> = l.split(':').collect();
                (f.get(2) == Some(&uid.as_str())).then(|| f[0].to_string())
            })
        })
        .unwrap_or_default()
}

/// Bytes under the snapshot and log directories (ZooKeeper's `dirs`).
pub(crate) fn dir_sizes(cfg: &crate::Config) -> (u64, u64) {
    fn size(d: &std::path::Path) -> u64 {
        std::fs::read_dir(d)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .filter_map(|e| e.metadata().ok())
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
                    .sum()
            })
            .unwrap_or(0)
    }
    (
        size(&storage::snap::snap_dir(&cfg.data_dir)),
        size(&cfg.log_dir().join(storage::wal::DIR_NAME)),
    )
}

pub(crate) fn file_descriptors() -> (usize, u64) {
    let open = std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0);
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the struct we pass.
    let max = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur
    } else {
        0
    };
    (open, max)
}

pub use proto::java_date;

/// What the command prints. `crst`/`srst` are carried out by the caller.
pub fn render(cmd: &str, v: &View) -> String {
    match cmd {
        "ruok" => "imok".into(),
        // As ZooKeeper's IsroCommand: "null" while not serving.
        "isro" => if v.node.is_read_only() {
            "ro"
        } else if v.serving() {
            "rw"
        } else {
            "null"
        }
        .into(),
        "envi" => v.envi(),
        "conf" => v.conf(),
        "cons" => v.cons(true),
        "crst" => "Connection stats reset.\n".into(),
        "srst" => "Server stats reset.\n".into(),
        "srvr" => v.srvr(false),
        "stat" => v.srvr(true),
        "dump" => v.dump(),
        "wchs" => v.wchs(),
        "wchc" => v.wchc(),
        "wchp" => v.wchp(),
        "mntr" => v.mntr(),
        "hash" => format!(
            "{:x}: {}\n",
            v.node.last_zxid(),
            v.node.state().tree.digest()
        ),
        "dirs" => {
            let (d, l) = dir_sizes(v.cfg);
            format!("datadir_size: {d}\nlogdir_size: {l}\n")
        }
        "gtmk" => TRACE_MASK.to_string(),
        // ZooKeeper sets the mask from 8 more bytes and prints nothing
        // when they are missing; tracing is not mask-driven here.
        "stmk" => String::new(),
        other => format!("{other} is not implemented in ferrokeeper.\n"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_only_known_words() {
        assert_eq!(detect(b"ruok"), Some("ruok"));
        assert_eq!(detect(&[0, 0, 0, 45]), None);
        assert_eq!(detect(b"ru"), None);
        assert_eq!(
            not_whitelisted("ruok"),
            "ruok is not executed because it is not in the whitelist.\n"
        );
    }

    #[test]
    fn java_formats() {
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date(1_795_567_869_000), "Wed Nov 25 00:51:09 UTC 2026");
        assert_eq!(java_date(951_782_400_000), "Tue Feb 29 00:00:00 UTC 2000");
        let mut l = Latency::default();
        assert_eq!(l.avg(), "0.0");
        for ms in [0, 1, 9, 0, 0, 0, 1, 9, 3, 3, 3, 2] {
            l.add(ms);
        }
        assert_eq!((l.min(), l.avg(), l.max_ms), (0, "2.5833".into(), 9));
    }
}
