//! The replica core, sans-IO: a struct fed inputs (a client connected, a
//! request frame arrived, a connection closed, time passed) that returns
//! outputs (frames to send, connections to close). It owns the Raft
//! `RawNode`, the state machine, the watch registry, the session liveness
//! table and every connection's FIFO queue. It reads no clock and no
//! random source of its own: time arrives with each input and randomness
//! comes from a seeded generator, so a test can replay it exactly.
//!
//! Not owned here: sockets, framing, config files (the `server` crate).
//!
//! Storage: the Raft log Raft reads lives in memory (`log::Log`, compacted
//! after each snapshot); making it durable is an output (`Persist`), like
//! sending.
//!
//! Snapshot transfer: a replica that needs entries the leader has already
//! compacted gets the leader's newest snapshot file. Raft's `MsgSnapshot`
//! carries only its metadata (index, term, membership); the driver
//! streams the file (chunked, checksummed, resumable), the receiver makes
//! it durable in its dataDir, decodes it and hands message and state to
//! `install_snapshot`. The leader's driver reports the outcome with
//! `snapshot_sent`.
//!
//! Invariants: the requests of one connection complete in the order they
//! arrived (reads wait behind that connection's earlier writes); watch
//! notifications caused by an entry are emitted before any reply that
//! follows it; a zxid is the Raft index of the entry that made the change.

use std::collections::{HashMap, VecDeque};

mod log;
pub mod testing;
use log::Log;

use proto::frame::{finish_frame, start_frame};
use proto::{
    ConnectRequest, ConnectResponse, ErrorCode, Id, Jute, KeeperState, OpCode, Perms, ReplyHeader,
    Request, WatcherEvent, Xid,
};
use raft::prelude::{
    ConfState, Entry as RaftEntry, EntryType, HardState, Message as RaftMessage, MessageType,
    Snapshot, SnapshotMetadata,
};
use raft::RawNode;
use rand::{Rng, SeedableRng};
use tree::watches::{Notification, WatchKind};
use tree::{
    acl, Applied, ConnId, Entry, EntryKind, Reply, SessionEffect, StateMachine, TreeConfig,
    WatchRegistry,
};

/// Settings of one replica, from zoo.cfg.
#[derive(Debug, Clone)]
pub struct NodeConfig {
    /// `myid` (1 for a standalone server).
    pub server_id: u64,
    /// `tickTime`: one Raft tick.
    pub tick_ms: u64,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    /// `znode.container.checkIntervalMs`.
    pub container_check_interval_ms: i64,
    /// `superDigest`: "super:<base64 sha1>", matched at addauth.
    pub super_digest: Option<String>,
    pub tree: TreeConfig,
    /// Seeds session passwords and election jitter.
    pub seed: u64,
    /// `snapCount`: a snapshot is taken after snapCount/2 plus a random
    /// share of snapCount/2 applied entries (ZooKeeper's randRoll), so
    /// replicas do not all snapshot at once.
    pub snap_count: u64,
    /// `snapSizeLimitInKb`, in bytes: a snapshot is also taken once the
    /// entries applied since the last one add up to this many bytes — or
    /// to the size of the tree at the last snapshot, when that is larger —
    /// so the in-memory log (kept back to the previous snapshot) stays
    /// bounded when values are large, and the snapshots written stay in
    /// proportion to the log: each costs about the tree's size, and comes
    /// after at least as many bytes of log. (A fixed limit alone wrote a
    /// whole-tree snapshot per limit's worth of writes: with a tree larger
    /// than the limit, disk use grew with the square of the writes.)
    pub snap_size_limit_bytes: u64,
    /// Server ids of the voting members (`server.N` lines); just
    /// `[server_id]` for a standalone server.
    pub voters: Vec<u64>,
}

/// A connect request waiting for a leader (`Node::held_connects`).
struct HeldConnect {
    conn: ConnId,
    req: ConnectRequest,
    ip: String,
    /// When the client's session timeout has passed (ms since the epoch).
    until_ms: i64,
}

/// What the driver must do.
#[derive(Debug, Clone)]
pub enum Output {
    /// Send one complete frame (length prefix included) to a connection.
    Send { conn: ConnId, frame: Vec<u8> },
    /// Close a connection once what was sent before is written.
    Close { conn: ConnId, reason: &'static str },
    /// Make these entries and this hard state durable — in order, one
    /// write and one fsync for the lot — then call `persisted(number)`.
    /// Nothing that depends on them is acknowledged before that.
    Persist {
        number: u64,
        /// A snapshot up to (index, term) was installed from the leader
        /// (its file is durable already): the log restarts after it, and
        /// everything before it in the log is void. Written first.
        restart: Option<(u64, u64)>,
        entries: Vec<RaftEntry>,
        hard_state: Option<HardState>,
    },
    /// Encode and write this snapshot of the state at `index` durably,
    /// off the core's thread (requests go on), then call
    /// `snapshotted(index)`. The state shares the live tree's nodes
    /// copy-on-write (taking it costs O(arena chunks)).
    Snapshot {
        index: u64,
        term: u64,
        conf_state: ConfState,
        state: Box<tree::Frozen>,
    },
    /// A Raft message for a peer (quorum or election port). A
    /// `MsgSnapshot` names (index, term) of this replica's newest durable
    /// snapshot: the driver transfers that file, then reports with
    /// `snapshot_sent`.
    Message(Box<RaftMessage>),
    /// Tell the leader which sessions spoke to this server lately, so it
    /// does not expire them (only the leader proposes expiry).
    Liveness { to: u64, sessions: Vec<i64> },
}

/// The Raft state read back from disk at startup.
#[derive(Debug, Default)]
pub struct Restored {
    pub hard_state: HardState,
    /// Contiguous; those at or below the snapshot's index are skipped.
    pub entries: Vec<RaftEntry>,
    pub snapshot: Option<RestoredSnapshot>,
}

/// The newest snapshot on disk, decoded.
#[derive(Debug)]
pub struct RestoredSnapshot {
    pub index: u64,
    pub term: u64,
    pub conf_state: ConfState,
    pub state: StateMachine,
}

/// A request waiting in a connection's FIFO queue.
#[derive(Debug)]
enum Pending {
    /// Proposed; completes when its entry is applied.
    Write { xid: i32 },
    /// Served once every earlier write of the connection has applied.
    Read { xid: i32, req: Request },
}

#[derive(Debug)]
struct Conn {
    /// 0 until the session is established.
    session_id: i64,
    /// The negotiated timeout, answered on connect.
    timeout_ms: i32,
    /// ip plus identities added by `addauth`; ACL checks use them.
    auth: Vec<Id>,
    queue: VecDeque<Pending>,
}

/// Liveness of a session, tracked where it is connected.
#[derive(Debug)]
struct Liveness {
    timeout_ms: i64,
    last_heard_ms: i64,
    /// An expiry entry is already proposed.
    expiring: bool,
}

/// The log Raft reads, plus the metadata of this replica's newest durable
/// snapshot, which is what a leader offers a replica that needs compacted
/// entries.
struct Store {
    mem: Log,
    snap: Option<SnapshotMetadata>,
}

impl raft::Storage for Store {
    fn initial_state(&self) -> raft::Result<raft::RaftState> {
        self.mem.initial_state()
    }
    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        context: raft::GetEntriesContext,
    ) -> raft::Result<Vec<RaftEntry>> {
        self.mem.entries(low, high, max_size, context)
    }
    fn term(&self, idx: u64) -> raft::Result<u64> {
        self.mem.term(idx)
    }
    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.mem.first_index())
    }
    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.mem.last_index())
    }
    fn snapshot(&self, request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        match &self.snap {
            Some(m) if m.index >= request_index => {
                let mut s = Snapshot::default();
                s.set_metadata(m.clone());
                Ok(s)
            }
            _ => Err(raft::Error::Store(
                raft::StorageError::SnapshotTemporarilyUnavailable,
            )),
        }
    }
}

pub struct Node {
    cfg: NodeConfig,
    raw: RawNode<Store>,
    sm: StateMachine,
    watches: WatchRegistry,
    conns: HashMap<ConnId, Conn>,
    /// Which local connection currently speaks for a session.
    session_conn: HashMap<i64, ConnId>,
    liveness: HashMap<i64, Liveness>,
    outputs: Vec<Output>,
    rng: rand::rngs::StdRng,
    now_ms: i64,
    last_raft_tick_ms: i64,
    last_container_check_ms: i64,
    /// Scratch buffer for notifications of one applied entry.
    notes: Vec<Notification>,
    /// server id << 48 | this process's incarnation: stamped on proposed
    /// entries so that only this process answers for them.
    origin: u64,
    /// Entries applied since the last snapshot, and how many trigger the next.
    since_snapshot: u64,
    /// Bytes of those entries, and how many trigger the next snapshot
    /// (see `NodeConfig::snap_size_limit_bytes`).
    since_snapshot_bytes: u64,
    snapshot_after_bytes: u64,
    snapshot_after: u64,
    /// A snapshot is being written: no second one until it is done.
    snapshot_in_flight: Option<SnapshotMetadata>,
    /// The next snapshot is the one a restart takes once it has applied
    /// the log it replayed (as ZooKeeper's loadData snapshots): when it is
    /// durable, the replayed entries leave memory but for the last
    /// snapCount/10, instead of staying until the next regular snapshot.
    startup_snapshot: bool,
    /// The newest durable snapshot before the current one: the in-memory
    /// log is kept from there, so a replica a little behind catches up
    /// from the log rather than by snapshot.
    prev_snapshot_index: u64,
    /// A snapshot received from the leader, durable here, waiting for Raft
    /// to accept it (index, term, state).
    incoming: Option<(u64, u64, Box<StateMachine>)>,
    /// The Persist number of a leader's snapshot installed here and not yet
    /// durable. Until it is, Raft's applied index stays below the log's
    /// first index, and a campaign (which reads the log from applied on)
    /// would stop the process: no election ticks and no campaigns then —
    /// the simulation with slow fsyncs found that panic.
    install_unpersisted: Option<u64>,
    /// Election timeouts that came while `install_unpersisted` held them
    /// back (the simulation's regression test asserts it saw one).
    pub campaigns_deferred: u64,
    /// Messages Raft allows out only once the Ready they came with is
    /// durable (votes, append responses), by Ready number.
    held: Vec<(u64, Vec<RaftMessage>)>,
    /// Connect requests that came while this server had no leader: held,
    /// unanswered, until one is elected (then served in arrival order) or
    /// until the client's session timeout passes (then closed), so a client
    /// that moves during an election waits instead of being turned away.
    held_connects: Vec<HeldConnect>,
    /// Entries proposed since the last `flush`, with the connection each
    /// came from (0 for none), and their bytes: Raft takes them as one
    /// proposal, so a batch of client writes goes to each follower in one
    /// append message (and comes back in one response) instead of one per
    /// write.
    proposals: Vec<raft::prelude::Entry>,
    proposal_conns: Vec<ConnId>,
    proposal_bytes: u64,
    /// The leader as last seen, to notice changes.
    leader_id: u64,
    /// After losing the leader: when to start a pre-vote if no leader has
    /// appeared by then (replicas take turns, so they do not split votes).
    campaign_at_ms: Option<i64>,
    /// Leader changes seen (a metric).
    leader_changes: u64,
    /// Peers whose connection was lost and who have not spoken since.
    down: std::collections::BTreeSet<u64>,
    /// When the leader was lost (`peer_lost`).
    leader_lost_at_ms: i64,
    /// (term, role) when the election timeout was last drawn.
    timeout_drawn_for: (u64, u8),
    /// When this follower last reported liveness: only sessions heard from
    /// since then are reported again.
    last_liveness_report_ms: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
    #[error("this server's id {0} is not among the voters {1:?}")]
    NotAVoter(u64, Vec<u64>),
    #[error("the log starts at index {first_entry} but the newest snapshot ends at {snapshot_index}: log segments are missing")]
    LogGap {
        snapshot_index: u64,
        first_entry: u64,
    },
}

impl Node {
    /// A replica of the group `cfg.voters`, starting from what was on disk;
    /// committed entries after the snapshot are applied again. A one-voter
    /// group elects itself at once; a larger one waits for an election.
    pub fn new(cfg: NodeConfig, now_ms: i64, restored: Restored) -> Result<Node, NodeError> {
        if !cfg.voters.contains(&cfg.server_id) {
            return Err(NodeError::NotAVoter(cfg.server_id, cfg.voters.clone()));
        }
        let mut storage = Log::new(ConfState::from((cfg.voters.clone(), vec![])));
        let mut sm = StateMachine::new(cfg.tree);
        let mut applied = 0;
        let mut hard_state = restored.hard_state;
        let mut snap_meta = None;
        if let Some(snap) = restored.snapshot {
            let mut s = raft::prelude::Snapshot::default();
            s.mut_metadata().index = snap.index;
            s.mut_metadata().term = snap.term;
            s.mut_metadata().set_conf_state(snap.conf_state);
            snap_meta = Some(s.get_metadata().clone());
            storage.apply_snapshot(s.take_metadata())?;
            applied = snap.index;
            sm = snap.state;
            hard_state.commit = hard_state.commit.max(snap.index);
            hard_state.term = hard_state.term.max(snap.term);
        }
        let entries: Vec<RaftEntry> = restored
            .entries
            .into_iter()
            .filter(|e| e.index > applied)
            .collect();
        if let Some(first) = entries.first() {
            if first.index > applied + 1 {
                return Err(NodeError::LogGap {
                    snapshot_index: applied,
                    first_entry: first.index,
                });
            }
        }
        let replayed = entries
            .iter()
            .filter(|e| e.index <= hard_state.commit)
            .count() as u64;
        storage.append(&entries)?;
        storage.set_hardstate(hard_state);
        let mut rng = rand::rngs::StdRng::seed_from_u64(cfg.seed);
        // raft-rs draws each election timeout from thread_rng; we redraw it
        // from our seeded RNG whenever the term or role changes
        // (`redraw_election_timeout`), so a simulation replays exactly.
        let rc = raft::Config {
            id: cfg.server_id,
            election_tick: ELECTION_TICKS,
            heartbeat_tick: 1,
            min_election_tick: ELECTION_TICKS,
            max_election_tick: 2 * ELECTION_TICKS,
            pre_vote: true,
            check_quorum: true,
            applied,
            // raft-rs's default (0) puts one entry in each append message:
            // a follower that falls behind then catches up one entry per
            // message. Batches of up to 1 MiB, 256 messages in flight.
            max_size_per_msg: MAX_APPEND_BYTES,
            max_inflight_msgs: 256,
            ..Default::default()
        };
        rc.validate()?;
        let logger = slog::Logger::root(slog::Discard, slog::o!());
        let store = Store {
            mem: storage,
            snap: snap_meta,
        };
        let mut raw = RawNode::new(&rc, store, &logger)?;
        if cfg.voters == [cfg.server_id] {
            raw.campaign()?;
        } else {
            // The first timeout too comes from our RNG.
            raw.raft
                .set_randomized_election_timeout(rng.gen_range(ELECTION_TICKS..2 * ELECTION_TICKS));
        }
        let origin = (cfg.server_id << 48) | (rng.gen::<u64>() & ((1 << 48) - 1));
        let mut snapshot_after = snapshot_threshold(cfg.snap_count, &mut rng);
        let startup_snapshot = replayed > 0 && replayed >= cfg.snap_count / 10;
        if startup_snapshot {
            snapshot_after = replayed;
        }
        let mut node = Node {
            origin,
            since_snapshot: 0,
            since_snapshot_bytes: 0,
            snapshot_after_bytes: u64::MAX,
            snapshot_after,
            snapshot_in_flight: None,
            startup_snapshot,
            prev_snapshot_index: applied,
            incoming: None,
            install_unpersisted: None,
            campaigns_deferred: 0,
            held: Vec::new(),
            held_connects: Vec::new(),
            proposals: Vec::new(),
            proposal_conns: Vec::new(),
            proposal_bytes: 0,
            leader_id: raft::INVALID_ID,
            campaign_at_ms: None,
            down: Default::default(),
            leader_changes: 0,
            leader_lost_at_ms: now_ms,
            timeout_drawn_for: (u64::MAX, 0),
            last_liveness_report_ms: now_ms,
            rng,
            sm,
            cfg,
            raw,
            watches: WatchRegistry::default(),
            conns: HashMap::new(),
            session_conn: HashMap::new(),
            liveness: HashMap::new(),
            outputs: Vec::new(),
            now_ms,
            last_raft_tick_ms: now_ms,
            last_container_check_ms: now_ms,
            notes: Vec::new(),
        };
        // Sessions restored from disk expire unless their clients come
        // back, their timers starting now, as ZooKeeper's session tracker
        // does at startup. (Without this they never expired: the
        // simulation found ephemerals of dead clients kept forever after a
        // restart.)
        node.liveness = fresh_timers(&node.sm, now_ms);
        node.snapshot_after_bytes = node.bytes_between_snapshots();
        if node.cfg.voters.len() > 1 {
            // Nobody leads yet as far as we know: take our turn as after a
            // lost leader (lowest live id first) instead of waiting out a
            // whole election timeout, as ZooKeeper's election starts at once.
            node.schedule_campaign();
        }
        node.flush();
        Ok(node)
    }

    pub fn last_zxid(&self) -> i64 {
        self.sm.last_zxid()
    }

    /// False until the snapshot a restart takes after replaying a long
    /// log (`startup_snapshot`) is durable: until then a failing disk can
    /// still stop the server, so `start` does not yet report it started.
    pub fn startup_done(&self) -> bool {
        !self.startup_snapshot
    }

    pub fn state(&self) -> &StateMachine {
        &self.sm
    }

    pub fn watch_count(&self) -> usize {
        self.watches.count()
    }

    pub fn watches(&self) -> &WatchRegistry {
        &self.watches
    }

    /// The session a connection speaks for and its negotiated timeout;
    /// None before the session is established.
    pub fn conn_session(&self, conn: ConnId) -> Option<(i64, i32)> {
        self.conns
            .get(&conn)
            .filter(|c| c.session_id != 0)
            .map(|c| (c.session_id, c.timeout_ms))
    }

    /// Sessions this replica tracks and when each expires unless heard
    /// from (ms since the epoch): on the leader, every session; on a
    /// follower, what it has seen.
    pub fn session_deadlines(&self) -> Vec<(i64, i64)> {
        let mut v: Vec<(i64, i64)> = self
            .liveness
            .iter()
            .map(|(s, l)| (*s, l.last_heard_ms + l.timeout_ms))
            .collect();
        v.sort_unstable();
        v
    }

    /// The leader this replica follows (itself when leading); 0 for none.
    pub fn leader_id(&self) -> u64 {
        self.raw.raft.leader_id
    }

    /// How many times this replica saw the leader change (elections won
    /// by anyone, and losing the leader), since it started.
    pub fn leader_changes(&self) -> u64 {
        self.leader_changes
    }

    /// Raft's commit index and the index applied to the tree here.
    pub fn commit_and_applied(&self) -> (u64, u64) {
        (self.raw.raft.raft_log.committed, self.sm.last_zxid() as u64)
    }

    /// Leader only: how many entries the slowest follower is behind.
    pub fn max_follower_lag(&self) -> u64 {
        if !self.is_leader() {
            return 0;
        }
        let last = self.raw.raft.raft_log.last_index();
        let me = self.cfg.server_id;
        self.raw
            .raft
            .prs()
            .iter()
            .filter(|(id, _)| **id != me)
            .map(|(_, pr)| last.saturating_sub(pr.matched))
            .max()
            .unwrap_or(0)
    }

    /// Leader only: (followers connected, followers replicating in step).
    pub fn followers(&self) -> (usize, usize) {
        if !self.is_leader() {
            return (0, 0);
        }
        let me = self.cfg.server_id;
        let mut n = (0, 0);
        for (id, pr) in self.raw.raft.prs().iter() {
            if *id == me || !pr.recent_active {
                continue;
            }
            n.0 += 1;
            if pr.state == raft::ProgressState::Replicate {
                n.1 += 1;
            }
        }
        n
    }

    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Whether this replica knows a leader, and so serves clients.
    pub fn has_leader(&self) -> bool {
        self.raw.raft.leader_id != raft::INVALID_ID
    }

    pub fn is_leader(&self) -> bool {
        self.raw.raft.state == raft::StateRole::Leader
    }

    /// What the driver must do, not yet handed over.
    pub fn peek_outputs(&self) -> &[Output] {
        &self.outputs
    }

    /// Hands over what the driver must do, in order.
    pub fn take_outputs(&mut self) -> Vec<Output> {
        std::mem::take(&mut self.outputs)
    }

    /// A client sent its ConnectRequest. `ip` becomes its ("ip", addr) identity.
    pub fn connect(&mut self, conn: ConnId, req: ConnectRequest, ip: String, now_ms: i64) {
        self.now_ms = now_ms;
        let timeout_ms = req.timeout_ms.clamp(
            self.cfg.min_session_timeout_ms,
            self.cfg.max_session_timeout_ms,
        );
        if self.raw.raft.leader_id == raft::INVALID_ID {
            // A server without a quorum serves no client; this one waits.
            self.held_connects.push(HeldConnect {
                conn,
                req,
                ip,
                until_ms: now_ms + timeout_ms as i64,
            });
            return;
        }
        if req.last_zxid_seen > self.sm.last_zxid() {
            // ZooKeeper refuses a client that has seen a newer state than ours.
            self.outputs.push(Output::Close {
                conn,
                reason: "client has seen a zxid newer than this server's",
            });
            return;
        }
        let auth = vec![Id {
            scheme: "ip".into(),
            id: ip,
        }];
        self.conns.insert(
            conn,
            Conn {
                session_id: 0,
                timeout_ms,
                auth,
                queue: VecDeque::new(),
            },
        );
        if req.session_id == 0 {
            let mut passwd = vec![0u8; 16];
            self.rng.fill(&mut passwd[..]);
            self.propose(Entry {
                time_ms: now_ms,
                session_id: 0,
                xid: 0,
                origin: self.origin,
                conn,
                kind: EntryKind::CreateSession { timeout_ms, passwd },
            });
            return;
        }
        let valid = self
            .sm
            .sessions
            .get(&req.session_id)
            .is_some_and(|s| Some(&s.passwd) == req.passwd.as_ref());
        if !valid {
            // As ZooKeeper: a zero session in the response tells the client it expired.
            let resp = ConnectResponse {
                passwd: Some(vec![0; 16]),
                ..Default::default()
            };
            self.send_record(conn, &resp);
            self.outputs.push(Output::Close {
                conn,
                reason: "session expired or wrong password",
            });
            self.conns.remove(&conn);
            return;
        }
        self.attach(
            conn,
            req.session_id,
            timeout_ms,
            req.passwd.unwrap_or_default(),
        );
    }

    /// Binds a connection to an established session and answers it.
    fn attach(&mut self, conn: ConnId, session_id: i64, timeout_ms: i32, passwd: Vec<u8>) {
        tracing::debug!(
            conn,
            "Established session 0x{session_id:x} with negotiated timeout {timeout_ms} ms"
        );
        if let Some(old) = self.session_conn.insert(session_id, conn) {
            if old != conn {
                self.drop_conn(old);
                self.outputs.push(Output::Close {
                    conn: old,
                    reason: "session moved to another connection",
                });
            }
        }
        if let Some(c) = self.conns.get_mut(&conn) {
            c.session_id = session_id;
        }
        let session_timeout = self
            .sm
            .sessions
            .get(&session_id)
            .map_or(timeout_ms, |s| s.timeout_ms);
        let l = self.liveness.entry(session_id).or_insert(Liveness {
            timeout_ms: session_timeout as i64,
            last_heard_ms: self.now_ms,
            expiring: false,
        });
        l.last_heard_ms = self.now_ms;
        let resp = ConnectResponse {
            protocol_version: 0,
            timeout_ms,
            session_id,
            passwd: Some(passwd),
            read_only: false,
        };
        self.send_record(conn, &resp);
    }

    /// The connection is gone (socket closed or failed). Its session lives
    /// on until it expires.
    pub fn disconnect(&mut self, conn: ConnId) {
        self.drop_conn(conn);
    }

    fn drop_conn(&mut self, conn: ConnId) {
        self.held_connects.retain(|h| h.conn != conn);
        if let Some(c) = self.conns.remove(&conn) {
            if self.session_conn.get(&c.session_id) == Some(&conn) {
                self.session_conn.remove(&c.session_id);
            }
        }
        self.watches.remove_conn(conn);
    }

    /// A request frame arrived on an established connection. An
    /// undecodable one closes the connection.
    pub fn request(&mut self, conn: ConnId, xid: i32, op: i32, body: &[u8], now_ms: i64) {
        self.now_ms = now_ms;
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let session_id = c.session_id;
        if session_id == 0 {
            self.outputs.push(Output::Close {
                conn,
                reason: "request before the session was established",
            });
            self.drop_conn(conn);
            return;
        }
        if let Some(l) = self.liveness.get_mut(&session_id) {
            l.last_heard_ms = now_ms;
        }
        let Some(req) = OpCode::from_code(op).and_then(|op| Request::decode(op, body).ok()) else {
            self.outputs.push(Output::Close {
                conn,
                reason: "malformed or unknown request",
            });
            self.drop_conn(conn);
            return;
        };
        if let Request::Auth(a) = &req {
            self.auth(
                conn,
                xid,
                a.scheme.clone(),
                a.auth.clone().unwrap_or_default(),
            );
            return;
        }
        if req.is_write() {
            let c = self.conns.get_mut(&conn).expect("checked above");
            c.queue.push_back(Pending::Write { xid });
            let header = tree::entry::Header {
                time_ms: now_ms,
                session_id,
                xid,
                origin: self.origin,
                conn,
            };
            let data = match req {
                Request::CloseSession => Entry {
                    time_ms: now_ms,
                    session_id,
                    xid,
                    origin: self.origin,
                    conn,
                    kind: EntryKind::CloseSession { expired: false },
                }
                .encode(),
                // Straight from the request's bytes: no copy of the body,
                // no clone of the connection's identities.
                _ => tree::entry::encode_request(header, req.op(), body, &c.auth),
            };
            self.propose_data(data, conn);
            return;
        }
        let c = self.conns.get_mut(&conn).expect("checked above");
        if c.queue.is_empty() {
            self.serve_read(conn, xid, &req);
        } else {
            c.queue.push_back(Pending::Read { xid, req });
        }
    }

    /// addauth: digest identities are added; any other scheme fails and
    /// closes the connection, as ZooKeeper. The reply carries the xid the
    /// client sent (the Java client and kazoo send -4, the Go client an
    /// ordinary one) and zxid 0, as ZooKeeper's `processPacket` answers.
    fn auth(&mut self, conn: ConnId, xid: i32, scheme: String, auth: Vec<u8>) {
        let zxid = 0;
        if scheme != "digest" {
            self.send_reply(conn, xid, zxid, ErrorCode::AuthFailed, &Reply::Empty);
            self.outputs.push(Output::Close {
                conn,
                reason: "authentication failed",
            });
            self.drop_conn(conn);
            return;
        }
        let id = acl::digest(&String::from_utf8_lossy(&auth));
        let is_super = self.cfg.super_digest.as_deref() == Some(id.as_str());
        if let Some(c) = self.conns.get_mut(&conn) {
            let mut add = |i: Id| {
                if !c.auth.contains(&i) {
                    c.auth.push(i)
                }
            };
            if is_super {
                add(Id {
                    scheme: "super".into(),
                    id: String::new(),
                });
            }
            add(Id {
                scheme: "digest".into(),
                id,
            });
        }
        self.send_reply(conn, xid, zxid, ErrorCode::Ok, &Reply::Empty);
    }

    fn serve_read(&mut self, conn: ConnId, xid: i32, req: &Request) {
        let zxid = self.sm.last_zxid();
        let Some(c) = self.conns.get(&conn) else {
            return;
        };
        let session_id = c.session_id;
        let reply = match req {
            Request::Ping => Reply::Empty,
            Request::SetWatches(sw) => {
                // Events for what changed since the client's zxid first, then the reply.
                let tree = &self.sm.tree;
                let mut notes = Vec::new();
                let mut note = |event, path: &String| {
                    notes.push(Notification {
                        conn,
                        event,
                        path: path.clone(),
                    })
                };
                for p in &sw.data_watches {
                    match tree.get(p) {
                        None => note(proto::EventType::NodeDeleted, p),
                        Some(n) if n.stat.mzxid > sw.relative_zxid => {
                            note(proto::EventType::NodeDataChanged, p)
                        }
                        Some(_) => self.watches.add(WatchKind::Data, p, conn),
                    }
                }
                for p in &sw.exist_watches {
                    match tree.get(p) {
                        Some(_) => note(proto::EventType::NodeCreated, p),
                        None => self.watches.add(WatchKind::Data, p, conn),
                    }
                }
                for p in &sw.child_watches {
                    match tree.get(p) {
                        None => note(proto::EventType::NodeDeleted, p),
                        Some(n) if n.stat.pzxid > sw.relative_zxid => {
                            note(proto::EventType::NodeChildrenChanged, p)
                        }
                        Some(_) => self.watches.add(WatchKind::Child, p, conn),
                    }
                }
                for p in &sw.persistent_watches {
                    self.watches.add_persistent(p, conn, false);
                }
                for p in &sw.persistent_recursive_watches {
                    self.watches.add_persistent(p, conn, true);
                }
                for n in notes {
                    self.send_notification(&n);
                }
                Reply::Empty
            }
            Request::AddWatch(a) => match a.mode {
                0 | 1 => {
                    self.watches.add_persistent(&a.path, conn, a.mode == 1);
                    Reply::ErrorRecord
                }
                _ => Reply::Err(ErrorCode::BadArguments),
            },
            Request::RemoveWatches(r) => {
                match self
                    .watches
                    .remove_or_check(&r.path, conn, r.watcher_type, true)
                {
                    ErrorCode::Ok => Reply::Empty,
                    e => Reply::Err(e),
                }
            }
            Request::CheckWatches(r) => {
                match self
                    .watches
                    .remove_or_check(&r.path, conn, r.watcher_type, false)
                {
                    ErrorCode::Ok => Reply::Empty,
                    e => Reply::Err(e),
                }
            }
            Request::Exists(r)
            | Request::GetData(r)
            | Request::GetChildren(r)
            | Request::GetChildren2(r) => {
                // The hot reads: answered straight into the frame.
                let mut w = Vec::with_capacity(160);
                let at = start_frame(&mut w);
                let header = w.len();
                ReplyHeader { xid, zxid, err: 0 }.write(&mut w);
                let (err, watch) = self.sm.read_into(req, &c.auth, &mut w).expect("a hot read");
                w[header + 12..header + 16].copy_from_slice(&err.code().to_be_bytes());
                if let Some(kind) = watch {
                    self.watches.add(kind, &r.path, conn);
                }
                finish_frame(&mut w, at);
                self.outputs.push(Output::Send { conn, frame: w });
                return;
            }
            _ => {
                let r = self.sm.read(req, session_id, &c.auth);
                if let Some((kind, path)) = r.watch {
                    self.watches.add(kind, &path, conn);
                }
                r.reply
            }
        };
        self.send_reply(conn, xid, zxid, reply.err(), &reply);
    }

    /// Time passed: Raft ticks, session expiry, container/TTL checks.
    pub fn tick(&mut self, now_ms: i64) {
        self.now_ms = now_ms;
        let outputs = &mut self.outputs;
        self.held_connects.retain(|h| {
            let waiting = h.until_ms > now_ms;
            if !waiting {
                outputs.push(Output::Close {
                    conn: h.conn,
                    reason: "no leader was elected within the session timeout",
                });
            }
            waiting
        });
        if self.install_unpersisted.is_none() {
            self.maybe_campaign();
        } else if self.campaign_at_ms.is_some_and(|at| now_ms >= at)
            && self.raw.raft.leader_id == raft::INVALID_ID
        {
            self.campaigns_deferred += 1;
        }
        let mut ticked = false;
        while now_ms - self.last_raft_tick_ms >= self.cfg.tick_ms as i64 {
            self.last_raft_tick_ms += self.cfg.tick_ms as i64;
            if self.install_unpersisted.is_none() {
                self.raw.tick();
                self.redraw_election_timeout();
            } else if !self.is_leader()
                && self.raw.raft.election_elapsed + 1 >= self.raw.raft.randomized_election_timeout()
            {
                self.campaigns_deferred += 1;
            }
            ticked = true;
        }
        if !self.is_leader() {
            let leader = self.raw.raft.leader_id;
            if ticked && leader != raft::INVALID_ID {
                // Only sessions that spoke since the last report: a client
                // that went silent must still expire.
                let since = self.last_liveness_report_ms;
                let mut sessions: Vec<i64> = self
                    .session_conn
                    .keys()
                    .filter(|s| {
                        self.liveness
                            .get(s)
                            .is_some_and(|l| l.last_heard_ms > since)
                    })
                    .copied()
                    .collect();
                self.last_liveness_report_ms = now_ms;
                if !sessions.is_empty() {
                    sessions.sort_unstable();
                    self.outputs.push(Output::Liveness {
                        to: leader,
                        sessions,
                    });
                }
            }
            return;
        }
        let mut expired: Vec<i64> = self
            .liveness
            .iter_mut()
            .filter(|(_, l)| !l.expiring && now_ms - l.last_heard_ms > l.timeout_ms)
            .map(|(sid, l)| {
                l.expiring = true;
                *sid
            })
            .collect();
        expired.sort_unstable();
        for session_id in expired {
            self.propose(Entry {
                time_ms: now_ms,
                session_id,
                xid: 0,
                origin: self.origin,
                conn: 0,
                kind: EntryKind::CloseSession { expired: true },
            });
        }
        if now_ms - self.last_container_check_ms >= self.cfg.container_check_interval_ms {
            self.last_container_check_ms = now_ms;
            self.propose_reap(now_ms);
        }
    }

    /// A Raft message from a peer. A `MsgSnapshot` only counts through
    /// `install_snapshot`, with its state.
    pub fn step(&mut self, mut msg: RaftMessage) {
        self.down.remove(&msg.from);
        match msg.get_msg_type() {
            MessageType::MsgSnapshot => return,
            MessageType::MsgHeartbeat => {
                // A leader sends the commit index it believes we have. A
                // replica whose data was lost (a replaced disk, a wiped
                // dataDir) has less: Raft would abort on it. Take only what
                // we hold; the leader then finds our log short and sends
                // entries or its snapshot.
                let last = self.raw.raft.raft_log.last_index();
                if msg.commit > last {
                    msg.commit = last;
                }
            }
            _ => {}
        }
        // A message from an unknown peer or for an old term is not ours to act on.
        let _ = self.raw.step(msg);
        self.redraw_election_timeout();
    }

    /// The transport lost its connection to peer `id` (it died, or the link
    /// broke). If that peer is our leader, do what ZooKeeper's followers do
    /// and look for a new one now instead of waiting out the election
    /// timeout: forget the leader (leaving its lease, so we may grant votes)
    /// and start a pre-vote — in turns by server id, the lowest surviving id
    /// first, so that the replicas which all saw the leader go do not split
    /// the vote. Pre-vote keeps this safe: while the leader is alive for a
    /// majority, they stay in its lease and refuse.
    pub fn peer_lost(&mut self, id: u64) {
        if id == raft::INVALID_ID || id == self.cfg.server_id {
            return;
        }
        self.down.insert(id);
        if self.is_leader() {
            self.raw.report_unreachable(id);
            return;
        }
        if self.raw.raft.leader_id == id {
            let term = self.raw.raft.term;
            self.raw.raft.become_follower(term, raft::INVALID_ID);
            // become_follower drew a timeout from thread_rng: redraw ours.
            self.timeout_drawn_for = (u64::MAX, 0);
            self.redraw_election_timeout();
            self.leader_lost_at_ms = self.now_ms;
            self.campaign_at_ms = None;
            self.schedule_campaign();
        } else if self.campaign_at_ms.is_some() && self.raw.raft.leader_id == raft::INVALID_ID {
            // Another peer went with the leader: our turn may come sooner.
            self.schedule_campaign();
        }
    }

    /// Our turn to pre-vote after the leader was lost: one tick first, so
    /// every replica that saw the leader go has left its lease before the
    /// first pre-vote asks them; then one turn per lower id still up.
    fn schedule_campaign(&mut self) {
        let turn = self
            .cfg
            .voters
            .iter()
            .filter(|v| **v < self.cfg.server_id && !self.down.contains(v))
            .count() as i64;
        let at =
            self.leader_lost_at_ms + (1 + turn * CAMPAIGN_TURN_TICKS) * self.cfg.tick_ms as i64;
        self.campaign_at_ms = Some(self.campaign_at_ms.map_or(at, |c| c.min(at)));
    }

    /// A new term or role: draw the next election timeout from our RNG
    /// (raft-rs just drew one from thread_rng, which no tick has used yet).
    fn redraw_election_timeout(&mut self) {
        let now = (self.raw.raft.term, self.raw.raft.state as u8);
        if now != self.timeout_drawn_for {
            self.timeout_drawn_for = now;
            let t = self.rng.gen_range(ELECTION_TICKS..2 * ELECTION_TICKS);
            self.raw.raft.set_randomized_election_timeout(t);
        }
    }

    /// Starts the pre-vote scheduled by `peer_lost`, unless a leader came.
    fn maybe_campaign(&mut self) {
        let Some(at) = self.campaign_at_ms else {
            return;
        };
        if self.raw.raft.leader_id != raft::INVALID_ID {
            self.campaign_at_ms = None;
        } else if self.now_ms >= at {
            let _ = self.raw.campaign();
            self.redraw_election_timeout();
            // Still no leader a full round of turns later: try again.
            let round =
                self.cfg.voters.len() as i64 * CAMPAIGN_TURN_TICKS * self.cfg.tick_ms as i64;
            self.campaign_at_ms = Some(self.now_ms + round);
        }
    }

    /// The leader's snapshot named in `msg` arrived whole, is durable in
    /// this replica's dataDir, and decoded to `state`. Raft decides whether
    /// to take it (it may be stale by now); if it does, the next `flush`
    /// replaces the state and restarts the log after it.
    pub fn install_snapshot(&mut self, msg: RaftMessage, state: StateMachine) {
        if msg.get_msg_type() != MessageType::MsgSnapshot {
            return;
        }
        let meta = msg.get_snapshot().get_metadata();
        self.incoming = Some((meta.index, meta.term, Box::new(state)));
        let _ = self.raw.step(msg);
        self.redraw_election_timeout();
    }

    /// Leader: the transfer of a snapshot to `peer` ended. On failure
    /// Raft goes back to probing it and offers a snapshot again later.
    pub fn snapshot_sent(&mut self, peer: u64, ok: bool) {
        let status = if ok {
            raft::SnapshotStatus::Finish
        } else {
            raft::SnapshotStatus::Failure
        };
        self.raw.report_snapshot(peer, status);
    }

    /// A follower reports these sessions alive (leader only acts on it).
    pub fn liveness(&mut self, sessions: &[i64], now_ms: i64) {
        if !self.is_leader() {
            return;
        }
        for s in sessions {
            if let Some(l) = self.liveness.get_mut(s) {
                l.last_heard_ms = l.last_heard_ms.max(now_ms);
            }
        }
    }

    /// The leader changed (or was lost): as ZooKeeper's followers do when
    /// they lose their leader, close every client connection — their
    /// forwarded writes may be lost, and clients reconnect and retry. A new
    /// leader restarts every session's timer, so no healthy session expires
    /// because of the failover.
    fn on_leader_change(&mut self, leader: u64) {
        self.leader_changes += 1;
        let had = self.leader_id;
        let term = self.raw.raft.term;
        if self.cfg.voters.len() > 1 {
            if leader == self.cfg.server_id {
                tracing::info!(
                    "LEADING: elected leader in term {term} (zxid 0x{:x})",
                    self.sm.last_zxid()
                );
            } else if leader != raft::INVALID_ID {
                tracing::info!("FOLLOWING: server {leader} is the leader in term {term}");
            } else {
                tracing::info!("LOOKING: lost leader {had} in term {term}; not serving clients until a new one is elected");
            }
        }
        self.leader_id = leader;
        if had != raft::INVALID_ID {
            self.close_all_clients("the leader changed");
        }
        if leader == self.cfg.server_id {
            for l in self.liveness.values_mut() {
                l.last_heard_ms = self.now_ms;
                l.expiring = false;
            }
        }
    }

    /// Closes every client connection (in id order, for replay).
    fn close_all_clients(&mut self, reason: &'static str) {
        let mut conns: Vec<ConnId> = self.conns.keys().copied().collect();
        conns.sort_unstable();
        for conn in conns {
            self.drop_conn(conn);
            self.outputs.push(Output::Close { conn, reason });
        }
    }

    /// Proposes removal of containers and TTL nodes that qualify now;
    /// apply checks again, so a stale candidate is harmless.
    fn propose_reap(&mut self, now_ms: i64) {
        let tree = &self.sm.tree;
        let mut paths: Vec<String> = tree
            .containers()
            .filter(|p| {
                tree.get(p)
                    .is_some_and(|n| n.children.is_empty() && n.stat.cversion > 0)
            })
            .map(str::to_string)
            .collect();
        paths.extend(
            tree.ttls()
                .filter(|p| {
                    tree.get(p).is_some_and(|n| {
                        let ttl = n.stat.ephemeral_owner & tree::datatree::MAX_TTL_MS;
                        n.children.is_empty() && now_ms - n.stat.mtime > ttl
                    })
                })
                .map(str::to_string),
        );
        if !paths.is_empty() {
            self.propose(Entry {
                time_ms: now_ms,
                session_id: 0,
                xid: 0,
                origin: self.origin,
                conn: 0,
                kind: EntryKind::Reap { paths },
            });
        }
    }

    fn propose(&mut self, e: Entry) {
        self.propose_data(e.encode(), e.conn);
    }

    /// Proposes an encoded entry; `conn` (0 for none) is closed when there
    /// is no leader to take it. Proposals wait for the next `flush` (or
    /// until they fill an append message) and go to Raft together, in the
    /// order they were made.
    fn propose_data(&mut self, data: Vec<u8>, conn: ConnId) {
        self.proposal_bytes += data.len() as u64;
        self.proposals.push(raft::prelude::Entry {
            data: data.into(),
            ..Default::default()
        });
        self.proposal_conns.push(conn);
        if self.proposal_bytes >= MAX_APPEND_BYTES {
            self.propose_pending();
        }
    }

    /// Hands the waiting proposals to Raft as one proposal message (what
    /// `RawNode::propose` does for a single entry).
    fn propose_pending(&mut self) {
        if self.proposals.is_empty() {
            return;
        }
        self.proposal_bytes = 0;
        let mut m = RaftMessage::default();
        m.set_msg_type(raft::prelude::MessageType::MsgPropose);
        m.from = self.cfg.server_id;
        m.set_entries(std::mem::take(&mut self.proposals).into());
        let conns = std::mem::take(&mut self.proposal_conns);
        if let Err(err) = self.raw.raft.step(m) {
            // No leader: the clients must retry elsewhere.
            tracing::warn!(%err, proposals = conns.len(), "proposals dropped");
            for conn in conns {
                if conn != 0 && self.conns.contains_key(&conn) {
                    self.outputs.push(Output::Close {
                        conn,
                        reason: "no leader to accept the write",
                    });
                    self.drop_conn(conn);
                }
            }
        }
    }

    /// Runs the Raft hand-off until nothing is ready, top to bottom:
    /// send, apply what is committed, hand new entries to storage, advance.
    /// Call after a batch of inputs and after `persisted`.
    pub fn flush(&mut self) {
        self.propose_pending();
        while self.raw.has_ready() {
            let mut ready = self.raw.ready();
            if let Some(ss) = ready.ss() {
                if ss.leader_id != self.leader_id {
                    self.on_leader_change(ss.leader_id);
                }
            }
            // A leader may send before its own append is durable (Raft
            // thesis §10.2.1): these go now.
            for m in ready.take_messages() {
                self.outputs.push(Output::Message(Box::new(m)));
            }
            // A snapshot from the leader, accepted by Raft: it replaces
            // the state (no committed entries come with it).
            let mut restart = None;
            if !ready.snapshot().is_empty() {
                let snap = ready.snapshot().clone();
                restart = Some(self.take_snapshot(snap));
            }
            // Committed entries are durable already (commit needs our own
            // persisted index): apply them, in index order.
            let committed = ready.take_committed_entries();
            self.apply_all(committed);
            // New entries must be readable by Raft before advancing, and are
            // not durable until the driver reports `persisted(number)`.
            if !ready.entries().is_empty() {
                self.raw
                    .mut_store()
                    .mem
                    .append(ready.entries())
                    .expect("entries follow the log");
            }
            if let Some(hs) = ready.hs() {
                self.raw.mut_store().mem.set_hardstate(hs.clone());
            }
            // Votes and append responses promise what is on disk: they wait
            // until this Ready is durable, even when it adds nothing (then
            // the Persist is empty and only keeps the order).
            let held = ready.take_persisted_messages();
            if !ready.entries().is_empty()
                || ready.hs().is_some()
                || !held.is_empty()
                || restart.is_some()
            {
                if !held.is_empty() {
                    self.held.push((ready.number(), held));
                }
                if restart.is_some() {
                    self.install_unpersisted = Some(ready.number());
                }
                self.outputs.push(Output::Persist {
                    number: ready.number(),
                    restart,
                    entries: ready.take_entries(),
                    hard_state: ready.hs().cloned(),
                });
            }
            self.raw.advance_append_async(ready);
            self.advance_applied();
        }
        self.advance_applied();
        self.maybe_snapshot();
        if self.raw.raft.leader_id != raft::INVALID_ID && !self.held_connects.is_empty() {
            for h in std::mem::take(&mut self.held_connects) {
                self.connect(h.conn, h.req, h.ip, self.now_ms);
            }
            self.flush();
        }
    }

    /// Tells Raft what is applied. It counts only what is durable here:
    /// after a snapshot install, that is once its Persist is done.
    fn advance_applied(&mut self) {
        let log = &self.raw.raft.raft_log;
        let applied = (self.sm.last_zxid() as u64).min(log.persisted);
        if applied > log.applied {
            self.raw.advance_apply_to(applied);
        }
    }

    /// Storage made every `Persist` up to `number` durable.
    pub fn persisted(&mut self, number: u64) {
        let due = self.held.iter().take_while(|(n, _)| *n <= number).count();
        for (_, msgs) in self.held.drain(..due) {
            for m in msgs {
                self.outputs.push(Output::Message(Box::new(m)));
            }
        }
        if self.install_unpersisted.is_some_and(|n| n <= number) {
            self.install_unpersisted = None;
        }
        self.raw.on_persist_ready(number);
        self.flush();
    }

    /// The snapshot at `index` is durable: the log before it may go. An
    /// ensemble keeps the log from the previous snapshot on, so a replica
    /// a little behind catches up from the log; one further behind gets
    /// this snapshot.
    pub fn snapshotted(&mut self, index: u64) {
        let Some(meta) = self.snapshot_in_flight.take() else {
            return;
        };
        if meta.index != index {
            return;
        }
        let startup = std::mem::take(&mut self.startup_snapshot);
        let keep_from = if self.cfg.voters.len() == 1 {
            index
        } else if startup {
            self.prev_snapshot_index
                .max(index.saturating_sub(self.cfg.snap_count / 10))
        } else {
            self.prev_snapshot_index
        };
        self.prev_snapshot_index = index;
        self.raw.mut_store().snap = Some(meta);
        let first = raft::Storage::first_index(self.raw.store()).unwrap_or(1);
        if keep_from > first {
            self.raw
                .mut_store()
                .mem
                .compact(keep_from)
                .expect("compacting below the applied index");
        }
    }

    /// Replaces the state with the leader's snapshot that Raft accepted;
    /// returns (index, term) for the log's restart record. Clients of this
    /// replica are closed: their watches and reads were against a state
    /// that jumped; they reconnect and re-register (setWatches), as after
    /// a leader change.
    fn take_snapshot(&mut self, snap: Snapshot) -> (u64, u64) {
        let meta = snap.get_metadata().clone();
        let state = match self.incoming.take() {
            Some((i, t, state)) if i == meta.index && t == meta.term => state,
            // Raft only accepts a snapshot stepped by install_snapshot.
            _ => panic!(
                "raft accepted snapshot {}/{} that was not received",
                meta.index, meta.term
            ),
        };
        tracing::info!(
            "installed the leader's snapshot at index {} (term {}): {} znodes, {} sessions",
            meta.index,
            meta.term,
            state.tree.node_count(),
            state.sessions.len()
        );
        self.sm = *state;
        self.close_all_clients("this server installed a snapshot from the leader");
        self.liveness = fresh_timers(&self.sm, self.now_ms);
        self.since_snapshot = 0;
        self.since_snapshot_bytes = 0;
        self.snapshot_after_bytes = self.bytes_between_snapshots();
        self.prev_snapshot_index = meta.index;
        self.raw
            .mut_store()
            .mem
            .apply_snapshot(snap.get_metadata().clone())
            .expect("raft accepted a snapshot newer than the log");
        self.raw.mut_store().snap = Some(meta.clone());
        (meta.index, meta.term)
    }

    /// Takes a snapshot when enough entries were applied since the last one:
    /// a clone of the state between two entries, where it is consistent.
    fn maybe_snapshot(&mut self) {
        let due = self.since_snapshot >= self.snapshot_after
            || self.since_snapshot_bytes >= self.snapshot_after_bytes;
        if self.snapshot_in_flight.is_some() || !due {
            return;
        }
        let index = self.sm.last_zxid() as u64;
        let Ok(term) = raft::Storage::term(self.raw.store(), index) else {
            return;
        };
        self.since_snapshot = 0;
        self.since_snapshot_bytes = 0;
        self.snapshot_after = snapshot_threshold(self.cfg.snap_count, &mut self.rng);
        self.snapshot_after_bytes = self.bytes_between_snapshots();
        let conf_state = self.raw.raft.prs().conf().to_conf_state();
        let mut meta = SnapshotMetadata::default();
        meta.index = index;
        meta.term = term;
        meta.set_conf_state(conf_state.clone());
        self.snapshot_in_flight = Some(meta);
        let state = Box::new(self.sm.freeze());
        self.outputs.push(Output::Snapshot {
            index,
            term,
            conf_state,
            state,
        });
    }

    /// Log bytes before the next snapshot: `snapSizeLimitInKb`, or the
    /// tree's size when that is larger (a snapshot holds every path and
    /// value, plus a Stat and an ACL id of about 32 bytes per znode).
    fn bytes_between_snapshots(&self) -> u64 {
        let tree = self.sm.tree.approximate_data_size() + 32 * self.sm.tree.node_count() as u64;
        self.cfg.snap_size_limit_bytes.max(tree)
    }

    fn apply_all(&mut self, entries: Vec<RaftEntry>) {
        for e in entries {
            self.since_snapshot += 1;
            self.since_snapshot_bytes += e.data.len() as u64;
            let zxid = e.index as i64;
            if e.data.is_empty() || e.get_entry_type() != EntryType::EntryNormal {
                // The leader's no-op at election, or a membership change.
                self.sm.skip(zxid);
                continue;
            }
            let entry =
                Entry::decode(&e.data).expect("a committed entry this build wrote must decode");
            let applied = self.sm.apply(zxid, &entry);
            self.after_apply(zxid, &entry, applied);
        }
    }

    fn after_apply(&mut self, zxid: i64, entry: &Entry, applied: Applied) {
        // Watch events first: a client must see the event before the reply
        // to any later request (programmer's guide, "ZooKeeper Watches").
        self.notes.clear();
        let mut notes = std::mem::take(&mut self.notes);
        let conns = &self.conns;
        self.watches
            .fire(&applied.triggers, &mut notes, |conn, acl| {
                conns
                    .get(&conn)
                    .is_some_and(|c| acl::check(acl, Perms::READ, &c.auth).is_ok())
            });
        for n in &notes {
            self.send_notification(n);
        }
        self.notes = notes;

        match &applied.session {
            Some(SessionEffect::Created {
                session_id,
                timeout_ms,
                passwd,
            }) => {
                self.liveness.insert(
                    *session_id,
                    Liveness {
                        timeout_ms: *timeout_ms as i64,
                        last_heard_ms: self.now_ms,
                        expiring: false,
                    },
                );
                if entry.origin == self.origin && self.conns.contains_key(&entry.conn) {
                    let negotiated = self.conns[&entry.conn].timeout_ms;
                    self.attach(entry.conn, *session_id, negotiated, passwd.clone());
                }
                return;
            }
            Some(SessionEffect::Closed {
                session_id,
                expired,
            }) => {
                if *expired {
                    tracing::info!("Expiring session 0x{session_id:x}");
                } else {
                    tracing::debug!("Closed session 0x{session_id:x}");
                }
                self.liveness.remove(session_id);
                if let Some(conn) = self.session_conn.get(session_id).copied() {
                    if !*expired && entry.conn == conn && entry.origin == self.origin {
                        self.complete_write(conn, entry.xid, zxid, &Reply::Empty);
                    }
                    let reason = if *expired {
                        "session expired"
                    } else {
                        "session closed by the client"
                    };
                    self.outputs.push(Output::Close { conn, reason });
                    self.drop_conn(conn);
                }
                return;
            }
            None => {}
        }
        if entry.origin == self.origin && entry.conn != 0 {
            if let Some(reply) = &applied.reply {
                self.complete_write(entry.conn, entry.xid, zxid, reply);
            }
        }
    }

    /// Answers the write at the head of the connection's queue, then every
    /// read queued behind it up to the next write.
    fn complete_write(&mut self, conn: ConnId, xid: i32, zxid: i64, reply: &Reply) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        match c.queue.front() {
            Some(Pending::Write { xid: head }) if *head == xid => {
                c.queue.pop_front();
            }
            _ => {
                // An earlier write of this connection never reached the log
                // (a forwarded proposal lost with a leader change or a broken
                // link): answering this one would break the connection's
                // order. Close it; the client sees ConnectionLoss and
                // retries, as with ZooKeeper.
                if c.queue
                    .iter()
                    .any(|p| matches!(p, Pending::Write { xid: w } if *w == xid))
                {
                    self.drop_conn(conn);
                    self.outputs.push(Output::Close {
                        conn,
                        reason: "an earlier write of this connection was lost",
                    });
                }
                return;
            }
        }
        self.send_reply(conn, xid, zxid, reply.err(), reply);
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            match c.queue.front() {
                Some(Pending::Read { .. }) => {
                    let Some(Pending::Read { xid, req }) = c.queue.pop_front() else {
                        unreachable!()
                    };
                    self.serve_read(conn, xid, &req);
                }
                _ => return,
            }
        }
    }

    fn send_record<R: Jute>(&mut self, conn: ConnId, r: &R) {
        let mut w = Vec::with_capacity(64);
        let at = start_frame(&mut w);
        r.write(&mut w);
        finish_frame(&mut w, at);
        self.outputs.push(Output::Send { conn, frame: w });
    }

    fn send_reply(&mut self, conn: ConnId, xid: i32, zxid: i64, err: ErrorCode, reply: &Reply) {
        let mut w = Vec::with_capacity(64);
        let at = start_frame(&mut w);
        ReplyHeader {
            xid,
            zxid,
            err: err.code(),
        }
        .write(&mut w);
        reply.encode(&mut w);
        finish_frame(&mut w, at);
        self.outputs.push(Output::Send { conn, frame: w });
    }

    fn send_notification(&mut self, n: &Notification) {
        let mut w = Vec::with_capacity(32 + n.path.len());
        let at = start_frame(&mut w);
        ReplyHeader {
            xid: Xid::NOTIFICATION,
            zxid: -1,
            err: 0,
        }
        .write(&mut w);
        WatcherEvent {
            event_type: n.event.code(),
            state: KeeperState::SyncConnected.code(),
            path: n.path.clone(),
        }
        .write(&mut w);
        finish_frame(&mut w, at);
        self.outputs.push(Output::Send {
            conn: n.conn,
            frame: w,
        });
    }
}

/// The most entry bytes one append message to a follower carries.
const MAX_APPEND_BYTES: u64 = 1 << 20;

/// Ticks between the turns of replicas that lost their leader (`peer_lost`).
const CAMPAIGN_TURN_TICKS: i64 = 2;

/// Ticks without a leader's heartbeat before an election: between this
/// and twice this, drawn per election from the replica's seeded RNG.
const ELECTION_TICKS: usize = 10;

/// ZooKeeper's `snapCount / 2 + randRoll`, randRoll in [0, snapCount / 2).
fn snapshot_threshold(snap_count: u64, rng: &mut rand::rngs::StdRng) -> u64 {
    let half = (snap_count / 2).max(1);
    half + rng.gen_range(0..half)
}

/// A timer for every session of `sm`, each starting at `now_ms`.
fn fresh_timers(sm: &StateMachine, now_ms: i64) -> HashMap<i64, Liveness> {
    sm.sessions
        .iter()
        .map(|(id, s)| {
            (
                *id,
                Liveness {
                    timeout_ms: s.timeout_ms as i64,
                    last_heard_ms: now_ms,
                    expiring: false,
                },
            )
        })
        .collect()
}

#[cfg(test)]
mod lincheck;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod sim_tests;
#[cfg(test)]
mod tests;
