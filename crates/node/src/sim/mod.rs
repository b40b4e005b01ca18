//! A seeded, in-process simulation of whole ensembles: several replica
//! cores, a network that delays, drops and partitions, instant disks that
//! keep exactly what was persisted, crashes and restarts, and clients that
//! record every acknowledged write. A failing seed replays exactly.
//!
//! This file is the world (replicas, disks, network, faults, time); the
//! clients and the checks of what they hear are in `clients`.

use std::collections::{BTreeMap, BTreeSet};

use proto::{
    AddWatchRequest, ConnectRequest, ConnectResponse, CreateTtlRequest, GetChildren2Response,
    GetDataResponse, Jute, MultiOp, OpCode, PathRecord, PathVersionRequest, PathWatchRequest,
    Reader, ReplyHeader, Request, SetAclRequest, SetDataRequest, Stat, WatcherEvent,
};
use raft::prelude::{Entry as RaftEntry, HardState, Message as RaftMessage, MessageType};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tree::{acl, ConnId};

use crate::lincheck::{Event, Op, Outcome};

mod clients;
mod deliver;
use crate::testing::{load, MemDisk as Disk, SnapFile};
use crate::{Node, NodeConfig, Output, Restored, RestoredSnapshot};
pub(crate) use clients::create_request;
use clients::Client;

/// A `Persist` on its way to disk: restart, entries, hard state.
/// (restart, entries, hard state, whether it is fsynced, the messages
/// sent once it is done).
type PendingPersist = (
    Option<(u64, u64)>,
    Vec<RaftEntry>,
    Option<HardState>,
    bool,
    Vec<RaftMessage>,
);

enum Msg {
    Raft(RaftMessage),
    Liveness(Vec<i64>),
    /// A whole snapshot transfer (the file and then the MsgSnapshot).
    Snapshot(RaftMessage, Box<SnapFile>),
    /// A server the receiver may not know called in, naming its address
    /// (the transport's answer to `Output::Rejoin`).
    Joiner,
}

struct InFlight {
    at_ms: i64,
    from: u64,
    to: u64,
    msg: Msg,
}

pub struct Sim {
    pub rng: StdRng,
    pub now_ms: i64,
    /// Every replica (the network); `voters` of them vote, the rest are
    /// observers (Raft learners).
    ids: Vec<u64>,
    voters: Vec<u64>,
    nodes: BTreeMap<u64, Node>,
    disks: BTreeMap<u64, Disk>,
    net: Vec<InFlight>,
    /// Links that drop everything, (from, to).
    cut: BTreeSet<(u64, u64)>,
    pub drop_rate: f64,
    /// A message is also delivered a second time.
    pub duplicate_rate: f64,
    /// A message may overtake those sent before it on its link (as across
    /// a reconnection).
    pub reorder_rate: f64,
    /// Replicas frozen (a GC-like pause, SIGSTOP) until a time: no ticks,
    /// no deliveries; their messages wait.
    paused: BTreeMap<u64, i64>,
    /// Writes handed to each replica's disk and not yet durable:
    /// (when durable, Persist number, restart, entries, hard state). A
    /// crash loses them.
    unsynced: BTreeMap<u64, Vec<(i64, u64, PendingPersist)>>,
    /// Writes done without an fsync (a hard state that moved only the
    /// commit index) and not yet made durable by a later one: what was
    /// durable before them (the log's length, the hard state), which a
    /// crash may bring back.
    volatile: BTreeMap<u64, (usize, HardState)>,
    /// Longest simulated fsync, ms (0: durable at once).
    pub max_fsync_ms: i64,
    /// A write's fsync fails (the replica stops, as the server does).
    pub fsync_fail_rate: f64,
    /// Replicas stopped by a failed fsync, for the test to restart.
    pub fsync_failed: Vec<u64>,
    /// Each replica's clock runs at its own rate (drift): its time is
    /// `now_ms * rate`.
    pub clock_rate: BTreeMap<u64, f64>,
    /// Writes that changed a checked key, answered OK: (when answered,
    /// key, zxid) — for the sync check.
    changed: Vec<(i64, String, i64)>,
    /// Faults injected and events checked, by kind, for the report.
    pub stats: BTreeMap<&'static str, u64>,
    /// What the session checks found (reply order, zxid, stale reads).
    pub session_violations: Vec<String>,
    /// Acknowledged ephemeral creates: (path, owner session).
    pub ephemerals: Vec<(String, i64)>,
    /// Names that acknowledged sequential creates got.
    pub sequential_names: BTreeSet<String>,
    /// Tree digest seen at each applied zxid, and by which replica: every
    /// replica that applied up to the same zxid must have the same tree.
    digests: BTreeMap<i64, (u64, u64)>,
    /// Sequential names given twice, and replicas whose tree differed from
    /// another's at the same zxid.
    pub violations: Vec<String>,
    clients: Vec<Client>,
    next_conn: ConnId,
    /// Paths whose create was acknowledged, and by which replica.
    pub acked: BTreeMap<String, u64>,
    /// Acknowledgements that came from a replica cut off from a majority.
    pub acked_by_minority: Vec<String>,
    seed: u64,
    /// snapCount of every replica started from now on.
    pub snap_count: u64,
    /// Checked writes as their clients saw them (`write`), for the
    /// linearizability checker; unanswered ones keep an unknown outcome.
    pub history: Vec<Event>,
    /// Checked writes a read-only server refused (NotReadOnly): certainly
    /// not applied, so left out of the history the checker searches (an
    /// unknown outcome there would only widen its search).
    pub refused_writes: BTreeSet<usize>,
    /// Snapshots installed from a leader, counted.
    pub snapshots_installed: u64,
    /// Protected nodes whose create was acknowledged.
    pub protected: Vec<String>,
    /// `campaigns_deferred` of replicas that crashed.
    deferred_by_gone: u64,
    /// Replicas stopped by the digest check: (replica, index it named).
    pub diverged: Vec<(u64, u64)>,
}

pub(crate) const TICK_MS: u64 = 100;
const STEP_MS: i64 = 10;

/// The `server.N` line of simulated server `id` (hosts make each distinct).
pub(crate) fn server_line(id: u64, observer: bool) -> String {
    let role = if observer { "observer" } else { "participant" };
    format!("server.{id}=h{id}:1:2:{role};3")
}

/// Every second replica serves linearizable reads: its clients check each
/// read against every change answered before they sent it.
pub(super) fn linearizable_replica(id: u64) -> bool {
    id % 2 == 0
}

fn cfg(id: u64, ids: &[u64], voters: &[u64], seed: u64, snap_count: u64) -> NodeConfig {
    let lines: Vec<String> = ids
        .iter()
        .map(|i| server_line(*i, !voters.contains(i)))
        .collect();
    NodeConfig {
        server_id: id,
        reconfig: crate::ReconfigSettings {
            enabled: true,
            standalone_enabled: true,
        },
        members_text: lines.join("\n"),
        read_only_mode: true,
        linearizable_reads: linearizable_replica(id),
        super_digest: Some(acl::digest(clients::SUPER_USER)),
        tick_ms: TICK_MS,
        container_check_interval_ms: 1_000,
        seed: seed.wrapping_mul(31).wrapping_add(id),
        snap_count,
        voters: voters.to_vec(),
        learners: ids
            .iter()
            .copied()
            .filter(|i| !voters.contains(i))
            .collect(),
        ..NodeConfig::for_test()
    }
}

impl Sim {
    pub fn new(seed: u64, n: u64) -> Sim {
        Sim::with_snap_count(seed, n, 1_000_000)
    }

    pub fn with_snap_count(seed: u64, n: u64, snap_count: u64) -> Sim {
        Sim::with_observers(seed, n, 0, snap_count)
    }

    /// `voters` voting replicas (ids 1..=voters) and `observers` more.
    pub fn with_observers(seed: u64, voters: u64, observers: u64, snap_count: u64) -> Sim {
        let ids: Vec<u64> = (1..=voters + observers).collect();
        let mut sim = Sim {
            rng: StdRng::seed_from_u64(seed),
            now_ms: 0,
            ids: ids.clone(),
            voters: (1..=voters).collect(),
            nodes: BTreeMap::new(),
            disks: BTreeMap::new(),
            net: Vec::new(),
            cut: BTreeSet::new(),
            drop_rate: 0.0,
            duplicate_rate: 0.0,
            reorder_rate: 0.0,
            paused: BTreeMap::new(),
            unsynced: BTreeMap::new(),
            volatile: BTreeMap::new(),
            max_fsync_ms: 0,
            fsync_fail_rate: 0.0,
            fsync_failed: Vec::new(),
            clock_rate: BTreeMap::new(),
            session_violations: Vec::new(),
            stats: BTreeMap::new(),
            changed: Vec::new(),
            ephemerals: Vec::new(),
            sequential_names: BTreeSet::new(),
            digests: BTreeMap::new(),
            violations: Vec::new(),
            clients: Vec::new(),
            next_conn: 1,
            acked: BTreeMap::new(),
            acked_by_minority: Vec::new(),
            seed,
            snap_count,
            snapshots_installed: 0,
            protected: Vec::new(),
            deferred_by_gone: 0,
            history: Vec::new(),
            refused_writes: BTreeSet::new(),
            diverged: Vec::new(),
        };
        for id in ids {
            sim.start(id);
        }
        sim
    }

    pub fn start(&mut self, id: u64) {
        let disk = self.disks.entry(id).or_default().clone();
        let restored = Restored {
            hard_state: disk.hard_state,
            entries: disk.entries,
            snapshot: disk
                .snapshot
                .map(|(index, term, conf_state, state)| RestoredSnapshot {
                    index,
                    term,
                    conf_state,
                    state: load(&state),
                }),
        };
        let node = Node::new(
            cfg(id, &self.ids, &self.voters, self.seed, self.snap_count),
            self.clock(id),
            restored,
        )
        .expect("node starts");
        self.nodes.insert(id, node);
    }

    /// SIGKILL: the replica and its connections are gone; its disk stays.
    /// The others see their TCP connections to it close, as the transport
    /// reports with `peer_lost`.
    pub fn crash(&mut self, id: u64) {
        *self.stats.entry("crash").or_default() += 1;
        if let Some(n) = self.nodes.remove(&id) {
            self.deferred_by_gone += n.campaigns_deferred;
        }
        self.paused.remove(&id);
        // What was being written: a torn write leaves a prefix of the
        // first batch's records (recovery cuts the torn one), nothing after.
        if let Some((len, hs)) = self.volatile.remove(&id) {
            if self.rng.gen_bool(0.5) {
                // What was written without an fsync did not last.
                *self.stats.entry("unsynced write lost").or_default() += 1;
                let disk = self.disks.entry(id).or_default();
                disk.entries.truncate(len);
                disk.hard_state = hs;
            }
        }
        if let Some(mut q) = self.unsynced.remove(&id) {
            if !q.is_empty() {
                let (_, _, (restart, mut entries, hard_state, _, _)) = q.remove(0);
                let keep = self.rng.gen_range(0..=entries.len());
                let whole = keep == entries.len();
                *self
                    .stats
                    .entry(if whole {
                        "crash with a write in flight"
                    } else {
                        "torn write"
                    })
                    .or_default() += 1;
                entries.truncate(keep);
                if keep > 0 || (whole && restart.is_none()) {
                    let hs = if whole { hard_state } else { None };
                    self.disks.entry(id).or_default().persist(
                        if keep > 0 { restart } else { None },
                        entries,
                        hs,
                    );
                }
            }
        }
        let ids: Vec<u64> = self.nodes.keys().copied().collect();
        for other in ids {
            let now = self.clock(other);
            let n = self.nodes.get_mut(&other).unwrap();
            n.tick(now);
            n.peer_lost(id);
        }
        for c in self.clients.iter_mut().filter(|c| c.node == id) {
            c.connected = false;
            c.pending.clear();
        }
    }

    pub fn partition(&mut self, side: &[u64]) {
        *self.stats.entry("partition").or_default() += 1;
        for a in side {
            for b in self.ids.iter().filter(|b| !side.contains(b)) {
                self.cut.insert((*a, *b));
                self.cut.insert((*b, *a));
            }
        }
    }

    /// Cuts the link from `from` to `to` only (the other way still works).
    pub fn cut_one_way(&mut self, from: u64, to: u64) {
        *self.stats.entry("one-way cut").or_default() += 1;
        self.cut.insert((from, to));
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    /// Asks replica `id` to hand leadership to `to` (any voter when None:
    /// only a leader picks one), as a stopping leader or the AdminServer's
    /// `transfer_leadership` does.
    pub fn transfer_leadership(&mut self, id: u64, to: Option<u64>) {
        if self.is_paused(id) {
            return;
        }
        let Some(n) = self.nodes.get_mut(&id) else {
            return;
        };
        if n.transfer_leadership(to).is_some() {
            *self.stats.entry("leadership transfer").or_default() += 1;
            self.drain(id);
        }
    }

    /// Freezes replica `id` for `ms` (a long GC pause, SIGSTOP).
    pub fn pause(&mut self, id: u64, ms: i64) {
        *self.stats.entry("pause").or_default() += 1;
        if self.nodes.contains_key(&id) {
            self.paused.insert(id, self.now_ms + ms);
        }
    }

    /// Replica `id`'s clock.
    fn clock(&self, id: u64) -> i64 {
        (self.now_ms as f64 * self.clock_rate.get(&id).copied().unwrap_or(1.0)) as i64
    }

    fn is_paused(&self, id: u64) -> bool {
        self.paused
            .get(&id)
            .is_some_and(|until| *until > self.now_ms)
    }

    pub fn leaders(&self) -> Vec<u64> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.is_leader())
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn live(&self) -> Vec<u64> {
        self.nodes.keys().copied().collect()
    }

    /// Can `id` reach a majority of the voters (itself included)?
    fn in_majority(&self, id: u64) -> bool {
        let reach = self
            .voters
            .iter()
            .filter(|p| **p == id || (!self.cut.contains(&(id, **p)) && self.nodes.contains_key(p)))
            .count();
        reach * 2 > self.voters.len()
    }

    /// Advances simulated time, delivering messages and running every core.
    pub fn run(&mut self, ms: i64) {
        let end = self.now_ms + ms;
        while self.now_ms < end {
            self.now_ms += STEP_MS;
            let now = self.now_ms;
            let (due, later): (Vec<InFlight>, Vec<InFlight>) = std::mem::take(&mut self.net)
                .into_iter()
                .partition(|m| m.at_ms <= now);
            self.net = later;
            for m in due {
                if self.cut.contains(&(m.from, m.to)) || !self.nodes.contains_key(&m.to) {
                    self.lost(m.from, m.to, &m.msg);
                    continue;
                }
                if self.is_paused(m.to) {
                    // Waits in the socket until the replica runs again.
                    self.net.push(InFlight {
                        at_ms: now + STEP_MS,
                        ..m
                    });
                    continue;
                }
                let to_now = self.clock(m.to);
                let n = self.nodes.get_mut(&m.to).expect("checked");
                match m.msg {
                    Msg::Raft(r) => n.step(r),
                    Msg::Liveness(s) => n.liveness(&s, to_now),
                    Msg::Joiner => n.joiner(m.from),
                    Msg::Snapshot(r, file) => {
                        // The receiver makes the file durable, then installs.
                        let state = load(&file.3);
                        self.disks.entry(m.to).or_default().snapshot = Some(*file);
                        self.snapshots_installed += 1;
                        n.install_snapshot(r, state);
                        if let Some(leader) = self.nodes.get_mut(&m.from) {
                            leader.snapshot_sent(m.to, true);
                        }
                    }
                }
            }
            let ids: Vec<u64> = self.nodes.keys().copied().collect();
            for id in ids {
                if self.is_paused(id) {
                    continue;
                }
                self.complete_fsyncs(id);
                let clock = self.clock(id);
                self.nodes.get_mut(&id).unwrap().tick(clock);
                self.drain(id);
                self.record_digest(id);
            }
        }
    }

    /// Changes replica `id`'s data at `path` behind the log's back, as a
    /// replica whose apply has a bug would.
    pub fn plant_divergence(&mut self, id: u64, path: &str) {
        let n = self.nodes.get_mut(&id).expect("a live replica");
        n.state_mut().tree.plant_divergence(path, b"planted");
    }

    /// Digest entries replica `id` compared and found equal.
    pub fn digest_checks(&self, id: u64) -> u64 {
        self.nodes.get(&id).map_or(0, Node::digest_checks)
    }

    fn record_digest(&mut self, id: u64) {
        let Some(n) = self.nodes.get(&id) else {
            return;
        };
        let (zxid, digest) = (n.last_zxid(), n.state().tree.digest());
        let (d, by) = *self.digests.entry(zxid).or_insert((digest, id));
        if d != digest {
            self.violations.push(format!(
                "at zxid {zxid:#x} replica {id} has tree digest {digest:#x}, replica {by} had {d:#x}"
            ));
        }
    }

    /// Writes whose fsync finished become durable, in order, and the
    /// replica hears of it.
    fn complete_fsyncs(&mut self, id: u64) {
        let now = self.now_ms;
        let Some(q) = self.unsynced.get_mut(&id) else {
            return;
        };
        let n = q.iter().take_while(|(at, ..)| *at <= now).count();
        let done: Vec<_> = q.drain(..n).collect();
        for (_, number, (restart, entries, hard_state, sync, then_send)) in done {
            let disk = self.disks.entry(id).or_default();
            if sync {
                self.volatile.remove(&id);
            } else {
                self.volatile
                    .entry(id)
                    .or_insert_with(|| (disk.entries.len(), disk.hard_state.clone()));
            }
            disk.persist(restart, entries, hard_state);
            for m in then_send {
                self.send(id, m.to, Msg::Raft(m));
            }
            self.nodes.get_mut(&id).unwrap().persisted(number);
        }
    }

    fn drain(&mut self, id: u64) {
        loop {
            let Some(n) = self.nodes.get_mut(&id) else {
                return;
            };
            n.flush();
            let outs = n.take_outputs();
            if outs.is_empty() {
                return;
            }
            for o in outs {
                match o {
                    Output::Persist {
                        number,
                        restart,
                        entries,
                        hard_state,
                        sync,
                        then_send,
                    } if self.max_fsync_ms > 0 => {
                        if sync && self.rng.gen_bool(self.fsync_fail_rate) {
                            // The server stops at a failed fsync (never
                            // retries it): a crash, this write lost or torn.
                            self.unsynced.entry(id).or_default().push((
                                self.now_ms,
                                number,
                                (restart, entries, hard_state, sync, then_send),
                            ));
                            *self.stats.entry("failed fsync").or_default() += 1;
                            self.crash(id);
                            self.fsync_failed.push(id);
                            return;
                        }
                        // Durable later, after those before it; lost if the
                        // replica crashes first.
                        let q = self.unsynced.entry(id).or_default();
                        let after = q.last().map_or(0, |(at, ..)| *at);
                        // Written without an fsync: done once those before
                        // it are.
                        let fsync = match sync {
                            true => self.rng.gen_range(0..=self.max_fsync_ms),
                            false => 0,
                        };
                        let at = (self.now_ms + fsync).max(after);
                        q.push((at, number, (restart, entries, hard_state, sync, then_send)));
                    }
                    Output::Persist {
                        number,
                        restart,
                        entries,
                        hard_state,
                        then_send,
                        ..
                    } => {
                        self.disks
                            .entry(id)
                            .or_default()
                            .persist(restart, entries, hard_state);
                        for m in then_send {
                            self.send(id, m.to, Msg::Raft(m));
                        }
                        self.nodes.get_mut(&id).unwrap().persisted(number);
                    }
                    Output::Snapshot {
                        index,
                        term,
                        conf_state,
                        state,
                    } => {
                        self.disks.entry(id).or_default().snapshot =
                            Some((index, term, conf_state, *state));
                        self.nodes.get_mut(&id).unwrap().snapshotted(index)
                    }
                    Output::Message(m) if m.get_msg_type() == MessageType::MsgSnapshot => {
                        let meta = m.get_snapshot().get_metadata();
                        let file = self.disks.get(&id).and_then(|d| d.snapshot.clone());
                        match file {
                            Some(f) if f.0 == meta.index && f.1 == meta.term => {
                                let to = m.to;
                                self.send(id, to, Msg::Snapshot(*m, Box::new(f)));
                            }
                            _ => self.nodes.get_mut(&id).unwrap().snapshot_sent(m.to, false),
                        }
                    }
                    Output::Diverged { index, .. } => {
                        // The server exits: a crash that the test is not to
                        // restart.
                        self.diverged.push((id, index));
                        self.crash(id);
                        return;
                    }
                    // No simulated server starts from ZooKeeper's data.
                    Output::TakeoverConflict { .. } | Output::TakeoverConfirmed { .. } => {
                        panic!("server {id}: a takeover output without data taken over")
                    }
                    // Nor proposes a restore.
                    Output::Restored { .. } => panic!("server {id}: a restore nobody proposed"),
                    Output::Message(m) => self.send(id, m.to, Msg::Raft(*m)),
                    // The simulated network reaches every replica by id.
                    Output::Membership { .. } => {}
                    Output::Rejoin => {
                        let others: Vec<u64> =
                            self.nodes.keys().copied().filter(|o| *o != id).collect();
                        for to in others {
                            self.send(id, to, Msg::Joiner);
                        }
                    }
                    Output::Liveness { to, sessions } => self.send(id, to, Msg::Liveness(sessions)),
                    Output::Send { conn, frame, .. } => self.deliver(id, conn, &frame),
                    Output::Close { conn, .. } => {
                        for c in self
                            .clients
                            .iter_mut()
                            .filter(|c| c.node == id && c.conn == conn)
                        {
                            c.connected = false;
                            c.pending.clear();
                        }
                    }
                }
            }
        }
    }

    /// Links are FIFO, as the TCP connections between peers are; a message
    /// may still be lost (a connection that breaks and reconnects).
    fn send(&mut self, from: u64, to: u64, msg: Msg) {
        if self.rng.gen_bool(self.drop_rate) {
            self.lost(from, to, &msg);
            return;
        }
        let last = if self.rng.gen_bool(self.reorder_rate) {
            0
        } else {
            self.net
                .iter()
                .filter(|m| m.from == from && m.to == to)
                .map(|m| m.at_ms)
                .max()
                .unwrap_or(0)
        };
        let at_ms = (self.now_ms + self.rng.gen_range(1..25)).max(last);
        if self.rng.gen_bool(self.duplicate_rate) {
            let copy = match &msg {
                // A forwarded proposal is delivered at most once (TCP, and
                // the peer layer never resends): a second copy would be a
                // second write, which Raft does not deduplicate.
                Msg::Raft(r) if r.get_msg_type() == MessageType::MsgPropose => None,
                Msg::Raft(r) => Some(Msg::Raft(r.clone())),
                Msg::Liveness(s) => Some(Msg::Liveness(s.clone())),
                Msg::Joiner => Some(Msg::Joiner),
                Msg::Snapshot(..) => None,
            };
            if let Some(copy) = copy {
                self.net.push(InFlight {
                    at_ms: at_ms + self.rng.gen_range(0..50),
                    from,
                    to,
                    msg: copy,
                });
            }
        }
        self.net.push(InFlight {
            at_ms,
            from,
            to,
            msg,
        });
    }

    /// A lost snapshot transfer is reported to its sender, as the
    /// transport does when the stream breaks.
    fn lost(&mut self, from: u64, to: u64, msg: &Msg) {
        if let Msg::Snapshot(..) = msg {
            if let Some(n) = self.nodes.get_mut(&from) {
                n.snapshot_sent(to, false);
            }
        }
    }

    /// Every live replica: (applied zxid, tree digest).
    pub fn states(&self) -> BTreeMap<u64, (i64, u64)> {
        self.nodes
            .iter()
            .map(|(id, n)| (*id, (n.last_zxid(), n.state().tree.digest())))
            .collect()
    }

    /// Each live replica's Raft view, for failure messages.
    pub fn describe_replicas(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|(id, n)| {
                let m = n.state().members();
                format!(
                    "{id}: {:?} term {} leader {} commit/applied {:?} raft {:?} text v{:x} {:?} removed {}",
                    n.raw.raft.state,
                    n.raw.raft.term,
                    n.leader_id(),
                    n.commit_and_applied(),
                    n.raft_members(),
                    m.version,
                    m.servers.iter().map(|(i, s)| (*i, s.observer)).collect::<Vec<_>>(),
                    n.is_removed()
                )
            })
            .collect()
    }

    /// The newest membership a live replica has applied.
    pub fn members(&self) -> proto::members::Members {
        self.nodes
            .values()
            .map(|n| n.state().members())
            .max_by_key(|m| m.version)
            .unwrap_or_default()
    }

    /// Replicas whose Raft membership is not what their membership text
    /// says (voters the participants, learners the observers and maybe
    /// non-voting followers the text leaves out); a replica the text
    /// leaves out is skipped.
    pub fn membership_mismatches(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (id, n) in &self.nodes {
            let m = n.state().members();
            if !m.servers.contains_key(id) {
                continue;
            }
            let (voters, mut learners, joint) = n.raft_members();
            learners.retain(|l| m.servers.contains_key(l));
            if joint || voters != m.voters() || learners != m.learners() {
                out.push(format!(
                    "replica {id}: Raft voters {voters:?} learners {learners:?} joint {joint}, text voters {:?} learners {:?} (version {:x})",
                    m.voters(),
                    m.learners(),
                    m.version
                ));
            }
        }
        out
    }

    /// Live replica `id`.
    pub fn replica(&self, id: u64) -> &Node {
        &self.nodes[&id]
    }

    pub fn has_node(&self, id: u64, path: &str) -> bool {
        self.nodes[&id].state().tree.get(path).is_some()
    }
}
