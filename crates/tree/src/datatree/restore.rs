//! Building a tree from nodes: the fresh tree's arena freezing for a
//! snapshot, and a snapshot's arena checked into a tree (indexes rebuilt,
//! slots renumbered densely, anything that is not a tree refused).

use super::*;

impl DataTree {
    /// A tree with no nodes at all, for restoring a snapshot into.
    pub(crate) fn empty() -> DataTree {
        DataTree {
            arena: Arena::default(),
            free: FreeSlots::default(),
            kids: Vec::new(),
            placement: Placement::random(),
            orders: Default::default(),
            count: 0,
            acl_ids: HashMap::with_hasher(Hasher::default()),
            acl_refs: Vec::new(),
            acl_free: Vec::new(),
            acls_new: 0,
            acls_swept: 0,
            ephemerals: BTreeMap::new(),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            quota_roots: BTreeSet::new(),
            data_bytes: 0,
            path_bytes: 0,
            undo: Vec::new(),
            triggers: Vec::new(),
            undoable: false,
            digest: 0,
            digest_at_begin: 0,
        }
    }

    /// The tree whose nodes are these (a snapshot's): children tables,
    /// indexes and counters are rebuilt. Err when they do not make a tree:
    /// no root at id 0, a parent missing, two siblings of one name, an
    /// invalid name, or nodes not reachable from the root (a cycle).
    pub(crate) fn from_arena(arena: Arena) -> Result<DataTree, BadTree> {
        let mut t = DataTree::empty();
        let slots = arena.slots();
        t.kids.resize_with(slots, || None);
        match arena.get(ROOT) {
            Some(r) if r.parent == NO_PARENT && r.name().is_empty() => {}
            _ => return Err(BadTree("no root node at id 0".into())),
        }
        // Tables sized up front: no rehash while loading.
        let mut sizes = vec![0u32; slots];
        for (_, rec) in arena.iter() {
            if let Some(n) = sizes.get_mut(rec.parent as usize) {
                *n += 1;
            }
        }
        for (id, &n) in sizes.iter().enumerate() {
            if n > 0 && arena.get(id as u32).is_some() {
                t.kids[id] = Some(Box::new(HashTable::with_capacity(n as usize)));
            }
        }
        drop(sizes);
        let mut count = 0usize;
        for (id, rec) in arena.iter() {
            count += 1;
            if id == ROOT {
                continue;
            }
            let name = rec.name();
            if name.is_empty() || name.contains('/') || name.contains('\0') {
                return Err(BadTree(format!("node {id}: invalid name {name:?}")));
            }
            if arena.get(rec.parent).is_none() {
                return Err(BadTree(format!(
                    "node {id} ({name}): parent {} missing",
                    rec.parent
                )));
            }
            let hash = name_hash(name);
            let placement = t.placement;
            let set = t.kids[rec.parent as usize].get_or_insert_with(Default::default);
            match set.entry(
                placement.spread(hash),
                |k| k.hash == hash && arena.get(k.id).is_some_and(|r| r.name() == name),
                |k| placement.spread(k.hash),
            ) {
                hashbrown::hash_table::Entry::Occupied(_) => {
                    return Err(BadTree(format!("node {id}: a sibling has its name {name}")))
                }
                hashbrown::hash_table::Entry::Vacant(v) => {
                    v.insert(Kid { id, hash });
                }
            }
        }
        // Path lengths in slot order, each from its parent's (computed
        // first, walking up, and kept): path bytes, and proof that every
        // node hangs from the root. A walk that comes back to a node still
        // being computed has found a cycle.
        const BUSY: u32 = u32::MAX;
        let mut plen = vec![0u32; slots];
        plen[ROOT as usize] = 1;
        let mut chain = Vec::new();
        let mut acl_refs = vec![0u32; arena.acls.len()];
        for (id, rec) in arena.iter() {
            let mut at = id;
            while plen[at as usize] == 0 {
                plen[at as usize] = BUSY;
                chain.push(at);
                at = arena.get(at).expect("parents are live").parent;
            }
            if plen[at as usize] == BUSY {
                return Err(BadTree(format!("node {id} is in a cycle")));
            }
            let mut len = plen[at as usize];
            while let Some(c) = chain.pop() {
                let name = arena.get(c).expect("parents are live").name().len() as u32;
                len = if len == 1 { 1 + name } else { len + 1 + name };
                plen[c as usize] = len;
            }
            t.path_bytes += plen[id as usize] as u64;
            t.data_bytes += rec.data_len() as u64;
            let owner = rec.stat().ephemeral_owner;
            if owner_kind(owner) != OwnerKind::Persistent {
                t.index_add(owner, &path_in(&arena, id));
            }
            match acl_refs.get_mut(rec.acl as usize) {
                Some(r) => *r += 1,
                None => return Err(BadTree(format!("node {id}: no ACL list {}", rec.acl))),
            }
        }
        t.count = count;
        for id in (0..slots as u32).filter(|&id| arena.get(id).is_none()) {
            t.free.push(id);
        }
        // Lists in use are interned (the first id of a content wins);
        // unused ones are freed.
        for (id, &refs) in acl_refs.iter().enumerate() {
            if refs > 0 {
                t.acl_ids
                    .entry(arena.acls[id].clone())
                    .or_insert(id as AclId);
            } else {
                t.acl_free.push(id as AclId);
            }
        }
        t.acls_swept = t.acl_ids.len();
        t.acl_refs = acl_refs;
        t.arena = arena;
        if !t.acl_free.is_empty() {
            let acls = Arc::make_mut(&mut t.arena.acls);
            for &id in &t.acl_free {
                acls[id as usize] = AclList::default();
            }
        }
        t.rebuild_quota_roots();
        t.recompute_digest();
        Ok(t)
    }

    /// The node slots as they are now, shared with the tree (copy-on-write).
    pub(crate) fn freeze(&self) -> Arena {
        self.arena.clone()
    }

    /// Adds a node read from an old (path-keyed) snapshot: its parent must
    /// be there already ("/" comes first). Err when the snapshot breaks
    /// that rule.
    pub(crate) fn restore_node(
        &mut self,
        path: &str,
        data: Option<&[u8]>,
        acl: Vec<Acl>,
        stat: Stat,
    ) -> Result<(), ()> {
        let acl = self.intern(acl);
        let stat = PStat::from_stat(&stat);
        if path == "/" {
            if self.count > 0 {
                return Err(());
            }
            let root = self.next_id();
            self.link_at(root, NodeRec::new("", data, acl, stat, NO_PARENT), "/");
            return Ok(());
        }
        match path::split(path) {
            Some((parent, name))
                if !name.is_empty() && !name.contains('\0') && self.lookup(path).is_none() =>
            {
                let pid = self.lookup(parent).ok_or(())?;
                let id = self.next_id();
                self.link_at(id, NodeRec::new(name, data, acl, stat, pid), path);
                Ok(())
            }
            _ => Err(()),
        }
    }
}
