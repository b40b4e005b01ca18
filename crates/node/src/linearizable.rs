//! Opt-in linearizable reads (`linearizableReads=true`, per server; beyond
//! ZooKeeper, whose reads — even after a `sync` — may miss writes
//! acknowledged elsewhere): every read this server serves to a read-write
//! session reflects every write acknowledged anywhere before the read
//! arrived. Raft's ReadIndex: the reads that arrive between two flushes
//! form one batch, asked of the leader once (`RawNode::read_index`, its
//! context this replica's `origin` and the batch's number, unique in the
//! ensemble: the leader keeps one request per context); the leader answers with its commit index
//! after a heartbeat round confirms it still leads; the batch's reads are
//! served, each in its connection's order, once this replica has applied
//! that index. No log entry, no fsync. A request the leader drops (no
//! leader, a new one that has not committed in its term yet, a lost
//! message) is asked again each Raft tick until answered.
//!
//! A connection's order holds: a write that arrives behind a linearizable
//! read of its connection is held, not proposed, until that read is served
//! (the read is answered from the state when its index is applied, which
//! must not include the later write).
//!
//! Read-only sessions (read-only mode) and pings, watch and auth requests
//! stay local.

use std::collections::{BTreeSet, VecDeque};

use super::*;
use crate::clients::{Asked, Pending};

/// One ReadIndex request for the reads that arrived together.
#[derive(Debug)]
struct Batch {
    ctx: u64,
    /// The leader's answer: serve once this index is applied.
    index: Option<u64>,
    /// When it was last asked (None: not yet).
    asked_ms: Option<i64>,
}

#[derive(Debug, Default)]
pub(crate) struct ReadIndexes {
    /// Oldest first; a batch leaves once answered and applied, so a
    /// context below the first one's is ready.
    batches: VecDeque<Batch>,
    next_ctx: u64,
    /// Connections with a linearizable read queued.
    waiting: BTreeSet<ConnId>,
    /// Reads served this way (a metric).
    pub(crate) served: u64,
}

/// The reads that go through ReadIndex on a linearizable server.
pub(crate) fn reads_state(req: &Request) -> bool {
    matches!(
        req,
        Request::Exists(_)
            | Request::GetData(_)
            | Request::GetChildren(_)
            | Request::GetChildren2(_)
            | Request::GetAcl(_)
            | Request::GetAllChildrenNumber(_)
            | Request::GetEphemerals(_)
            | Request::MultiRead(_)
    )
}

impl Node {
    /// Queues a read of `conn` behind a ReadIndex: it joins the batch not
    /// yet asked, or starts one.
    pub(crate) fn queue_linearizable(&mut self, conn: ConnId, asked: Asked, req: Request) {
        let r = &mut self.read_indexes;
        let ctx = match r.batches.back() {
            Some(b) if b.asked_ms.is_none() => b.ctx,
            _ => {
                r.next_ctx += 1;
                r.batches.push_back(Batch {
                    ctx: r.next_ctx,
                    index: None,
                    asked_ms: None,
                });
                r.next_ctx
            }
        };
        r.waiting.insert(conn);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.queue.push_back(Pending::Linear(asked, req, ctx));
        }
    }

    /// Whether the reads of batch `ctx` may be served now.
    pub(crate) fn read_index_reached(&self, ctx: u64) -> bool {
        let r = &self.read_indexes;
        match r.batches.front() {
            None => true,
            Some(first) if ctx < first.ctx => true,
            Some(first) => r
                .batches
                .get((ctx - first.ctx) as usize)
                .and_then(|b| b.index)
                .is_some_and(|i| i <= self.sm.last_zxid() as u64),
        }
    }

    /// Asks the leader for the batches not asked yet (at each flush), and
    /// again for those still unanswered a Raft tick later (`retry`).
    pub(crate) fn ask_read_indexes(&mut self, retry: bool) {
        let now = self.now_ms;
        let again = now - self.cfg.tick_ms as i64;
        let mut ask = Vec::new();
        for b in self.read_indexes.batches.iter_mut() {
            let due = match b.asked_ms {
                None => true,
                Some(t) => retry && b.index.is_none() && t <= again,
            };
            if due {
                b.asked_ms = Some(now);
                ask.push(b.ctx);
            }
        }
        for ctx in ask {
            let mut bytes = Vec::with_capacity(16);
            bytes.extend_from_slice(&self.origin.to_be_bytes());
            bytes.extend_from_slice(&ctx.to_be_bytes());
            self.raw.read_index(bytes);
        }
    }

    /// The leader's answers (a Ready's read states).
    pub(crate) fn read_indexes_answered(&mut self, states: Vec<raft::ReadState>) {
        let r = &mut self.read_indexes;
        for s in states {
            let Ok(bytes) = <[u8; 16]>::try_from(s.request_ctx.as_slice()) else {
                continue;
            };
            let (origin, ctx) = bytes.split_at(8);
            if origin != self.origin.to_be_bytes() {
                continue;
            }
            let ctx = u64::from_be_bytes(ctx.try_into().expect("8 bytes"));
            let Some(first) = r.batches.front().map(|b| b.ctx) else {
                continue;
            };
            if let Some(b) = ctx
                .checked_sub(first)
                .and_then(|k| r.batches.get_mut(k as usize))
            {
                b.index = Some(b.index.map_or(s.index, |i| i.min(s.index)));
            }
        }
    }

    /// Serves the linearizable reads whose index is applied, each in its
    /// connection's order; drops the batches done with.
    pub(crate) fn serve_linearizable(&mut self) {
        if self.read_indexes.waiting.is_empty() && self.read_indexes.batches.is_empty() {
            return;
        }
        let waiting: Vec<ConnId> = self.read_indexes.waiting.iter().copied().collect();
        for conn in waiting {
            self.serve_queued_reads(conn);
            let still = self
                .conns
                .get(&conn)
                .is_some_and(|c| c.queue.iter().any(|p| matches!(p, Pending::Linear(..))));
            if !still {
                self.read_indexes.waiting.remove(&conn);
            }
        }
        let applied = self.sm.last_zxid() as u64;
        let r = &mut self.read_indexes;
        while r
            .batches
            .front()
            .is_some_and(|b| b.index.is_some_and(|i| i <= applied))
        {
            r.batches.pop_front();
        }
    }

    /// Reads served after a read index (`linearizableReads`).
    pub fn linearizable_reads_served(&self) -> u64 {
        self.read_indexes.served
    }

    /// Every connection was closed: no read waits.
    pub(crate) fn forget_read_indexes(&mut self) {
        self.read_indexes.batches.clear();
        self.read_indexes.waiting.clear();
    }
}
