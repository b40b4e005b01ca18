//! Divergence caught where it starts: replicas compare tree digests
//! through the log. Every replica notes its digest after applying each
//! index that is a multiple of `NodeConfig::digest_every`; the leader,
//! having noted one, proposes a `Digest` entry carrying it; every replica
//! that applies that entry compares the leader's digest with its own note
//! for the same index. A replica whose tree differs stops (fail-fast, as a
//! storage fault does): `Output::Diverged` names the index, and the others
//! go on. The digest is kept incrementally by the tree, so a check costs a
//! small entry per `digest_every` writes, not a walk of the tree.
//!
//! Not owned here: the digest itself (`tree::DataTree::digest`). A replica
//! that has no note for the index (it installed a snapshot taken after
//! it) skips that check. When the leader is the replica that diverged,
//! the followers stop: the ensemble loses its quorum rather than serve a
//! tree nobody can vouch for.

use std::collections::VecDeque;

use super::*;

/// Notes kept: a `Digest` entry follows its index by the leader's apply
/// lag, a few batches at most; older notes are dropped.
const NOTES: usize = 16;

/// A replica's notes and counters.
#[derive(Debug, Default)]
pub(crate) struct DigestNotes {
    /// (index, digest after applying it), oldest first.
    notes: VecDeque<(u64, u64)>,
    /// Digest entries compared and found equal.
    pub(crate) checks: u64,
}

impl Node {
    /// After applying (or skipping) `index`: note the digest when the index
    /// is due, and as the leader propose it.
    pub(crate) fn note_digest(&mut self, index: u64) {
        let every = self.cfg.digest_every;
        if every == 0 || !index.is_multiple_of(every) {
            return;
        }
        let digest = self.sm.tree.digest();
        let notes = &mut self.digest_notes.notes;
        if notes.len() == NOTES {
            notes.pop_front();
        }
        notes.push_back((index, digest));
        if self.is_leader() {
            self.propose(Entry {
                time_ms: self.now_ms,
                session_id: 0,
                xid: 0,
                origin: self.origin,
                conn: 0,
                kind: EntryKind::Digest { index, digest },
            });
        }
    }

    /// A `Digest` entry at `at`: the proposer's digest after `index`.
    pub(crate) fn check_digest(&mut self, at: u64, index: u64, digest: u64, origin: u64) {
        // No note (a snapshot installed after `index`): nothing to compare.
        let Some(&(_, ours)) = self.digest_notes.notes.iter().find(|(i, _)| *i == index) else {
            return;
        };
        if ours == digest {
            self.digest_notes.checks += 1;
            return;
        }
        tracing::error!(
            "tree digest after index {index} (0x{index:x}) is 0x{ours:x} here but 0x{digest:x} on server {} (the digest entry at index {at})",
            origin >> 48
        );
        self.outputs.push(Output::Diverged {
            index,
            ours,
            theirs: digest,
            server: origin >> 48,
        });
    }

    /// Digest entries compared and found equal (a metric).
    pub fn digest_checks(&self) -> u64 {
        self.digest_notes.checks
    }
}
