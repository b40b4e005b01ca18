//! What the simulation's clients receive: `deliver` reads each reply and
//! event and checks it against what the session has seen (reply order,
//! zxids, stale reads, reads after a sync and on linearizable replicas,
//! the session's own order, watch rules, ACLs, read-only sessions), and
//! records checked writes' outcomes for the linearizability checker.

use super::clients::{Pending, RECENT_READS};
use super::*;

impl Sim {
    pub(super) fn deliver(&mut self, node: u64, conn: ConnId, frame: &[u8]) {
        let minority = !self.in_majority(node);
        let Some(c) = self
            .clients
            .iter_mut()
            .find(|c| c.node == node && c.conn == conn)
        else {
            return;
        };
        let body = &frame[4..];
        if !c.connected {
            if let Ok(r) = ConnectResponse::from_bytes(body) {
                c.connected = r.session_id != 0;
                c.session_id = r.session_id;
                c.read_only = r.read_only == Some(true);
                if c.connected && c.read_only {
                    *self.stats.entry("read-only session").or_default() += 1;
                }
            }
            return;
        }
        let mut r = Reader::new(body);
        let Ok(h) = ReplyHeader::read(&mut r) else {
            return;
        };
        if h.xid == -1 {
            // A watch event: at most one per watch set, and for a change
            // newer than anything the session read of that node — which
            // its next reads must then show.
            if let Ok(ev) = WatcherEvent::read(&mut r) {
                // NodeChildrenChanged (4) fires child watches, the rest data
                // and exists watches.
                let table = if ev.event_type == 4 {
                    &mut c.child_watches
                } else {
                    &mut c.watches
                };
                let removed = table.remove(&ev.path);
                if ev.event_type == 4 {
                    if removed.is_none() {
                        self.session_violations.push(format!(
                            "session of conn {} on {node}: child event for {} with no child watch set (or a second one)",
                            c.conn, ev.path
                        ));
                    } else {
                        *self.stats.entry("child watch event").or_default() += 1;
                    }
                    return;
                }
                match removed {
                    None if c.recursive => {
                        *self.stats.entry("recursive watch event").or_default() += 1;
                    }
                    None if c.persistent.contains(&ev.path) => {
                        *self.stats.entry("persistent watch event").or_default() += 1;
                    }
                    None => self.session_violations.push(format!(
                        "session of conn {} on {node}: event {} for {} with no watch set (or a second one)",
                        c.conn, ev.event_type, ev.path
                    )),
                    Some(seen) => {
                        *self.stats.entry("watch event").or_default() += 1;
                        let floor = c.floor.entry(ev.path.clone()).or_insert(0);
                        *floor = (*floor).max(seen + 1);
                    }
                }
            }
            return;
        }
        if h.xid > 0 {
            // Replies come in request order, each at least as new as the
            // one before (ZooKeeper's FIFO client order).
            let who = format!("session of conn {} on {node}", c.conn);
            if h.xid <= c.last_xid {
                self.session_violations
                    .push(format!("{who}: reply {} after {}", h.xid, c.last_xid));
            }
            if h.zxid < c.last_zxid {
                self.session_violations.push(format!(
                    "{who}: reply {} has zxid {:#x} below {:#x}",
                    h.xid, h.zxid, c.last_zxid
                ));
            }
            c.last_xid = h.xid;
            c.last_zxid = c.last_zxid.max(h.zxid);
        }
        if c.read_only_writes.remove(&h.xid) {
            if h.err == 0 {
                self.violations.push(format!(
                    "read-only session of conn {} on {node}: write xid {} answered OK",
                    c.conn, h.xid
                ));
            } else if h.err == proto::ErrorCode::NotReadOnly.code() {
                *self.stats.entry("NotReadOnly").or_default() += 1;
            }
        }
        match c.pending.remove(&h.xid) {
            Some(Pending::Read(key, watch, sync, linear)) if h.err == 0 => {
                if let Ok(d) = GetDataResponse::read(&mut r) {
                    // A linearizable replica: every change of this key
                    // answered before the read was sent is visible.
                    if let Some(t) = linear {
                        let must = newest_change_before(&self.changed, &key, t);
                        *self.stats.entry("linearizable read").or_default() += 1;
                        if d.stat.mzxid < must {
                            self.violations.push(format!(
                                "linearizable read of {key} on {node} (conn {}) shows mzxid {:#x}, but {must:#x} was answered before it was sent",
                                c.conn, d.stat.mzxid
                            ));
                        }
                    }
                    // After a sync that was answered: every change of this
                    // key answered before the sync was sent is visible.
                    if let Some(t) = sync.filter(|t| c.synced.contains(t)) {
                        let must = newest_change_before(&self.changed, &key, t);
                        *self.stats.entry("read after sync").or_default() += 1;
                        if d.stat.mzxid < must {
                            self.session_violations.push(format!(
                                "session of conn {} on {node}: read of {key} after a sync shows mzxid {:#x}, but {must:#x} was answered before the sync",
                                c.conn, d.stat.mzxid
                            ));
                        }
                    }
                    // Likewise a data or exists watch still unfired.
                    if let Some(&set_at) = c.watches.get(&key) {
                        if d.stat.mzxid > set_at {
                            self.session_violations.push(format!(
                                "session of conn {} on {node}: watch on {key} set at mzxid {set_at:#x} did not fire, yet a later read shows mzxid {:#x}",
                                c.conn, d.stat.mzxid
                            ));
                        }
                    }
                    if watch {
                        let seen = c.watches.entry(key.clone()).or_insert(0);
                        *seen = (*seen).max(d.stat.mzxid);
                    }
                    // A read shows the key as of a state no older than
                    // the session's own writes and earlier reads of it.
                    let floor = c.floor.entry(key.clone()).or_insert(0);
                    if d.stat.mzxid < *floor {
                        self.session_violations.push(format!(
                            "session of conn {} on {node}: read of {key} shows mzxid {:#x}, older than {:#x} it already saw or wrote",
                            c.conn, d.stat.mzxid, *floor
                        ));
                    }
                    *floor = (*floor).max(d.stat.mzxid);
                    if c.recent_reads.len() == RECENT_READS {
                        c.recent_reads.pop_front();
                    }
                    c.recent_reads.push_back((h.xid, key, d.stat.mzxid));
                }
            }
            Some(Pending::Create(path)) if h.err == 0 => {
                self.acked.insert(path.clone(), node);
                if minority {
                    self.acked_by_minority.push(path);
                }
            }
            Some(Pending::Checked(at)) if h.err == proto::ErrorCode::NotReadOnly.code() => {
                self.refused_writes.insert(at);
            }
            Some(Pending::Checked(at)) => {
                let e = &mut self.history[at];
                let out = match (h.err, e.op) {
                    (0, Op::Set { .. }) => match Stat::read(&mut r) {
                        Ok(stat) => Outcome::Ok {
                            version: stat.version,
                        },
                        Err(_) => Outcome::Unknown,
                    },
                    (0, Op::CheckSet { .. }) => multi_outcome(&mut r),
                    (0, _) => Outcome::Ok { version: 0 },
                    (-110, _) => Outcome::NodeExists,
                    (-101, _) => Outcome::NoNode,
                    (-103, _) => Outcome::BadVersion,
                    // Any other answer claims nothing about the write.
                    _ => Outcome::Unknown,
                };
                if out != Outcome::Unknown {
                    e.out = out;
                    e.ret = self.now_ms;
                }
                // A write that changed the node: later reads show it. (Not
                // on the header's error alone: a failed multi answers 0
                // there, as ZooKeeper, and its results say what failed.)
                if let Outcome::Ok { .. } = out {
                    let floor = c.floor.entry(e.key.clone()).or_insert(0);
                    *floor = (*floor).max(h.zxid);
                    self.changed.push((self.now_ms, e.key.clone(), h.zxid));
                    // The session's order: a read it sent before this
                    // write did not show it.
                    for (xid, key, mzxid) in &c.recent_reads {
                        if *xid < h.xid && *key == e.key && *mzxid >= h.zxid {
                            self.session_violations.push(format!(
                                "session of conn {} on {node}: read xid {xid} of {key} shows mzxid {mzxid:#x}, the write xid {} the session sent after it (zxid {:#x})",
                                c.conn, h.xid, h.zxid
                            ));
                        }
                    }
                }
            }
            Some(Pending::Exists(key)) if h.err == 0 || h.err == -101 => {
                // On a missing node too: then it waits for the creation.
                let mzxid = if h.err == 0 {
                    Stat::read(&mut r).map_or(0, |s| s.mzxid)
                } else {
                    0
                };
                let seen = c.watches.entry(key).or_insert(0);
                *seen = (*seen).max(mzxid);
            }
            Some(Pending::Children(path)) if h.err == 0 => {
                if let Ok(d) = GetChildren2Response::read(&mut r) {
                    // A child watch still unfired must not be older than
                    // what this read shows: the event comes before the
                    // reply to any later read (a watch that never fired
                    // went unseen while only "at most once" was checked).
                    if let Some(&set_at) = c.child_watches.get(&path) {
                        if d.stat.pzxid > set_at {
                            self.session_violations.push(format!(
                                "session of conn {} on {node}: child watch on {path} set at pzxid {set_at:#x} did not fire, yet a later read shows pzxid {:#x}",
                                c.conn, d.stat.pzxid
                            ));
                        }
                    }
                    let seen = c.child_watches.entry(path).or_insert(0);
                    *seen = (*seen).max(d.stat.pzxid);
                }
            }
            Some(Pending::Sync(t)) if h.err == 0 => {
                c.synced.insert(t);
            }
            Some(Pending::SetAcl(key, expect)) if h.err == 0 => {
                // A conditioned setACL moves the ACL version by one.
                if let Ok(stat) = Stat::read(&mut r) {
                    *self.stats.entry("setACL").or_default() += 1;
                    if expect != -1 && stat.aversion != expect + 1 {
                        self.session_violations.push(format!(
                            "session of conn {} on {node}: setACL of {key} at version {expect} answered aversion {}",
                            c.conn, stat.aversion
                        ));
                    }
                }
            }
            Some(Pending::Persistent(key)) if h.err == 0 => {
                c.persistent.insert(key);
            }
            Some(Pending::Flagged(flags)) if h.err == 0 => {
                let Ok(path) = String::read(&mut r) else {
                    return;
                };
                if flags & 1 != 0 {
                    self.ephemerals.push((path.clone(), c.session_id));
                    c.own_ephemerals.insert(path.clone());
                } else if flags & 2 != 0 {
                    c.own_sequentials += 1;
                }
                if flags & 2 != 0 && !self.sequential_names.insert(path.clone()) {
                    self.violations
                        .push(format!("sequential name {path} given twice"));
                }
            }
            Some(Pending::Recursive) if h.err == 0 => c.recursive = true,
            Some(Pending::Ephemerals(own)) if h.err == 0 => {
                let Ok(listed) = Vec::<String>::read(&mut r) else {
                    return;
                };
                *self.stats.entry("getEphemerals").or_default() += 1;
                let who = format!("session {:#x} on {node}", c.session_id);
                for p in own.iter().filter(|p| !listed.contains(p)) {
                    self.session_violations
                        .push(format!("{who}: getEphemerals misses its own {p}"));
                }
                // Names asked for, or a sequential one made from a prefix.
                let asked = |p: &String| {
                    c.tried_ephemerals
                        .iter()
                        .any(|t| t == p || (t.ends_with('-') && p.starts_with(t.as_str())))
                };
                for p in listed.iter().filter(|p| !asked(p)) {
                    self.session_violations
                        .push(format!("{who}: getEphemerals lists {p} it never created"));
                }
            }
            Some(Pending::AllChildren(own)) if h.err == 0 => {
                *self.stats.entry("getAllChildrenNumber").or_default() += 1;
                if let Ok(n) = r.i32() {
                    // When the replica has applied nothing since, the
                    // count is exact: walk its tree by paths.
                    let tree = &self.nodes[&node].state().tree;
                    if self.nodes[&node].last_zxid() == h.zxid {
                        let mut walked = 0;
                        let mut stack = vec![String::new()];
                        while let Some(p) = stack.pop() {
                            let at = if p.is_empty() { "/" } else { p.as_str() };
                            for k in tree.get(at).iter().flat_map(|z| z.children.iter()) {
                                walked += 1;
                                stack.push(format!("{p}/{k}"));
                            }
                        }
                        *self.stats.entry("getAllChildrenNumber exact").or_default() += 1;
                        if n != walked {
                            self.session_violations.push(format!(
                                "replica {node} at zxid {:#x}: getAllChildrenNumber(/) = {n}, its tree has {walked} nodes below /",
                                h.zxid
                            ));
                        }
                    }
                    if n < own {
                        self.session_violations.push(format!(
                            "session {:#x} on {node}: getAllChildrenNumber(/) = {n} below its own {own} sequential nodes",
                            c.session_id
                        ));
                    }
                }
            }
            Some(Pending::Counted(kind)) if h.err == 0 => {
                *self.stats.entry(kind).or_default() += 1;
            }
            Some(Pending::Protected(path)) if h.err == 0 => self.protected.push(path),
            Some(Pending::Guarded { write, authed }) => {
                let what = if write { "setData" } else { "getData" };
                let allowed = match h.err {
                    0 => true,
                    -102 => false,
                    _ => return,
                };
                *self
                    .stats
                    .entry(if allowed {
                        "ACL allowed"
                    } else {
                        "ACL refused"
                    })
                    .or_default() += 1;
                if allowed != authed {
                    self.session_violations.push(format!(
                        "session {:#x} on {node}: {what} of a protected node {} with authenticated = {authed}",
                        c.session_id,
                        if allowed { "allowed" } else { "refused" }
                    ));
                }
            }
            Some(
                Pending::Create(_)
                | Pending::Recursive
                | Pending::Ephemerals(_)
                | Pending::AllChildren(_)
                | Pending::Counted(_)
                | Pending::Protected(_)
                | Pending::Read(..)
                | Pending::Flagged(_)
                | Pending::Exists(_)
                | Pending::Children(_)
                | Pending::Sync(_)
                | Pending::SetAcl(..)
                | Pending::Persistent(_),
            )
            | None => {}
        }
    }
}

/// The zxid of the newest change of `key` in `changed` (`Sim::changed`)
/// answered before `t` (0: none).
fn newest_change_before(changed: &[(i64, String, i64)], key: &str, t: i64) -> i64 {
    changed
        .iter()
        .filter(|(ret, k, _)| *ret < t && k == key)
        .map(|(_, _, z)| *z)
        .max()
        .unwrap_or(0)
}

/// What a multi [check, setData] answered: per op a (type, done, err)
/// header and its result — the check's empty, setData's a Stat, a failed
/// op's an error code (type -1). The first error says why it failed.
fn multi_outcome(r: &mut Reader<'_>) -> Outcome {
    fn parse(r: &mut Reader<'_>) -> Option<Outcome> {
        let mut version = None;
        for _ in 0..2 {
            let (t, _done, _err) = (r.i32().ok()?, r.bool().ok()?, r.i32().ok()?);
            if t == -1 {
                return Some(match r.i32().ok()? {
                    -101 => Outcome::NoNode,
                    -103 => Outcome::BadVersion,
                    _ => Outcome::Unknown,
                });
            } else if t == OpCode::SetData.code() {
                version = Some(Stat::read(r).ok()?.version);
            } else if t != OpCode::Check.code() {
                return None;
            }
        }
        version.map(|version| Outcome::Ok { version })
    }
    parse(r).unwrap_or(Outcome::Unknown)
}
