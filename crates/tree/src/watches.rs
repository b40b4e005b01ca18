//! The watch registry of one server: which connection waits for what.
//! Not replicated — each server keeps the watches of its own clients.
//!
//! Model (ZooKeeper's `WatchManager` with `WatcherModeManager`): two
//! tables, data and child, each path -> connection -> what it holds there.
//! Standard watches fire once; persistent ones stay; persistent-recursive
//! ones stay and also fire for descendants, but never for
//! NodeChildrenChanged. `addWatch` puts a watch in both tables.
//!
//! A connection may hold a one-shot watch and a persistent one on the same
//! path at once (a Curator application's recursive cache beside a recipe's
//! children watch, in one session): neither replaces the other, and an
//! event that either would fire for reaches the connection once, as in
//! ZooKeeper 3.8 and 3.9.

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
    /// `addWatch`: `Persistent` or `PersistentRecursive`.
    lasting: Option<Mode>,
}

impl Held {
    fn recursive(&self) -> bool {
        self.lasting == Some(Mode::PersistentRecursive)
    }

    /// Does an event of this type at this very path reach the holder?
    fn fires_for(&self, event: EventType) -> bool {
        match self.lasting {
            _ if self.standard => true,
            Some(Mode::PersistentRecursive) => event != EventType::NodeChildrenChanged,
            Some(_) => true,
            None => false,
        }
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
        if mode == Mode::Standard {
            held.standard = true;
            return;
        }
        if held.recursive() {
            self.recursive -= 1;
        }
        held.lasting = Some(mode);
        if held.recursive() {
            self.recursive += 1;
        }
    }

    fn remove(&mut self, path: &str, conn: ConnId) -> bool {
        let Some(m) = self.by_path.get_mut(path) else {
            return false;
        };
        let Some(held) = m.remove(&conn) else {
            return false;
        };
        if held.recursive() {
            self.recursive -= 1;
        }
        if m.is_empty() {
            self.by_path.remove(path);
        }
        true
    }

    fn contains(&self, path: &str, conn: ConnId) -> bool {
        self.by_path
            .get(path)
            .is_some_and(|m| m.contains_key(&conn))
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
                held.lasting.is_some()
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
                    if held.recursive() && seen.insert(*conn) {
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
        self.child.add(path, conn, mode);
        self.by_conn
            .entry(conn)
            .or_default()
            .insert(path.to_string(), ());
    }

    /// Forgets every watch of a closed connection.
    pub fn remove_conn(&mut self, conn: ConnId) {
        if let Some(paths) = self.by_conn.remove(&conn) {
            for p in paths.keys() {
                self.data.remove(p, conn);
                self.child.remove(p, conn);
            }
        }
    }

    /// removeWatches (`remove == true`) / checkWatches for watcher type
    /// 1 children, 2 data, 3 any; NoWatcher when there is none.
    pub fn remove_or_check(
        &mut self,
        path: &str,
        conn: ConnId,
        watcher_type: i32,
        remove: bool,
    ) -> ErrorCode {
        let (d, c) = match watcher_type {
            1 => (false, true),
            2 => (true, false),
            3 => (true, true),
            _ => return ErrorCode::BadArguments,
        };
        let mut found = false;
        for (want, table) in [(d, &mut self.data), (c, &mut self.child)] {
            if want && table.contains(path, conn) {
                found = true;
                if remove {
                    table.remove(path, conn);
                }
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
        assert_eq!(w.count(), 2, "persistent watches stay");
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
}
