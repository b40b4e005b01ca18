//! The tree digest replicas compare: a sum, over every node, of a hash of
//! its path, Stat and ACL and a hash of its path and data. A sum does not
//! depend on the order nodes are visited in, and it is kept as the tree
//! changes: each operation takes out the hashes of the nodes it touches
//! and adds their new ones, so reading the digest costs nothing and a
//! change costs a few hashes of what it touched (a node's data is hashed
//! only when the data is written: a parent's Stat changing does not
//! rehash the parent's data). Rolling back an entry puts back the digest
//! it began with.
//!
//! The hash is XXH3-64, an algorithm with a published specification, over
//! bytes laid out here — not std's `DefaultHasher`, which Rust may change
//! in any release — so replicas of different builds agree. Each hash is
//! one-shot over a short buffer (no streaming state to set up: the digest
//! costs tens of nanoseconds per write). Layout, with H(bytes, seed) for
//! XXH3-64 and integers big-endian:
//! ```text
//! p    = H(path, PATH_SEED)
//! acl  = fold over the ACL's entries, from ACL_SEED:
//!        a = H(perms, a); a = H(scheme, a); a = H(id, a)
//! meta = H(the client Stat as jute (czxid mzxid ctime mtime version
//!        cversion aversion ephemeralOwner dataLength numChildren
//!        pzxid: 68 bytes) followed by acl (8 bytes), p ^ META_SEED)
//! data = H(data, p ^ DATA_SEED), or H(empty, p ^ NULL_SEED) for null
//! digest = the wrapping sum of meta + data over every node but
//!          /zookeeper/config (its hashes are 0)
//! ```

use super::*;
use xxhash_rust::xxh3::xxh3_64_with_seed as h;

const PATH_SEED: u64 = 0x7061_7468_2d76_3031; // "path-v01"
const ACL_SEED: u64 = 0x6163_6c2d_7630_3100; // "acl-v01"
const META_SEED: u64 = 0x6d65_7461_2d76_3031; // "meta-v01"
const DATA_SEED: u64 = 0x6461_7461_2d76_3031; // "data-v01"
const NULL_SEED: u64 = 0x6e75_6c6c_2d76_3031; // "null-v01"

/// The hash of a path every other hash of its node is seeded with.
pub(crate) fn path_hash(path: &str) -> u64 {
    h(path.as_bytes(), PATH_SEED)
}

/// The hash of an ACL list, for `meta_hash`.
pub(crate) fn acl_hash(acl: &[Acl]) -> u64 {
    let mut a = ACL_SEED;
    for e in acl {
        a = h(&e.perms.to_be_bytes(), a);
        a = h(e.id.scheme.as_bytes(), a);
        a = h(e.id.id.as_bytes(), a);
    }
    a
}

/// The hash of `/zookeeper/config`'s path: that node is left out of the
/// digest (its hashes are 0), as ZooKeeper leaves out `/zookeeper`. Each
/// server writes it from its own config files until a reconfig replaces
/// it through the log (`DataTree::set_config`).
fn config_path_hash() -> u64 {
    static H: std::sync::LazyLock<u64> = std::sync::LazyLock::new(|| path_hash(CONFIG));
    *H
}

/// The meta hash of a node whose path hashes to `p`, with this client
/// Stat and an ACL list that hashes to `a`.
pub(crate) fn meta_hash(p: u64, s: &Stat, a: u64) -> u64 {
    if p == config_path_hash() {
        return 0;
    }
    let mut b = [0u8; 76];
    let mut at = 0;
    let mut put = |x: &[u8]| {
        b[at..at + x.len()].copy_from_slice(x);
        at += x.len();
    };
    put(&s.czxid.to_be_bytes());
    put(&s.mzxid.to_be_bytes());
    put(&s.ctime.to_be_bytes());
    put(&s.mtime.to_be_bytes());
    put(&s.version.to_be_bytes());
    put(&s.cversion.to_be_bytes());
    put(&s.aversion.to_be_bytes());
    put(&s.ephemeral_owner.to_be_bytes());
    put(&s.data_length.to_be_bytes());
    put(&s.num_children.to_be_bytes());
    put(&s.pzxid.to_be_bytes());
    put(&a.to_be_bytes());
    h(&b, p ^ META_SEED)
}

/// The data hash of a node whose path hashes to `p`, holding `data`.
pub(crate) fn data_hash(p: u64, data: Option<&[u8]>) -> u64 {
    if p == config_path_hash() {
        return 0;
    }
    match data {
        Some(d) => h(d, p ^ DATA_SEED),
        None => h(&[], p ^ NULL_SEED),
    }
}

impl DataTree {
    /// The digest of every node's path, data, ACL and Stat, for comparing
    /// replicas (kept as the tree changes: O(1)).
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// Both hashes of the live node `id`, whose path hashes to `p`.
    pub(crate) fn hashes_of(&self, id: u32, p: u64) -> u64 {
        let n = self.view(id).expect("a live node");
        meta_hash(p, &n.stat(), acl_hash(n.acl)).wrapping_add(data_hash(p, n.data))
    }

    /// The digest computed from scratch, walking every node: what `digest`
    /// must always equal (restore sets it from this; tests compare).
    pub fn digest_full(&self) -> u64 {
        let mut sum = 0u64;
        let mut buf = String::new();
        let mut stack = vec![(ROOT, 0usize)];
        while let Some((id, plen)) = stack.pop() {
            let Some(rec) = self.arena.get(id) else {
                continue;
            };
            buf.truncate(plen);
            if id == ROOT {
                buf.push('/');
            } else {
                if buf.len() > 1 {
                    buf.push('/');
                }
                buf.push_str(rec.name());
            }
            sum = sum.wrapping_add(self.hashes_of(id, path_hash(&buf)));
            if let Some(set) = self.kids.get(id as usize).and_then(|s| s.as_deref()) {
                stack.extend(set.iter().map(|k| (k.id, buf.len())));
            }
        }
        sum
    }

    /// Test hook: gives the node at `path` this data as a replica with a
    /// bug in apply would — the kept digest follows, no log entry records
    /// it — so a test can see the replicas' digest check catch it.
    #[cfg(feature = "testing")]
    pub fn plant_divergence(&mut self, path: &str, data: &[u8]) {
        let id = self.lookup(path).expect("a live node");
        let s = self.view(id).expect("live").stat;
        self.begin();
        self.set_data_at(id, path, Some(data), s.mzxid, s.mtime);
        self.take_triggers();
    }

    /// Sets the kept digest from a full walk (after building a tree).
    pub(crate) fn recompute_digest(&mut self) {
        self.digest = self.digest_full();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The layout above, pinned: a change to it (or to the hash) changes
    /// what replicas of different builds compare, so it must be deliberate.
    #[test]
    fn the_digest_of_a_fresh_tree_is_fixed() {
        let t = DataTree::new();
        assert_eq!(t.digest(), t.digest_full());
        // Changed deliberately when /zookeeper/config left the digest
        // (issue 19: each server writes its own reading of its config
        // files there). Replicas of builds before that disagree with later
        // ones, so an ensemble moves past it by a full restart.
        assert_eq!(t.digest(), 0x338c_07f1_e0eb_ffa6);
    }
}
