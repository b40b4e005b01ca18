//! The znode tree and its Stat bookkeeping, with an undo log so that a
//! failed `multi` leaves no trace.
//!
//! Owns: the nodes, each node's children, the ephemeral / container / TTL
//! indexes, the interned ACL lists. Does not own: the meaning of requests
//! (see `apply`), watches.
//!
//! Layout, chosen for memory per znode and for snapshots:
//! - Nodes live in an arena of slots addressed by a `u32` id, in chunks of
//!   `CHUNK` slots behind an `Arc`. A snapshot (`freeze`) clones the chunk
//!   pointers only; the first later change to a chunk copies that chunk
//!   (copy-on-write), so a snapshot costs O(chunks) on the applying thread
//!   and is encoded on another.
//! - A node is its parent's id, the 4-byte id of its interned ACL list,
//!   and a thin pointer to one allocation of exactly its size holding its
//!   name, its Stat (as varints) and its data (`NodeRec`, in `body`): 16
//!   bytes of slot. No path is stored; paths
//!   are walked component by component through the children tables.
//! - Each node with children has a hash table of their ids (keyed by
//!   name), outside the snapshot: it is rebuilt when a snapshot is loaded.
//!   Children come back in table order, not sorted (ZooKeeper's come in
//!   `HashSet` order too).
//!
//! Rooms: `body` (the record and its packed body: every `unsafe`),
//! `arena` (slots and vacant slots), `children` (children tables),
//! `acl_table` (interned ACL lists), `restore` (a tree from a snapshot's
//! nodes), `replay` (ZooKeeper's rules for a transaction it logged, for a
//! takeover), `digest`; this file keeps the tree, its lookups, and the
//! operations with their undo log.
//!
//! Ids are local to a process: they are never replicated or shown, and a
//! restored replica may number its nodes differently.
//!
//! Invariants: every node but the root (id 0) has a live parent whose
//! children table lists it under its name, and names are unique among
//! siblings; the indexes list exactly the nodes whose `ephemeral_owner`
//! says so; cversion and pzxid of a node never decrease.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use hashbrown::{HashMap, HashTable};
use proto::{Acl, Stat};

use crate::acl;
use crate::path;

mod acl_table;
mod arena;
mod body;
mod children;
mod digest;
pub mod quota;
mod replay;
mod restore;

pub(crate) use arena::*;
pub(crate) use body::*;
pub use children::Children;
pub(crate) use children::*;
pub(crate) use digest::{acl_hash, data_hash, meta_hash, path_hash};
pub(crate) use replay::Skipped;

/// `EphemeralType.CONTAINER_EPHEMERAL_OWNER`.
pub const CONTAINER_OWNER: i64 = i64::MIN;
/// High byte marking an extended ephemeral owner (`EphemeralType` TTL).
pub const TTL_OWNER_MASK: i64 = 0xff00_0000_0000_0000u64 as i64;
/// `EphemeralType.TTL.maxValue()`.
pub const MAX_TTL_MS: i64 = 0x0000_00ff_ffff_ffff;

/// An ACL list, shared: interned by the tree, handed to triggers.
pub type AclList = Arc<Vec<Acl>>;

/// A node's ACL list: its number in the tree's table of interned lists
/// (4 bytes in every node's slot, which is 16 bytes with it).
pub(crate) type AclId = u32;

/// Slots per arena chunk: the unit a snapshot shares and a change copies.
pub(crate) const CHUNK: usize = 256;
pub(crate) const ROOT: u32 = 0;
/// The root's parent.
pub(crate) const NO_PARENT: u32 = u32::MAX;

/// What an `ephemeral_owner` value says about its node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerKind {
    Persistent,
    Ephemeral(i64),
    Container,
    Ttl(i64),
}

pub fn owner_kind(owner: i64) -> OwnerKind {
    if owner == 0 {
        OwnerKind::Persistent
    } else if owner == CONTAINER_OWNER {
        OwnerKind::Container
    } else if owner & TTL_OWNER_MASK == TTL_OWNER_MASK {
        OwnerKind::Ttl(owner & MAX_TTL_MS)
    } else {
        OwnerKind::Ephemeral(owner)
    }
}

/// A node as callers see it: borrowed from the tree.
#[derive(Debug, Clone, Copy)]
pub struct Znode<'a> {
    /// The persisted Stat: `cversion` is the count of creates under the
    /// node; data length and child count are zero here (see `stat()`).
    pub stat: Stat,
    /// `None` is ZooKeeper's null data, distinct from empty.
    pub data: Option<&'a [u8]>,
    /// Shared with the watch triggers that need it.
    pub acl: &'a AclList,
    pub children: Children<'a>,
}

impl Znode<'_> {
    /// The Stat as a client sees it.
    pub fn stat(&self) -> Stat {
        PStat::from_stat(&self.stat)
            .client_stat(self.data.map_or(0, <[u8]>::len), self.children.len())
    }
}

/// A change that watches may be waiting for, reported by apply as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub kind: TriggerKind,
    pub path: String,
    /// The ACL of the node the event is about (the parent's for
    /// ChildrenChanged): only connections that may READ it hear the event.
    pub acl: AclList,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TriggerKind {
    Created,
    Deleted,
    DataChanged,
    /// `path` is the parent whose children changed.
    ChildrenChanged,
}

/// One step back for the undo log.
#[derive(Debug, Clone)]
enum Undo {
    Inserted(u32),
    Removed(u32, NodeRec),
    Stat(u32, PStat),
    Data(u32, Body),
    Acl(u32, AclId),
}

#[derive(Debug)]
pub struct DataTree {
    arena: Arena,
    /// Vacant slots below the arena's end, reused lowest first.
    free: FreeSlots,
    /// By id: the node's children (id and name hash), keyed by their names.
    kids: Vec<Option<Box<HashTable<Kid>>>>,
    /// Where children go in their tables (see `children`).
    placement: Placement,
    /// Listing orders kept until the children change (see `children`).
    orders: Orders,
    count: usize,
    /// The interned ACL lists (in `arena.acls`) by content.
    acl_ids: HashMap<AclList, AclId, Hasher>,
    /// Nodes using each list, by id.
    acl_refs: Vec<u32>,
    /// Ids of lists no node uses, to be reused.
    acl_free: Vec<AclId>,
    /// Lists interned since unused ones were last swept, and how many were
    /// in use then.
    acls_new: usize,
    acls_swept: usize,
    /// Session id -> its ephemeral paths (sorted: close deletes in this order).
    ephemerals: BTreeMap<i64, BTreeSet<String>>,
    /// Container and TTL nodes, the candidates of the cleanup check.
    containers: BTreeSet<String>,
    ttls: BTreeSet<String>,
    /// Paths that have a quota (a `zookeeper_limits` node: `quota`).
    quota_roots: BTreeSet<String>,
    /// Total bytes of data, for `mntr`'s approximate data size.
    data_bytes: u64,
    /// Total bytes of paths ("/" counts 1), the other half of it.
    path_bytes: u64,
    /// Undo records of the entry being applied; `rollback` replays them.
    undo: Vec<Undo>,
    /// Triggers of the entry being applied, dropped on rollback.
    triggers: Vec<Trigger>,
    /// The entry being applied may be rolled back (`keep_undo`).
    undoable: bool,
    /// The tree digest (see `digest`), kept as the tree changes, and its
    /// value when the entry being applied began (rollback restores it).
    digest: u64,
    digest_at_begin: u64,
}

/// A full copy (the indexes are rebuilt); snapshots use `freeze`.
impl Clone for DataTree {
    fn clone(&self) -> DataTree {
        DataTree::from_arena(self.arena.clone()).expect("a live tree is consistent")
    }
}

pub use proto::path::{CONFIG, QUOTA, ZOOKEEPER};

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a set of restored nodes does not make a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadTree(pub String);

impl DataTree {
    /// A fresh tree: "/", "/zookeeper", "/zookeeper/quota" and
    /// "/zookeeper/config", with zero Stats as in ZooKeeper.
    pub fn new() -> DataTree {
        let mut t = DataTree::empty();
        let open = t.intern(acl::open_acl_unsafe());
        let root = t.next_id();
        assert_eq!(root, ROOT);
        t.link_at(
            root,
            NodeRec::new("", Some(&[]), open, PStat::default(), NO_PARENT),
            "/",
        );
        // ZooKeeper sets the config node's ACL after creating it, which leaves
        // its aversion at -1.
        let config_stat = PStat {
            aversion: -1,
            ..PStat::default()
        };
        let read = t.intern(acl::read_acl_unsafe());
        for (p, a, stat) in [
            (ZOOKEEPER, open, PStat::default()),
            (QUOTA, open, PStat::default()),
            (CONFIG, read, config_stat),
        ] {
            let (parent, name) = path::split(p).unwrap();
            let pid = t.lookup(parent).unwrap();
            let id = t.next_id();
            t.link_at(id, NodeRec::new(name, Some(&[]), a, stat, pid), p);
        }
        t.recompute_digest();
        t
    }

    fn view(&self, id: u32) -> Option<Znode<'_>> {
        let rec = self.arena.get(id)?;
        let (stat, data) = rec.stat_and_data();
        Some(Znode {
            stat: stat.to_stat(),
            data,
            acl: self.arena.acl(rec),
            children: self.children_of(id),
        })
    }

    fn children_of(&self, id: u32) -> Children<'_> {
        Children {
            arena: &self.arena,
            set: self.kids.get(id as usize).and_then(|s| s.as_deref()),
            id,
            orders: &self.orders,
        }
    }

    /// The child of `parent` named `name`.
    fn child(&self, parent: u32, name: &str) -> Option<u32> {
        let set = self.kids.get(parent as usize)?.as_deref()?;
        let hash = name_hash(name);
        set.find(self.placement.spread(hash), |k| {
            k.hash == hash && self.arena.get(k.id).is_some_and(|r| r.name() == name)
        })
        .map(|k| k.id)
    }

    /// The id of the node at `path`, walking it name by name; None for a
    /// missing node and for a path that is not in canonical form.
    fn lookup(&self, path: &str) -> Option<u32> {
        let rest = path.strip_prefix('/')?;
        if rest.is_empty() {
            return self.arena.get(ROOT).map(|_| ROOT);
        }
        let mut id = ROOT;
        for name in rest.split('/') {
            if name.is_empty() {
                return None;
            }
            id = self.child(id, name)?;
        }
        Some(id)
    }

    /// The full path of a live node.
    fn path_of(&self, id: u32) -> String {
        path_in(&self.arena, id)
    }

    /// Every node, parents before children (children in name order).
    pub fn visit_preorder(&self, mut f: impl FnMut(&str, Znode<'_>)) {
        let mut stack = vec!["/".to_string()];
        while let Some(p) = stack.pop() {
            let Some(n) = self.get(&p) else {
                continue;
            };
            f(&p, n);
            let mut names: Vec<&str> = n.children.iter().collect();
            names.sort_unstable();
            for c in names.iter().rev() {
                stack.push(if p == "/" {
                    format!("/{c}")
                } else {
                    format!("{p}/{c}")
                });
            }
        }
    }

    pub fn get(&self, path: &str) -> Option<Znode<'_>> {
        self.view(self.lookup(path)?)
    }

    /// The node at `path` and its id, for a change that follows a check
    /// (one walk of the path instead of two).
    pub(crate) fn find(&self, path: &str) -> Option<(u32, Znode<'_>)> {
        let id = self.lookup(path)?;
        Some((id, self.view(id)?))
    }

    pub fn node_count(&self) -> usize {
        self.count
    }

    pub fn data_bytes(&self) -> u64 {
        self.data_bytes
    }

    /// ZooKeeper's approximate data size: the length of every path and
    /// of every node's data.
    pub fn approximate_data_size(&self) -> u64 {
        self.data_bytes + self.path_bytes
    }

    pub fn ephemerals(&self) -> &BTreeMap<i64, BTreeSet<String>> {
        &self.ephemerals
    }

    pub fn containers(&self) -> impl Iterator<Item = &str> {
        self.containers.iter().map(String::as_str)
    }

    pub fn ttls(&self) -> impl Iterator<Item = &str> {
        self.ttls.iter().map(String::as_str)
    }

    /// Starts an entry: forgets the previous entry's undo log and triggers.
    pub(crate) fn begin(&mut self) {
        self.undo.clear();
        self.triggers.clear();
        self.undoable = false;
        self.digest_at_begin = self.digest;
        self.sweep_acls();
    }

    /// The entry being applied may be rolled back (a multi): every change
    /// keeps what it replaced. Outside a multi nothing is rolled back, so a
    /// setData may overwrite a value in place.
    pub(crate) fn keep_undo(&mut self) {
        self.undoable = true;
    }

    /// Ends an entry and hands over its triggers.
    pub(crate) fn take_triggers(&mut self) -> Vec<Trigger> {
        self.undo.clear();
        std::mem::take(&mut self.triggers)
    }

    /// Undoes every change since `begin`, newest first (after `keep_undo`).
    pub(crate) fn rollback(&mut self) {
        assert!(self.undoable, "rollback of an entry that kept no undo log");
        while let Some(u) = self.undo.pop() {
            match u {
                Undo::Inserted(id) => {
                    let p = self.path_of(id);
                    self.unlink(id, &p);
                }
                Undo::Removed(id, rec) => {
                    let mut p = self.path_of(rec.parent);
                    if p.len() > 1 {
                        p.push('/');
                    }
                    p.push_str(rec.name());
                    self.free.take(id);
                    self.link_at(id, rec, &p);
                }
                Undo::Stat(id, s) => self.arena.get_mut(id).set_stat(s),
                Undo::Data(id, body) => {
                    let n = self.arena.get_mut(id);
                    let old = n.data_len() as u64;
                    n.body = body;
                    let new = n.data_len() as u64;
                    self.data_bytes = self.data_bytes - old + new;
                }
                Undo::Acl(id, a) => {
                    let now = std::mem::replace(&mut self.arena.get_mut(id).acl, a);
                    self.acl_unused(now);
                    self.acl_used(a);
                }
            }
        }
        self.digest = self.digest_at_begin;
        self.triggers.clear();
    }

    fn next_id(&mut self) -> u32 {
        self.free.pop().unwrap_or_else(|| {
            let id = self.arena.slots() as u32;
            // Grow by a chunk; hand out its slots lowest first.
            self.arena.put(id, None);
            self.kids.resize_with(self.arena.slots(), || None);
            for f in id + 1..self.arena.slots() as u32 {
                self.free.push(f);
            }
            id
        })
    }

    fn index_add(&mut self, owner: i64, path: &str) {
        match owner_kind(owner) {
            OwnerKind::Ephemeral(s) => {
                self.ephemerals
                    .entry(s)
                    .or_default()
                    .insert(path.to_string());
            }
            OwnerKind::Container => {
                self.containers.insert(path.to_string());
            }
            OwnerKind::Ttl(_) => {
                self.ttls.insert(path.to_string());
            }
            OwnerKind::Persistent => {}
        }
    }

    /// The kept listing order of `parent`'s children is stale (a child
    /// came or went): drop it. Nothing to hash when none is kept.
    fn forget_order(&mut self, parent: u32) {
        let orders = self.orders.get_mut();
        if !orders.is_empty() {
            orders.remove(&parent);
        }
    }

    /// Puts `rec` (whose parent is live) in the vacant slot `id` at `path`.
    fn link_at(&mut self, id: u32, rec: NodeRec, path: &str) {
        if self.kids.len() <= id as usize {
            self.kids.resize_with(id as usize + 1, || None);
        }
        if rec.parent != NO_PARENT {
            let hash = name_hash(rec.name());
            let placement = self.placement;
            self.forget_order(rec.parent);
            self.kids[rec.parent as usize]
                .get_or_insert_with(Default::default)
                .insert_unique(placement.spread(hash), Kid { id, hash }, |k| {
                    placement.spread(k.hash)
                });
        }
        let (stat, data) = rec.stat_and_data();
        self.index_add(stat.ephemeral_owner, path);
        self.quota_index(path, true);
        self.data_bytes += data.map_or(0, <[u8]>::len) as u64;
        self.path_bytes += path.len() as u64;
        self.count += 1;
        self.acl_used(rec.acl);
        let prev = self.arena.put(id, Some(rec));
        assert!(prev.is_none(), "linked into a live slot");
    }

    fn unlink(&mut self, id: u32, path: &str) -> NodeRec {
        let rec = self.arena.put(id, None).expect("unlink of a live node");
        self.acl_unused(rec.acl);
        let kids = self.kids[id as usize].take();
        assert!(
            kids.as_ref().is_none_or(|k| k.is_empty()),
            "unlink of a node with children"
        );
        self.forget_order(id);
        if rec.parent != NO_PARENT {
            let hash = name_hash(rec.name());
            let placement = self.placement;
            self.forget_order(rec.parent);
            if let Some(set) = self.kids[rec.parent as usize].as_mut() {
                if let Ok(e) = set.find_entry(placement.spread(hash), |k| k.id == id) {
                    e.remove();
                }
                if set.is_empty() {
                    self.kids[rec.parent as usize] = None;
                } else if set.len() * 8 < set.capacity() && set.capacity() > 64 {
                    // Tables do not shrink by themselves: a parent that had
                    // a million children and now has a few would keep
                    // megabytes, and its few children spread over them.
                    set.shrink_to(set.len() * 2, |k| placement.spread(k.hash));
                }
            }
        }
        let (stat, data) = rec.stat_and_data();
        let data_len = data.map_or(0, <[u8]>::len) as u64;
        match owner_kind(stat.ephemeral_owner) {
            OwnerKind::Ephemeral(s) => {
                if let Some(set) = self.ephemerals.get_mut(&s) {
                    set.remove(path);
                    if set.is_empty() {
                        self.ephemerals.remove(&s);
                    }
                }
            }
            OwnerKind::Container => {
                self.containers.remove(path);
            }
            OwnerKind::Ttl(_) => {
                self.ttls.remove(path);
            }
            OwnerKind::Persistent => {}
        }
        self.quota_index(path, false);
        self.data_bytes -= data_len;
        self.path_bytes -= path.len() as u64;
        self.count -= 1;
        self.free.push(id);
        rec
    }

    fn trigger(&mut self, kind: TriggerKind, path: String, acl: AclId) {
        let acl = self.arena.acls[acl as usize].clone();
        self.triggers.push(Trigger { kind, path, acl });
    }

    /// The node `id` and its Stat, which the undo log keeps.
    fn save_stat(&mut self, id: u32) -> (&mut NodeRec, PStat) {
        let n = self.arena.get_mut(id);
        let stat = n.stat();
        self.undo.push(Undo::Stat(id, stat));
        (n, stat)
    }

    /// Creates `path` (its parent must exist, it must not) and updates the
    /// parent as ZooKeeper's `createNode`: cversion to `parent_cversion`,
    /// pzxid to `zxid`. Returns the new node's Stat as a client sees it.
    #[cfg(test)]
    pub(crate) fn create(
        &mut self,
        path: &str,
        data: Option<&[u8]>,
        acl: Vec<Acl>,
        stat: Stat,
        parent_cversion: i32,
        zxid: i64,
    ) -> Stat {
        let (parent, _) = path::split(path).expect("absolute path");
        let pid = self.lookup(parent).expect("parent exists");
        self.create_under(pid, path, data, acl, stat, parent_cversion, zxid)
    }

    /// Puts a node's cversion where a test wants it (the digest follows).
    #[cfg(test)]
    pub(crate) fn set_cversion(&mut self, path: &str, cversion: i32) {
        let id = self.lookup(path).expect("a live node");
        let mut st = self.arena.get(id).expect("live").stat();
        st.cversion = cversion;
        self.arena.get_mut(id).set_stat(st);
        self.recompute_digest();
    }

    /// Whether the node `parent` has a child of this name.
    pub(crate) fn has_child(&self, parent: u32, name: &str) -> bool {
        self.child(parent, name).is_some()
    }

    /// `create` under the node `pid` (found at `path`'s parent path).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn create_under(
        &mut self,
        pid: u32,
        path: &str,
        data: Option<&[u8]>,
        acl: Vec<Acl>,
        stat: Stat,
        parent_cversion: i32,
        zxid: i64,
    ) -> Stat {
        let (parent, name) = path::split(path).expect("absolute path");
        // Digest: the parent's meta hash from its Stat before and after,
        // the new node's hashes (no node is read back for them).
        let (pp, p_new) = (path_hash(parent), path_hash(path));
        let nkids = self.children_of(pid).len();
        let parent_acl_hash = acl_hash(self.arena.acl(self.arena.get(pid).expect("live")));
        let acl_h = acl_hash(&acl);
        let (p, mut pstat) = self.save_stat(pid);
        let plen = p.data_len();
        let parent_before = meta_hash(pp, &pstat.client_stat(plen, nkids), parent_acl_hash);
        // As ZooKeeper's createNode: only a greater cversion is taken (with
        // the pzxid). A replayed fuzzy snapshot may repeat one; and past
        // i32::MAX the next one wraps negative and is not taken, so the
        // cversion stays at its maximum, as in ZooKeeper (a sequential
        // create then finds its name taken: NodeExists).
        if parent_cversion > pstat.cversion {
            pstat.cversion = parent_cversion;
            pstat.pzxid = zxid;
        }
        p.set_stat(pstat);
        let parent_after = meta_hash(pp, &pstat.client_stat(plen, nkids + 1), parent_acl_hash);
        let parent_acl = p.acl;
        let acl = self.intern(acl);
        let stat = PStat::from_stat(&stat);
        let id = self.next_id();
        let rec = NodeRec::new(name, data, acl, stat, pid);
        let client = stat.client_stat(data.map_or(0, <[u8]>::len), 0);
        self.link_at(id, rec, path);
        self.digest = self
            .digest
            .wrapping_sub(parent_before)
            .wrapping_add(parent_after)
            .wrapping_add(meta_hash(p_new, &client, acl_h))
            .wrapping_add(data_hash(p_new, data));
        self.undo.push(Undo::Inserted(id));
        if name == quota::STATS {
            self.quota_recount(path, id);
        }
        self.quota_account(path, data.map_or(0, <[u8]>::len) as i64, 1);
        self.trigger(TriggerKind::Created, path.to_string(), acl);
        self.trigger(TriggerKind::ChildrenChanged, parent.to_string(), parent_acl);
        client
    }

    /// Deletes a childless `path` as ZooKeeper's `deleteNode`: the parent's
    /// pzxid moves to `zxid`; its cversion does not change.
    pub(crate) fn delete(&mut self, path: &str, zxid: i64) {
        let (parent, _) = path::split(path).expect("absolute path");
        let id = self.lookup(path).expect("delete of a live node");
        let pid = self.arena.get(id).expect("a live node").parent;
        // Digest: the parent's meta hash from its Stat before and after,
        // the node's hashes from the record unlinked.
        let pp = path_hash(parent);
        let nkids = self.children_of(pid).len();
        let parent_acl_hash = acl_hash(self.arena.acl(self.arena.get(pid).expect("live")));
        let (p, mut pstat) = self.save_stat(pid);
        let plen = p.data_len();
        let parent_before = meta_hash(pp, &pstat.client_stat(plen, nkids), parent_acl_hash);
        if zxid > pstat.pzxid {
            pstat.pzxid = zxid;
            p.set_stat(pstat);
        }
        let parent_after = meta_hash(pp, &pstat.client_stat(plen, nkids - 1), parent_acl_hash);
        let parent_acl = p.acl;
        let rec = self.unlink(id, path);
        let node = {
            let pn = path_hash(path);
            let (st, data) = rec.stat_and_data();
            let client = st.client_stat(data.map_or(0, <[u8]>::len), 0);
            meta_hash(pn, &client, acl_hash(self.arena.acl(&rec))).wrapping_add(data_hash(pn, data))
        };
        self.digest = self
            .digest
            .wrapping_sub(parent_before)
            .wrapping_sub(node)
            .wrapping_add(parent_after);
        let acl = rec.acl;
        let len = rec.data_len() as i64;
        self.undo.push(Undo::Removed(id, rec));
        self.quota_account(path, -len, -1);
        self.trigger(TriggerKind::Deleted, path.to_string(), acl);
        self.trigger(TriggerKind::ChildrenChanged, parent.to_string(), parent_acl);
    }

    #[cfg(test)]
    pub(crate) fn set_data(
        &mut self,
        path: &str,
        data: Option<&[u8]>,
        zxid: i64,
        time_ms: i64,
    ) -> Stat {
        let id = self.lookup(path).expect("set of a live node");
        self.set_data_at(id, path, data, zxid, time_ms)
    }

    /// Sets `/zookeeper/config` as ZooKeeper's reconfig and
    /// `initConfigInZKDatabase` do: data, mzxid and mtime, the data
    /// version left at -1. The node is outside the digest (as ZooKeeper's
    /// digest leaves out all of `/zookeeper`): a server's own reading of
    /// its config files may differ from its peers'. Fires the node's data
    /// watches; nothing to undo (never inside a multi).
    pub fn set_config(&mut self, data: &[u8], zxid: i64, time_ms: i64) -> Stat {
        let id = self
            .lookup(CONFIG)
            .expect("/zookeeper/config is always there");
        let nkids = self.children_of(id).len();
        let n = self.arena.get_mut(id);
        let mut st = n.stat();
        st.version = -1;
        st.mzxid = zxid;
        st.mtime = time_ms;
        let old_len = n.data_len() as u64;
        n.set_data(st, Some(data));
        let acl = n.acl;
        self.data_bytes = self.data_bytes - old_len + data.len() as u64;
        self.trigger(TriggerKind::DataChanged, CONFIG.to_string(), acl);
        st.client_stat(data.len(), nkids)
    }

    /// `set_data` of the node `id` (found at `path`).
    pub(crate) fn set_data_at(
        &mut self,
        id: u32,
        path: &str,
        data: Option<&[u8]>,
        zxid: i64,
        time_ms: i64,
    ) -> Stat {
        let nkids = self.children_of(id).len();
        let undoable = self.undoable;
        // Digest: the node's hashes from its Stat and data before and after.
        let p = path_hash(path);
        let acl_h = acl_hash(self.arena.acl(self.arena.get(id).expect("live")));
        let (n, mut st) = self.save_stat(id);
        let before = meta_hash(p, &st.client_stat(n.data_len(), nkids), acl_h)
            .wrapping_add(data_hash(p, n.data()));
        st.version = st.version.wrapping_add(1);
        st.mzxid = zxid;
        st.mtime = time_ms;
        let old_len = n.data_len() as u64;
        let old = if !undoable && n.set_data_in_place(&st, data) {
            None
        } else {
            Some(n.set_data(st, data))
        };
        let new_len = data.map_or(0, <[u8]>::len) as u64;
        let stat = st.client_stat(new_len as usize, nkids);
        let acl = n.acl;
        self.digest = self
            .digest
            .wrapping_sub(before)
            .wrapping_add(meta_hash(p, &stat, acl_h))
            .wrapping_add(data_hash(p, data));
        self.data_bytes = self.data_bytes - old_len + new_len;
        if let Some(old) = old {
            self.undo.push(Undo::Data(id, old));
        }
        self.quota_account(path, new_len as i64 - old_len as i64, 0);
        self.trigger(TriggerKind::DataChanged, path.to_string(), acl);
        stat
    }

    pub(crate) fn set_acl(&mut self, path: &str, acl: Vec<Acl>) -> Stat {
        let id = self.lookup(path).expect("set of a live node");
        let nkids = self.children_of(id).len();
        let p = path_hash(path);
        let (old_h, new_h) = (
            acl_hash(self.arena.acl(self.arena.get(id).expect("live"))),
            acl_hash(&acl),
        );
        let acl = self.intern(acl);
        let (n, mut st) = self.save_stat(id);
        let before = meta_hash(p, &st.client_stat(n.data_len(), nkids), old_h);
        st.aversion = st.aversion.wrapping_add(1);
        n.set_stat(st);
        let old = std::mem::replace(&mut n.acl, acl);
        let stat = st.client_stat(n.data_len(), nkids);
        self.acl_used(acl);
        self.acl_unused(old);
        self.undo.push(Undo::Acl(id, old));
        self.digest = self
            .digest
            .wrapping_sub(before)
            .wrapping_add(meta_hash(p, &stat, new_h));
        stat
    }

    /// All nodes under `path` (not counting it), for getAllChildrenNumber.
    pub fn count_descendants(&self, path: &str) -> usize {
        let Some(id) = self.lookup(path) else {
            return 0;
        };
        let mut n = 0;
        let mut stack = vec![id];
        while let Some(id) = stack.pop() {
            if let Some(set) = self.kids.get(id as usize).and_then(|s| s.as_deref()) {
                n += set.len();
                stack.extend(set.iter().map(|k| k.id));
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(owner: i64) -> Stat {
        Stat {
            ephemeral_owner: owner,
            ..Stat::default()
        }
    }

    fn create(t: &mut DataTree, path: &str, owner: i64, cversion: i32, zxid: i64) {
        t.create(
            path,
            Some(b"d"),
            acl::open_acl_unsafe(),
            stat(owner),
            cversion,
            zxid,
        );
    }

    #[test]
    fn fresh_tree_has_zookeeper_nodes() {
        let t = DataTree::new();
        assert_eq!(t.node_count(), 4);
        assert_eq!(t.get("/").unwrap().stat().num_children, 1);
        assert_eq!(t.get("/zookeeper").unwrap().stat().num_children, 2);
        assert_eq!(t.approximate_data_size(), 1 + 10 + 16 + 17);
    }

    #[test]
    fn a_children_table_shrinks_when_its_children_are_deleted() {
        let mut t = DataTree::new();
        create(&mut t, "/p", 0, 1, 5);
        for i in 0..10_000 {
            create(&mut t, &format!("/p/n{i}"), 0, 1, 6);
        }
        let id = t.lookup("/p").unwrap() as usize;
        let big = t.kids[id].as_ref().unwrap().capacity();
        assert!(big >= 10_000, "{big}");
        for i in 5..10_000 {
            t.delete(&format!("/p/n{i}"), 7);
        }
        let small = t.kids[id].as_ref().unwrap().capacity();
        assert!(small <= 64, "{big} -> {small}");
        let mut names: Vec<&str> = t.get("/p").unwrap().children.iter().collect();
        names.sort_unstable();
        assert_eq!(names, ["n0", "n1", "n2", "n3", "n4"]);
        for i in 0..5 {
            assert!(t.get(&format!("/p/n{i}")).is_some());
        }
    }

    /// Two trees holding the same children after different histories (one
    /// grew to 3,000 and shrank, one only ever held the survivors; each with
    /// its own random placement key), and a copy restored from one of them,
    /// list the children in the same order: the order is a function of the
    /// set of names.
    #[test]
    fn children_are_listed_in_one_order_whatever_the_history() {
        let mut grown = DataTree::new();
        create(&mut grown, "/p", 0, 1, 5);
        for i in 0..3_000 {
            create(&mut grown, &format!("/p/n{i}"), 0, 1, 6);
        }
        for i in (0..3_000).filter(|i| i % 7 != 0) {
            grown.delete(&format!("/p/n{i}"), 7);
        }
        let mut fresh = DataTree::new();
        create(&mut fresh, "/p", 0, 1, 5);
        for i in (0..3_000).filter(|i| i % 7 == 0).rev() {
            create(&mut fresh, &format!("/p/n{i}"), 0, 1, 6);
        }
        let list = |t: &DataTree| t.get("/p").unwrap().children.names();
        let want = list(&grown);
        assert_eq!(want.len(), 429);
        assert_eq!(list(&fresh), want);
        assert_eq!(list(&grown.clone()), want);
        let mut sorted = want.clone();
        sorted.sort_unstable();
        assert_ne!(sorted, want, "listed by hash, not by name");
    }

    /// A long listing is kept until the children change: every change
    /// (create, delete, and their rollback) shows in the next listing.
    #[test]
    fn a_kept_listing_follows_every_change() {
        let mut t = DataTree::new();
        create(&mut t, "/p", 0, 1, 5);
        for i in 0..40 {
            create(&mut t, &format!("/p/n{i}"), 0, 1, 6);
        }
        let list = |t: &DataTree| {
            let mut v = t.get("/p").unwrap().children.names();
            v.sort_unstable();
            v
        };
        let mut want: Vec<String> = (0..40).map(|i| format!("n{i}")).collect();
        want.sort_unstable();
        assert_eq!(list(&t), want);
        assert!(t.orders.borrow().contains_key(&t.lookup("/p").unwrap()));
        create(&mut t, "/p/x", 0, 2, 7);
        want.push("x".into());
        assert_eq!(list(&t), want);
        t.delete("/p/n3", 8);
        want.retain(|n| n != "n3");
        assert_eq!(list(&t), want);
        t.begin();
        t.keep_undo();
        create(&mut t, "/p/y", 0, 3, 9);
        t.delete("/p/n4", 9);
        let mut during = want.clone();
        during.push("y".into());
        during.retain(|n| n != "n4");
        during.sort_unstable();
        assert_eq!(list(&t), during);
        t.rollback();
        assert_eq!(list(&t), want);
    }

    #[test]
    fn lookup_needs_canonical_paths() {
        let mut t = DataTree::new();
        create(&mut t, "/a", 0, 1, 5);
        create(&mut t, "/a/b", 0, 1, 6);
        assert!(t.get("/a/b").is_some());
        for p in ["", "a", "/a/", "//a", "/a//b", "/a/b/", "/a/c", "/b"] {
            assert!(t.get(p).is_none(), "{p:?}");
        }
    }

    #[test]
    fn rollback_restores_everything() {
        let mut t = DataTree::new();
        t.begin();
        create(&mut t, "/a", 0, 1, 5);
        create(&mut t, "/a/x", 0, 1, 5);
        t.take_triggers();
        let before = t.digest();
        let size = t.approximate_data_size();
        t.begin();
        t.keep_undo();
        create(&mut t, "/a/e", 77, 2, 6);
        t.set_data("/a", None, 6, 100);
        t.set_acl("/a", acl::read_acl_unsafe());
        t.delete("/a/e", 6);
        t.delete("/a/x", 6);
        create(&mut t, "/a/y", 0, 3, 6);
        create(&mut t, "/c", CONTAINER_OWNER, 2, 6);
        t.rollback();
        assert_eq!(t.digest(), before);
        assert!(t.get("/a/x").is_some() && t.get("/a/y").is_none());
        assert!(t.ephemerals().is_empty());
        assert_eq!(t.containers().count(), 0);
        assert_eq!(t.data_bytes(), 2);
        assert_eq!(t.approximate_data_size(), size);
        assert_eq!(t.node_count(), 6);
    }

    #[test]
    fn a_frozen_arena_keeps_its_state_while_the_tree_changes() {
        let mut t = DataTree::new();
        for i in 0..600 {
            create(&mut t, &format!("/n{i}"), 0, i + 1, 5);
        }
        let frozen = t.freeze();
        let digest = t.digest();
        t.set_data("/n3", Some(b"changed"), 7, 1);
        t.delete("/n599", 8);
        let back = DataTree::from_arena(frozen).unwrap();
        assert_eq!(back.digest(), digest);
        assert_eq!(back.get("/n3").unwrap().data, Some(&b"d"[..]));
        assert_eq!(back.node_count(), 604);
        assert_eq!(t.clone().digest(), t.digest());
    }

    #[test]
    fn from_arena_refuses_what_is_not_a_tree() {
        let rec = |name: &str, parent| NodeRec::new(name, None, 0, PStat::default(), parent);
        let build = |nodes: Vec<(u32, NodeRec)>| {
            let mut a = Arena::default();
            a.acls = Arc::new(vec![acl::open_acl_unsafe().into()]);
            for (id, r) in nodes {
                a.put(id, Some(r));
            }
            DataTree::from_arena(a)
        };
        assert!(build(vec![(0, rec("", NO_PARENT)), (1, rec("a", 0))]).is_ok());
        assert!(
            build(vec![(1, rec("", NO_PARENT))]).is_err(),
            "no root at 0"
        );
        assert!(build(vec![(0, rec("", NO_PARENT)), (1, rec("a", 7))]).is_err());
        let mut no_acl = rec("a", 0);
        no_acl.acl = 1;
        assert!(
            build(vec![(0, rec("", NO_PARENT)), (1, no_acl)]).is_err(),
            "an ACL id not in the table"
        );
        assert!(build(vec![
            (0, rec("", NO_PARENT)),
            (1, rec("a", 0)),
            (2, rec("a", 0))
        ])
        .is_err());
        assert!(build(vec![(0, rec("", NO_PARENT)), (1, rec("a/b", 0))]).is_err());
        assert!(
            build(vec![
                (0, rec("", NO_PARENT)),
                (1, rec("x", 2)),
                (2, rec("y", 1))
            ])
            .is_err(),
            "a cycle"
        );
    }

    proptest::proptest! {
        /// Free slots come back lowest first, whatever order they were
        /// freed and taken in.
        #[test]
        fn free_slots_are_handed_out_lowest_first(ops in proptest::collection::vec((0u8..3, 0u32..300), 1..200)) {
            let mut f = FreeSlots::default();
            let mut model = BTreeSet::new();
            for (op, id) in ops {
                match op {
                    0 => {
                        f.push(id);
                        model.insert(id);
                    }
                    1 => {
                        f.take(id);
                        model.remove(&id);
                    }
                    _ => proptest::prop_assert_eq!(f.pop(), model.pop_first()),
                }
            }
            while let Some(id) = model.pop_first() {
                proptest::prop_assert_eq!(f.pop(), Some(id));
            }
            proptest::prop_assert_eq!(f.pop(), None);
        }
    }

    proptest::proptest! {
        /// Any Stat, name and data come back from a node's body as they went
        /// in, extremes included (the body keeps zxids and times as
        /// differences, which must wrap and unwrap).
        #[test]
        fn node_bodies_keep_what_they_hold(
            z in proptest::array::uniform6(proptest::prelude::any::<i64>()),
            v in proptest::array::uniform3(proptest::prelude::any::<i32>()),
            name in "[a-z0-9-]{0,40}",
            data in proptest::option::of(proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300)),
        ) {
            let stat = PStat {
                czxid: z[0],
                mzxid: z[1],
                pzxid: z[2],
                ctime: z[3],
                mtime: z[4],
                ephemeral_owner: z[5],
                version: v[0],
                cversion: v[1],
                aversion: v[2],
            };
            let mut rec = NodeRec::new(&name, data.as_deref(), 0, stat, 7);
            proptest::prop_assert_eq!(rec.stat(), stat);
            proptest::prop_assert_eq!(rec.name(), name.as_str());
            proptest::prop_assert_eq!(rec.data(), data.as_deref());
            let other = PStat { version: stat.version.wrapping_add(1), ..PStat::default() };
            rec.set_stat(other);
            proptest::prop_assert_eq!(rec.stat(), other);
            proptest::prop_assert_eq!(rec.name(), name.as_str());
            proptest::prop_assert_eq!(rec.data(), data.as_deref());
            rec.set_data(stat, None);
            proptest::prop_assert_eq!((rec.stat(), rec.name(), rec.data()), (stat, name.as_str(), None));
        }
    }

    #[test]
    fn a_typical_node_body_fits_an_allocation_of_128_bytes() {
        // The race's nodes: 100 bytes of data, names like "c-12-31234",
        // zxids near a million, times in ms since 1970.
        let stat = PStat {
            czxid: 1 << 20,
            mzxid: 1 << 20,
            pzxid: 1 << 20,
            ctime: 1_764_000_000_000,
            mtime: 1_764_000_000_000,
            ..PStat::default()
        };
        let rec = NodeRec::new("c-12-31234", Some(&[7; 100]), 0, stat, 1);
        assert!(rec.body.len() <= 128, "{}", rec.body.len());
        assert_eq!(std::mem::size_of::<Option<NodeRec>>(), 16);
    }

    #[test]
    fn unused_acl_lists_are_swept_and_snapshots_keep_theirs() {
        let mut t = DataTree::new();
        create(&mut t, "/a", 0, 1, 5);
        let list = |i: u32| {
            vec![Acl {
                perms: proto::Perms::ALL,
                id: proto::Id {
                    scheme: "digest".into(),
                    id: format!("u{i}:x"),
                },
            }]
        };
        let mut frozen = Vec::new();
        for i in 0..500 {
            t.begin();
            t.set_acl("/a", list(i));
            if i % 50 == 0 {
                frozen.push((t.freeze(), list(i)));
            }
        }
        // A list per setACL, but the table keeps about as many as were in
        // use at a sweep plus those interned since.
        assert!(t.arena.acls.len() <= 100, "{} lists", t.arena.acls.len());
        assert_eq!(**t.get("/a").unwrap().acl, list(499));
        for (arena, want) in frozen {
            let t = DataTree::from_arena(arena).unwrap();
            assert_eq!(**t.get("/a").unwrap().acl, want);
        }
        // Rolled back: the list comes back even after a sweep freed others.
        t.begin();
        t.keep_undo();
        t.set_acl("/a", list(1000));
        t.rollback();
        assert_eq!(**t.get("/a").unwrap().acl, list(499));
        t.begin();
        assert_eq!(**t.get("/a").unwrap().acl, list(499));
    }

    #[test]
    fn owner_kinds() {
        assert_eq!(owner_kind(0), OwnerKind::Persistent);
        assert_eq!(owner_kind(CONTAINER_OWNER), OwnerKind::Container);
        assert_eq!(owner_kind(TTL_OWNER_MASK | 500), OwnerKind::Ttl(500));
        assert_eq!(
            owner_kind(0x0100_0000_0000_0001),
            OwnerKind::Ephemeral(0x0100_0000_0000_0001)
        );
    }

    mod model {
        //! Random histories against a plain map of path -> node.
        use super::super::*;
        use super::stat;
        use proptest::prelude::*;
        use std::collections::BTreeMap;

        const PATHS: [&str; 7] = ["/a", "/b", "/a/x", "/a/y", "/b/z", "/a/x/q", "/a/x/r"];

        #[derive(Debug, Clone)]
        enum Op {
            Create(usize, Option<Vec<u8>>, i64),
            Delete(usize),
            Set(usize, Option<Vec<u8>>),
            SetAcl(usize, bool),
            /// Apply these, then roll them back.
            Undone(Vec<Op>),
            /// Freeze now; check the frozen copy at the end.
            Freeze,
            Reload,
        }

        fn op() -> impl Strategy<Value = Op> {
            let data = proptest::option::of(proptest::collection::vec(any::<u8>(), 0..20));
            let leaf = prop_oneof![
                (
                    0..PATHS.len(),
                    data.clone(),
                    prop_oneof![Just(0i64), Just(7), Just(9), Just(CONTAINER_OWNER)]
                )
                    .prop_map(|(p, d, o)| Op::Create(p, d, o)),
                (0..PATHS.len()).prop_map(Op::Delete),
                (0..PATHS.len(), data).prop_map(|(p, d)| Op::Set(p, d)),
                (0..PATHS.len(), any::<bool>()).prop_map(|(p, r)| Op::SetAcl(p, r)),
                Just(Op::Freeze),
                Just(Op::Reload),
            ];
            prop_oneof![
                8 => leaf.clone(),
                1 => proptest::collection::vec(leaf, 1..6).prop_map(Op::Undone),
            ]
        }

        /// path -> (data, read-only ACL, owner)
        type Model = BTreeMap<String, (Option<Vec<u8>>, bool, i64)>;

        fn apply(
            t: &mut DataTree,
            m: &mut Model,
            op: &Op,
            zxid: &mut i64,
            frozen: &mut Vec<(Arena, Model)>,
        ) {
            *zxid += 1;
            match op {
                Op::Create(p, d, owner) => {
                    let p = PATHS[*p];
                    let (parent, _) = path::split(p).unwrap();
                    let parent_ok = parent == "/"
                        || m.get(parent)
                            .is_some_and(|n| !matches!(owner_kind(n.2), OwnerKind::Ephemeral(_)));
                    if parent_ok && !m.contains_key(p) {
                        let cv = t.get(parent).unwrap().stat.cversion + 1;
                        t.create(
                            p,
                            d.as_deref(),
                            acl::open_acl_unsafe(),
                            stat(*owner),
                            cv,
                            *zxid,
                        );
                        m.insert(p.to_string(), (d.clone(), false, *owner));
                    }
                }
                Op::Delete(p) => {
                    let p = PATHS[*p];
                    let has_kids = m.keys().any(|k| path::split(k).unwrap().0 == p);
                    if m.contains_key(p) && !has_kids {
                        t.delete(p, *zxid);
                        m.remove(p);
                    }
                }
                Op::Set(p, d) => {
                    if let Some(n) = m.get_mut(PATHS[*p]) {
                        t.set_data(PATHS[*p], d.as_deref(), *zxid, 1);
                        n.0 = d.clone();
                    }
                }
                Op::SetAcl(p, ro) => {
                    if let Some(n) = m.get_mut(PATHS[*p]) {
                        let a = if *ro {
                            acl::read_acl_unsafe()
                        } else {
                            acl::open_acl_unsafe()
                        };
                        t.set_acl(PATHS[*p], a);
                        n.1 = *ro;
                    }
                }
                Op::Undone(ops) => {
                    let (digest, size, count) =
                        (t.digest(), t.approximate_data_size(), t.node_count());
                    let mut scratch = m.clone();
                    t.take_triggers();
                    t.begin();
                    t.keep_undo();
                    // Snapshots come between entries, never inside one.
                    for o in ops.iter().filter(|o| !matches!(o, Op::Freeze | Op::Reload)) {
                        apply(t, &mut scratch, o, zxid, &mut Vec::new());
                    }
                    t.rollback();
                    assert_eq!(
                        (t.digest(), t.approximate_data_size(), t.node_count()),
                        (digest, size, count)
                    );
                }
                Op::Freeze => frozen.push((t.freeze(), m.clone())),
                Op::Reload => *t = DataTree::from_arena(t.freeze()).unwrap(),
            }
        }

        fn check(t: &DataTree, m: &Model) {
            assert_eq!(t.node_count(), m.len() + 4);
            assert_eq!(
                t.digest(),
                t.digest_full(),
                "the kept digest is the walked one"
            );
            let mut size = 1 + 10 + 16 + 17;
            let mut eph: BTreeMap<i64, Vec<String>> = BTreeMap::new();
            for (p, (d, ro, owner)) in m {
                let n = t.get(p).unwrap_or_else(|| panic!("{p} missing"));
                assert_eq!(n.data, d.as_deref(), "{p}");
                assert_eq!(n.acl.len(), 1);
                assert_eq!(n.acl[0].perms == proto::Perms::READ, *ro, "{p}");
                let mut kids: Vec<&str> = n.children.iter().collect();
                kids.sort();
                let want: Vec<&str> = m
                    .keys()
                    .filter(|k| path::split(k).unwrap().0 == p)
                    .map(|k| path::split(k).unwrap().1)
                    .collect();
                assert_eq!(kids, want, "{p}");
                size += p.len() + d.as_ref().map_or(0, Vec::len);
                if let OwnerKind::Ephemeral(s) = owner_kind(*owner) {
                    eph.entry(s).or_default().push(p.clone());
                }
            }
            for p in PATHS {
                assert_eq!(t.get(p).is_some(), m.contains_key(p), "{p}");
            }
            assert_eq!(t.approximate_data_size(), size as u64);
            let got: BTreeMap<i64, Vec<String>> = t
                .ephemerals()
                .iter()
                .map(|(s, v)| (*s, v.iter().cloned().collect()))
                .collect();
            assert_eq!(got, eph);
            assert_eq!(
                t.containers().count(),
                m.values().filter(|n| n.2 == CONTAINER_OWNER).count()
            );
        }

        proptest! {
            #[test]
            fn tree_matches_a_map(ops in proptest::collection::vec(op(), 1..60)) {
                let mut t = DataTree::new();
                let mut m = Model::new();
                let mut zxid = 1;
                let mut frozen = Vec::new();
                for op in &ops {
                    t.begin();
                    apply(&mut t, &mut m, op, &mut zxid, &mut frozen);
                    t.take_triggers();
                    check(&t, &m);
                }
                for (arena, model) in frozen {
                    check(&DataTree::from_arena(arena).unwrap(), &model);
                }
            }
        }
    }
}
