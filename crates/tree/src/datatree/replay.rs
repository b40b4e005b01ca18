//! ZooKeeper's own rules for applying a transaction it logged
//! (`DataTree.processTxn`), for taking a ZooKeeper server's files over
//! (`crate::takeover`). A logged transaction already carries every outcome
//! — the path with its sequence number, the new version, the parent's new
//! cversion — so nothing is computed here but what ZooKeeper computes.
//! ZooKeeper's snapshots are fuzzy (written while it applies), so a
//! replayed transaction may find its effect already there: a create its
//! node, a delete no node. ZooKeeper tolerates that, and so does this
//! (`Skipped`). Stat fields are set as ZooKeeper sets them, which the
//! incremental digest does not follow: the caller recomputes it once the
//! replay is done.

use super::*;

/// Why ZooKeeper's replay would pass over a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skipped {
    NoNode,
    NodeExists,
}

impl DataTree {
    /// `DataTree.createNode`: the parent's cversion and pzxid move only
    /// when the transaction's cversion is above the parent's (-1, from a
    /// pre-3.3 create, means one above).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn zk_create(
        &mut self,
        path: &str,
        data: Option<&[u8]>,
        acl: Vec<Acl>,
        owner: i64,
        parent_cversion: i32,
        zxid: i64,
        time_ms: i64,
    ) -> Result<(), Skipped> {
        let (parent, name) = path::split(path).ok_or(Skipped::NoNode)?;
        if name.is_empty() {
            return Err(Skipped::NoNode);
        }
        let pid = self.lookup(parent).ok_or(Skipped::NoNode)?;
        if self.has_child(pid, name) {
            return Err(Skipped::NodeExists);
        }
        let before = self.arena.get(pid).expect("live").stat();
        let cversion = if parent_cversion == -1 {
            before.cversion.wrapping_add(1)
        } else {
            parent_cversion
        };
        let stat = Stat {
            czxid: zxid,
            mzxid: zxid,
            ctime: time_ms,
            mtime: time_ms,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner: owner,
            data_length: 0,
            num_children: 0,
            pzxid: zxid,
        };
        self.create_under(
            pid,
            path,
            data,
            acl,
            stat,
            cversion.max(before.cversion),
            zxid,
        );
        if cversion <= before.cversion {
            self.arena.get_mut(pid).set_stat(before);
        }
        Ok(())
    }

    /// `DataTree.setCversionPzxid`, for a create that found its node.
    pub(crate) fn zk_raise_cversion(
        &mut self,
        parent: &str,
        cversion: i32,
        zxid: i64,
    ) -> Result<(), Skipped> {
        let pid = self.lookup(parent).ok_or(Skipped::NoNode)?;
        let mut st = self.arena.get(pid).expect("live").stat();
        let cversion = if cversion == -1 {
            st.cversion.wrapping_add(1)
        } else {
            cversion
        };
        if cversion > st.cversion {
            st.cversion = cversion;
            st.pzxid = zxid;
            self.arena.get_mut(pid).set_stat(st);
        }
        Ok(())
    }

    /// `DataTree.deleteNode`: the parent's pzxid moves up to `zxid`. A
    /// node ZooKeeper's log deletes has no children by then; should a
    /// fuzzy snapshot still hold some, they go first (ZooKeeper would
    /// leave them unreachable).
    pub(crate) fn zk_delete(&mut self, path: &str, zxid: i64) -> Result<(), Skipped> {
        if path == "/" {
            return Err(Skipped::NoNode);
        }
        let id = self.lookup(path).ok_or(Skipped::NoNode)?;
        let mut below = Vec::new();
        self.collect_descendants(id, path, &mut below);
        for p in below.iter().rev() {
            self.delete(p, zxid);
        }
        self.delete(path, zxid);
        Ok(())
    }

    fn collect_descendants(&self, id: u32, path: &str, out: &mut Vec<String>) {
        for name in self.children_of(id).names() {
            let Some(kid) = self.child(id, &name) else {
                continue;
            };
            let p = if path == "/" {
                format!("/{name}")
            } else {
                format!("{path}/{name}")
            };
            out.push(p.clone());
            self.collect_descendants(kid, &p, out);
        }
    }

    /// `DataTree.setData`: the version is the transaction's.
    pub(crate) fn zk_set_data(
        &mut self,
        path: &str,
        data: Option<&[u8]>,
        version: i32,
        zxid: i64,
        time_ms: i64,
    ) -> Result<(), Skipped> {
        let id = self.lookup(path).ok_or(Skipped::NoNode)?;
        self.set_data_at(id, path, data, zxid, time_ms);
        let mut st = self.arena.get(id).expect("live").stat();
        st.version = version;
        self.arena.get_mut(id).set_stat(st);
        Ok(())
    }

    /// `DataTree.setACL`: the ACL version is the transaction's.
    pub(crate) fn zk_set_acl(
        &mut self,
        path: &str,
        acl: Vec<Acl>,
        version: i32,
    ) -> Result<(), Skipped> {
        let id = self.lookup(path).ok_or(Skipped::NoNode)?;
        self.set_acl(path, acl);
        let mut st = self.arena.get(id).expect("live").stat();
        st.aversion = version;
        self.arena.get_mut(id).set_stat(st);
        Ok(())
    }
}
