//! The table of interned ACL lists: a node holds a 4-byte id into it;
//! lists are use-counted and the unused ones swept between entries (never
//! inside one, so a rollback can restore a list).

use super::*;

impl DataTree {
    /// The id of this ACL list, interned. A node linked with it counts as
    /// a user; lists without users are swept between entries.
    pub(crate) fn intern(&mut self, acl: Vec<Acl>) -> AclId {
        if let Some(&id) = self.acl_ids.get(&acl) {
            return id;
        }
        let a: AclList = acl.into();
        let acls = Arc::make_mut(&mut self.arena.acls);
        let id = match self.acl_free.pop() {
            Some(id) => {
                acls[id as usize] = a.clone();
                id
            }
            None => {
                acls.push(a.clone());
                self.acl_refs.push(0);
                (acls.len() - 1) as AclId
            }
        };
        self.acl_ids.insert(a, id);
        self.acls_new += 1;
        id
    }

    pub(crate) fn acl_used(&mut self, id: AclId) {
        self.acl_refs[id as usize] += 1;
    }

    pub(crate) fn acl_unused(&mut self, id: AclId) {
        self.acl_refs[id as usize] -= 1;
    }

    /// Frees the ids of lists no node uses, once as many lists were
    /// interned since the last sweep as were in use then. Only between
    /// entries: a rollback may give a list its users back.
    pub(crate) fn sweep_acls(&mut self) {
        if self.acls_new < self.acls_swept.max(32) {
            return;
        }
        let mut freed = Vec::new();
        for (id, &refs) in self.acl_refs.iter().enumerate() {
            // Interned under this id (a freed id's slot holds an empty
            // placeholder, not interned under it).
            let list = &self.arena.acls[id];
            if refs == 0 && self.acl_ids.get(&**list) == Some(&(id as AclId)) {
                self.acl_ids.remove(&**list);
                freed.push(id as AclId);
            }
        }
        if !freed.is_empty() {
            let acls = Arc::make_mut(&mut self.arena.acls);
            for &id in &freed {
                acls[id as usize] = AclList::default();
            }
            self.acl_free.extend(freed);
        }
        self.acls_new = 0;
        self.acls_swept = self.acl_refs.iter().filter(|&&r| r > 0).count();
    }
}
