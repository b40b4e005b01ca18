//! The arena of node slots, in chunks shared copy-on-write with
//! snapshots, and the bitset of vacant slots handed out lowest first.

use super::*;

/// The node slots, shared chunk by chunk with snapshots. A chunk's slots
/// are inline in its `Arc`: a lookup follows one pointer to reach them.
/// With them, the ACL lists their `AclId`s name (shared with snapshots
/// too: the tree copies the table before changing it while one holds it).
#[derive(Debug, Clone, Default)]
pub(crate) struct Arena {
    pub(crate) chunks: Vec<Arc<[Option<NodeRec>; CHUNK]>>,
    pub(crate) acls: Arc<Vec<AclList>>,
}

impl Arena {
    /// The ACL list of a node of this arena.
    pub(crate) fn acl(&self, rec: &NodeRec) -> &AclList {
        &self.acls[rec.acl as usize]
    }

    pub(crate) fn slots(&self) -> usize {
        self.chunks.len() * CHUNK
    }

    pub(crate) fn get(&self, id: u32) -> Option<&NodeRec> {
        let id = id as usize;
        self.chunks.get(id / CHUNK)?[id % CHUNK].as_ref()
    }

    pub(crate) fn get_mut(&mut self, id: u32) -> &mut NodeRec {
        let id = id as usize;
        Arc::make_mut(&mut self.chunks[id / CHUNK])[id % CHUNK]
            .as_mut()
            .expect("a live node")
    }

    /// Puts `rec` in slot `id`, growing the arena as needed; returns what
    /// was there.
    pub(crate) fn put(&mut self, id: u32, rec: Option<NodeRec>) -> Option<NodeRec> {
        let id = id as usize;
        while self.chunks.len() <= id / CHUNK {
            self.chunks.push(Arc::new(std::array::from_fn(|_| None)));
        }
        std::mem::replace(
            &mut Arc::make_mut(&mut self.chunks[id / CHUNK])[id % CHUNK],
            rec,
        )
    }

    /// Every live node with its id, in id order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (u32, &NodeRec)> {
        self.chunks.iter().enumerate().flat_map(|(c, chunk)| {
            chunk
                .iter()
                .enumerate()
                .filter_map(move |(i, s)| s.as_ref().map(|r| ((c * CHUNK + i) as u32, r)))
        })
    }
}

/// The full path of a live node, from its names up to the root.
pub(crate) fn path_in(arena: &Arena, id: u32) -> String {
    let mut names = Vec::new();
    let mut at = id;
    while at != ROOT {
        let rec = arena.get(at).expect("a live node");
        names.push(rec.name());
        at = rec.parent;
    }
    if names.is_empty() {
        return "/".into();
    }
    let mut p = String::new();
    for n in names.iter().rev() {
        p.push('/');
        p.push_str(n);
    }
    p
}

/// The vacant slots below the arena's end, a bit each, handed out lowest
/// first: nodes made after mass deletes land packed at the arena's start
/// instead of one per chunk wherever the last deletes left holes, and the
/// order no longer depends on the order of those deletes. (Suspected of
/// making setData after a create-and-delete run 20-30% slower than on a
/// fresh tree; measured, it was not the main cause, which is still open.)
#[derive(Debug, Default)]
pub(crate) struct FreeSlots {
    pub(crate) bits: Vec<u64>,
    /// Every word before this one is zero.
    pub(crate) low: usize,
}

impl FreeSlots {
    pub(crate) fn push(&mut self, id: u32) {
        let (w, b) = (id as usize / 64, id % 64);
        if self.bits.len() <= w {
            self.bits.resize(w + 1, 0);
        }
        self.bits[w] |= 1 << b;
        self.low = self.low.min(w);
    }

    /// The lowest vacant slot, taken.
    pub(crate) fn pop(&mut self) -> Option<u32> {
        while let Some(&word) = self.bits.get(self.low) {
            if word != 0 {
                let b = word.trailing_zeros();
                self.bits[self.low] &= !(1 << b);
                return Some((self.low * 64) as u32 + b);
            }
            self.low += 1;
        }
        None
    }

    /// Takes this slot (a rollback re-filling it).
    pub(crate) fn take(&mut self, id: u32) {
        if let Some(word) = self.bits.get_mut(id as usize / 64) {
            *word &= !(1 << (id % 64));
        }
    }
}
