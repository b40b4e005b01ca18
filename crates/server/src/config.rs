//! zoo.cfg: Java-properties syntax with ZooKeeper's keys. Unknown keys get
//! a warning naming them; a bad value is an error naming file, line and
//! key.
//!
//! ZooKeeper also takes many settings as JVM system properties, which
//! zkServer.sh passes from `SERVER_JVMFLAGS` and `JVMFLAGS`
//! (`-Dzookeeper.extendedTypesEnabled=true`, `-Djute.maxbuffer=...`). In
//! ZooKeeper a zoo.cfg key that QuorumPeerConfig does not know *is* the
//! system property `zookeeper.<key>`, so a `-D` property is read here as
//! that zoo.cfg key, with or without its `zookeeper.` prefix, and a line
//! of zoo.cfg wins over it (ZooKeeper sets the property from the file).
//! Keys ZooKeeper reads only from zoo.cfg (dataDir, clientPort, …) are not
//! taken from properties, as in ZooKeeper.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// `jute.maxbuffer` default: 0xfffff bytes, as ZooKeeper.
pub const DEFAULT_JUTE_MAXBUFFER: usize = 0xfffff;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("{file}:{line}: {key}: {msg}")]
    Value {
        file: String,
        line: usize,
        key: String,
        msg: String,
    },
    #[error("{file}: {msg}")]
    File { file: String, msg: String },
    #[error("{var}: -D{name}: {msg}")]
    Property {
        var: &'static str,
        name: String,
        msg: String,
    },
}

/// The environment variables zkServer.sh hands to the JVM, in the order
/// it passes them (a later `-D` of the same name wins).
pub const JVM_FLAG_VARS: [&str; 2] = ["SERVER_JVMFLAGS", "JVMFLAGS"];

/// QuorumPeerConfig's own keys: ZooKeeper reads them from zoo.cfg only,
/// never from a system property.
const FILE_ONLY: &[&str] = &[
    "dataDir",
    "dataLogDir",
    "clientPort",
    "clientPortAddress",
    "secureClientPort",
    "secureClientPortAddress",
    "tickTime",
    "initLimit",
    "syncLimit",
    "maxClientCnxns",
    "minSessionTimeout",
    "maxSessionTimeout",
    "electionAlg",
    "quorumListenOnAllIPs",
    "peerType",
    "syncEnabled",
    "dynamicConfigFile",
    "autopurge.snapRetainCount",
    "autopurge.purgeInterval",
    "standaloneEnabled",
    "reconfigEnabled",
    "localSessionsEnabled",
    "localSessionsUpgradingEnabled",
];

/// One `server.N=host:quorumPort:electionPort[:role][;[addr:]clientPort]` line.
pub use proto::members::ServerSpec;

#[derive(Debug, Clone)]
pub struct Config {
    /// The file this came from, for messages and pid files.
    pub path: PathBuf,
    pub tick_ms: u64,
    pub init_limit: u32,
    pub sync_limit: u32,
    pub data_dir: PathBuf,
    /// `dataLogDir`; the transaction log goes to `data_dir` when unset.
    pub data_log_dir: Option<PathBuf>,
    pub client_port: u16,
    pub client_port_address: Option<IpAddr>,
    /// Per client IP; 0 means no limit.
    pub max_client_cnxns: usize,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    pub jute_maxbuffer_bytes: usize,
    pub extended_types: bool,
    pub container_check_interval_ms: i64,
    pub super_digest: Option<String>,
    /// `4lw.commands.whitelist`; "*" allows all.
    pub four_letter_whitelist: Vec<String>,
    pub servers: BTreeMap<u64, ServerSpec>,
    /// `reconfigEnabled` (default false): clients may change the
    /// membership with `reconfig`.
    pub reconfig_enabled: bool,
    /// `standaloneEnabled` (default true): a membership needs two voters.
    pub standalone_enabled: bool,
    /// `dynamicConfigFile`: where the `server.N` lines are (they replace
    /// any in zoo.cfg); written by ZooKeeper and ferrokeeper after a
    /// reconfig.
    pub dynamic_config_file: Option<PathBuf>,
    /// `preAllocSize` (ZooKeeper gives it in KiB): bytes preallocated per log segment.
    pub prealloc_bytes: u64,
    /// `forceSync`: fsync the log before acknowledging (default yes).
    pub force_sync: bool,
    /// `digest.enabled` (ZooKeeper's `zookeeper.digest.enabled`, default
    /// true): replicas compare tree digests through the log and one that
    /// differs from the leader stops.
    pub digest_enabled: bool,
    /// `readonlymode.enabled` (a `-D` property in ZooKeeper): without a
    /// quorum, serve clients that asked for read-only.
    pub read_only_mode: bool,
    /// `linearizableReads` (ferrokeeper's, default false): every read this
    /// server serves to a read-write session waits for a Raft ReadIndex,
    /// so it reflects every write acknowledged before it arrived.
    pub linearizable_reads: bool,
    /// `skipACL` (ZooKeeper's `zookeeper.skipACL` property; "yes" turns
    /// it on, as in ZooKeeper): no ACL is checked. Every server of an
    /// ensemble must have the same (requests are checked where they apply).
    pub skip_acl: bool,
    /// `enforceQuota` (ZooKeeper's `zookeeper.enforceQuota` property, true
    /// when "true" in any case): a write past a hard quota is refused, a
    /// soft one logged. Every server of an ensemble must have the same.
    pub enforce_quota: bool,
    /// `localSessionsEnabled` and `localSessionsUpgradingEnabled` (both
    /// false by default, as ZooKeeper's QuorumPeerConfig reads them, from
    /// zoo.cfg only): new sessions stay on their server; with upgrading,
    /// until they create an ephemeral node.
    pub local_sessions: bool,
    pub local_sessions_upgrading: bool,
    /// `snapCount`: entries between snapshots (randomised in [snapCount/2, snapCount)).
    pub snap_count: u64,
    /// `snapSizeLimitInKb` in bytes: a snapshot also after this many bytes
    /// of log (default 64 MiB; ZooKeeper's is 4 GiB, but it keeps only a
    /// few hundred entries in memory where we keep the log since the
    /// previous snapshot).
    pub snap_size_limit_bytes: u64,
    pub autopurge_snap_retain_count: u32,
    pub autopurge_purge_interval_hours: u32,
    pub admin_enable_server: bool,
    pub admin_server_port: u16,
    /// `admin.serverAddress` (None: every address of both families).
    pub admin_server_address: Option<IpAddr>,
    /// `admin.commandURL` (default `/commands`).
    pub admin_command_url: String,
    /// `admin.forceHttps`: the AdminServer speaks HTTPS only, with the
    /// `ssl.quorum.*` key store (as ZooKeeper's Jetty).
    pub admin_force_https: bool,
    /// `admin.portUnification`: the AdminServer takes HTTPS and HTTP.
    pub admin_port_unification: bool,
    /// `admin.needClientAuth`: the AdminServer's HTTPS asks for a client
    /// certificate (trusted by the `ssl.quorum` trust store), whose
    /// subject is the `x509` identity of the snapshot/restore commands.
    pub admin_need_client_auth: bool,
    /// `admin.snapshot.enabled` (default true): the `snapshot` command.
    pub admin_snapshot_enabled: bool,
    /// `admin.restore.enabled` (default true): the `restore` command.
    pub admin_restore_enabled: bool,
    /// `admin.rateLimiterIntervalInMS` (default 300000): at most one
    /// snapshot and one restore per interval. As in ZooKeeper 3.9.5,
    /// the snapshot command reads it as microseconds (300000: 0.3 s).
    pub admin_rate_limiter_interval_ms: u64,
    /// Prometheus metrics: on when `metricsProvider.className` names
    /// ZooKeeper's PrometheusMetricsProvider (or `metricsProvider.httpPort`
    /// is set), on `metricsProvider.httpHost`:`httpPort` (default 0.0.0.0:7000).
    pub metrics_enabled: bool,
    pub metrics_port: u16,
    /// `metricsProvider.httpHost` (None: every address of both families).
    pub metrics_host: Option<IpAddr>,
    /// `globalOutstandingLimit`: requests in flight over all connections
    /// before the server stops reading from clients (default 1000).
    pub global_outstanding_limit: usize,
    /// `ferrokeeper.workerThreads` (ours; ZooKeeper ignores it): threads
    /// of the runtime that serves connections, peers and the replica core.
    /// Default: the CPUs this process may use. On a host shared by several
    /// servers (the one-host walkthrough) fewer threads cost fewer context
    /// switches.
    pub worker_threads: usize,
    /// `nio.sessionlessCnxnTimeout` (ZooKeeper's system property
    /// `zookeeper.nio.sessionlessCnxnTimeout`): a connection that has not
    /// sent its connect request by then is closed (default 10 s).
    pub sessionless_cnxn_timeout_ms: u64,
    /// SASL and the authentication providers (`auth`).
    pub auth: AuthSettings,
    /// TLS on the client port (`secureClientPort`, `ssl.*`, `authProvider.x509`).
    pub tls: crate::tls::TlsSettings,
    /// Keys ZooKeeper knows that this build accepts but does not act on yet.
    pub warnings: Vec<String>,
}

/// What zoo.cfg and the `-D` flags say about client authentication
/// beyond `digest`: where the JAAS file is and what SASL grants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthSettings {
    /// `-Djava.security.auth.login.config=FILE`: the JAAS file whose
    /// `Server` section lists the SASL users (`jaas::load`). Only a JVM
    /// flag sets it, as in ZooKeeper.
    pub jaas_file: Option<PathBuf>,
    /// `zookeeper.sasl.serverconfig`: the JAAS section to read (None:
    /// `Server`).
    pub login_context: Option<String>,
    /// `zookeeper.superUser` and `zookeeper.superUser.*`: SASL users who
    /// are super.
    pub super_users: Vec<String>,
    /// `zookeeper.SASLAuthenticationProvider.superPassword`.
    pub super_password: Option<String>,
    /// `zookeeper.allowSaslFailedClients`.
    pub allow_sasl_failed: bool,
    /// An `authProvider.*` names ZooKeeper's `SASLAuthenticationProvider`:
    /// `sasl` ACLs are accepted and matched.
    pub sasl_acls: bool,
    /// `enforce.auth.enabled` and `enforce.auth.schemes` (or
    /// `sessionRequireClientSASLAuth`, which means `sasl`): the schemes a
    /// session must have an identity of before any request but auth and
    /// SASL is served (`enforce_schemes`).
    pub enforce_enabled: bool,
    pub enforce_schemes: Vec<String>,
    pub session_require_sasl: bool,
    /// `quorum.auth.enableSasl`: servers authenticate each other.
    pub quorum_sasl: bool,
    /// `quorum.auth.serverRequireSasl`.
    pub quorum_server_require: bool,
    /// `quorum.auth.learnerRequireSasl`.
    pub quorum_learner_require: bool,
    /// `quorum.auth.server.saslLoginContext` (None: `QuorumServer`).
    pub quorum_server_context: Option<String>,
    /// `quorum.auth.learner.saslLoginContext` (None: `QuorumLearner`).
    pub quorum_learner_context: Option<String>,
}

/// ZooKeeper keys accepted without effect in this build (a warning says so).
const ACCEPTED: &[&str] = &[
    "metricsProvider.exportJvmInfo",
    "quorumListenOnAllIPs",
    "electionAlg",
    "leaderServes",
    "peerType",
    "syncEnabled",
    "znode.container.maxPerMinute",
    "audit.enable",
];

/// ZooKeeper settings this build does not support yet (TLS, SASL and
/// quorum authentication, read-only mode, …): ignored with a warning that
/// says so, not taken for typing mistakes.
const NOT_YET: &[&str] = &[
    "clientCnxnSocket",
    "client.secure",
    "emulate353TTLNodes",
    "connectToLearnerMasterLimit",
    "maxCnxns",
    "snapshot.compression.method",
    "letAnySaslUserDoX",
];
const NOT_YET_PREFIXES: &[&str] = &[
    "ssl.",
    "group.",
    "weight.",
    "quorum.",
    "multiAddress.",
    "fips-mode",
];

pub(crate) fn parse_ip(v: &str) -> Result<IpAddr, String> {
    if v == "localhost" {
        return Ok(IpAddr::from([127, 0, 0, 1]));
    }
    v.parse().map_err(|_| format!("'{v}' is not an IP address"))
}

/// Where a setting came from, for messages.
#[derive(Clone, Copy)]
enum Src<'a> {
    /// A line of the file.
    File(usize),
    /// A `-Dname=value` in this environment variable.
    Property(&'static str, &'a str),
}

struct Line<'a> {
    src: Src<'a>,
    key: &'a str,
    value: String,
}

/// `-Dname=value` settings in the JVM flag variables' text, as
/// `(variable, name, value)`; the shell splits the flags at whitespace.
pub fn jvm_properties<'a>(
    vars: &[(&'static str, &'a str)],
) -> Vec<(&'static str, &'a str, &'a str)> {
    let mut out = Vec::new();
    for (var, text) in vars {
        for flag in text.split_whitespace() {
            if let Some(p) = flag.strip_prefix("-D") {
                let (name, value) = p.split_once('=').unwrap_or((p, ""));
                out.push((*var, name, value));
            }
        }
    }
    out
}

/// Java-properties lines: `#`/`!` comments, `key=value`, `key: value` or
/// `key value`, surrounding whitespace trimmed, `\` continues a line.
fn parse_lines(text: &str) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    let mut lines = text.lines().enumerate();
    while let Some((i, raw)) = lines.next() {
        let t = raw.trim_start();
        if t.is_empty() || t.starts_with('#') || t.starts_with('!') {
            continue;
        }
        let sep = t
            .find(|c: char| c == '=' || c == ':' || c.is_whitespace())
            .unwrap_or(t.len());
        let key = &t[..sep];
        let mut rest = t[sep..].trim_start();
        if rest.starts_with('=') || rest.starts_with(':') {
            rest = rest[1..].trim_start();
        }
        let mut value = rest.trim_end().to_string();
        while value.ends_with('\\') {
            value.pop();
            match lines.next() {
                Some((_, more)) => value.push_str(more.trim()),
                None => break,
            }
        }
        out.push(Line {
            src: Src::File(i + 1),
            key,
            value,
        });
    }
    out
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
            file: file.clone(),
            msg: format!("cannot read: {e}"),
        })?;
        let env: Vec<(&'static str, String)> = JVM_FLAG_VARS
            .iter()
            .filter_map(|v| Some((*v, std::env::var(v).ok()?)))
            .collect();
        let vars: Vec<(&'static str, &str)> = env.iter().map(|(v, t)| (*v, t.as_str())).collect();
        Config::parse_with(path, &text, &jvm_properties(&vars))
    }

    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        Config::parse_with(path, text, &[])
    }

    /// zoo.cfg's text, then the `-D` properties (`jvm_properties`) for
    /// keys the file does not set.
    pub fn parse_with(
        path: &Path,
        text: &str,
        properties: &[(&'static str, &str, &str)],
    ) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let mut c = Config {
            path: path.to_path_buf(),
            tick_ms: 3000,
            init_limit: 10,
            sync_limit: 5,
            data_dir: PathBuf::new(),
            data_log_dir: None,
            client_port: 0,
            client_port_address: None,
            max_client_cnxns: 60,
            min_session_timeout_ms: -1,
            max_session_timeout_ms: -1,
            jute_maxbuffer_bytes: DEFAULT_JUTE_MAXBUFFER,
            extended_types: false,
            container_check_interval_ms: 60_000,
            super_digest: None,
            four_letter_whitelist: vec!["srvr".into()],
            servers: BTreeMap::new(),
            reconfig_enabled: false,
            standalone_enabled: true,
            dynamic_config_file: None,
            prealloc_bytes: 64 << 20,
            force_sync: true,
            digest_enabled: true,
            read_only_mode: false,
            linearizable_reads: false,
            skip_acl: false,
            enforce_quota: false,
            local_sessions: false,
            local_sessions_upgrading: false,
            snap_count: 100_000,
            snap_size_limit_bytes: 64 << 20,
            autopurge_snap_retain_count: 3,
            autopurge_purge_interval_hours: 0,
            admin_enable_server: true,
            admin_server_port: 8080,
            admin_server_address: None,
            admin_command_url: "/commands".into(),
            admin_force_https: false,
            admin_port_unification: false,
            admin_need_client_auth: false,
            admin_snapshot_enabled: true,
            admin_restore_enabled: true,
            admin_rate_limiter_interval_ms: 300_000,
            metrics_enabled: false,
            metrics_port: 7000,
            metrics_host: None,
            global_outstanding_limit: 1000,
            worker_threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            sessionless_cnxn_timeout_ms: 10_000,
            auth: AuthSettings::default(),
            tls: Default::default(),
            warnings: Vec::new(),
        };
        let mut lines = parse_lines(text);
        let in_file: std::collections::HashSet<&str> = lines.iter().map(|l| l.key).collect();
        // The last of several -D of one name wins, as in Java.
        let mut props: Vec<(&'static str, &str, &str)> = Vec::new();
        for &(var, name, value) in properties {
            props.retain(|p| p.1 != name);
            props.push((var, name, value));
        }
        for (var, name, value) in props {
            let key = name.strip_prefix("zookeeper.").unwrap_or(name);
            if FILE_ONLY.contains(&key) || key.starts_with("server.") {
                c.warnings.push(format!(
                    "{var}: -D{name}: ZooKeeper reads {key} from zoo.cfg only; ignored"
                ));
            } else if !in_file.contains(key) {
                lines.push(Line {
                    src: Src::Property(var, name),
                    key,
                    value: value.to_string(),
                });
            }
        }
        let mut client_port_set = false;
        let mut data_dir_set = false;
        for l in lines {
            let err = |msg: String| match l.src {
                Src::File(line) => ConfigError::Value {
                    file: file.clone(),
                    line,
                    key: l.key.to_string(),
                    msg,
                },
                Src::Property(var, name) => ConfigError::Property {
                    var,
                    name: name.to_string(),
                    msg,
                },
            };
            let at = match l.src {
                Src::File(line) => format!("{file}:{line}"),
                Src::Property(var, name) => format!("{var}: -D{name}"),
            };
            fn num<T: std::str::FromStr>(v: &str) -> Result<T, String> {
                v.parse::<T>()
                    .map_err(|_| format!("'{v}' is not a valid number"))
            }
            /// A number that must be above zero.
            fn positive<T: std::str::FromStr + PartialOrd + Default>(v: &str) -> Result<T, String> {
                let n = num::<T>(v)?;
                if n > T::default() {
                    Ok(n)
                } else {
                    Err("must be > 0".into())
                }
            }
            let boolean = |v: &str| match v.to_ascii_lowercase().as_str() {
                "true" | "yes" => Ok(true),
                "false" | "no" => Ok(false),
                _ => Err(format!("'{v}' is not true or false")),
            };
            let v = l.value.as_str();
            if let Some(r) = c.tls.set(l.key, v) {
                r.map_err(err)?;
                continue;
            }
            match l.key {
                "tickTime" => {
                    c.tick_ms = num::<u64>(v)
                        .and_then(|t| {
                            if t == 0 {
                                Err("must be > 0".into())
                            } else {
                                Ok(t)
                            }
                        })
                        .map_err(err)?
                }
                "initLimit" => c.init_limit = num(v).map_err(err)?,
                "syncLimit" => c.sync_limit = num(v).map_err(err)?,
                "dataDir" => {
                    if v.is_empty() {
                        return Err(err("must not be empty".into()));
                    }
                    c.data_dir = PathBuf::from(v);
                    data_dir_set = true;
                }
                "dataLogDir" => c.data_log_dir = (!v.is_empty()).then(|| PathBuf::from(v)),
                "clientPort" => {
                    c.client_port = num::<u16>(v)
                        .map_err(|_| err(format!("'{v}' is not a port number (0-65535)")))?;
                    client_port_set = true;
                }
                "clientPortAddress" => c.client_port_address = Some(parse_ip(v).map_err(err)?),
                "maxClientCnxns" => c.max_client_cnxns = num(v).map_err(err)?,
                "minSessionTimeout" => c.min_session_timeout_ms = num(v).map_err(err)?,
                "maxSessionTimeout" => c.max_session_timeout_ms = num(v).map_err(err)?,
                "jute.maxbuffer" => c.jute_maxbuffer_bytes = positive::<usize>(v).map_err(err)?,
                "extendedTypesEnabled" => c.extended_types = boolean(v).map_err(err)?,
                "preAllocSize" => {
                    let kib: u64 = positive::<u64>(v).map_err(err)?;
                    c.prealloc_bytes = kib.saturating_mul(1024);
                }
                "forceSync" => c.force_sync = boolean(v).map_err(err)?,
                "digest.enabled" => c.digest_enabled = boolean(v).map_err(err)?,
                "readonlymode.enabled" => c.read_only_mode = boolean(v).map_err(err)?,
                "linearizableReads" => c.linearizable_reads = boolean(v).map_err(err)?,
                // ZooKeeper: System.getProperty("zookeeper.skipACL", "no").equals("yes").
                "skipACL" => c.skip_acl = v == "yes",
                // ZooKeeper: Boolean.parseBoolean(System.getProperty("zookeeper.enforceQuota")).
                "enforceQuota" => c.enforce_quota = v.eq_ignore_ascii_case("true"),
                "localSessionsEnabled" => c.local_sessions = boolean(v).map_err(err)?,
                "localSessionsUpgradingEnabled" => {
                    c.local_sessions_upgrading = boolean(v).map_err(err)?
                }
                "reconfigEnabled" => c.reconfig_enabled = boolean(v).map_err(err)?,
                "standaloneEnabled" => c.standalone_enabled = boolean(v).map_err(err)?,
                "dynamicConfigFile" => {
                    let dynamic = PathBuf::from(v);
                    let text = std::fs::read_to_string(&dynamic)
                        .map_err(|e| err(format!("cannot read {v}: {e}")))?;
                    let members = proto::members::Members::parse(&text)
                        .map_err(|e| err(format!("{v}: {e}")))?;
                    if !c.servers.is_empty() {
                        c.warnings.push(format!(
                            "{at}: the server.N lines of {v} replace those of {file}"
                        ));
                    }
                    c.servers = members.servers;
                    c.dynamic_config_file = Some(dynamic);
                }
                "snapCount" => {
                    c.snap_count = num::<u64>(v)
                        .and_then(|n| {
                            if n < 2 {
                                Err("must be at least 2".into())
                            } else {
                                Ok(n)
                            }
                        })
                        .map_err(err)?;
                }
                "snapSizeLimitInKb" => {
                    let kib = num::<i64>(v).map_err(err)?;
                    // ZooKeeper: zero or negative turns the limit off.
                    c.snap_size_limit_bytes = if kib <= 0 {
                        u64::MAX
                    } else {
                        (kib as u64).saturating_mul(1024)
                    };
                }
                "znode.container.checkIntervalMs" => {
                    c.container_check_interval_ms = positive::<i64>(v).map_err(err)?
                }
                "superDigest" | "DigestAuthenticationProvider.superDigest" => {
                    if !v.contains(':') {
                        return Err(err("expected user:base64digest".into()));
                    }
                    c.super_digest = Some(v.to_string());
                }
                "4lw.commands.whitelist" => {
                    c.four_letter_whitelist = v
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                }
                "autopurge.snapRetainCount" => {
                    let n = num::<u32>(v).map_err(err)?;
                    if n < 3 {
                        // ZooKeeper's DatadirCleanupManager says the same.
                        c.warnings.push(format!(
                            "{at}: Invalid autopurge.snapRetainCount: {n}, the minimum is 3; using 3"
                        ));
                    }
                    c.autopurge_snap_retain_count = n.max(3)
                }
                "autopurge.purgeInterval" => {
                    c.autopurge_purge_interval_hours = num(v).map_err(err)?
                }
                "admin.enableServer" => c.admin_enable_server = boolean(v).map_err(err)?,
                "admin.serverPort" => c.admin_server_port = num(v).map_err(err)?,
                "admin.serverAddress" => {
                    c.admin_server_address = Some(parse_ip(v).map_err(err)?);
                }
                "admin.forceHttps" => c.admin_force_https = boolean(v).map_err(err)?,
                "admin.portUnification" => c.admin_port_unification = boolean(v).map_err(err)?,
                "admin.needClientAuth" => c.admin_need_client_auth = boolean(v).map_err(err)?,
                "admin.snapshot.enabled" => c.admin_snapshot_enabled = boolean(v).map_err(err)?,
                "admin.restore.enabled" => c.admin_restore_enabled = boolean(v).map_err(err)?,
                "admin.rateLimiterIntervalInMS" => {
                    c.admin_rate_limiter_interval_ms = num(v).map_err(err)?
                }
                "admin.commandURL" => {
                    if !v.starts_with('/') {
                        return Err(err("must start with /".into()));
                    }
                    c.admin_command_url = v.trim_end_matches('/').to_string();
                }
                "metricsProvider.className" => {
                    c.metrics_enabled = v.ends_with("PrometheusMetricsProvider");
                    if !c.metrics_enabled && !v.ends_with("NullMetricsProvider") {
                        c.warnings.push(format!(
                            "{at}: metricsProvider.className {v} is not supported; metrics are off"
                        ));
                    }
                }
                "metricsProvider.httpPort" => {
                    c.metrics_port = num(v).map_err(err)?;
                    c.metrics_enabled = true;
                }
                "metricsProvider.httpHost" => c.metrics_host = Some(parse_ip(v).map_err(err)?),
                "globalOutstandingLimit" => {
                    c.global_outstanding_limit = positive::<usize>(v).map_err(err)?;
                }
                "ferrokeeper.workerThreads" => {
                    c.worker_threads = positive::<usize>(v).map_err(err)?;
                }
                "java.security.auth.login.config" if matches!(l.src, Src::Property(..)) => {
                    c.auth.jaas_file = (!v.is_empty()).then(|| PathBuf::from(v));
                }
                "sasl.serverconfig" => c.auth.login_context = Some(v.to_string()),
                k if k == "superUser" || k.starts_with("superUser.") => {
                    c.auth.super_users.push(v.to_string())
                }
                "SASLAuthenticationProvider.superPassword" => {
                    c.auth.super_password = Some(v.to_string())
                }
                "allowSaslFailedClients" => c.auth.allow_sasl_failed = boolean(v).map_err(err)?,
                "enforce.auth.enabled" => c.auth.enforce_enabled = boolean(v).map_err(err)?,
                "enforce.auth.schemes" => {
                    c.auth.enforce_schemes = v
                        .split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                }
                "sessionRequireClientSASLAuth" => {
                    c.auth.session_require_sasl = boolean(v).map_err(err)?
                }
                "quorum.auth.enableSasl" => c.auth.quorum_sasl = boolean(v).map_err(err)?,
                "quorum.auth.serverRequireSasl" => {
                    c.auth.quorum_server_require = boolean(v).map_err(err)?
                }
                "quorum.auth.learnerRequireSasl" => {
                    c.auth.quorum_learner_require = boolean(v).map_err(err)?
                }
                "quorum.auth.server.saslLoginContext" => {
                    c.auth.quorum_server_context = Some(v.to_string())
                }
                "quorum.auth.learner.saslLoginContext" => {
                    c.auth.quorum_learner_context = Some(v.to_string())
                }
                "quorum.cnxn.threads.size" => {}
                // They reshape Kerberos principal names (service/host@REALM);
                // the plain user names of DIGEST-MD5 pass through unchanged.
                "kerberos.removeHostFromPrincipal" | "kerberos.removeRealmFromPrincipal" => {
                    boolean(v).map_err(err)?;
                }
                k if k.starts_with("authProvider.") => match v.rsplit('.').next().unwrap_or("") {
                    "SASLAuthenticationProvider" => c.auth.sasl_acls = true,
                    // Built in, always on.
                    "DigestAuthenticationProvider" | "IPAuthenticationProvider" => {}
                    "X509AuthenticationProvider" => c.tls.x509_acls = true,
                    // ZooKeeper logs "Problems loading" and goes on.
                    _ => c.warnings.push(format!(
                        "{at}: {k}: no authentication provider {v} in this server; ignored"
                    )),
                },
                // ZooKeeper needs Netty for TLS; ferrokeeper serves both
                // ports the same way whatever this says.
                "serverCnxnFactory"
                    if v.ends_with("NettyServerCnxnFactory")
                        || v.ends_with("NIOServerCnxnFactory") => {}
                "serverCnxnFactory" => c.warnings.push(format!(
                    "{at}: serverCnxnFactory {v} is not one of ZooKeeper's; ignored"
                )),
                "nio.sessionlessCnxnTimeout" => {
                    c.sessionless_cnxn_timeout_ms = positive::<u64>(v).map_err(err)?;
                }
                k if k.starts_with("server.") => {
                    let id: u64 = k["server.".len()..]
                        .parse()
                        .map_err(|_| err("expected server.<number>".into()))?;
                    let spec = ServerSpec::parse(v).map_err(err)?;
                    c.servers.insert(id, spec);
                }
                k if ACCEPTED.contains(&k) => c.warnings.push(format!(
                    "{at}: {k} is accepted but has no effect in this version"
                )),
                k if NOT_YET.contains(&k) || NOT_YET_PREFIXES.iter().any(|p| k.starts_with(p)) => c
                    .warnings
                    .push(format!("{at}: {k} is not supported yet and is ignored")),
                k => c.warnings.push(format!("{at}: unknown key {k} ignored")),
            }
        }
        // AuthenticationHelper: enforcing needs schemes, and providers for them.
        let enforced = c.enforce_schemes();
        if c.auth.enforce_enabled && enforced.is_empty() {
            return Err(ConfigError::File {
                file,
                msg: "zookeeper.enforce.auth.enabled is true zookeeper.enforce.auth.schemes must be configured".into(),
            });
        }
        for scheme in &enforced {
            let available = match scheme.as_str() {
                "ip" | "digest" => true,
                "sasl" => c.auth.sasl_acls,
                "x509" => c.tls.x509_acls,
                _ => false,
            };
            if !available {
                return Err(ConfigError::File {
                    file,
                    msg: format!("Authentication scheme {scheme} is not available (enforce.auth.schemes; its authProvider is not configured)"),
                });
            }
        }
        // QuorumPeerConfig: requiring SASL needs it on.
        for (on, key) in [
            (
                c.auth.quorum_server_require,
                "quorum.auth.serverRequireSasl",
            ),
            (
                c.auth.quorum_learner_require,
                "quorum.auth.learnerRequireSasl",
            ),
        ] {
            if on && !c.auth.quorum_sasl {
                return Err(ConfigError::File {
                    file,
                    msg: format!("quorum.auth.enableSasl is disabled, so cannot enable {key}"),
                });
            }
        }
        if c.servers.len() > 1 && c.servers.values().filter(|s| !s.observer).count() % 2 == 0 {
            c.warnings.push(format!(
                "{file}: {} voting servers: Non-optimal configuration, consider an odd number of servers (an even ensemble tolerates no more failures than one server fewer)",
                c.servers.values().filter(|s| !s.observer).count()
            ));
        }
        if !data_dir_set {
            return Err(ConfigError::File {
                file,
                msg: "dataDir is not set".into(),
            });
        }
        if !client_port_set && !c.tls.enabled() {
            // ZooKeeper 3.5+: the client port may come from this server's server.N line.
            match c.servers.values().find_map(|s| s.client.clone()) {
                Some((_, port)) if !c.distributed() => c.client_port = port,
                // An ensemble member takes it from its own line once its
                // myid is known (`client_endpoint`).
                Some(_) if c.distributed() => {}
                _ => {
                    return Err(ConfigError::File {
                        file,
                        msg: "clientPort is not set".into(),
                    })
                }
            }
        }
        let tick = c.tick_ms.min(i32::MAX as u64 / 20) as i32;
        if c.min_session_timeout_ms < 0 {
            c.min_session_timeout_ms = 2 * tick;
        }
        if c.max_session_timeout_ms < 0 {
            c.max_session_timeout_ms = 20 * tick;
        }
        if c.min_session_timeout_ms > c.max_session_timeout_ms {
            return Err(ConfigError::File {
                file,
                msg: format!(
                    "minSessionTimeout {} must not be larger than maxSessionTimeout {}",
                    c.min_session_timeout_ms, c.max_session_timeout_ms
                ),
            });
        }
        Ok(c)
    }

    /// The schemes a session needs an identity of before it is served
    /// (`AuthenticationHelper`): none when enforcement is off.
    pub fn enforce_schemes(&self) -> Vec<String> {
        if self.auth.session_require_sasl {
            vec!["sasl".to_string()]
        } else if self.auth.enforce_enabled {
            self.auth.enforce_schemes.clone()
        } else {
            Vec::new()
        }
    }

    /// The settings that change what requests mean; every server of an
    /// ensemble must have the same.
    pub fn tree_config(&self) -> tree::TreeConfig {
        tree::TreeConfig {
            extended_types: self.extended_types,
            schemes: tree::acl::Schemes {
                sasl: self.auth.sasl_acls,
                x509: self.tls.x509_acls,
                skip_acl: self.skip_acl,
            },
            enforce_quota: self.enforce_quota,
        }
    }

    /// This server's id: `<dataDir>/myid` in an ensemble (`distributed`);
    /// None when standalone or unreadable.
    pub fn server_id(&self) -> Option<u64> {
        if !self.distributed() {
            return None;
        }
        std::fs::read_to_string(self.data_dir.join("myid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The client port and address a server with this config listens on:
    /// `clientPort` / `clientPortAddress`, or else (ZooKeeper 3.5+) the
    /// `;[addr:]port` part of this server's own `server.N` line, found
    /// through `<dataDir>/myid`.
    pub fn client_endpoint(&self) -> Result<(Option<String>, u16), String> {
        if self.client_port != 0 {
            return Ok((
                self.client_port_address.map(|a| a.to_string()),
                self.client_port,
            ));
        }
        let myid_path = self.data_dir.join("myid");
        let my_id: u64 = std::fs::read_to_string(&myid_path)
            .ok()
            .and_then(|t| t.trim().parse().ok())
            .ok_or_else(|| {
                format!(
                    "{}: clientPort is not set, and {} holds no server id to find it in a server.N line",
                    self.path.display(),
                    myid_path.display()
                )
            })?;
        self.servers
            .get(&my_id)
            .and_then(|s| s.client.clone())
            .ok_or_else(|| {
                format!(
                    "{}: clientPort is not set, and server.{my_id} has no ;clientPort part",
                    self.path.display()
                )
            })
    }

    /// An ensemble member (its id in `myid`, peers on the quorum and
    /// election ports), as ZooKeeper's `isDistributed`: more than one
    /// `server.N` line, or one with `standaloneEnabled=false` (a one-server
    /// ensemble that reconfig can grow). Otherwise standalone.
    pub fn distributed(&self) -> bool {
        self.servers.len() > 1 || (self.servers.len() == 1 && !self.standalone_enabled)
    }

    /// Where the transaction log goes.
    pub fn log_dir(&self) -> &Path {
        self.data_log_dir.as_deref().unwrap_or(&self.data_dir)
    }

    pub fn four_letter_allowed(&self, cmd: &str) -> bool {
        self.four_letter_whitelist
            .iter()
            .any(|w| w == "*" || w == cmd)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, ConfigError> {
        Config::parse(Path::new("zoo.cfg"), s)
    }

    #[test]
    fn sample_config_and_defaults() {
        let c = parse("# c\ntickTime=2000\ndataDir = /tmp/zk\nclientPort: 2181\ninitLimit 5\n")
            .unwrap();
        assert_eq!((c.tick_ms, c.client_port, c.init_limit), (2000, 2181, 5));
        assert_eq!(
            (c.min_session_timeout_ms, c.max_session_timeout_ms),
            (4000, 40000)
        );
        assert_eq!(c.log_dir(), Path::new("/tmp/zk"));
        assert_eq!(c.jute_maxbuffer_bytes, 0xfffff);
        assert!(c.four_letter_allowed("srvr") && !c.four_letter_allowed("ruok"));
    }

    #[test]
    fn bad_values_name_file_line_and_key() {
        let e = parse("dataDir=/x\nclientPort=2181\ntickTime=abc\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "zoo.cfg:3: tickTime: 'abc' is not a valid number"
        );
        let e = parse("dataDir=/x\nclientPort=99999\n").unwrap_err();
        assert!(e.to_string().starts_with("zoo.cfg:2: clientPort:"), "{e}");
        let e = parse("dataDir=/x\nclientPort=1\nserver.1=localhost:2888\n").unwrap_err();
        assert!(e.to_string().starts_with("zoo.cfg:3: server.1:"), "{e}");
        assert_eq!(
            parse("clientPort=1\n").unwrap_err().to_string(),
            "zoo.cfg: dataDir is not set"
        );
    }

    #[test]
    fn server_lines_and_unknown_keys() {
        let c = parse("dataDir=/x\nclientPort=2181\nserver.1=localhost:2888:3888\nserver.2=h:2889:3889:observer;127.0.0.1:2182\nfoo=1\n").unwrap();
        assert_eq!(c.servers[&1].quorum_port, 2888);
        assert!(c.servers[&2].observer);
        assert_eq!(c.servers[&2].client, Some((Some("127.0.0.1".into()), 2182)));
        assert!(c.warnings.iter().any(|w| w.contains("unknown key foo")));
    }

    fn props<'a>(flags: &'a str, file: &str) -> Result<Config, ConfigError> {
        let vars = [("SERVER_JVMFLAGS", flags)];
        Config::parse_with(Path::new("zoo.cfg"), file, &jvm_properties(&vars))
    }

    #[test]
    fn jvm_properties_set_keys_the_file_does_not() {
        let base = "dataDir=/x\nclientPort=2181\n";
        let c = props(
            "-Xmx1g -Dzookeeper.extendedTypesEnabled=true -Djute.maxbuffer=4096 \
             -Dzookeeper.DigestAuthenticationProvider.superDigest=super:abc= \
             -Dzookeeper.nio.sessionlessCnxnTimeout=500 -Dzookeeper.4lw.commands.whitelist=* \
             -Dzookeeper.digest.enabled=false",
            base,
        )
        .unwrap();
        assert!(c.extended_types);
        assert!(!c.digest_enabled);
        assert_eq!(c.jute_maxbuffer_bytes, 4096);
        assert_eq!(c.super_digest.as_deref(), Some("super:abc="));
        assert_eq!(c.sessionless_cnxn_timeout_ms, 500);
        assert!(c.four_letter_allowed("ruok"));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        // zoo.cfg wins; the last of two -D wins.
        let c = props(
            "-DextendedTypesEnabled=true -Dzookeeper.snapCount=10 -Dzookeeper.snapCount=20",
            &format!("{base}extendedTypesEnabled=false\n"),
        )
        .unwrap();
        assert!(!c.extended_types);
        assert_eq!(c.snap_count, 20);
        // File-only keys are not taken; unsupported ones say so.
        let c = props(
            "-Dzookeeper.clientPort=1 -Dreadonlymode.enabled=true -Dzookeeper.enforceQuota=true -Dzookeeper.snapshot.compression.method=gz -Dzookeeper.nosuch=1",
            base,
        )
        .unwrap();
        assert_eq!(c.client_port, 2181);
        let w = c.warnings.join("\n");
        assert!(w.contains("SERVER_JVMFLAGS: -Dzookeeper.clientPort: ZooKeeper reads clientPort from zoo.cfg only"), "{w}");
        assert!(c.read_only_mode);
        assert!(c.enforce_quota);
        assert!(
            w.contains(
                "SERVER_JVMFLAGS: -Dzookeeper.snapshot.compression.method: snapshot.compression.method is not supported yet"
            ),
            "{w}"
        );
        assert!(
            w.contains("SERVER_JVMFLAGS: -Dzookeeper.nosuch: unknown key nosuch"),
            "{w}"
        );
        // A bad value names the variable and the property.
        let e = props("-Dzookeeper.snapCount=many", base).unwrap_err();
        assert_eq!(
            e.to_string(),
            "SERVER_JVMFLAGS: -Dzookeeper.snapCount: 'many' is not a valid number"
        );
    }

    #[test]
    fn warnings_zookeeper_also_gives() {
        let c = parse("dataDir=/x\nclientPort=1\nautopurge.snapRetainCount=1\nemulate353TTLNodes=true\nserver.1=a:1:2\nserver.2=b:1:2\n").unwrap();
        let w = c.warnings.join("\n");
        assert_eq!(c.autopurge_snap_retain_count, 3);
        assert!(
            w.contains("zoo.cfg:3: Invalid autopurge.snapRetainCount: 1"),
            "{w}"
        );
        assert!(
            w.contains("zoo.cfg:4: emulate353TTLNodes is not supported yet"),
            "{w}"
        );
        assert!(
            w.contains("Non-optimal configuration, consider an odd number of servers"),
            "{w}"
        );
    }

    #[test]
    fn quorum_auth_keys_as_zookeeper_takes_them() {
        let c = parse("dataDir=/x\nclientPort=1\nquorum.auth.enableSasl=true\nquorum.auth.serverRequireSasl=true\nquorum.auth.learner.saslLoginContext=Learner2\nquorum.cnxn.threads.size=20\n").unwrap();
        assert!(
            c.auth.quorum_sasl && c.auth.quorum_server_require && !c.auth.quorum_learner_require
        );
        assert_eq!(c.auth.quorum_learner_context.as_deref(), Some("Learner2"));
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let e =
            parse("dataDir=/x\nclientPort=1\nquorum.auth.learnerRequireSasl=true\n").unwrap_err();
        assert!(
            e.to_string().contains("quorum.auth.enableSasl is disabled, so cannot enable quorum.auth.learnerRequireSasl"),
            "{e}"
        );
    }

    #[test]
    fn worker_threads() {
        let c = parse("dataDir=/x\nclientPort=2181\n").unwrap();
        assert_eq!(
            c.worker_threads,
            std::thread::available_parallelism().unwrap().get()
        );
        let c = parse("dataDir=/x\nclientPort=2181\nferrokeeper.workerThreads=3\n").unwrap();
        assert_eq!(c.worker_threads, 3);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        let e = parse("dataDir=/x\nferrokeeper.workerThreads=0\n").unwrap_err();
        assert!(e.to_string().contains("ferrokeeper.workerThreads"), "{e}");
    }
}
