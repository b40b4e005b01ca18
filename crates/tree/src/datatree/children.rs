//! A node's children table: ids with their names' hashes, so the table
//! grows without reading every child's body, and the view callers get.

use super::*;

/// A child in its parent's table: its id and the hash of its name, kept
/// so that growing the table rehashes without reading every child's name
/// from its body (for a parent of 500,000 children that was a pause of
/// tens of milliseconds, a cache miss per child), and so that a lookup
/// reads only the body of the child whose hash matches.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Kid {
    pub(crate) id: u32,
    pub(crate) hash: u32,
}

/// The hash of a child's name, as kept in `Kid`.
pub(crate) fn name_hash(hasher: &Hasher, name: &str) -> u32 {
    hasher.hash_one(name.as_bytes()) as u32
}

/// A kept 32-bit hash as the table's 64-bit one: the table takes its
/// control byte from the top bits and its bucket from the low bits, so
/// both come from the 32 bits.
pub(crate) fn spread(hash: u32) -> u64 {
    (u64::from(hash) << 32) | u64::from(hash)
}

/// A node's children, in no particular order.
#[derive(Debug, Clone, Copy)]
pub struct Children<'a> {
    pub(crate) arena: &'a Arena,
    pub(crate) set: Option<&'a HashTable<Kid>>,
}

impl<'a> Children<'a> {
    pub fn len(&self) -> usize {
        self.set.map_or(0, HashTable::len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn iter(&self) -> impl Iterator<Item = &'a str> + 'a {
        let arena = self.arena;
        self.set
            .into_iter()
            .flat_map(HashTable::iter)
            .filter_map(move |k| arena.get(k.id).map(NodeRec::name))
    }

    /// The names as owned strings, for a reply.
    pub fn names(&self) -> Vec<String> {
        let mut v = Vec::with_capacity(self.len());
        v.extend(self.iter().map(str::to_string));
        v
    }
}

pub(crate) type Hasher = foldhash::fast::RandomState;
