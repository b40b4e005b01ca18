//! The tree digest replicas compare: order-independent, over every node's
//! path, data, Stat and ACL.

use super::*;

impl DataTree {
    /// An order-independent digest of every node's path, data, ACL and
    /// Stat, for comparing replicas.
    pub fn digest(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut sum = 0u64;
        let mut buf = String::new();
        let mut stack = vec![(ROOT, 0usize)];
        while let Some((id, plen)) = stack.pop() {
            let Some(n) = self.view(id) else { continue };
            let rec = self.arena.get(id).expect("viewed");
            buf.truncate(plen);
            if id == ROOT {
                buf.push('/');
            } else {
                if buf.len() > 1 {
                    buf.push('/');
                }
                buf.push_str(rec.name());
            }
            let mut h = std::collections::hash_map::DefaultHasher::new();
            buf.as_str().hash(&mut h);
            n.data.map(<[u8]>::to_vec).hash(&mut h);
            {
                use proto::Jute;
                h.write(&n.stat().to_bytes());
            }
            for a in n.acl.iter() {
                a.perms.hash(&mut h);
                a.id.scheme.hash(&mut h);
                a.id.id.hash(&mut h);
            }
            sum = sum.wrapping_add(h.finish());
            if let Some(set) = self.kids.get(id as usize).and_then(|s| s.as_deref()) {
                stack.extend(set.iter().map(|k| (k.id, buf.len())));
            }
        }
        sum
    }
}
