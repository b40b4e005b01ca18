//! Going back to ZooKeeper: the state machine as a ZooKeeper snapshot
//! (`zkdata::ZkSnapshot`), for `ferrokeeper export-zookeeper`. ZooKeeper
//! started on it serves the same tree with the same Stat values: nodes in
//! pre-order (parents first, as ZooKeeper requires), each with its
//! persisted Stat (ferrokeeper keeps ZooKeeper's persisted form already),
//! the ACL lists numbered as ZooKeeper's ACL cache numbers them, every
//! open session with its timeout (ZooKeeper deletes the ephemerals of a
//! session it does not find in the snapshot), at the state's last zxid.

use std::collections::HashMap;

use proto::{Acl, StatPersisted};
use zkdata::{ZkNode, ZkSnapshot};

use crate::apply::StateMachine;

pub fn to_zookeeper(sm: &StateMachine) -> ZkSnapshot {
    let mut acl_ids: HashMap<Vec<Acl>, i64> = HashMap::new();
    let mut acls: Vec<(i64, Vec<Acl>)> = Vec::new();
    let mut nodes = Vec::with_capacity(sm.tree.node_count());
    sm.tree.visit_preorder(|path, n| {
        let list: Vec<Acl> = n.acl.to_vec();
        let next = acls.len() as i64 + 1;
        let id = *acl_ids.entry(list.clone()).or_insert_with(|| {
            acls.push((next, list));
            next
        });
        nodes.push(ZkNode {
            // ZooKeeper keys its root "".
            path: if path == "/" {
                String::new()
            } else {
                path.to_string()
            },
            data: n.data.map(<[u8]>::to_vec),
            acl: id,
            // `Znode::stat` is the persisted form, as ZooKeeper keeps it.
            stat: StatPersisted::of(&n.stat),
        });
    });
    ZkSnapshot {
        zxid: sm.last_zxid(),
        sessions: sm
            .sessions
            .iter()
            .map(|(id, s)| (*id, s.timeout_ms))
            .collect(),
        acls,
        nodes,
        digest: None,
        last_processed_zxid: None,
    }
}
