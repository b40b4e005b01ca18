//! The watch registry of one server: which connection waits for what.
//! Not replicated — each server keeps the watches of its own clients.
//!
//! Model (ZooKeeper 3.9's `WatchManager` with its `WatchStats`): two
//! tables, data and child, each path -> connection -> the modes it holds
//! there. Standard watches fire once; persistent ones stay;
//! persistent-recursive ones stay and also fire for descendants, but never
//! for NodeChildrenChanged. `addWatch` puts a persistent watch in both
//! tables, a recursive one in the data table.
//!
//! A connection may hold every mode on one path at once (a Curator
//! application's recursive cache beside a recipe's children watch, in one
//! session; ZOOKEEPER-4466): none replaces another, and an event that any
//! would fire for reaches the connection once. `removeWatches` removes
//! one mode as ZooKeeper 3.9 does (ZOOKEEPER-4472): children (1) and data
//! (2) the one-shot watch of that table, persistent (4) and recursive (5)
//! those modes, any (3) everything on the path.

use std::collections::{BTreeMap, HashMap, HashSet};

use proto::{ErrorCode, EventType, SetWatches2};

use crate::datatree::{DataTree, Trigger, TriggerKind};
use crate::path;

/// A server-local connection id.
pub type ConnId = u64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchKind {
    /// getData / exists.
    Data,
    /// getChildren.
    Child,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Standard,
    Persistent,
    PersistentRecursive,
}

/// What one connection holds on one path in one table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Held {
    /// A one-shot watch (getData, exists, getChildren).
    standard: bool,
    /// `addWatch` modes.
    persistent: bool,
    recursive: bool,
}

impl Held {
    fn flag(&mut self, mode: Mode) -> &mut bool {
        match mode {
            Mode::Standard => &mut self.standard,
            Mode::Persistent => &mut self.persistent,
            Mode::PersistentRecursive => &mut self.recursive,
        }
    }

    fn is_empty(&self) -> bool {
        !self.standard && !self.persistent && !self.recursive
    }

    /// Does an event of this type at this very path reach the holder?
    fn fires_for(&self, event: EventType) -> bool {
        self.standard
            || self.persistent
            || (self.recursive && event != EventType::NodeChildrenChanged)
    }
}

#[derive(Default, Debug)]
struct Table {
    by_path: HashMap<String, HashMap<ConnId, Held>>,
    /// How many recursive watches this table holds: zero skips the
    /// ancestor walk on every trigger.
    recursive: usize,
}

impl Table {
    fn add(&mut self, path: &str, conn: ConnId, mode: Mode) {
        let held = self
            .by_path
            .entry(path.to_string())
            .or_default()
            .entry(conn)
            .or_default();
        if mode == Mode::PersistentRecursive && !held.recursive {
            self.recursive += 1;
        }
        *held.flag(mode) = true;
    }

    /// Removes `mode` (every mode for None) of `conn` at `path`; whether
    /// there was one.
    fn remove(&mut self, path: &str, conn: ConnId, mode: Option<Mode>) -> bool {
        let Some(m) = self.by_path.get_mut(path) else {
            return false;
        };
        let Some(held) = m.get_mut(&conn) else {
            return false;
        };
        let before = *held;
        match mode {
            None => *held = Held::default(),
            Some(mode) => *held.flag(mode) = false,
        }
        if before.recursive && !held.recursive {
            self.recursive -= 1;
        }
        if held.is_empty() {
            m.remove(&conn);
            if m.is_empty() {
                self.by_path.remove(path);
            }
        }
        match mode {
            None => true,
            Some(mode) => *Held::clone(&before).flag(mode),
        }
    }

    fn contains(&self, path: &str, conn: ConnId, mode: Option<Mode>) -> bool {
        self.by_path
            .get(path)
            .and_then(|m| m.get(&conn))
            .is_some_and(|h| mode.is_none_or(|mode| *Held::clone(h).flag(mode)))
    }

    /// Collects who hears `event` at `path`, consuming fired one-shot watches.
    fn trigger(
        &mut self,
        path: &str,
        event: EventType,
        out: &mut Vec<ConnId>,
        seen: &mut HashSet<ConnId>,
    ) {
        if let Some(m) = self.by_path.get_mut(path) {
            m.retain(|conn, held| {
                if held.fires_for(event) && seen.insert(*conn) {
                    out.push(*conn);
                }
                held.standard = false;
                !held.is_empty()
            });
            if m.is_empty() {
                self.by_path.remove(path);
            }
        }
        if self.recursive == 0 || event == EventType::NodeChildrenChanged {
            return;
        }
        for anc in path::ancestors(path) {
            if let Some(m) = self.by_path.get(anc) {
                for (conn, held) in m {
                    if held.recursive && seen.insert(*conn) {
                        out.push(*conn);
                    }
                }
            }
        }
    }
}

/// A watch event to send to one connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub conn: ConnId,
    pub event: EventType,
    pub path: String,
}

#[derive(Default, Debug)]
pub struct WatchRegistry {
    data: Table,
    child: Table,
    /// conn -> paths it watches in either table, for cleanup on close.
    by_conn: HashMap<ConnId, BTreeMap<String, ()>>,
}

impl WatchRegistry {
    pub fn add(&mut self, kind: WatchKind, path: &str, conn: ConnId) {
        match kind {
            WatchKind::Data => self.data.add(path, conn, Mode::Standard),
            WatchKind::Child => self.child.add(path, conn, Mode::Standard),
        }
        self.by_conn
            .entry(conn)
            .or_default()
            .insert(path.to_string(), ());
    }

    /// `addWatch`: persistent (recursive or not) in both tables.
    /// setWatches (a client reconnecting, perhaps to another server): its
    /// watches registered again here — or, for what changed in `tree`
    /// since `sw.relative_zxid` (the last zxid the client saw), the event
    /// it missed instead, as ZooKeeper's `DataTree.setWatches`. Returns the
    /// events, to send before the reply.
    pub fn replay(&mut self, tree: &DataTree, sw: &SetWatches2, conn: ConnId) -> Vec<Notification> {
        let mut notes = Vec::new();
        let mut note = |event, path: &String| {
            notes.push(Notification {
                conn,
                event,
                path: path.clone(),
            })
        };
        for p in &sw.data_watches {
            match tree.get(p) {
                None => note(EventType::NodeDeleted, p),
                Some(n) if n.stat.mzxid > sw.relative_zxid => note(EventType::NodeDataChanged, p),
                Some(_) => self.add(WatchKind::Data, p, conn),
            }
        }
        for p in &sw.exist_watches {
            match tree.get(p) {
                Some(_) => note(EventType::NodeCreated, p),
                None => self.add(WatchKind::Data, p, conn),
            }
        }
        for p in &sw.child_watches {
            match tree.get(p) {
                None => note(EventType::NodeDeleted, p),
                Some(n) if n.stat.pzxid > sw.relative_zxid => {
                    note(EventType::NodeChildrenChanged, p)
                }
                Some(_) => self.add(WatchKind::Child, p, conn),
            }
        }
        for p in &sw.persistent_watches {
            self.add_persistent(p, conn, false);
        }
        for p in &sw.persistent_recursive_watches {
            self.add_persistent(p, conn, true);
        }
        notes
    }

    pub fn add_persistent(&mut self, path: &str, conn: ConnId, recursive: bool) {
        let mode = if recursive {
            Mode::PersistentRecursive
        } else {
            Mode::Persistent
        };
        self.data.add(path, conn, mode);
        if !recursive {
            self.child.add(path, conn, mode);
        }
        self.by_conn
            .entry(conn)
            .or_default()
            .insert(path.to_string(), ());
    }

    /// Forgets every watch of a closed connection.
    pub fn remove_conn(&mut self, conn: ConnId) {
        if let Some(paths) = self.by_conn.remove(&conn) {
            for p in paths.keys() {
                self.data.remove(p, conn, None);
                self.child.remove(p, conn, None);
            }
        }
    }

    /// removeWatches (`remove == true`) / checkWatches for watcher type
    /// 1 children, 2 data, 3 any, 4 persistent, 5 persistent recursive,
    /// as ZooKeeper 3.9's DataTree.removeWatch / containsWatcher; NoWatcher
    /// when there is none.
    pub fn remove_or_check(
        &mut self,
        path: &str,
        conn: ConnId,
        watcher_type: i32,
        remove: bool,
    ) -> ErrorCode {
        use Mode::*;
        // (child table's mode, data table's mode); the outer None: not that table.
        let (child, data): (Option<Option<Mode>>, Option<Option<Mode>>) = match watcher_type {
            1 => (Some(Some(Standard)), None),
            2 => (None, Some(Some(Standard))),
            3 => (Some(None), Some(None)),
            // checkWatches of a persistent watch looks in the data table.
            4 if remove => (Some(Some(Persistent)), Some(Some(Persistent))),
            4 => (None, Some(Some(Persistent))),
            5 => (None, Some(Some(PersistentRecursive))),
            _ => return ErrorCode::BadArguments,
        };
        let mut found = false;
        for (mode, table) in [(child, &mut self.child), (data, &mut self.data)] {
            let Some(mode) = mode else { continue };
            found |= if remove {
                table.remove(path, conn, mode)
            } else {
                table.contains(path, conn, mode)
            };
            // checkWatches of any: the child table's answer is enough.
            if found && !remove && watcher_type == 3 {
                break;
            }
        }
        if found {
            ErrorCode::Ok
        } else {
            ErrorCode::NoWatcher
        }
    }

    /// Turns an applied entry's triggers into notifications, in order.
    /// Fired standard watches are consumed; the event reaches only
    /// connections for which `can_read(conn, acl)` holds (ZooKeeper 3.8
    /// sends no event about a node its watcher may not read).
    pub fn fire(
        &mut self,
        triggers: &[Trigger],
        out: &mut Vec<Notification>,
        can_read: impl Fn(ConnId, &[proto::Acl]) -> bool,
    ) {
        let mut conns = Vec::new();
        for t in triggers {
            let mut seen = HashSet::new();
            conns.clear();
            let event = match t.kind {
                TriggerKind::Created => {
                    self.data
                        .trigger(&t.path, EventType::NodeCreated, &mut conns, &mut seen);
                    EventType::NodeCreated
                }
                TriggerKind::DataChanged => {
                    self.data
                        .trigger(&t.path, EventType::NodeDataChanged, &mut conns, &mut seen);
                    EventType::NodeDataChanged
                }
                TriggerKind::Deleted => {
                    self.data
                        .trigger(&t.path, EventType::NodeDeleted, &mut conns, &mut seen);
                    self.child
                        .trigger(&t.path, EventType::NodeDeleted, &mut conns, &mut seen);
                    EventType::NodeDeleted
                }
                TriggerKind::ChildrenChanged => {
                    self.child.trigger(
                        &t.path,
                        EventType::NodeChildrenChanged,
                        &mut conns,
                        &mut seen,
                    );
                    EventType::NodeChildrenChanged
                }
            };
            for &conn in conns.iter().filter(|c| can_read(**c, &t.acl)) {
                out.push(Notification {
                    conn,
                    event,
                    path: t.path.clone(),
                });
            }
        }
    }

    /// Data watches (getData/exists, and persistent ones) by path: what
    /// ZooKeeper's wchs/wchc/wchp report.
    pub fn data_watches(&self) -> impl Iterator<Item = (&str, impl Iterator<Item = ConnId> + '_)> {
        self.data
            .by_path
            .iter()
            .map(|(p, m)| (p.as_str(), m.keys().copied()))
    }

    /// Total watches (path, connection) in both tables.
    pub fn count(&self) -> usize {
        self.data.by_path.values().map(HashMap::len).sum::<usize>()
            + self.child.by_path.values().map(HashMap::len).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trig(kind: TriggerKind, path: &str) -> Trigger {
        Trigger {
            kind,
            path: path.into(),
            acl: crate::acl::open_acl_unsafe().into(),
        }
    }

    #[test]
    fn standard_watches_fire_once() {
        let mut w = WatchRegistry::default();
        w.add(WatchKind::Data, "/a", 1);
        let mut out = Vec::new();
        w.fire(&[trig(TriggerKind::DataChanged, "/a")], &mut out, |_, _| {
            true
        });
        w.fire(&[trig(TriggerKind::DataChanged, "/a")], &mut out, |_, _| {
            true
        });
        assert_eq!(
            out,
            vec![Notification {
                conn: 1,
                event: EventType::NodeDataChanged,
                path: "/a".into()
            }]
        );
    }

    #[test]
    fn delete_notifies_a_connection_once() {
        let mut w = WatchRegistry::default();
        w.add(WatchKind::Data, "/a", 1);
        w.add(WatchKind::Child, "/a", 1);
        let mut out = Vec::new();
        w.fire(&[trig(TriggerKind::Deleted, "/a")], &mut out, |_, _| true);
        assert_eq!(out.len(), 1);
        assert_eq!(w.count(), 0);
    }

    #[test]
    fn recursive_watches_see_descendants_but_not_child_events() {
        let mut w = WatchRegistry::default();
        w.add_persistent("/a", 7, true);
        let mut out = Vec::new();
        w.fire(
            &[
                trig(TriggerKind::Created, "/a/b/c"),
                trig(TriggerKind::ChildrenChanged, "/a/b"),
            ],
            &mut out,
            |_, _| true,
        );
        w.fire(
            &[trig(TriggerKind::ChildrenChanged, "/a")],
            &mut out,
            |_, _| true,
        );
        assert_eq!(
            out,
            vec![Notification {
                conn: 7,
                event: EventType::NodeCreated,
                path: "/a/b/c".into()
            }]
        );
        assert_eq!(
            w.count(),
            1,
            "persistent watches stay (a recursive one in the data table, as ZooKeeper 3.9)"
        );
    }

    #[test]
    fn persistent_watch_sees_child_events_and_stays() {
        let mut w = WatchRegistry::default();
        w.add_persistent("/a", 7, false);
        let mut out = Vec::new();
        w.fire(
            &[
                trig(TriggerKind::ChildrenChanged, "/a"),
                trig(TriggerKind::Created, "/a/b"),
            ],
            &mut out,
            |_, _| true,
        );
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].event, EventType::NodeChildrenChanged);
    }

    #[test]
    fn a_one_shot_watch_beside_a_persistent_one_on_the_same_path_fires() {
        // Curator: a recursive cache and a children watch in one session.
        let mut w = WatchRegistry::default();
        w.add_persistent("/p", 7, true);
        w.add(WatchKind::Child, "/p", 7);
        w.add(WatchKind::Data, "/p", 7);
        let mut out = Vec::new();
        let create = [
            trig(TriggerKind::Created, "/p/c"),
            trig(TriggerKind::ChildrenChanged, "/p"),
        ];
        w.fire(&create, &mut out, |_, _| true);
        let events: Vec<_> = out.iter().map(|n| (n.event, n.path.as_str())).collect();
        assert_eq!(
            events,
            vec![
                (EventType::NodeCreated, "/p/c"),
                (EventType::NodeChildrenChanged, "/p")
            ]
        );
        // The child watch is spent, the recursive one stays, and so does
        // the one-shot data watch (nothing changed /p's data).
        out.clear();
        w.fire(&create, &mut out, |_, _| true);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].event, EventType::NodeCreated);
        out.clear();
        w.fire(&[trig(TriggerKind::DataChanged, "/p")], &mut out, |_, _| {
            true
        });
        w.fire(&[trig(TriggerKind::DataChanged, "/p")], &mut out, |_, _| {
            true
        });
        assert_eq!(out.len(), 2, "the recursive watch fires each time: {out:?}");
        // A one-shot watch added after a persistent one does not turn it one-shot.
        let mut w = WatchRegistry::default();
        w.add_persistent("/q", 1, false);
        w.add(WatchKind::Child, "/q", 1);
        out.clear();
        for _ in 0..3 {
            w.fire(
                &[trig(TriggerKind::ChildrenChanged, "/q")],
                &mut out,
                |_, _| true,
            );
        }
        assert_eq!(out.len(), 3);
    }

    #[test]
    fn events_reach_only_readers_but_watches_are_consumed() {
        let mut w = WatchRegistry::default();
        w.add(WatchKind::Data, "/a", 1);
        w.add(WatchKind::Data, "/a", 2);
        let mut out = Vec::new();
        w.fire(&[trig(TriggerKind::DataChanged, "/a")], &mut out, |c, _| {
            c == 2
        });
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].conn, 2);
        assert_eq!(w.count(), 0);
    }

    #[test]
    fn remove_and_check() {
        let mut w = WatchRegistry::default();
        w.add(WatchKind::Child, "/a", 1);
        assert_eq!(w.remove_or_check("/a", 1, 2, false), ErrorCode::NoWatcher);
        assert_eq!(w.remove_or_check("/a", 1, 3, false), ErrorCode::Ok);
        assert_eq!(w.remove_or_check("/a", 1, 1, true), ErrorCode::Ok);
        assert_eq!(w.count(), 0);
        w.add(WatchKind::Data, "/b", 2);
        w.remove_conn(2);
        assert_eq!(w.count(), 0);
    }

    #[test]
    fn every_mode_on_one_path_and_one_removed_at_a_time_as_zookeeper_3_9() {
        // ZOOKEEPER-4466 / 4472: a one-shot data watch, a persistent and a
        // recursive watch of one connection on one path, removed one by one.
        let mut w = WatchRegistry::default();
        w.add(WatchKind::Data, "/a", 1);
        w.add_persistent("/a", 1, false);
        w.add_persistent("/a", 1, true);
        let fire = |w: &mut WatchRegistry, kind, path: &str| {
            let mut out = Vec::new();
            w.fire(&[trig(kind, path)], &mut out, |_, _| true);
            out.len()
        };
        assert_eq!(w.remove_or_check("/a", 1, 5, false), ErrorCode::Ok);
        assert_eq!(w.remove_or_check("/a", 1, 4, true), ErrorCode::Ok);
        assert_eq!(w.remove_or_check("/a", 1, 4, true), ErrorCode::NoWatcher);
        // The recursive one is still there: a grandchild's change is heard,
        // and the one-shot watch too.
        assert_eq!(fire(&mut w, TriggerKind::DataChanged, "/a/b/c"), 1);
        assert_eq!(w.remove_or_check("/a", 1, 2, true), ErrorCode::Ok);
        assert_eq!(w.remove_or_check("/a", 1, 2, true), ErrorCode::NoWatcher);
        assert_eq!(w.remove_or_check("/a", 1, 1, false), ErrorCode::NoWatcher);
        assert_eq!(fire(&mut w, TriggerKind::DataChanged, "/a"), 1);
        assert_eq!(fire(&mut w, TriggerKind::ChildrenChanged, "/a"), 0);
        assert_eq!(w.remove_or_check("/a", 1, 5, true), ErrorCode::Ok);
        assert_eq!(w.count(), 0);
        assert_eq!(fire(&mut w, TriggerKind::DataChanged, "/a/b"), 0);
        assert_eq!(w.remove_or_check("/a", 1, 6, true), ErrorCode::BadArguments);
    }
}
