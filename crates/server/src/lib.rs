//! The tokio shell around the replica core: `Server::start` wires it up.
//!
//! Threads and tasks, and what each owns:
//! - the main thread: startup (config, the directory locks, snapshot and
//!   log recovery), then signals;
//! - the core task (`core_task`): the `node::Node` — tree, sessions, Raft
//!   — so the state has one owner and no lock;
//! - the accept loop and one task per client connection (`conn`): its
//!   socket, its framing and its back-pressure;
//! - the peer tasks (`peer`, `snap_transfer`): a dialer per peer and port,
//!   and the connections peers open to us;
//! - the HTTP servers (`http`): the AdminServer and metrics, which ask
//!   the core task;
//! - the log thread (`storage_thread`): appends and fsyncs the
//!   transaction log (`log_writer`; a follower's core task writes a lone
//!   write's entries itself); the snapshot thread: writes snapshots,
//!   purges.
//!
//! They talk over the bounded channels of `channels`. Shutdown: a
//! broadcast stop, every task ends, then the two threads drain.

pub mod admin;
mod admin_auth;
mod admin_backup;
mod admin_transfer;
mod budget;
mod channels;
pub mod config;
mod conn;
mod core_task;
mod dynamic_config;
mod error;
pub mod export;
pub mod force_new_ensemble;
pub mod fourlw;
pub mod hops;
mod http;
mod jaas;
pub mod lifecycle;
mod listen;
mod log_writer;
pub mod logging;
mod membership;
mod metrics;
mod metrics_zk;
mod mntr_keys;
mod peer;
mod peer_frame;
mod peer_joiner;
mod peer_lane;
mod peer_stream;
mod quorum_auth;
mod snap_transfer;
mod storage_thread;
mod takeover;
pub mod tls;
pub mod tools;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc};

pub(crate) use channels::CoreInput;
pub use config::{Config, ConfigError};
pub use error::ServerError;
use membership::Membership;

/// Recovery reads whole segments and snapshots into buffers that are freed
/// by now; glibc keeps freed memory for reuse, so give it back to the OS.
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the OS.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// A running server: its address and a handle to stop it.
pub struct Server {
    /// The client port's address (the secure one's when there is no other).
    pub local_addr: SocketAddr,
    /// The secure client port's address.
    pub secure_addr: Option<SocketAddr>,
    stop: broadcast::Sender<()>,
    /// The core task's inputs (the hand-off at shutdown).
    core: mpsc::Sender<CoreInput>,
    tasks: tokio::task::JoinSet<()>,
    /// End when the core task drops its job senders.
    storage: std::thread::JoinHandle<()>,
    snapshotter: std::thread::JoinHandle<()>,
    /// dataDir's and dataLogDir's locks, released when the server is dropped.
    _locks: Vec<storage::DirLock>,
    /// Fires when startup's own work is durable (see `started`).
    started: Option<tokio::sync::oneshot::Receiver<()>>,
}

impl Server {
    /// Binds the client port and starts serving.
    pub async fn start(mut cfg: Config) -> Result<Server, ServerError> {
        let membership = Membership::of(&cfg)?;
        if let Err(e) = dynamic_config::backup_static(&cfg) {
            tracing::warn!(
                "cannot back up {} as ZooKeeper does: {e}",
                cfg.path.display()
            );
        }
        let sasl = jaas::load(&cfg.auth).map_err(ServerError::Jaas)?;
        let tls = match cfg.tls.enabled() {
            true => Some(tls::Current::new(
                tls::Acceptor::new(&cfg.tls).map_err(ServerError::Tls)?,
            )),
            false => None,
        };
        let admin_https = match cfg.admin_enable_server {
            true => http::Https::new(&cfg).map_err(ServerError::Tls)?,
            false => None,
        };
        // Only a secureClientPort: no plaintext port.
        let plain = cfg.client_port != 0 || tls.is_none() || cfg.client_endpoint().is_ok();
        if cfg.client_port == 0 && plain {
            // From this server's own server.N line.
            let (host, port) = cfg.client_endpoint().map_err(ServerError::ClientPort)?;
            cfg.client_port = port;
            if let Some(h) = host {
                let a = membership::resolve(&h, port).map_err(|msg| ServerError::Address {
                    file: cfg.path.display().to_string(),
                    id: membership.my_id,
                    msg,
                })?;
                cfg.client_port_address = Some(a.ip());
            }
        }
        for (what, dir) in [
            ("dataDir", &cfg.data_dir),
            ("dataLogDir", &cfg.log_dir().to_path_buf()),
        ] {
            std::fs::create_dir_all(dir).map_err(|source| ServerError::Dir {
                what,
                path: dir.display().to_string(),
                source,
            })?;
        }
        // Before anything in them is read, listed, cut or deleted.
        let locks = storage::DirLock::acquire_both(&cfg.data_dir, cfg.log_dir())?;
        storage::snap::remove_leftovers(&locks[0], &cfg.data_dir)?;
        for w in &cfg.warnings {
            tracing::warn!("{w}");
        }
        if !cfg.force_sync {
            tracing::warn!(
                "forceSync=no: the transaction log is NOT fsynced; acknowledged writes can be lost on a crash or power loss"
            );
        }
        let started = std::time::Instant::now();
        let snapshot =
            match storage::snap::list(&cfg.data_dir)?.last() {
                None => takeover::from_zookeeper(&cfg, &membership.voters)?,
                Some((_, path)) => {
                    takeover::check_zookeeper_untouched(&cfg)?;
                    let (meta, body) = storage::snap::read(path)?;
                    let state = tree::StateMachine::decode_snapshot(&body, cfg.tree_config())
                        .map_err(|e| storage::SnapError::Corrupt {
                            path: path.clone(),
                            reason: format!("undecodable state: {e}"),
                        })?;
                    tracing::info!(
                        "loaded snapshot {}: {} znodes, {} sessions, index {} in {:.3} s",
                        path.display(),
                        state.tree.node_count(),
                        state.sessions.len(),
                        meta.index,
                        started.elapsed().as_secs_f64()
                    );
                    Some(node::RestoredSnapshot {
                        index: meta.index,
                        term: meta.term,
                        conf_state: meta.conf_state,
                        state,
                    })
                }
            };
        let started = std::time::Instant::now();
        let opts = storage::WalOptions {
            prealloc_bytes: cfg.prealloc_bytes,
            force_sync: cfg.force_sync,
        };
        // The replica keeps no entry at or below its snapshot (which holds
        // only committed entries): the log below it is checked, not loaded.
        let keep_from = snapshot.as_ref().map_or(0, |s| s.index + 1);
        let (mut wal, recovered) = storage::Wal::open_from(cfg.log_dir(), opts, keep_from)?;
        if let Some(s) = &snapshot {
            if wal.next_index() <= s.index {
                // A log that does not reach the snapshot (one just taken
                // over from ZooKeeper): it continues after the snapshot.
                wal.stage_restart(s.index, s.term);
                wal.commit()?;
            }
        }
        if let Some(t) = &recovered.torn_tail {
            tracing::warn!(
                "{}: torn record at offset {} ({}): the last write before a crash, never acknowledged; truncated",
                t.segment.display(),
                t.offset,
                t.reason
            );
        }
        tracing::info!(
            "read {} log entries after the snapshot from {} segments in {} in {:.3} s",
            recovered.entries.len(),
            recovered.segments,
            wal.dir().display(),
            started.elapsed().as_secs_f64()
        );
        let restored = node::Restored {
            hard_state: recovered.hard_state,
            entries: recovered.entries,
            snapshot,
        };
        let bind_err = |source| ServerError::Bind {
            what: "client",
            addr: listen::shown(cfg.client_port_address, cfg.client_port),
            source,
        };
        let listener = match plain {
            true => Some(listen::bind(cfg.client_port_address, cfg.client_port).map_err(bind_err)?),
            false => None,
        };
        let secure_listener = match cfg.tls.secure_client_port {
            Some(port) if tls.is_some() => {
                let ip = cfg.tls.secure_client_port_address;
                let secure_err = |source| ServerError::Bind {
                    what: "secure client",
                    addr: listen::shown(ip, port),
                    source,
                };
                let l = listen::bind(ip, port).map_err(secure_err)?;
                let addr = l.local_addr().map_err(secure_err)?;
                Some((l, addr))
            }
            _ => None,
        };
        let secure_addr = secure_listener.as_ref().map(|(_, a)| *a);
        let local_addr = match (&listener, secure_addr) {
            (Some(l), _) => l.local_addr().map_err(bind_err)?,
            (None, Some(a)) => a,
            (None, None) => unreachable!("a server without a client port is refused above"),
        };
        let cfg = Arc::new(cfg);
        let (stop, _) = broadcast::channel(1);
        let (core_tx, core_rx) = mpsc::channel(channels::CORE_QUEUE);
        let (job_tx, job_rx) = std::sync::mpsc::sync_channel(storage_thread::JOB_QUEUE);
        let (event_tx, event_rx) = mpsc::channel(storage_thread::JOB_QUEUE);
        let (snap_tx, snap_rx) = std::sync::mpsc::sync_channel(4);
        let dirs = storage_thread::SnapDirs {
            data_dir: cfg.data_dir.clone(),
            log_dir: cfg.log_dir().to_path_buf(),
            retain: cfg.autopurge_snap_retain_count as usize,
        };
        let snapshotter = storage_thread::spawn_snapshotter(dirs, snap_rx, event_tx.clone())
            .map_err(ServerError::Thread)?;
        let log = log_writer::SharedLog::new(wal);
        let storage =
            storage_thread::spawn(log.clone(), job_rx, event_tx).map_err(ServerError::Thread)?;
        let replay = std::time::Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        let peer_tls =
            tls::Current::new(peer_stream::PeerTls::new(&cfg.tls).map_err(ServerError::Tls)?);
        if membership.transport.is_some() && cfg.tls.quorum_enabled() && cfg.tls.quorum_cert_reload
        {
            let (current, settings) = (peer_tls.clone(), cfg.tls.clone());
            tasks.spawn(tls::reload::watch(
                "between servers",
                tls::reload::files(&cfg.tls.quorum),
                move || peer_stream::PeerTls::new(&settings).map(|p| current.set(p)),
                stop.subscribe(),
            ));
        }
        let peers = match &membership.transport {
            None => None,
            Some(t) => Some(
                peer::start(
                    t.me.clone(),
                    cfg.reconfig_enabled,
                    t.quorum,
                    t.election,
                    t.peers.clone(),
                    core_tx.clone(),
                    peer::SnapshotHome {
                        data_dir: cfg.data_dir.clone(),
                        tree: cfg.tree_config(),
                    },
                    quorum_auth::load(&cfg.auth).map_err(ServerError::Jaas)?,
                    peer_tls.clone(),
                    &stop,
                    &mut tasks,
                )
                .await?,
            ),
        };
        let socket_stage = std::sync::Arc::new(budget::SocketStage::new());
        let core = core_task::CoreTask::new(
            &cfg,
            sasl,
            takeover::unconfirmed(&cfg.data_dir)?,
            &membership,
            restored,
            (job_tx, log),
            snap_tx,
            peers,
            budget::Budget::new(socket_stage.clone()),
        )?;
        tracing::info!(
            "applied the log: {} znodes, {} sessions in {:.3} s",
            core.node_count(),
            core.session_count(),
            replay.elapsed().as_secs_f64()
        );
        release_freed_memory();
        let (started_tx, started) = tokio::sync::oneshot::channel();
        let started_tx = (!core.startup_done()).then_some(started_tx);
        tasks.spawn(core.run(core_rx, event_rx, stop.subscribe(), started_tx));
        http::start(&cfg, admin_https, &core_tx, &stop, &mut tasks);
        let core_for_shutdown = core_tx.clone();
        let clients = conn::Shared::new(cfg.clone(), core_tx, stop.clone(), socket_stage);
        if let Some(listener) = listener {
            let mode = match &tls {
                Some(t) if cfg.tls.port_unification => {
                    tracing::info!(
                        "the client port takes TLS clients too (client.portUnification)"
                    );
                    conn::Mode::Either(t.clone())
                }
                _ => conn::Mode::Plain,
            };
            tasks.spawn(conn::accept_loop(listener, mode, clients.clone()));
        }
        if let Some((listener, addr)) = secure_listener {
            tracing::info!(%addr, "serving TLS clients (secureClientPort)");
            if let Some(t) = &tls {
                tasks.spawn(conn::accept_loop(
                    listener,
                    conn::Mode::Tls(t.clone()),
                    clients,
                ));
            }
        }
        if let (Some(current), true) = (&tls, cfg.tls.cert_reload) {
            let (current, settings) = (current.clone(), cfg.tls.clone());
            tasks.spawn(tls::reload::watch(
                "client port",
                tls::reload::files(&cfg.tls.ssl),
                move || tls::Acceptor::new(&settings).map(|a| current.set(a)),
                stop.subscribe(),
            ));
        }
        match &membership.transport {
            None => tracing::info!(%local_addr, "serving clients (standalone)"),
            Some(_) => tracing::info!(
                %local_addr,
                "listening for clients as server {} of an ensemble of {}; requests are served once a leader is elected",
                membership.my_id,
                membership.voters.len()
            ),
        }
        Ok(Server {
            local_addr,
            secure_addr,
            stop,
            core: core_for_shutdown,
            tasks,
            storage,
            snapshotter,
            _locks: locks,
            started: Some(started),
        })
    }

    /// Returns once what startup still had to do is durable — the snapshot
    /// a restart takes after replaying a long log — so `start` reports
    /// STARTED only for a server that got through it (a failure there
    /// exits the process, and `start` says FAILED TO START with the
    /// reason). At once when there was nothing left to do.
    pub async fn started(&mut self) {
        if let Some(rx) = self.started.take() {
            let _ = rx.await;
        }
    }

    /// Stops accepting, closes connections, waits for every task. A
    /// leader first hands leadership to another voter (at most a few
    /// seconds), so the ensemble goes on writing without an election.
    pub async fn shutdown(mut self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        if self
            .core
            .send(CoreInput::HandOff { reply: tx })
            .await
            .is_ok()
        {
            let _ = rx.await;
        }
        let _ = self.stop.send(());
        while self.tasks.join_next().await.is_some() {}
        let (storage, snapshotter) = (self.storage, self.snapshotter);
        let _ = tokio::task::spawn_blocking(move || {
            let _ = storage.join();
            let _ = snapshotter.join();
        })
        .await;
    }
}
