//! ZooKeeper's quotas in the tree: which subtrees have one (a
//! `zookeeper_limits` node at `/zookeeper/quota<path>/`), their
//! `zookeeper_stats` nodes kept at `count=N,bytes=M` as nodes below come,
//! go and change, and the check `enforceQuota` makes before a create or a
//! setData — as ZooKeeper's DataTree and ZooKeeperServer.checkQuota do.
//!
//! As in ZooKeeper, a stats node's data changes in place (its version,
//! mzxid and mtime stay, no watch fires; the digest follows), each change
//! counts toward the deepest quota above it only, and creating a stats
//! node counts its whole subtree afresh (`recount`). Unlike ZooKeeper,
//! counts are not recomputed when a snapshot is loaded: a replica's tree
//! must be the same whether it restarted or not (the digest check), so
//! the counts are what the log made them.

use super::*;
use proto::ErrorCode;

/// The limits node's name, and the stats node's.
pub const LIMITS: &str = "zookeeper_limits";
pub const STATS: &str = "zookeeper_stats";

/// ZooKeeper's StatsTrack: `key=value` pairs split at `,` and `;`, a
/// missing or empty value -1; rendered `count=N,bytes=M`, then, if there
/// are other keys, `=` and `;key=value` for each in key order — so zkCli's
/// `setquota -N 3` writes `count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=3`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StatsTrack(BTreeMap<String, i64>);

impl StatsTrack {
    /// Lenient where ZooKeeper throws (a pair without a key or with a
    /// value that is not a number is skipped).
    pub fn parse(data: &[u8]) -> StatsTrack {
        let mut m = BTreeMap::new();
        let text = String::from_utf8_lossy(data);
        for pair in text.split([',', ';']).filter(|p| !p.is_empty()) {
            let mut kv = pair.split('=');
            let key = kv.next().unwrap_or_default();
            let value = kv.next().unwrap_or_default();
            if key.is_empty() {
                continue;
            }
            let value = if value.is_empty() {
                -1
            } else {
                match value.parse::<i64>() {
                    Ok(v) => v,
                    Err(_) => continue,
                }
            };
            m.insert(key.to_string(), value);
        }
        StatsTrack(m)
    }

    fn get(&self, key: &str) -> i64 {
        self.0.get(key).copied().unwrap_or(-1)
    }

    pub fn count(&self) -> i64 {
        self.get("count")
    }

    pub fn bytes(&self) -> i64 {
        self.get("bytes")
    }

    pub fn count_hard_limit(&self) -> i64 {
        self.get("countHardLimit")
    }

    pub fn byte_hard_limit(&self) -> i64 {
        self.get("byteHardLimit")
    }

    pub fn set(&mut self, key: &str, value: i64) {
        self.0.insert(key.to_string(), value);
    }

    pub fn render(&self) -> String {
        use std::fmt::Write;
        let mut s = format!("count={},bytes={}", self.count(), self.bytes());
        let mut rest = self
            .0
            .iter()
            .filter(|(k, _)| *k != "count" && *k != "bytes")
            .peekable();
        if rest.peek().is_some() {
            s.push('=');
            for (k, v) in rest {
                let _ = write!(s, ";{k}={v}");
            }
        }
        s
    }
}

/// Where the limits and stats nodes of the quota on `root` are.
pub fn limits_path(root: &str) -> String {
    format!("{QUOTA}{root}/{LIMITS}")
}

pub fn stats_path(root: &str) -> String {
    format!("{QUOTA}{root}/{STATS}")
}

/// The quota root a `zookeeper_limits` or `zookeeper_stats` node at `path`
/// belongs to (ZooKeeper's trimQuotaPath of its parent), if it is one.
fn root_of(path: &str, name: &str) -> Option<String> {
    let (parent, n) = path::split(path)?;
    let root = parent.strip_prefix(QUOTA)?;
    (n == name && root.starts_with('/')).then(|| root.to_string())
}

impl DataTree {
    /// The deepest quota root that is `path` or above it ("/" never has
    /// one, as in ZooKeeper).
    pub fn quota_root(&self, path: &str) -> Option<&str> {
        if self.quota_roots.is_empty() {
            return None;
        }
        let mut p = path;
        while p != "/" && !p.is_empty() {
            if let Some(r) = self.quota_roots.get(p) {
                return Some(r);
            }
            p = path::split(p)?.0;
        }
        None
    }

    /// Keeps the quota roots as a node at `path` is linked or unlinked.
    pub(super) fn quota_index(&mut self, path: &str, linked: bool) {
        if !path.ends_with(LIMITS) {
            return;
        }
        if let Some(root) = root_of(path, LIMITS) {
            if linked {
                self.quota_roots.insert(root);
            } else {
                self.quota_roots.remove(&root);
            }
        }
    }

    /// Every quota root, from the limits nodes (a tree built from a
    /// snapshot).
    pub(super) fn rebuild_quota_roots(&mut self) {
        self.quota_roots.clear();
        let Some(q) = self.lookup(QUOTA) else {
            return;
        };
        let mut stack = vec![q];
        while let Some(id) = stack.pop() {
            if let Some(set) = self.kids.get(id as usize).and_then(|s| s.as_deref()) {
                stack.extend(set.iter().map(|k| k.id));
            }
            if self.arena.get(id).is_some_and(|r| r.name() == LIMITS) {
                let p = self.path_of(id);
                if let Some(root) = root_of(&p, LIMITS) {
                    self.quota_roots.insert(root);
                }
            }
        }
    }

    /// A node at `path` changed the tree by `count` nodes and `bytes` bytes
    /// of data: the quota above it counts them (ZooKeeper's updateQuotaStat).
    pub(super) fn quota_account(&mut self, path: &str, bytes: i64, count: i64) {
        let Some(root) = self.quota_root(path) else {
            return;
        };
        let stats = stats_path(root);
        let Some(id) = self.lookup(&stats) else {
            return;
        };
        let mut s = StatsTrack::parse(self.arena.get(id).and_then(|r| r.data()).unwrap_or(&[]));
        s.set("count", s.count() + count);
        s.set("bytes", s.bytes() + bytes);
        self.set_quota_stats(id, &stats, s.render().as_bytes());
    }

    /// A stats node was created at `path`: it holds the count and bytes of
    /// its quota's whole subtree, the root included (ZooKeeper's
    /// updateQuotaForPath).
    pub(super) fn quota_recount(&mut self, path: &str, id: u32) {
        let Some(root) = root_of(path, STATS) else {
            return;
        };
        let (mut count, mut bytes) = (0i64, 0i64);
        if let Some(top) = self.lookup(&root) {
            let mut stack = vec![top];
            while let Some(n) = stack.pop() {
                count += 1;
                bytes += self.arena.get(n).map_or(0, |r| r.data_len()) as i64;
                if let Some(set) = self.kids.get(n as usize).and_then(|s| s.as_deref()) {
                    stack.extend(set.iter().map(|k| k.id));
                }
            }
        }
        let mut s = StatsTrack::default();
        s.set("count", count);
        s.set("bytes", bytes);
        self.set_quota_stats(id, path, s.render().as_bytes());
    }

    /// The stats node `id` at `path` now holds `data`; its Stat stays.
    fn set_quota_stats(&mut self, id: u32, path: &str, data: &[u8]) {
        let nkids = self.children_of(id).len();
        let undoable = self.undoable;
        let p = path_hash(path);
        let acl_h = acl_hash(self.arena.acl(self.arena.get(id).expect("live")));
        let n = self.arena.get_mut(id);
        let st = n.stat();
        let before = meta_hash(p, &st.client_stat(n.data_len(), nkids), acl_h)
            .wrapping_add(data_hash(p, n.data()));
        let old_len = n.data_len() as u64;
        let old = if !undoable && n.set_data_in_place(&st, Some(data)) {
            None
        } else {
            Some(n.set_data(st, Some(data)))
        };
        let after = meta_hash(p, &st.client_stat(data.len(), nkids), acl_h)
            .wrapping_add(data_hash(p, Some(data)));
        self.digest = self.digest.wrapping_sub(before).wrapping_add(after);
        self.data_bytes = self.data_bytes - old_len + data.len() as u64;
        if let Some(old) = old {
            self.undo.push(Undo::Data(id, old));
        }
    }

    /// `enforceQuota`'s check of a write at `path` that changes its quota's
    /// subtree by `bytes` and `count`: Err(QuotaExceeded) past a hard
    /// limit; Ok with ZooKeeper's warning for each soft limit passed.
    pub fn check_quota(
        &self,
        path: &str,
        bytes: i64,
        count: i64,
    ) -> Result<Vec<String>, ErrorCode> {
        let mut warnings = Vec::new();
        let Some(root) = self.quota_root(path) else {
            return Ok(warnings);
        };
        let data = |p: &str| {
            self.get(p)
                .map(|n| StatsTrack::parse(n.data.unwrap_or_default()))
        };
        let Some(limits) = data(&limits_path(root)) else {
            return Ok(warnings);
        };
        let check_count = count != 0 && (limits.count() > -1 || limits.count_hard_limit() > -1);
        let check_bytes = bytes != 0 && (limits.bytes() > -1 || limits.byte_hard_limit() > -1);
        if !check_count && !check_bytes {
            return Ok(warnings);
        }
        let Some(now) = data(&stats_path(root)) else {
            return Ok(warnings);
        };
        for (checked, what, new, hard, soft) in [
            (
                check_count,
                "count",
                now.count() + count,
                limits.count_hard_limit(),
                limits.count(),
            ),
            (
                check_bytes,
                "bytes",
                now.bytes() + bytes,
                limits.byte_hard_limit(),
                limits.bytes(),
            ),
        ] {
            if !checked {
                continue;
            }
            let is_hard = hard > -1;
            let limit = if is_hard { hard } else { soft };
            if new > limit {
                let kind = if what == "count" {
                    "CountLimit"
                } else {
                    "ByteLimit"
                };
                let msg = format!(
                    "Quota exceeded: {root} [current {what}={new}, {}{kind}={limit}]",
                    if is_hard { "hard" } else { "soft" }
                );
                if is_hard {
                    return Err(ErrorCode::QuotaExceeded);
                }
                warnings.push(msg);
            }
        }
        Ok(warnings)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_track_reads_and_writes_what_zookeeper_does() {
        let t = StatsTrack::parse(b"count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=3");
        assert_eq!(
            (
                t.count(),
                t.bytes(),
                t.count_hard_limit(),
                t.byte_hard_limit()
            ),
            (-1, -1, 3, -1)
        );
        assert_eq!(
            t.render(),
            "count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=3"
        );
        let t = StatsTrack::parse(b"count=4,bytes=10");
        assert_eq!(t.render(), "count=4,bytes=10");
        assert_eq!(StatsTrack::parse(b"").render(), "count=-1,bytes=-1");
        let t = StatsTrack::parse(b"count=,bytes=x;=5;countHardLimit=2");
        assert_eq!((t.count(), t.bytes(), t.count_hard_limit()), (-1, -1, 2));
    }
}
