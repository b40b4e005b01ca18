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
//! This file is the public face (`Node`'s inputs and state, `Output`,
//! `NodeConfig`, `Restored`, errors); the rest lives in rooms named after
//! what they own: `clients` (connections, sessions on them, FIFO queues,
//! reads, replies), `ready` (proposal batching and the Raft hand-off),
//! `election` (campaign turns, leader changes), `digest_check` (replicas
//! comparing tree digests through the log), `timers` (ticks, liveness,
//! expiry, reaping), `snapshots` (policy, compaction, install), `reconfig`
//! (membership changes), `read_only` (read-only mode), `linearizable`
//! (opt-in linearizable reads), `resend` (client writes across a leader
//! change), `transfer`
//! (leadership transfer), `restore` and `takeover` (state from ZooKeeper's
//! files), `store` and `log` (what Raft reads), `testing` (drivers for
//! tests and fuzzing).
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

mod clients;
pub mod committed;
mod digest_check;
mod election;
mod linearizable;
mod local_sessions;
mod log;
mod non_voting;
mod read_only;
mod ready;
mod reconfig;
mod resend;
mod restore;
pub mod sasl;
mod snapshots;
mod store;
mod takeover;
pub mod testing;
mod timers;
mod transfer;
use clients::{Conn, HeldConnect};
use digest_check::DigestNotes;
use election::ELECTION_TICKS;
use log::Log;
use ready::MAX_APPEND_BYTES;
use snapshots::snapshot_threshold;
use store::Store;
use timers::{fresh_timers, Liveness};

pub use reconfig::ReconfigSettings;

use proto::frame::{finish_frame, start_frame};
use proto::{
    ConnectRequest, ConnectResponse, ErrorCode, Id, Jute, KeeperState, OpCode, Perms, ReplyHeader,
    Request, WatcherEvent, Xid,
};
use raft::prelude::{
    ConfState, Entry as RaftEntry, HardState, Message as RaftMessage, MessageType, Snapshot,
    SnapshotMetadata,
};
use raft::RawNode;
use rand::{Rng, SeedableRng};
use tree::watches::Notification;
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
    /// SASL users and settings, from the JAAS `Server` section; None when
    /// the server has no SASL login (as ZooKeeper without one).
    /// `enforce.auth.schemes` in force (empty: off): a session with no
    /// identity of these schemes gets SessionClosedRequireSaslAuth on its
    /// first request other than auth and SASL, and its connection closes.
    pub enforce_auth: Vec<String>,
    pub sasl: Option<sasl::SaslConfig>,
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
    /// Observers (`server.N=…:observer`): Raft learners that replicate
    /// and serve clients, and never vote or lead.
    pub learners: Vec<u64>,
    /// Replicas compare tree digests after every index that is a multiple
    /// of this (0: never; `digest.enabled=false`). See `digest_check`.
    pub digest_every: u64,
    /// The index of a snapshot taken over from a ZooKeeper ensemble
    /// member that the ensemble has not confirmed yet (`takeover`).
    pub takeover_unconfirmed: Option<u64>,
    /// `reconfigEnabled`, `standaloneEnabled` (`reconfig`).
    pub reconfig: ReconfigSettings,
    /// The `server.N=` lines of the config files, as `/zookeeper/config`
    /// shows them until a reconfig replaces them; empty when standalone.
    pub members_text: String,
    /// `readonlymode.enabled`: without a quorum, serve read-only clients
    /// (`read_only`).
    pub read_only_mode: bool,
    /// `linearizableReads`: reads wait for a Raft ReadIndex
    /// (`linearizable`).
    pub linearizable_reads: bool,
    /// `localSessionsEnabled` and `localSessionsUpgradingEnabled`
    /// (`local_sessions`).
    pub local_sessions: bool,
    pub local_sessions_upgrading: bool,
}

/// What a frame the core sends is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// The answer to the connection's ConnectRequest (the first frame).
    Connect,
    /// The reply to one request, with its header, its op and the stamp
    /// the driver gave the request on arrival (`Node::request`): it
    /// completes the connection's oldest request in flight.
    Reply {
        xid: i32,
        zxid: i64,
        err: i32,
        op: i32,
        arrived: u64,
    },
    /// A watch event (xid -1).
    Event,
}

/// What the driver must do.
#[derive(Debug, Clone)]
pub enum Output {
    /// Send one complete frame (length prefix included) to a connection;
    /// `kind` says what it is, so the driver never parses it.
    Send {
        conn: ConnId,
        frame: Vec<u8>,
        kind: FrameKind,
    },
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
        /// Whether it must be fsynced before `persisted`. Not when all it
        /// holds is a hard state that moved only the commit index: Raft
        /// keeps the commit index in volatile state (a replica that comes
        /// back with an older one learns it again from the leader, and its
        /// log holds every entry it acknowledged), so it is written and
        /// made durable with the next fsync — a write no longer pays a
        /// second fsync on every replica for the commit it caused. The
        /// driver still completes Persists in order.
        sync: bool,
        /// Raft messages that promise what this Persist makes durable
        /// (votes, append responses): the driver sends them once it is
        /// (and everything before it) — from the thread that wrote it, not
        /// back through the core.
        then_send: Vec<RaftMessage>,
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
    /// This server, outside the voters, has not heard from a leader for
    /// long: the transport calls the other servers again, naming itself
    /// and its address to those that do not know it (`non_voting`).
    Rejoin,
    /// Tell the leader which sessions spoke to this server lately, so it
    /// does not expire them (only the leader proposes expiry).
    Liveness { to: u64, sessions: Vec<i64> },
    /// This replica's tree differs from the one server `server` had after
    /// the same `index` (digests `ours` and `theirs`): it must stop, as on
    /// a storage fault, and serve nothing more.
    Diverged {
        index: u64,
        ours: u64,
        theirs: u64,
        server: u64,
    },
    /// The leader (`leader`, whose log ends at `leader_index`) is behind
    /// the ZooKeeper data this server took over up to `ours`: that data
    /// goes, and the server catches up from the leader (`takeover`).
    TakeoverConflict {
        leader: u64,
        leader_index: u64,
        ours: u64,
    },
    /// The data taken over up to `index` is confirmed by the ensemble.
    TakeoverConfirmed { index: u64 },
    /// The restore this server proposed for `waiter` was applied at
    /// `zxid`; `ok` false when its bytes were not a snapshot.
    Restored { waiter: u64, zxid: i64, ok: bool },
    /// The membership now (at startup, and after each change): the text
    /// of `/zookeeper/config` (version 0: from the config files) and
    /// Raft's voters and learners. The driver reaches new peers, drops
    /// gone ones and writes ZooKeeper's dynamic config file.
    Membership {
        text: String,
        voters: Vec<u64>,
        learners: Vec<u64>,
    },
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
    /// (term, vote) of the newest hard state handed to storage: a hard
    /// state that changes neither needs no fsync (`Output::Persist`).
    persisted_vote: (u64, u64),
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
    /// Digests noted for comparison with the leader's (`digest_check`).
    digest_notes: DigestNotes,
    /// Leader: the index of the last reconfig it let into its log; no
    /// other is decided until that one is applied (`reconfig`).
    reconfig_pending_at: u64,
    /// A reconfig took this server out of the ensemble and its leader
    /// dropped it: it serves nothing.
    removed: bool,
    /// Out of the membership text but a Raft learner: it follows and
    /// serves as a non-voting follower (`non_voting`).
    non_voting: bool,
    /// Servers the transport let in without being members, and when
    /// (`non_voting`).
    joiners: std::collections::BTreeMap<u64, i64>,
    /// When this server last asked the transport to call in again, became
    /// leader, saw its membership change (`non_voting`).
    rejoined_at_ms: i64,
    leading_since_ms: i64,
    membership_changed_ms: i64,
    /// When each peer's last message came (`reconfig` counts the live).
    heard_ms: HashMap<u64, i64>,
    /// Since when this server has had no leader (`read_only`).
    no_leader_since_ms: i64,
    /// Serving read-only clients now (`read_only`).
    read_only: bool,
    /// Sessions this server made while read-only, with their passwords.
    read_only_sessions: HashMap<i64, Vec<u8>>,
    next_read_only_session: i64,
    /// Sessions this server made without the log (`local_sessions`).
    local_sessions: HashMap<i64, local_sessions::LocalSession>,
    next_local_session: i64,
    /// Linearizable reads waiting for their read index (`linearizable`).
    read_indexes: linearizable::ReadIndexes,
    /// The highest term of an entry applied here, and the one lost writes
    /// were last sent again for (`resend`).
    applied_term: u64,
    resent_for_term: u64,
    /// Proposals of followers that came while this leader handed over
    /// leadership (`resend`).
    held_forwarded: Vec<RaftMessage>,
    /// Client writes sent again after their leader never logged them (a
    /// metric).
    writes_resent: u64,
    /// When a soft quota warning was last logged, and how many were not
    /// logged since (`ready::log_quota_warnings`).
    quota_warned_ms: i64,
    quota_warnings_held: u64,
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
        // Membership: the config files' (a snapshot written under another
        // one — an observer line added since — does not override them),
        // unless a reconfig has set it through the log: then the
        // snapshot's, and the log replays later changes (`reconfig`).
        let reconfigured = restored
            .snapshot
            .as_ref()
            .is_some_and(|s| s.state.members().version != 0);
        let members = if reconfigured {
            let s = restored.snapshot.as_ref().expect("checked above");
            s.conf_state.clone()
        } else {
            if !cfg.voters.contains(&cfg.server_id) && !cfg.learners.contains(&cfg.server_id) {
                return Err(NodeError::NotAVoter(cfg.server_id, cfg.voters.clone()));
            }
            ConfState::from((cfg.voters.clone(), cfg.learners.clone()))
        };
        let mut storage = Log::new(members.clone());
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
            storage.set_conf_state(members.clone());
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
        let persisted_vote = (hard_state.term, hard_state.vote);
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
        sm.set_local_members(&cfg.members_text, now_ms);
        if members.voters == [cfg.server_id] && members.learners.is_empty() {
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
            persisted_vote,
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
            digest_notes: DigestNotes::default(),
            reconfig_pending_at: 0,
            removed: false,
            non_voting: false,
            joiners: Default::default(),
            rejoined_at_ms: now_ms,
            leading_since_ms: now_ms,
            membership_changed_ms: now_ms,
            heard_ms: HashMap::new(),
            no_leader_since_ms: now_ms,
            read_only: false,
            read_only_sessions: HashMap::new(),
            next_read_only_session: 1,
            local_sessions: HashMap::new(),
            next_local_session: 1,
            read_indexes: Default::default(),
            applied_term: 0,
            resent_for_term: 0,
            held_forwarded: Vec::new(),
            writes_resent: 0,
            quota_warned_ms: i64::MIN / 2,
            quota_warnings_held: 0,
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
        node.members_changed();
        if members.voters.len() > 1 && !node.is_learner() && !node.removed {
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

    /// The state, to change behind the log's back (the simulation plants
    /// a divergence with it).
    #[cfg(test)]
    pub(crate) fn state_mut(&mut self) -> &mut StateMachine {
        &mut self.sm
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

    /// This server's id (`myid`).
    pub fn server_id(&self) -> u64 {
        self.cfg.server_id
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

    /// Leader only: (followers connected, followers replicating in step):
    /// voters and non-voting followers, as ZooKeeper's leader counts its
    /// forwarding followers.
    pub fn followers(&self) -> (usize, usize) {
        self.learners_in_step(false)
    }

    /// Raft's voters as this replica knows them (ZooKeeper's quorum size).
    pub fn voter_count(&self) -> usize {
        self.raft_members().0.len()
    }

    /// Leader only: (observers connected, observers replicating in step).
    pub fn observers(&self) -> (usize, usize) {
        self.learners_in_step(true)
    }

    /// Whether this server is an observer (a Raft learner the membership
    /// lists; `is_non_voting` for one it does not).
    pub fn is_observer(&self) -> bool {
        self.is_learner() && !self.non_voting
    }

    /// A reconfig took this server out of the ensemble.
    pub fn is_removed(&self) -> bool {
        self.removed
    }

    fn learners_in_step(&self, observers: bool) -> (usize, usize) {
        if !self.is_leader() {
            return (0, 0);
        }
        let me = self.cfg.server_id;
        let mut learners = self.raft_members().1;
        let non_voting = self.non_voting_ids();
        learners.retain(|id| !non_voting.contains(id));
        let mut n = (0, 0);
        for (id, pr) in self.raw.raft.prs().iter() {
            if *id == me || !pr.recent_active || learners.contains(id) != observers {
                continue;
            }
            n.0 += 1;
            if pr.state == raft::ProgressState::Replicate {
                n.1 += 1;
            }
        }
        n
    }

    /// Requests of connection `conn` waiting for their reply.
    pub fn queued(&self, conn: ConnId) -> usize {
        self.conns.get(&conn).map_or(0, |c| c.queue.len())
    }

    /// Requests of every connection waiting for their reply.
    pub fn queued_total(&self) -> usize {
        self.conns.values().map(|c| c.queue.len()).sum()
    }

    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Whether this replica knows a leader, and so serves clients.
    pub fn has_leader(&self) -> bool {
        self.raw.raft.leader_id != raft::INVALID_ID && !self.removed
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
}

#[cfg(test)]
mod lincheck;
#[cfg(test)]
mod sim;
#[cfg(test)]
mod sim_tests;
#[cfg(test)]
mod tests;
