//! `ferrokeeper`: one binary, subcommands only. It wires the config, the
//! logger and the server together; everything else lives in the crates.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

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
    },
    /// Ask a running server for its state (zkServer.sh status): prints the
    /// client port, `Mode: leader|follower|standalone`, the zxid and the
    /// node count; exits 1 when it is not running or not serving.
    Status {
        #[arg(default_value = "conf/zoo.cfg")]
        config: PathBuf,
    },
    /// Print the version.
    Version,
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
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Version => {
            println!(
                "ferrokeeper {} (ZooKeeper {} compatible)",
                env!("CARGO_PKG_VERSION"),
                "3.8"
            );
            ExitCode::SUCCESS
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
        Cmd::Status { config } => {
            let (out, err, code) = server::tools::status(&config);
            eprint!("{err}");
            print!("{out}");
            ExitCode::from(code)
        }
        Cmd::StartForeground { config } => match start_foreground(config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ferrokeeper: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

fn print_or_fail(r: Result<String, server::tools::ToolError>) -> ExitCode {
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

fn start_foreground(path: PathBuf) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    let cfg = server::Config::load(&path)?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let server = server::Server::start(cfg).await?;
        tracing::info!(config = %path.display(), addr = %server.local_addr, "ferrokeeper started");
        wait_for_signal().await;
        tracing::info!("shutting down");
        server.shutdown().await;
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
