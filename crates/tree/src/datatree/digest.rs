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
//! in any release — so replicas of different builds agree. Layout:
//! ```text
//! meta = XXH3-64(seed META_SEED): path, 0x00, the client Stat as jute
//!        (czxid mzxid ctime mtime version cversion aversion
//!        ephemeralOwner dataLength numChildren pzxid, big-endian),
//!        then per ACL entry: perms (i32), scheme, id (each a jute string)
//! data = XXH3-64(seed DATA_SEED): path, 0x00, then 0x00 for null data or
//!        0x01 and the data
//! digest = the wrapping sum of meta + data over every node
//! ```

use super::*;
use xxhash_rust::xxh3::Xxh3;

const META_SEED: u64 = 0x6d65_7461_2d76_3031; // "meta-v01"
const DATA_SEED: u64 = 0x6461_7461_2d76_3031; // "data-v01"

/// The meta hash of a node at `path` with this client Stat and ACL.
pub(crate) fn meta_hash(path: &str, s: &Stat, acl: &[Acl]) -> u64 {
    let mut h = Xxh3::with_seed(META_SEED);
    h.update(path.as_bytes());
    h.update(&[0]);
    h.update(&s.czxid.to_be_bytes());
    h.update(&s.mzxid.to_be_bytes());
    h.update(&s.ctime.to_be_bytes());
    h.update(&s.mtime.to_be_bytes());
    h.update(&s.version.to_be_bytes());
    h.update(&s.cversion.to_be_bytes());
    h.update(&s.aversion.to_be_bytes());
    h.update(&s.ephemeral_owner.to_be_bytes());
    h.update(&s.data_length.to_be_bytes());
    h.update(&s.num_children.to_be_bytes());
    h.update(&s.pzxid.to_be_bytes());
    for a in acl {
        h.update(&a.perms.to_be_bytes());
        for s in [&a.id.scheme, &a.id.id] {
            h.update(&(s.len() as i32).to_be_bytes());
            h.update(s.as_bytes());
        }
    }
    h.digest()
}

/// The data hash of a node at `path` holding `data`.
pub(crate) fn data_hash(path: &str, data: Option<&[u8]>) -> u64 {
    let mut h = Xxh3::with_seed(DATA_SEED);
    h.update(path.as_bytes());
    h.update(&[0]);
    match data {
        None => h.update(&[0]),
        Some(d) => {
            h.update(&[1]);
            h.update(d);
        }
    }
    h.digest()
}

impl DataTree {
    /// The digest of every node's path, data, ACL and Stat, for comparing
    /// replicas (kept as the tree changes: O(1)).
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// The meta hash of the live node `id` at `path`.
    pub(crate) fn meta_of(&self, id: u32, path: &str) -> u64 {
        let n = self.view(id).expect("a live node");
        meta_hash(path, &n.stat(), n.acl)
    }

    /// Both hashes of the live node `id` at `path`.
    pub(crate) fn hashes_of(&self, id: u32, path: &str) -> u64 {
        let n = self.view(id).expect("a live node");
        meta_hash(path, &n.stat(), n.acl).wrapping_add(data_hash(path, n.data))
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
            sum = sum.wrapping_add(self.hashes_of(id, &buf));
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
        assert_eq!(t.digest(), 0x19e7_2357_9206_d7c7);
    }
}
