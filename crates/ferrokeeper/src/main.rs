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
    /// Print the version.
    Version,
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
        Cmd::StartForeground { config } => match start_foreground(config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("ferrokeeper: {e:#}");
                ExitCode::FAILURE
            }
        },
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
