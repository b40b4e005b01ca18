//! Four-letter words on the client port (`echo ruok | nc host 2181`), with
//! ZooKeeper's whitelist semantics: `4lw.commands.whitelist`, default
//! `srvr` only.

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

/// Numbers the core task reports for srvr/stat/mntr.
pub struct Stats {
    pub received: u64,
    pub sent: u64,
    pub connections: usize,
    pub outstanding: usize,
    pub zxid: i64,
    pub node_count: usize,
    pub watch_count: usize,
    pub ephemerals_count: usize,
    pub data_bytes: u64,
    pub sessions: usize,
    /// standalone, leader or follower.
    pub mode: &'static str,
    /// False while an ensemble member has no leader: it serves no client.
    pub serving: bool,
    /// The tree digest, equal on replicas that applied the same entries.
    pub digest: u64,
}

pub const VERSION: &str = concat!(
    "3.8.4-ferrokeeper-",
    env!("CARGO_PKG_VERSION"),
    ", built on unknown"
);

pub fn render(cmd: &str, s: &Stats, cfg: &crate::Config) -> String {
    match cmd {
        "envi" => format!(
            "Environment:\nzookeeper.version={VERSION}\nhost.name={}\nos.name={}\nos.arch={}\nuser.dir={}\n",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into()),
            std::env::consts::OS,
            std::env::consts::ARCH,
            std::env::current_dir().map(|d| d.display().to_string()).unwrap_or_default(),
        ),
        "conf" => format!(
            "clientPort={}\nsecureClientPort=-1\ndataDir={}\ndataLogDir={}\ntickTime={}\nmaxClientCnxns={}\nminSessionTimeout={}\nmaxSessionTimeout={}\nserverId=0\n",
            cfg.client_port,
            cfg.data_dir.display(),
            cfg.log_dir().display(),
            cfg.tick_ms,
            cfg.max_client_cnxns,
            cfg.min_session_timeout_ms,
            cfg.max_session_timeout_ms
        ),
        "ruok" => "imok".into(),
        "isro" => "rw".into(),
        "srvr" | "stat" if !s.serving => "This ZooKeeper instance is not currently serving requests\n".into(),
        "srvr" | "stat" => {
            let mut out = format!("Zookeeper version: {VERSION}\n");
            if cmd == "stat" {
                out.push_str("Clients:\n\n");
            }
            out.push_str(&format!(
                "Latency min/avg/max: 0/0.0/0\nReceived: {}\nSent: {}\nConnections: {}\nOutstanding: {}\nZxid: 0x{:x}\nMode: {}\nNode count: {}\n",
                s.received, s.sent, s.connections, s.outstanding, s.zxid, s.mode, s.node_count
            ));
            out
        }
        "mntr" => format!(
            "zk_version\t{VERSION}\nzk_server_state\t{}\nzk_num_alive_connections\t{}\nzk_outstanding_requests\t{}\nzk_packets_received\t{}\nzk_packets_sent\t{}\nzk_znode_count\t{}\nzk_watch_count\t{}\nzk_ephemerals_count\t{}\nzk_approximate_data_size\t{}\nzk_global_sessions\t{}\nzk_last_zxid\t0x{:x}\nferrokeeper_tree_digest\t{}\n",
            s.mode, s.connections, s.outstanding, s.received, s.sent, s.node_count, s.watch_count, s.ephemerals_count, s.data_bytes, s.sessions, s.zxid, s.digest
        ),
        other => format!("{other} is not implemented yet in ferrokeeper.\n"),
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
}
