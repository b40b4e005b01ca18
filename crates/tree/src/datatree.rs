//! The znode tree and its Stat bookkeeping, with an undo log so that a
//! failed `multi` leaves no trace.
//!
//! Owns: nodes by full path, children sets, the ephemeral / container / TTL
//! indexes. Does not own: the meaning of requests (see `apply`), watches.
//!
//! Invariants: every node but "/" has its parent in the map and is named
//! in the parent's `children`; the indexes list exactly the nodes whose
//! `ephemeral_owner` says so; cversion and pzxid of a node never decrease.

use imbl::{HashMap, OrdMap, OrdSet};
use std::sync::Arc;

use proto::{Acl, Stat};

use crate::acl;
use crate::path;

/// `EphemeralType.CONTAINER_EPHEMERAL_OWNER`.
pub const CONTAINER_OWNER: i64 = i64::MIN;
/// High byte marking an extended ephemeral owner (`EphemeralType` TTL).
pub const TTL_OWNER_MASK: i64 = 0xff00_0000_0000_0000u64 as i64;
/// `EphemeralType.TTL.maxValue()`.
pub const MAX_TTL_MS: i64 = 0x0000_00ff_ffff_ffff;

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

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Znode {
    /// `None` is ZooKeeper's null data, distinct from empty.
    pub data: Option<Vec<u8>>,
    /// Shared with the watch triggers that need it.
    pub acl: Arc<[Acl]>,
    /// As ZooKeeper's `StatPersisted`: `cversion` here counts the creates
    /// under this node (sequential suffixes come from it); `data_length`
    /// and `num_children` are derived when the Stat is read.
    pub stat: Stat,
    /// Persistent (structurally shared): a snapshot's clone costs nothing
    /// and a later change copies only what it touches.
    pub children: OrdSet<String>,
}

impl Znode {
    pub fn new(data: Option<Vec<u8>>, acl: Vec<Acl>, stat: Stat) -> Znode {
        Znode {
            data,
            acl: acl.into(),
            stat,
            children: OrdSet::new(),
        }
    }

    /// The Stat as a client sees it (ZooKeeper's `DataNode.copyStat`):
    /// cversion counts changes, i.e. every create and every delete, which
    /// is `2 * creates - children still present`; containers and TTL nodes
    /// show no ephemeral owner.
    pub fn stat(&self) -> Stat {
        let num_children = self.children.len() as i32;
        Stat {
            data_length: self.data.as_ref().map_or(0, |d| d.len() as i32),
            num_children,
            cversion: self
                .stat
                .cversion
                .wrapping_mul(2)
                .wrapping_sub(num_children),
            ephemeral_owner: match owner_kind(self.stat.ephemeral_owner) {
                OwnerKind::Ephemeral(s) => s,
                _ => 0,
            },
            ..self.stat
        }
    }
}

/// A change that watches may be waiting for, reported by apply as data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub kind: TriggerKind,
    pub path: String,
    /// The ACL of the node the event is about (the parent's for
    /// ChildrenChanged): only connections that may READ it hear the event.
    pub acl: Arc<[Acl]>,
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
    Inserted(String),
    Removed(String, Znode),
    Stat(String, Stat),
    Data(String, Option<Vec<u8>>),
    Acl(String, Arc<[Acl]>),
}

/// Cloning is O(1): every collection is persistent, so a snapshot takes a
/// clone on the thread that applies and encodes it on another.
#[derive(Debug, Clone)]
pub struct DataTree {
    nodes: HashMap<String, Znode>,
    /// Session id -> its ephemeral paths (sorted: close deletes in this order).
    ephemerals: OrdMap<i64, OrdSet<String>>,
    /// Container and TTL nodes, the candidates of the cleanup check.
    containers: OrdSet<String>,
    ttls: OrdSet<String>,
    /// Total bytes of data, for `mntr`'s approximate data size.
    data_bytes: u64,
    /// Total bytes of paths ("/" counts 1), the other half of it.
    path_bytes: u64,
    /// Undo records of the entry being applied; `rollback` replays them.
    undo: Vec<Undo>,
    /// Triggers of the entry being applied, dropped on rollback.
    triggers: Vec<Trigger>,
}

pub const ZOOKEEPER: &str = "/zookeeper";
pub const QUOTA: &str = "/zookeeper/quota";
pub const CONFIG: &str = "/zookeeper/config";

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

impl DataTree {
    /// A fresh tree: "/", "/zookeeper", "/zookeeper/quota" and
    /// "/zookeeper/config", with zero Stats as in ZooKeeper.
    pub fn new() -> DataTree {
        let mut t = DataTree::empty();
        let open = acl::open_acl_unsafe;
        t.nodes.insert(
            "/".into(),
            Znode::new(Some(vec![]), open(), Stat::default()),
        );
        // ZooKeeper sets the config node's ACL after creating it, which leaves
        // its aversion at -1.
        let config_stat = Stat {
            aversion: -1,
            ..Stat::default()
        };
        for (p, a, stat) in [
            (ZOOKEEPER, open(), Stat::default()),
            (QUOTA, open(), Stat::default()),
            (CONFIG, acl::read_acl_unsafe(), config_stat),
        ] {
            let (parent, name) = path::split(p).unwrap();
            t.nodes
                .get_mut(parent)
                .unwrap()
                .children
                .insert(name.into());
            t.nodes.insert(p.into(), Znode::new(Some(vec![]), a, stat));
        }
        t.path_bytes = t.nodes.keys().map(|p| p.len() as u64).sum();
        t
    }

    /// ZooKeeper's `isSpecialPath`: nodes no client may delete.
    pub fn is_special(path: &str) -> bool {
        matches!(path, "/" | ZOOKEEPER | QUOTA | CONFIG)
    }

    /// A tree with no nodes at all, for restoring a snapshot into.
    pub(crate) fn empty() -> DataTree {
        DataTree {
            nodes: HashMap::new(),
            ephemerals: OrdMap::new(),
            containers: OrdSet::new(),
            ttls: OrdSet::new(),
            data_bytes: 0,
            path_bytes: 0,
            undo: Vec::new(),
            triggers: Vec::new(),
        }
    }

    /// Adds a node read from a snapshot: its parent must be there already
    /// ("/" comes first). Err when the snapshot breaks that rule.
    pub(crate) fn restore_node(&mut self, path: String, node: Znode) -> Result<(), ()> {
        if path == "/" {
            if self.nodes.contains_key("/") {
                return Err(());
            }
            self.data_bytes += node.data.as_ref().map_or(0, |d| d.len()) as u64;
            self.path_bytes += 1;
            self.nodes.insert(path, node);
            return Ok(());
        }
        match path::split(&path) {
            Some((parent, name))
                if !name.is_empty()
                    && self.nodes.contains_key(parent)
                    && !self.nodes.contains_key(&path) =>
            {
                self.link(path, node);
                Ok(())
            }
            _ => Err(()),
        }
    }

    /// Every node, parents before children (children in name order).
    pub fn visit_preorder(&self, mut f: impl FnMut(&str, &Znode)) {
        let mut stack = vec!["/".to_string()];
        while let Some(p) = stack.pop() {
            let Some(n) = self.nodes.get(&p) else {
                continue;
            };
            f(&p, n);
            for c in n.children.iter().rev() {
                stack.push(if p == "/" {
                    format!("/{c}")
                } else {
                    format!("{p}/{c}")
                });
            }
        }
    }

    pub fn get(&self, path: &str) -> Option<&Znode> {
        self.nodes.get(path)
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn data_bytes(&self) -> u64 {
        self.data_bytes
    }

    /// ZooKeeper's approximate data size: the length of every path and
    /// of every node's data.
    pub fn approximate_data_size(&self) -> u64 {
        self.data_bytes + self.path_bytes
    }

    pub fn ephemerals(&self) -> &OrdMap<i64, OrdSet<String>> {
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
    }

    /// Ends an entry and hands over its triggers.
    pub(crate) fn take_triggers(&mut self) -> Vec<Trigger> {
        self.undo.clear();
        std::mem::take(&mut self.triggers)
    }

    /// Undoes every change since `begin`, newest first.
    pub(crate) fn rollback(&mut self) {
        while let Some(u) = self.undo.pop() {
            match u {
                Undo::Inserted(p) => {
                    self.unlink(&p);
                }
                Undo::Removed(p, n) => self.link(p, n),
                Undo::Stat(p, s) => self.nodes.get_mut(&p).expect("undo of a live node").stat = s,
                Undo::Data(p, d) => {
                    let n = self.nodes.get_mut(&p).expect("undo of a live node");
                    self.data_bytes -= n.data.as_ref().map_or(0, |d| d.len()) as u64;
                    self.data_bytes += d.as_ref().map_or(0, |d| d.len()) as u64;
                    n.data = d;
                }
                Undo::Acl(p, a) => self.nodes.get_mut(&p).expect("undo of a live node").acl = a,
            }
        }
        self.triggers.clear();
    }

    fn link(&mut self, path: String, node: Znode) {
        let (parent, name) = path::split(&path).expect("absolute path");
        self.nodes
            .get_mut(parent)
            .expect("parent exists")
            .children
            .insert(name.to_string());
        match owner_kind(node.stat.ephemeral_owner) {
            OwnerKind::Ephemeral(s) => {
                self.ephemerals.entry(s).or_default().insert(path.clone());
            }
            OwnerKind::Container => {
                self.containers.insert(path.clone());
            }
            OwnerKind::Ttl(_) => {
                self.ttls.insert(path.clone());
            }
            OwnerKind::Persistent => {}
        }
        self.data_bytes += node.data.as_ref().map_or(0, |d| d.len()) as u64;
        self.path_bytes += path.len() as u64;
        let prev = self.nodes.insert(path, node);
        assert!(prev.is_none(), "linked a path twice");
    }

    fn unlink(&mut self, path: &str) -> Znode {
        let node = self.nodes.remove(path).expect("unlink of a live node");
        assert!(node.children.is_empty(), "unlink of a node with children");
        let (parent, name) = path::split(path).expect("absolute path");
        self.nodes
            .get_mut(parent)
            .expect("parent exists")
            .children
            .remove(name);
        match owner_kind(node.stat.ephemeral_owner) {
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
        self.data_bytes -= node.data.as_ref().map_or(0, |d| d.len()) as u64;
        self.path_bytes -= path.len() as u64;
        node
    }

    fn trigger(&mut self, kind: TriggerKind, path: String, acl: Arc<[Acl]>) {
        self.triggers.push(Trigger { kind, path, acl });
    }

    fn save_stat(&mut self, path: &str) -> &mut Znode {
        let n = self.nodes.get_mut(path).expect("stat of a live node");
        self.undo.push(Undo::Stat(path.to_string(), n.stat));
        n
    }

    /// Creates `path` (its parent must exist, it must not) and updates the
    /// parent as ZooKeeper's `createNode`: cversion to `parent_cversion`,
    /// pzxid to `zxid`.
    pub(crate) fn create(
        &mut self,
        path: &str,
        node: Znode,
        parent_cversion: i32,
        zxid: i64,
    ) -> Stat {
        let (parent, _) = path::split(path).expect("absolute path");
        let p = self.save_stat(parent);
        assert!(parent_cversion >= p.stat.cversion, "cversion only grows");
        p.stat.cversion = parent_cversion;
        p.stat.pzxid = zxid;
        let parent_acl = p.acl.clone();
        let parent = parent.to_string();
        let stat = node.stat();
        let acl = node.acl.clone();
        self.link(path.to_string(), node);
        self.undo.push(Undo::Inserted(path.to_string()));
        self.trigger(TriggerKind::Created, path.to_string(), acl);
        self.trigger(TriggerKind::ChildrenChanged, parent, parent_acl);
        stat
    }

    /// Deletes a childless `path` as ZooKeeper's `deleteNode`: the parent's
    /// pzxid moves to `zxid`; its cversion does not change.
    pub(crate) fn delete(&mut self, path: &str, zxid: i64) {
        let (parent, _) = path::split(path).expect("absolute path");
        let p = self.save_stat(parent);
        if zxid > p.stat.pzxid {
            p.stat.pzxid = zxid;
        }
        let parent_acl = p.acl.clone();
        let parent = parent.to_string();
        let node = self.unlink(path);
        let acl = node.acl.clone();
        self.undo.push(Undo::Removed(path.to_string(), node));
        self.trigger(TriggerKind::Deleted, path.to_string(), acl);
        self.trigger(TriggerKind::ChildrenChanged, parent, parent_acl);
    }

    pub(crate) fn set_data(
        &mut self,
        path: &str,
        data: Option<Vec<u8>>,
        zxid: i64,
        time_ms: i64,
    ) -> Stat {
        let n = self.save_stat(path);
        n.stat.version = n.stat.version.wrapping_add(1);
        n.stat.mzxid = zxid;
        n.stat.mtime = time_ms;
        let new_len = data.as_ref().map_or(0, |d| d.len()) as u64;
        let old = std::mem::replace(&mut n.data, data);
        let stat = n.stat();
        let acl = n.acl.clone();
        self.data_bytes = self.data_bytes - old.as_ref().map_or(0, |d| d.len()) as u64 + new_len;
        self.undo.push(Undo::Data(path.to_string(), old));
        self.trigger(TriggerKind::DataChanged, path.to_string(), acl);
        stat
    }

    pub(crate) fn set_acl(&mut self, path: &str, acl: Vec<Acl>) -> Stat {
        let n = self.save_stat(path);
        n.stat.aversion = n.stat.aversion.wrapping_add(1);
        let old = std::mem::replace(&mut n.acl, acl.into());
        let stat = n.stat();
        self.undo.push(Undo::Acl(path.to_string(), old));
        stat
    }

    /// All paths under `prefix` (inclusive), for getAllChildrenNumber.
    pub fn count_descendants(&self, path: &str) -> usize {
        let mut n = 0;
        let mut stack = vec![path.to_string()];
        while let Some(p) = stack.pop() {
            if let Some(node) = self.nodes.get(&p) {
                for c in &node.children {
                    n += 1;
                    stack.push(if p == "/" {
                        format!("/{c}")
                    } else {
                        format!("{p}/{c}")
                    });
                }
            }
        }
        n
    }

    /// An order-independent digest of every node's path, data, ACL and
    /// Stat, for comparing replicas.
    pub fn digest(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut sum = 0u64;
        for (p, n) in &self.nodes {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            p.hash(&mut h);
            n.data.hash(&mut h);
            n.stat().to_bytes_hash(&mut h);
            for a in n.acl.iter() {
                a.perms.hash(&mut h);
                a.id.scheme.hash(&mut h);
                a.id.id.hash(&mut h);
            }
            sum = sum.wrapping_add(h.finish());
        }
        sum
    }
}

trait StatHash {
    fn to_bytes_hash<H: std::hash::Hasher>(&self, h: &mut H);
}
impl StatHash for Stat {
    fn to_bytes_hash<H: std::hash::Hasher>(&self, h: &mut H) {
        use proto::Jute;
        h.write(&self.to_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(owner: i64) -> Znode {
        Znode::new(
            Some(b"d".to_vec()),
            acl::open_acl_unsafe(),
            Stat {
                ephemeral_owner: owner,
                ..Stat::default()
            },
        )
    }

    #[test]
    fn fresh_tree_has_zookeeper_nodes() {
        let t = DataTree::new();
        assert_eq!(t.node_count(), 4);
        assert_eq!(t.get("/").unwrap().stat().num_children, 1);
        assert_eq!(t.get("/zookeeper").unwrap().stat().num_children, 2);
    }

    #[test]
    fn rollback_restores_everything() {
        let mut t = DataTree::new();
        t.begin();
        t.create("/a", node(0), 1, 5);
        t.take_triggers();
        let before = t.digest();
        t.begin();
        t.create("/a/e", node(77), 1, 6);
        t.set_data("/a", None, 6, 100);
        t.set_acl("/a", acl::read_acl_unsafe());
        t.delete("/a/e", 6);
        t.create("/c", node(CONTAINER_OWNER), 2, 6);
        t.rollback();
        assert_eq!(t.digest(), before);
        assert!(t.ephemerals().is_empty());
        assert_eq!(t.containers().count(), 0);
        assert_eq!(t.data_bytes(), 1);
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
}
