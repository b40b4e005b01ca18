//! A node's children table: ids with their names' hashes, so the table
//! grows without reading every child's body, and the view callers get,
//! which lists children in one order on every replica.
//!
//! Two hashes, for two jobs. A child's kept `hash` is XXH3-64 of its name
//! (truncated to 32 bits): an algorithm with a published specification,
//! so it is the same on every replica, after every restart and in every
//! release, and listings are ordered by it. Where the table places a
//! child is that hash mixed with this tree's random key (`Placement`), so
//! a client who can compute the public hash still cannot choose names
//! that pile into one bucket of the table (hash flooding).

use std::cell::RefCell;

use super::*;

/// A child in its parent's table: its id and the hash of its name, kept
/// so that growing the table rehashes without reading every child's name
/// from its body (for a parent of 500,000 children that was a pause of
/// tens of milliseconds, a cache miss per child), so that a lookup reads
/// only the body of the child whose hash matches, and so that a listing
/// is put in order without reading names.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Kid {
    pub(crate) id: u32,
    pub(crate) hash: u32,
}

/// The hash of a child's name, as kept in `Kid`: the same everywhere.
pub(crate) fn name_hash(name: &str) -> u32 {
    xxhash_rust::xxh3::xxh3_64(name.as_bytes()) as u32
}

/// This tree's secret for placing children in their tables: a kept hash
/// mixed with it (a folded multiply) gives the table's 64-bit hash, whose
/// control byte (top bits) and bucket (low bits) both depend on every bit
/// of the kept hash and on the key.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Placement {
    k0: u64,
    k1: u64,
}

impl Placement {
    pub(crate) fn random() -> Placement {
        use std::hash::BuildHasher;
        let s = foldhash::fast::RandomState::default();
        Placement {
            k0: s.hash_one(0u64),
            k1: s.hash_one(1u64) | 1,
        }
    }

    pub(crate) fn spread(&self, hash: u32) -> u64 {
        let full = u128::from(u64::from(hash) ^ self.k0) * u128::from(self.k1);
        (full as u64) ^ ((full >> 64) as u64)
    }
}

/// Listings of at least this many children are kept until the children
/// change: a parent listed again and again is sorted once.
const KEEP_ORDER_FROM: usize = 32;

/// Kept listing orders, by parent id (`DataTree::orders`): child ids in
/// listing order. A parent's entry goes when its children change.
pub(crate) type Orders = RefCell<HashMap<u32, Arc<[u32]>, Hasher>>;

/// A node's children, listed in the order of their names' kept hashes
/// (names break a tie): a function of the set of names alone, so every
/// replica lists the same children in the same order, whatever the
/// history of its table.
#[derive(Debug, Clone, Copy)]
pub struct Children<'a> {
    pub(crate) arena: &'a Arena,
    pub(crate) set: Option<&'a HashTable<Kid>>,
    pub(crate) id: u32,
    pub(crate) orders: &'a Orders,
}

impl<'a> Children<'a> {
    pub fn len(&self) -> usize {
        self.set.map_or(0, HashTable::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The names, in listing order.
    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        let arena = self.arena;
        let ids = self.ordered();
        (0..ids.len()).filter_map(move |i| arena.get(ids[i]).map(NodeRec::name))
    }

    /// The names as owned strings, for a reply.
    pub fn names(&self) -> Vec<String> {
        let mut v = Vec::with_capacity(self.len());
        v.extend(self.iter().map(str::to_string));
        v
    }

    /// Child ids in listing order: kept, or sorted now (and kept when the
    /// list is long). Sorting moves 8-byte keys (hash, id) and compares
    /// integers; names are read only where two hashes are equal.
    fn ordered(&self) -> Arc<[u32]> {
        let Some(set) = self.set else {
            return Arc::new([]);
        };
        if let Some(ids) = self.orders.borrow().get(&self.id) {
            return ids.clone();
        }
        let mut keys: Vec<u64> = set
            .iter()
            .map(|k| (u64::from(k.hash) << 32) | u64::from(k.id))
            .collect();
        keys.sort_unstable();
        let name = |k: &u64| self.arena.get(*k as u32).map_or("", NodeRec::name);
        let mut at = 0;
        while at < keys.len() {
            let run = keys[at..]
                .iter()
                .take_while(|k| *k >> 32 == keys[at] >> 32)
                .count();
            if run > 1 {
                keys[at..at + run].sort_unstable_by(|a, b| name(a).cmp(name(b)));
            }
            at += run;
        }
        let ids: Arc<[u32]> = keys.iter().map(|k| *k as u32).collect();
        if ids.len() >= KEEP_ORDER_FROM {
            self.orders.borrow_mut().insert(self.id, ids.clone());
        }
        ids
    }
}

pub(crate) type Hasher = foldhash::fast::RandomState;
