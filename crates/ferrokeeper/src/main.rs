//! `ferrokeeper`: one binary, subcommands only. It wires the config, the
//! logger and the server together; everything else lives in the crates.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod memory;

#[derive(Parser)]
#[command(
    name = "ferrokeeper",
    version,
    about = "A ZooKeeper-compatible coordination service"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run a server in the foreground (zkServer.sh start-foreground).
    StartForeground {
        /// zoo.cfg to read.
        #[arg(default_value = "conf/zoo.cfg")]
        config: PathBuf,
        /// Log to this file (rotated by size) instead of stderr.
        #[arg(long)]
        log_file: Option<PathBuf>,
    },
    /// Start a server in the background (zkServer.sh start): pid file in
    /// dataDir, logs in $ZOO_LOG_DIR (default dataDir/logs); returns once
    /// the client port listens, or says why the server did not start.
    Start {
        #[arg(default_value = "conf/zoo.cfg")]
        config: PathBuf,
    },
    /// Stop a server started with `start`: SIGTERM, then wait for it.
    Stop {
        #[arg(default_value = "conf/zoo.cfg")]
        config: PathBuf,
    },
    /// stop, then start.
    Restart {
        #[arg(default_value = "conf/zoo.cfg")]
        config: PathBuf,
    },
    /// Print the command `start` runs.
    PrintCmd {
        #[arg(default_value = "conf/zoo.cfg")]
        config: PathBuf,
    },
    /// Ask a running server for its state (zkServer.sh status): prints the
    /// client port, `Mode: leader|follower|standalone`, the zxid and the
    /// node count; exits 1 when it is not running or not serving.
    Status {
        #[arg(default_value = "conf/zoo.cfg")]
        config: PathBuf,
    },
    /// A zkCli-compatible shell: `cli -server host:port[,host:port] [cmd args]`
    /// (zkCli's options; `--output json` for read commands).
    #[command(disable_help_flag = true)]
    Cli {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// A load generator speaking the ZooKeeper protocol (drives ZooKeeper
    /// and ferrokeeper alike): closed loop (connections x in flight) or
    /// open loop (--rate), HDR latency percentiles, errors by code.
    Bench {
        /// host:port[,host:port...]: connections spread over all.
        #[arg(long = "server", short = 's', alias = "servers")]
        server: String,
        /// create, set, get, exists, children, mixed:READ_PERCENT, multi,
        /// ephemeral (session churn), watch (fan-out), lock (the lock
        /// recipe: create ephemeral-sequential, getChildren, delete).
        #[arg(long, short = 'w', default_value = "create")]
        workload: String,
        #[arg(long, short = 'c', default_value_t = 32)]
        connections: usize,
        /// Requests in flight per connection (pipelined).
        #[arg(long, short = 'i', default_value_t = 8)]
        inflight: usize,
        /// Seconds to run.
        #[arg(long, short = 'd', default_value_t = 10.0)]
        duration: f64,
        /// Open loop: total requests per second.
        #[arg(long)]
        rate: Option<u64>,
        /// Bytes per value (up to 1 MiB minus the request's own bytes).
        #[arg(long, default_value_t = 100)]
        value_size: usize,
        /// Keys for set/get/exists/mixed; children for `children`.
        #[arg(long, default_value_t = 1000)]
        keys: usize,
        /// Where the benchmark's znodes go (removed afterwards).
        #[arg(long, default_value = "/ferrokeeper-bench")]
        root: String,
        /// text or json.
        #[arg(long, default_value = "text")]
        output: String,
        #[arg(long)]
        no_progress: bool,
        /// Server process ids: their CPU time per operation is reported.
        #[arg(long, value_delimiter = ',')]
        pids: Vec<u32>,
        /// Stop after about this many requests in all (closed loop; the
        /// duration still bounds the run).
        #[arg(long)]
        total: Option<u64>,
        /// Leave the benchmark's znodes in place afterwards.
        #[arg(long)]
        keep: bool,
        /// Connect over TLS, trusting this CA (PEM): a server's secureClientPort.
        #[arg(long)]
        tls_ca: Option<PathBuf>,
        /// The client's certificate (PEM), for servers that ask for one.
        #[arg(long)]
        tls_cert: Option<PathBuf>,
        /// The client certificate's key (PEM).
        #[arg(long)]
        tls_key: Option<PathBuf>,
        /// Reset every server's counters (srst) before the run and print
        /// where the time went, stage by stage, after it (from mntr; both
        /// words must be in 4lw.commands.whitelist).
        #[arg(long)]
        budget: bool,
    },
    /// The floor under a replicated write on this host: an fsync of a
    /// 512-byte record in a preallocated log (in DIR: put it on the log's
    /// disk), the same on two logs at once (a quorum sharing the disk),
    /// and a loopback TCP round trip, p50 and p99 of each.
    Floor {
        #[arg(long, default_value = ".")]
        dir: PathBuf,
        #[arg(long, default_value_t = 2000)]
        samples: usize,
        /// text or json.
        #[arg(long, default_value = "text")]
        output: String,
    },
    /// Print the version.
    Version,
    /// Back to ZooKeeper: with the server stopped, write its state as a
    /// ZooKeeper snapshot into dataDir/version-2 (and the epoch files), so
    /// that ZooKeeper started on this zoo.cfg serves it. Once per server.
    ExportZookeeper {
        #[arg(default_value = "conf/zoo.cfg")]
        config: PathBuf,
    },
    /// After a quorum was lost for good (a majority's disks gone): with
    /// the server stopped, make its own state a new one-server ensemble,
    /// to grow back with reconfig. Without --confirm it only says what it
    /// would do (exit 2). What the lost servers committed and this one
    /// never received is lost.
    ForceNewEnsemble {
        /// Do it (without: a dry run that changes nothing).
        #[arg(long)]
        confirm: bool,
        #[arg(default_value = "conf/zoo.cfg")]
        config: PathBuf,
    },
    /// Remove old snapshots and log segments, keeping the newest COUNT
    /// snapshots (at least 3) and the log they need (zkCleanup.sh).
    Purge {
        data_dir: PathBuf,
        data_log_dir: Option<PathBuf>,
        #[arg(short = 'n', default_value_t = 3)]
        count: usize,
    },
    /// Inspect snapshot files.
    Snapshot {
        #[command(subcommand)]
        cmd: SnapshotCmd,
    },
    /// Inspect the transaction log.
    Log {
        #[command(subcommand)]
        cmd: LogCmd,
    },
}

#[derive(Subcommand)]
enum SnapshotCmd {
    /// Print the znodes (with Stat) and sessions of a snapshot file.
    Dump {
        file: PathBuf,
        /// Print each znode's data too.
        #[arg(short = 'd', long)]
        data: bool,
    },
}

#[derive(Subcommand)]
enum LogCmd {
    /// One line per entry: index, term, session, op, path. DIR is the dataLogDir.
    Dump { dir: PathBuf },
}

fn main() -> ExitCode {
    memory::setup();
    let cli = Cli::parse_from(zookeeper_style_args(std::env::args_os()));
    match cli.cmd {
        Cmd::Floor {
            dir,
            samples,
            output,
        } => match bench::floor::measure(&dir, samples) {
            Ok(f) => {
                match output.as_str() {
                    "json" => println!("{}", f.json()),
                    _ => print!("{}", f.text()),
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ferrokeeper floor: {}: {e}", dir.display());
                ExitCode::FAILURE
            }
        },
        Cmd::Version => {
            println!(
                "ferrokeeper {} (ZooKeeper 3.8 compatible)",
                env!("CARGO_PKG_VERSION")
            );
            ExitCode::SUCCESS
        }
        Cmd::ExportZookeeper { config } => print_or_fail(server::export::export_zookeeper(&config)),
        Cmd::ForceNewEnsemble { confirm, config } => {
            match server::force_new_ensemble::force_new_ensemble(&config, confirm) {
                Ok(o) => {
                    println!("{}", o.report);
                    if o.done {
                        ExitCode::SUCCESS
                    } else {
                        ExitCode::from(2)
                    }
                }
                Err(e) => {
                    eprintln!("ferrokeeper: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Purge {
            data_dir,
            data_log_dir,
            count,
        } => {
            let log_dir = data_log_dir.unwrap_or_else(|| data_dir.clone());
            print_or_fail(server::tools::purge(&data_dir, &log_dir, count))
        }
        Cmd::Snapshot {
            cmd: SnapshotCmd::Dump { file, data },
        } => print_or_fail(server::tools::dump_snapshot(&file, data)),
        Cmd::Log {
            cmd: LogCmd::Dump { dir },
        } => print_or_fail(server::tools::dump_log(&dir)),
        Cmd::Bench {
            server,
            workload,
            connections,
            inflight,
            duration,
            rate,
            value_size,
            keys,
            root,
            output,
            no_progress,
            pids,
            total,
            keep,
            tls_ca,
            tls_cert,
            tls_key,
            budget,
        } => {
            let tls = match &tls_ca {
                None => None,
                Some(ca) => {
                    match bench::TlsClient::new(ca, tls_cert.as_deref(), tls_key.as_deref()) {
                        Ok(t) => Some(t),
                        Err(e) => {
                            eprintln!("ferrokeeper bench: {e}");
                            return ExitCode::from(2);
                        }
                    }
                }
            };
            let workload = match workload.parse() {
                Ok(w) => w,
                Err(e) => {
                    eprintln!("ferrokeeper bench: {e}");
                    return ExitCode::from(2);
                }
            };
            let opts = bench::Options {
                servers: server.split(',').map(str::to_string).collect(),
                workload,
                connections: connections.max(1),
                inflight: inflight.max(1),
                duration: std::time::Duration::from_secs_f64(duration.max(0.1)),
                rate,
                value_size,
                keys,
                root,
                json: output == "json",
                progress: !no_progress && output != "json",
                pids,
                total,
                keep,
                tls,
                budget,
            };
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("tokio runtime");
            match rt.block_on(bench::run(opts.clone())) {
                Ok(report) => {
                    print!("{}", bench::render(&opts, &report));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("ferrokeeper bench: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Cmd::Cli { args } => ExitCode::from(cli::main(&args) as u8),
        Cmd::Status { config } => {
            let (out, err, code) = server::tools::status(&config);
            eprint!("{err}");
            print!("{out}");
            ExitCode::from(code)
        }
        Cmd::Start { config } => report(server::lifecycle::start(&exe(), &config)),
        Cmd::Stop { config } => report(server::lifecycle::stop(&config)),
        Cmd::Restart { config } => report(server::lifecycle::restart(&exe(), &config)),
        Cmd::PrintCmd { config } => report(server::lifecycle::print_cmd(&exe(), &config)),
        Cmd::StartForeground { config, log_file } => match start_foreground(config, log_file) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ferrokeeper: {}", causes(e.as_ref()));
                ExitCode::FAILURE
            }
        },
    }
}

/// `bench -server host:port`, as zkCli spells it (and the README once
/// did): clap would read `-server` as `-s erver`.
fn zookeeper_style_args(args: impl Iterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut args: Vec<_> = args.collect();
    if args.get(1).is_some_and(|a| a == "bench") {
        for a in &mut args[2..] {
            if a == "-server" {
                *a = "--server".into();
            }
        }
    }
    args
}

/// An error and its causes, each said once: a message that already ends
/// with its cause's text (thiserror's `{source}`) does not repeat it.
fn causes(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(c) = next {
        let text = c.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        next = c.source();
    }
    out
}

fn exe() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("ferrokeeper"))
}

fn report(o: server::lifecycle::Outcome) -> ExitCode {
    eprint!("{}", o.stderr);
    print!("{}", o.stdout);
    ExitCode::from(o.code)
}

fn print_or_fail<E: std::fmt::Display>(r: Result<String, E>) -> ExitCode {
    match r {
        Ok(s) => {
            // A reader that went away (`| head`) is not an error of ours.
            let _ = std::io::Write::write_all(&mut std::io::stdout(), s.as_bytes());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("ferrokeeper: {e}");
            ExitCode::FAILURE
        }
    }
}

fn start_foreground(path: PathBuf, log_file: Option<PathBuf>) -> anyhow::Result<()> {
    // The config is read before logging starts: its errors go to stderr.
    let cfg = server::Config::load(&path)?;
    server::logging::init(cfg.server_id(), log_file.as_deref())?;
    if let Err(e) = server::hops::init(cfg.server_id()) {
        tracing::warn!("{}: {e}; not recording hops", server::hops::ENV);
    }
    let cfg_workers = cfg.worker_threads;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(cfg.worker_threads)
        .thread_name("worker")
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let mut server = server::Server::start(cfg).await?;
        server.started().await;
        memory::keep_freed_memory_for_reuse();
        tracing::info!(config = %path.display(), addr = %server.local_addr, workers = cfg_workers, "ferrokeeper started");
        server::lifecycle::signal_ready();
        // This thread loaded the snapshot and log: mimalloc's pages of the
        // tree and log loaded at startup belong to its heap, and what other
        // threads free there is only taken back when this thread collects.
        // It would otherwise sit idle here, and what a restart loaded and
        // later freed (the replayed log after the startup snapshot, deleted
        // znodes) would stay resident and unusable for good.
        let signal = wait_for_signal();
        tokio::pin!(signal);
        let mut collect = tokio::time::interval(std::time::Duration::from_secs(1));
        loop {
            tokio::select! {
                _ = &mut signal => break,
                _ = collect.tick() => memory::collect_freed_memory(),
            }
        }
        tracing::info!("shutting down");
        server.shutdown().await;
        server::hops::flush();
        Ok(())
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
