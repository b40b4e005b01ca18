//! The task that owns the replica core: it feeds the `Node` with inputs
//! in batches, ticks it, and delivers its outputs to connections.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use node::{FrameKind, Node, NodeConfig, Output, Restored};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{broadcast, mpsc};

use crate::budget::Stage as Budget;
use crate::channels::ToConn;
use crate::config::Config;
use crate::fourlw;
use crate::log_writer::SharedLog;
use crate::storage_thread::{Event, Job, Persisted, SnapJob};
use crate::{CoreInput, ServerError};

/// Inputs handled before the Raft hand-off runs once for all of them:
/// one batch, one append.
const MAX_BATCH: usize = 1024;
/// How often time is given to the core (session expiry, Raft ticks).
const TICK: Duration = Duration::from_millis(50);
/// Replicas compare tree digests every this many log indexes (see
/// node's `digest_check`): one small entry per 128, a divergence caught
/// within 128 entries of where it began.
const DIGEST_EVERY: u64 = 128;

pub(crate) struct CoreTask {
    node: Node,
    cfg: std::sync::Arc<Config>,
    /// Where each live connection's frames go.
    conns: HashMap<u64, mpsc::Sender<ToConn>>,
    /// Packets and latency for srvr/mntr (reset by srst), and each
    /// connection's for cons (reset by crst).
    stats: fourlw::ServerStats,
    conn_stats: HashMap<u64, fourlw::ConnStats>,
    started: std::time::Instant,
    /// The time of the input batch being handled.
    batch_at: std::time::Instant,
    metrics: crate::metrics::Metrics,
    /// Persist jobs to the storage thread, in order.
    jobs: std::sync::mpsc::SyncSender<Job>,
    /// The log's writer, which the thread uses and this task too for a
    /// follower's lone write (`persist_inline`).
    log: SharedLog,
    /// The newest job handed to the log thread, and the newest it has
    /// reported done: none is with it when they are equal.
    thread_sent: u64,
    thread_done: u64,
    /// A job was written here since the run loop last looked (whether
    /// inputs came meanwhile), and until when none is (they did).
    wrote_inline: bool,
    inline_off_until: Option<std::time::Instant>,
    /// Snapshot and purge jobs to the snapshot thread.
    snap_jobs: std::sync::mpsc::SyncSender<SnapJob>,
    /// The ensemble's other members; none when standalone.
    peers: Option<crate::peer::Peers>,
    standalone: bool,
    /// Leadership transfers asked for by the AdminServer: to whom, who
    /// waits, until when.
    transfers: Vec<(
        u64,
        tokio::sync::oneshot::Sender<Result<u64, String>>,
        std::time::Instant,
    )>,
    /// A hand-off on the way to stopping: who waits, and until when.
    handoff: Option<(tokio::sync::oneshot::Sender<()>, std::time::Instant)>,
    /// AdminServer restores proposed here, by waiter id, until applied.
    restores: HashMap<u64, tokio::sync::oneshot::Sender<Result<i64, String>>>,
    next_waiter: u64,
    /// Where each request's time goes (`budget`).
    budget: crate::budget::Budget,
    /// `node.leader_changes()` when last looked at.
    leader_changes: u64,
}

/// How long a stopping leader tries to hand leadership over and have its
/// clients' writes answered before it stops anyway.
const HANDOFF_WITHIN: Duration = Duration::from_secs(3);

/// How long an asked-for leadership transfer may take (Raft gives up
/// after an election timeout).
const TRANSFER_WITHIN: Duration = Duration::from_secs(10);

/// The most entry bytes a follower's core writes itself
/// (`persist_inline`): a larger batch (catching up) goes to the log
/// thread, so the core never waits on a long write.
const INLINE_MAX_BYTES: usize = 64 * 1024;

/// How long a follower's core leaves every write to the log thread once
/// inputs came while it waited on an fsync (`persist_inline`): under load
/// it would hold up the leader's next appends and its clients' requests
/// (p99 with 256 writes in flight: 7.2–7.7 → 8.5–9.7 ms), where one
/// write at a time sees nothing come for a whole fsync.
const INLINE_BACKOFF: Duration = Duration::from_millis(100);

/// A storage fault poisons the store: no retry, no serving what might not
/// be durable.
fn storage_failed(e: &str) -> ! {
    tracing::error!("transaction log write failed: {e}; exiting");
    std::process::exit(2);
}

/// Restore waiter ids: far from connection ids, which count from 1.
const FIRST_WAITER: u64 = 1 << 62;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl CoreTask {
    pub(crate) fn new(
        cfg: &std::sync::Arc<Config>,
        sasl: Option<node::sasl::SaslConfig>,
        takeover_unconfirmed: Option<u64>,
        membership: &crate::Membership,
        restored: Restored,
        (jobs, log): (std::sync::mpsc::SyncSender<Job>, SharedLog),
        snap_jobs: std::sync::mpsc::SyncSender<SnapJob>,
        peers: Option<crate::peer::Peers>,
        budget: crate::budget::Budget,
    ) -> Result<CoreTask, ServerError> {
        let now = now_ms();
        let ncfg = NodeConfig {
            server_id: membership.my_id,
            // Raft ticks ten times per tickTime: a heartbeat every tick, an
            // election after 10 to 20 ticks without one.
            tick_ms: (cfg.tick_ms / 10).max(10),
            min_session_timeout_ms: cfg.min_session_timeout_ms,
            max_session_timeout_ms: cfg.max_session_timeout_ms,
            container_check_interval_ms: cfg.container_check_interval_ms,
            super_digest: cfg.super_digest.clone(),
            sasl,
            enforce_auth: cfg.enforce_schemes(),
            tree: cfg.tree_config(),
            // Session passwords and SASL nonces come from this generator:
            // seeded from the operating system, not from the clock.
            seed: rand::random(),
            snap_count: cfg.snap_count,
            snap_size_limit_bytes: cfg.snap_size_limit_bytes,
            voters: membership.voters.clone(),
            learners: membership.learners.clone(),
            digest_every: if cfg.digest_enabled { DIGEST_EVERY } else { 0 },
            takeover_unconfirmed,
            reconfig: node::ReconfigSettings {
                enabled: cfg.reconfig_enabled,
                standalone_enabled: cfg.standalone_enabled,
            },
            read_only_mode: cfg.read_only_mode,
            linearizable_reads: cfg.linearizable_reads,
            local_sessions: cfg.local_sessions,
            local_sessions_upgrading: cfg.local_sessions_upgrading,
            members_text: if membership.transport.is_some() {
                proto::members::Members {
                    servers: cfg.servers.clone(),
                    version: 0,
                }
                .render_servers()
            } else {
                String::new()
            },
        };
        Ok(CoreTask {
            node: Node::new(ncfg, now, restored)?,
            cfg: cfg.clone(),
            conns: HashMap::new(),
            stats: fourlw::ServerStats::default(),
            conn_stats: HashMap::new(),
            started: std::time::Instant::now(),
            batch_at: std::time::Instant::now(),
            metrics: Default::default(),
            jobs,
            log,
            thread_sent: 0,
            thread_done: 0,
            wrote_inline: false,
            inline_off_until: None,
            snap_jobs,
            peers,
            standalone: membership.transport.is_none(),
            handoff: None,
            transfers: Vec::new(),
            restores: HashMap::new(),
            next_waiter: FIRST_WAITER,
            budget,
            leader_changes: 0,
        })
    }

    pub(crate) fn startup_done(&self) -> bool {
        self.node.startup_done()
    }

    pub(crate) fn node_count(&self) -> usize {
        self.node.state().tree.node_count()
    }

    pub(crate) fn session_count(&self) -> usize {
        self.node.state().sessions.len()
    }

    pub(crate) async fn run(
        mut self,
        mut rx: mpsc::Receiver<CoreInput>,
        mut storage: mpsc::Receiver<Event>,
        mut stop: broadcast::Receiver<()>,
        mut started: Option<tokio::sync::oneshot::Sender<()>>,
    ) {
        // Startup produced work already (the new term's entry).
        self.dispatch();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        // autopurge.purgeInterval hours; 0 turns it off.
        let mut purge = (self.cfg.autopurge_purge_interval_hours > 0).then(|| {
            let every = Duration::from_secs(self.cfg.autopurge_purge_interval_hours as u64 * 3600);
            tokio::time::interval_at(tokio::time::Instant::now() + every, every)
        });
        loop {
            tokio::select! {
                biased;
                _ = stop.recv() => break,
                i = rx.recv() => {
                    let Some(i) = i else { break };
                    self.batch_at = std::time::Instant::now();
                    self.handle(i);
                    for _ in 0..MAX_BATCH {
                        match rx.try_recv() {
                            Ok(i) => self.handle(i),
                            Err(_) => break,
                        }
                    }
                }
                ev = storage.recv() => match ev {
                    Some(Event::Persisted(p)) => {
                        let step = std::time::Instant::now();
                        self.thread_done = self.persisted(p);
                        self.dispatch_timed(step);
                    }
                    Some(Event::Snapshotted(index, us)) => {
                        self.metrics.snapshot.observe_us(us);
                        self.metrics.zk.snapshottime.observe_ms(us / 1000);
                        self.node.snapshotted(index)
                    }
                    Some(Event::Failed(e)) => storage_failed(&e),
                    None => break,
                },
                _ = tick.tick() => self.node.tick(now_ms()),
                _ = async { purge.as_mut().expect("guarded").tick().await }, if purge.is_some() => {
                    let _ = self.snap_jobs.try_send(SnapJob::Purge);
                }
            }
            let step = std::time::Instant::now();
            self.node.flush();
            self.dispatch_timed(step);
            // Inputs came while this task waited on the disk: writes are
            // not lone now; the log thread takes them, in batches. (One
            // may: the leader's commit notice, when the other follower
            // acknowledged first.)
            if std::mem::take(&mut self.wrote_inline) && rx.len() > 1 {
                self.inline_off_until = Some(std::time::Instant::now() + INLINE_BACKOFF);
            }
            self.check_handoff();
            if started.is_some() && self.node.startup_done() {
                let _ = started.take().map(|s| s.send(()));
            }
        }
    }

    fn handle(&mut self, i: CoreInput) {
        match i {
            CoreInput::Connect {
                conn,
                req,
                addr,
                ids,
                tx,
            } => {
                self.stats.received += 1;
                self.conns.insert(conn, tx);
                self.conn_stats
                    .insert(conn, fourlw::ConnStats::new(addr, now_ms()));
                self.node.connect_as(
                    conn,
                    req,
                    tree::acl_ip::host_address(addr.ip()),
                    ids,
                    now_ms(),
                );
            }
            CoreInput::Request {
                conn,
                xid,
                op,
                body,
                read_at,
            } => {
                self.stats.received += 1;
                if let Some(c) = self.conn_stats.get_mut(&conn) {
                    c.recved += 1;
                }
                // Arrival (read from the socket) in µs since start: the
                // node hands it back with the reply, which is timed from it.
                self.budget
                    .observe_since(Budget::ToCore, read_at, self.batch_at);
                let arrived = read_at.saturating_duration_since(self.started).as_micros() as u64;
                self.node.request(conn, xid, op, &body, now_ms(), arrived);
            }
            CoreInput::Disconnect { conn } => {
                self.conns.remove(&conn);
                self.conn_stats.remove(&conn);
                self.node.disconnect(conn);
            }
            CoreInput::Peer(m) => {
                crate::hops::raft(crate::hops::Prefix::CoreIn, &m);
                self.node.step(*m)
            }
            CoreInput::Liveness(sessions) => self.node.liveness(&sessions, now_ms()),
            CoreInput::PeerLost(id) => self.node.peer_lost(id),
            CoreInput::PeerUp { peer, quorum } => self.node.peer_up(peer, quorum),
            CoreInput::Joiner(addr) => {
                let id = addr.id;
                if let Some(peers) = &mut self.peers {
                    peers.add_joiner(addr);
                }
                self.node.joiner(id);
            }
            CoreInput::InstallSnapshot { msg, state } => self.node.install_snapshot(*msg, *state),
            CoreInput::SnapshotSent { peer, ok } => {
                if ok {
                    tracing::info!("server {peer} installed this leader's snapshot");
                } else {
                    tracing::warn!(
                        "snapshot transfer to server {peer} failed; Raft will offer it again"
                    );
                }
                self.node.snapshot_sent(peer, ok)
            }
            CoreInput::FourLetter { cmd, from, reply } => {
                self.stats.received += 1;
                let text = fourlw::render(&cmd, &self.view(Some(from)));
                self.reset(&cmd);
                // As ZooKeeper: the command and its answer count as packets.
                self.stats.sent += 1;
                let _ = reply.send(text);
            }
            CoreInput::Admin { cmd, reply } => {
                let json = crate::admin::render(cmd, &self.view(None));
                self.reset(match cmd {
                    "stat_reset" => "srst",
                    "connection_stat_reset" => "crst",
                    _ => "",
                });
                let _ = reply.send(json);
            }
            CoreInput::Backup(ask) => self.backup(ask),
            CoreInput::RootAcl { reply } => {
                let acl = self
                    .node
                    .state()
                    .tree
                    .get("/")
                    .map(|n| n.acl.to_vec())
                    .unwrap_or_default();
                let _ = reply.send(acl);
            }
            CoreInput::TransferLeader { to, reply } => {
                if self.node.leader_id() == to {
                    let _ = reply.send(Ok(to));
                } else if self.standalone || self.node.transfer_leadership(Some(to)).is_none() {
                    let _ = reply.send(Err(format!(
                        "server {to} cannot take over: not a voter of this ensemble, or no leader now"
                    )));
                } else {
                    self.transfers
                        .push((to, reply, std::time::Instant::now() + TRANSFER_WITHIN));
                }
            }
            CoreInput::HandOff { reply } => {
                if !self.standalone && self.node.transfer_leadership(None).is_some() {
                    self.handoff = Some((reply, std::time::Instant::now() + HANDOFF_WITHIN));
                } else {
                    let _ = reply.send(());
                }
            }
            CoreInput::Metrics { reply } => {
                let view = self.view(None);
                let sm = self.node.state();
                let (followers, synced) = self.node.followers();
                let (commit, applied) = self.node.commit_and_applied();
                let now = crate::metrics::Now {
                    mode: view.mode,
                    znodes: sm.tree.node_count() + 1,
                    watches: self.node.watch_count(),
                    ephemerals: sm.tree.ephemerals().values().map(|s| s.len()).sum(),
                    data_size: sm.tree.approximate_data_size(),
                    sessions: sm.sessions.len(),
                    connections: self.conn_stats.len(),
                    outstanding: view.outstanding(),
                    packets_received: self.stats.received,
                    packets_sent: self.stats.sent,
                    last_zxid: self.node.last_zxid(),
                    commit_index: commit,
                    applied_index: applied,
                    leader_changes: self.node.leader_changes(),
                    digest_checks: self.node.digest_checks(),
                    followers,
                    synced_followers: synced,
                    max_follower_lag: self.node.max_follower_lag(),
                    open_fds: fourlw::file_descriptors().0,
                    uptime_s: self.started.elapsed().as_secs_f64(),
                };
                let mut text = crate::metrics::render(&self.metrics, &now);
                self.budget.render(&mut text);
                let _ = reply.send(text);
            }
        }
    }

    /// A hand-off is done once another server leads and the writes this
    /// server's clients wait for are answered (they went to the new leader).
    fn check_handoff(&mut self) {
        if !self.transfers.is_empty() {
            let leader = self.node.leader_id();
            let now = std::time::Instant::now();
            for (to, reply, until) in std::mem::take(&mut self.transfers) {
                if leader == to {
                    tracing::info!("server {to} leads now, as asked");
                    let _ = reply.send(Ok(to));
                } else if now >= until {
                    let _ = reply.send(Err(format!(
                        "server {to} did not take over within {TRANSFER_WITHIN:?} (server {leader} leads)"
                    )));
                } else {
                    self.transfers.push((to, reply, until));
                }
            }
        }
        let Some((_, until)) = &self.handoff else {
            return;
        };
        let moved = !self.node.is_leader() && self.node.has_leader();
        let timed_out = std::time::Instant::now() >= *until;
        if (moved && self.node.queued_total() == 0) || timed_out {
            if moved {
                tracing::info!("server {} leads now", self.node.leader_id());
            } else {
                tracing::warn!(
                    "leadership was not handed over within {HANDOFF_WITHIN:?}; stopping anyway"
                );
            }
            if let Some((reply, _)) = self.handoff.take() {
                let _ = reply.send(());
            }
        }
    }

    fn backup(&mut self, ask: crate::admin_backup::BackupAsk) {
        use crate::admin_backup::BackupAsk;
        match ask {
            BackupAsk::Freeze(reply) => {
                let _ = reply.send(Box::new(self.node.state().freeze()));
            }
            BackupAsk::Restore { packed, reply } => {
                // Waiters whose HTTP request gave up are gone.
                self.restores.retain(|_, r| !r.is_closed());
                let waiter = self.next_waiter;
                self.next_waiter += 1;
                if self.node.propose_restore(packed, waiter, now_ms()) {
                    self.restores.insert(waiter, reply);
                } else {
                    let _ = reply.send(Err(
                        "no leader: the ensemble has no quorum to take the restore".into(),
                    ));
                }
            }
        }
    }

    fn mode(&self) -> &'static str {
        if self.standalone {
            "standalone"
        } else if self.node.is_read_only() {
            "read-only"
        } else if self.node.is_observer() {
            "observer"
        } else if self.node.is_leader() {
            "leader"
        } else {
            "follower"
        }
    }

    fn view(&self, asking: Option<std::net::SocketAddr>) -> fourlw::View<'_> {
        fourlw::View {
            cfg: &self.cfg,
            node: &self.node,
            server: &self.stats,
            conns: &self.conn_stats,
            mode: self.mode(),
            asking,
            started: self.started,
            mono_ms: self.started.elapsed().as_millis() as u64,
            now_ms: now_ms(),
            zk: &self.metrics.zk,
            budget: &self.budget,
        }
    }

    /// srst / crst: counters start over.
    fn reset(&mut self, cmd: &str) {
        match cmd {
            "srst" => {
                self.stats = fourlw::ServerStats::default();
                self.budget.reset();
            }
            "crst" => self.conn_stats.values_mut().for_each(|c| c.reset()),
            _ => {}
        }
    }

    /// Counts a frame sent to a connection; a reply completes its oldest
    /// pending request.
    fn count_sent(&mut self, conn: u64, kind: FrameKind) {
        self.stats.sent += 1;
        let Some(c) = self.conn_stats.get_mut(&conn) else {
            return;
        };
        c.sent += 1;
        let (xid, zxid, err, op, arrived) = match kind {
            FrameKind::Connect => {
                c.established_ms = now_ms();
                return;
            }
            FrameKind::Event => return,
            FrameKind::Reply {
                xid,
                zxid,
                err,
                op,
                arrived,
            } => (xid, zxid, err, op, arrived),
        };
        let took_us = (self.started.elapsed().as_micros() as u64).saturating_sub(arrived);
        self.metrics.observe_request(op, took_us);
        match proto::OpCode::from_code(op) {
            Some(o) if o.is_write() => self.budget.observe(Budget::Write, took_us),
            Some(o) if o.is_read() => self.budget.observe(Budget::Read, took_us),
            _ => {}
        }
        let ms = took_us / 1000;
        c.last_latency_ms = ms;
        c.latency.add(ms);
        self.stats.latency.add(ms);
        c.last_cxid = xid;
        c.last_zxid = zxid;
        c.last_resp_ms = self.started.elapsed().as_millis() as u64;
        if op != proto::OpCode::Auth.code() {
            c.last_op = proto::op::last_op(op, err);
        }
    }

    /// The latency budget hears the commit index (before the answers it
    /// allows are timed) and forgets what was in flight under a leader
    /// that is gone.
    fn budget_commit(&mut self, now: std::time::Instant) {
        let changes = self.node.leader_changes();
        if changes != self.leader_changes {
            self.leader_changes = changes;
            self.budget.forget_in_flight();
        }
        self.budget.committed(self.node.commit_and_applied().0, now);
    }

    /// Takes in a batch made durable: its timings, its frames the writer
    /// did not write (queued now, in order), and tells the node, whose
    /// outputs the caller dispatches. Returns the batch's newest job.
    fn persisted(&mut self, p: Persisted) -> u64 {
        let Persisted {
            number,
            synced,
            us,
            waited_us,
            done_at,
            unsent,
        } = p;
        if synced {
            self.metrics.fsync.observe_us(us);
            self.metrics.zk.fsynctime.observe_ms(us / 1000);
            self.budget.observe(Budget::Disk, us);
        }
        self.budget.observe(Budget::ToDisk, waited_us);
        self.budget
            .observe_since(Budget::FromDisk, done_at, std::time::Instant::now());
        let acked_at = match unsent.is_empty() {
            true => done_at,
            false => std::time::Instant::now(),
        };
        for (lane, frame) in unsent {
            lane.queue_reserved(frame);
        }
        self.budget.persisted(number, acked_at);
        self.node.persisted(number);
        number
    }

    /// A follower's job that finds the log idle — no job with the log
    /// thread, the last fsync ended a while ago (`log_writer`), a small
    /// batch, no inputs came during the last one written here
    /// (`INLINE_BACKOFF`) — is written and fsynced here, now, and its
    /// acknowledgement sent: the log thread's wake-up (27 µs at p50 on a 2-CPU VM whose
    /// idle CPUs halt) leaves the path of a lone write. The core waits the
    /// fsync out, but a follower has nothing to send meanwhile (Raft holds
    /// its messages until the log is durable); the leader's own fsync runs
    /// beside its appends' sending, so it never writes here. Any other
    /// job is returned, for the log thread.
    fn persist_inline(&mut self, job: Job) -> Option<Job> {
        let small = job
            .entries
            .iter()
            .map(|e| e.data.len() + e.context.len())
            .sum::<usize>()
            <= INLINE_MAX_BYTES;
        let backing_off = self.inline_off_until.is_some_and(|t| job.queued_at < t);
        if self.node.is_leader() || self.thread_sent != self.thread_done || !small || backing_off {
            return Some(job);
        }
        let log = self.log.clone();
        let Some(mut writer) = log.try_lock() else {
            return Some(job);
        };
        if !writer.idle_at(job.queued_at) {
            return Some(job);
        }
        let written = writer.write(job, || None, || true);
        drop(writer);
        self.wrote_inline = true;
        self.metrics.inline_writes += 1;
        match written {
            Ok(p) => self.persisted(p),
            Err(e) => storage_failed(&e),
        };
        None
    }

    /// Dispatches, and reports how long the core step that took a snapshot
    /// lasted (it only clones the state; encoding is the snapshot thread's).
    fn dispatch_timed(&mut self, step: std::time::Instant) {
        let snapshot = self.node.peek_outputs().iter().find_map(|o| match o {
            Output::Snapshot { index, .. } => Some(*index),
            _ => None,
        });
        if let Some(index) = snapshot {
            tracing::info!(
                "snapshot at index {index} handed to the snapshot thread; this core step took {:.1} ms",
                step.elapsed().as_secs_f64() * 1000.0
            );
        }
        self.dispatch();
    }

    /// The membership is `text` (`/zookeeper/config`'s): reach the other
    /// members where it says, and keep ZooKeeper's dynamic config file.
    fn new_membership(&mut self, text: &str, learners: &[u64]) {
        let Ok(members) = proto::members::Members::parse(text) else {
            return;
        };
        let me = self.node.server_id();
        if let Some(peers) = &mut self.peers {
            peers.update(
                members
                    .servers
                    .iter()
                    .filter(|(id, _)| **id != me)
                    .map(|(id, s)| crate::peer::PeerAddr {
                        id: *id,
                        quorum: format!("{}:{}", s.host, s.quorum_port),
                        election: format!("{}:{}", s.host, s.election_port),
                    })
                    .collect(),
                learners,
            );
        }
        if self.cfg.reconfig_enabled {
            let has_dynamic = self.cfg.dynamic_config_file.is_some();
            match crate::dynamic_config::write(&self.cfg.path, has_dynamic, me, text) {
                Ok(Some(file)) => tracing::info!(
                    "membership version {:x}: written to {}",
                    members.version,
                    file.display()
                ),
                Ok(None) => {}
                Err(e) => tracing::warn!("membership version {:x}: {e}", members.version),
            }
        }
    }

    fn dispatch(&mut self) {
        // Closing a slow connection produces more outputs: loop until none.
        loop {
            let outputs = self.node.take_outputs();
            if outputs.is_empty() {
                return;
            }
            let now = std::time::Instant::now();
            self.budget_commit(now);
            for o in outputs {
                match o {
                    Output::Send { conn, frame, kind } => {
                        let Some(tx) = self.conns.get(&conn) else {
                            continue;
                        };
                        let reply = matches!(kind, FrameKind::Reply { .. });
                        if let FrameKind::Reply {
                            zxid, op, err: 0, ..
                        } = kind
                        {
                            if proto::OpCode::from_code(op).is_some_and(proto::OpCode::is_write) {
                                self.budget.answered_write(zxid, now);
                            }
                        }
                        let frame = ToConn::Frame {
                            frame,
                            reply,
                            at: now,
                        };
                        match tx.try_send(frame) {
                            Ok(()) => self.count_sent(conn, kind),
                            Err(TrySendError::Full(_)) => {
                                tracing::warn!(
                                    conn,
                                    "client is not reading its responses; closing the connection"
                                );
                                self.conns.remove(&conn);
                                self.node.disconnect(conn);
                            }
                            Err(TrySendError::Closed(_)) => {
                                self.conns.remove(&conn);
                            }
                        }
                    }
                    Output::Persist {
                        number,
                        restart,
                        entries,
                        hard_state,
                        sync,
                        then_send,
                    } => {
                        if let Some(last) = entries.last() {
                            crate::hops::hop("persist", last.index);
                            let follower = !self.node.is_leader();
                            self.budget.handed_to_disk(last.index, now, follower);
                        }
                        let mut frames = Vec::with_capacity(then_send.len());
                        for m in &then_send {
                            if m.get_msg_type() == raft::prelude::MessageType::MsgAppendResponse
                                && !m.reject
                            {
                                self.budget.ack_after(number, m.index);
                            }
                            if let Some(f) = self.peers.as_ref().and_then(|p| p.prepare(m)) {
                                frames.push(f);
                            }
                        }
                        let job = Job {
                            number,
                            restart,
                            entries,
                            hard_state,
                            queued_at: now,
                            sync,
                            then_send: frames,
                        };
                        let Some(job) = self.persist_inline(job) else {
                            continue;
                        };
                        // Bounded queue: when the disk falls this far behind,
                        // the core waits for it.
                        if self.jobs.send(job).is_err() {
                            tracing::error!("the storage thread is gone; exiting");
                            std::process::exit(2);
                        }
                        self.thread_sent = number;
                    }
                    Output::Snapshot {
                        index,
                        term,
                        conf_state,
                        state,
                    } => {
                        let meta = storage::SnapshotMeta {
                            index,
                            term,
                            conf_state,
                        };
                        if self.snap_jobs.send(SnapJob::Write { meta, state }).is_err() {
                            tracing::error!("the snapshot thread is gone; exiting");
                            std::process::exit(2);
                        }
                    }
                    Output::Message(m)
                        if m.get_msg_type() == raft::prelude::MessageType::MsgSnapshot =>
                    {
                        if let Some(p) = &self.peers {
                            p.send_snapshot(m, &self.cfg.data_dir);
                        }
                    }
                    Output::Message(m) => {
                        crate::hops::raft(crate::hops::Prefix::CoreOut, &m);
                        if let Some(p) = &self.peers {
                            p.send(m.to, crate::peer::PeerOut::Raft(m));
                        }
                    }
                    Output::Liveness { to, sessions } => {
                        if let Some(p) = &self.peers {
                            p.send(to, crate::peer::PeerOut::Liveness(sessions));
                        }
                    }
                    Output::Diverged {
                        index,
                        ours,
                        theirs,
                        server,
                    } => {
                        // Fail-fast: a replica whose tree differs serves and
                        // snapshots nothing more.
                        tracing::error!(
                            "this replica's tree differs from server {server}'s after log index {index} (zxid 0x{index:x}): tree digest 0x{ours:x} here, 0x{theirs:x} there; exiting. To recover, delete this server's {snap} and {wal} (keep myid) and start it again: it takes the leader's snapshot",
                            snap = self.cfg.data_dir.join("ferrokeeper-snap").display(),
                            wal = self.cfg.log_dir().join("ferrokeeper-wal").display(),
                        );
                        std::process::exit(2);
                    }
                    Output::TakeoverConflict {
                        leader,
                        leader_index,
                        ours,
                    } => {
                        // This server's ZooKeeper data reaches further than
                        // the elected leader's: those transactions were never
                        // committed by ZooKeeper. Drop the copy, start over.
                        tracing::error!(
                            "the ZooKeeper data this server took over reaches zxid 0x{ours:x}, beyond the log of the elected leader (server {leader}, 0x{leader_index:x}): no quorum of ZooKeeper's ensemble logged the transactions above it, so ZooKeeper never committed them. This server's copy is dropped (ZooKeeper's files stay as they are); exiting. Start it again: it starts empty and catches up from the leader"
                        );
                        if let Err(e) = crate::takeover::decline(&self.cfg, ours, leader_index) {
                            tracing::error!("dropping the data taken over failed: {e}");
                        }
                        std::process::exit(2);
                    }
                    Output::TakeoverConfirmed { index } => {
                        match crate::takeover::confirm(&self.cfg.data_dir) {
                            Ok(()) => tracing::info!(
                                "the ensemble confirmed the ZooKeeper data taken over here (up to zxid 0x{index:x})"
                            ),
                            Err(e) => tracing::warn!("the ZooKeeper data taken over here is confirmed, but its marker stays: {e}"),
                        }
                    }
                    Output::Membership { text, learners, .. } => {
                        self.new_membership(&text, &learners)
                    }
                    Output::Rejoin => {
                        if let Some(peers) = &mut self.peers {
                            peers.redial();
                        }
                    }
                    Output::Restored { waiter, zxid, ok } => {
                        if let Some(reply) = self.restores.remove(&waiter) {
                            let _ = reply.send(if ok {
                                Ok(zxid)
                            } else {
                                Err(format!("the restore entry at zxid 0x{zxid:x} did not decode as a snapshot; nothing changed"))
                            });
                        }
                    }
                    Output::Close { conn, reason } => {
                        if reason == "session expired" {
                            tracing::info!(conn, "session expired; closing its connection");
                        }
                        if let Some(tx) = self.conns.remove(&conn) {
                            let _ = tx.try_send(ToConn::Close(reason));
                        }
                    }
                }
            }
        }
    }
}
