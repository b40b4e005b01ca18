//! What ZooKeeper says of each op beyond its wire code: its name
//! (`Request.op2String`), the abbreviation `cons` shows as a connection's
//! `lastOp`, whether it goes through the log, and which ops are one
//! request under several codes. The four-letter words, the metrics, the
//! log dump and the replica core all ask here.

use crate::OpCode;

impl OpCode {
    /// ZooKeeper's name of the op, as `Request.op2String` gives it.
    pub fn name(self) -> &'static str {
        match self {
            OpCode::Notification => "notification",
            OpCode::Create => "create",
            OpCode::Delete => "delete",
            OpCode::Exists => "exists",
            OpCode::GetData => "getData",
            OpCode::SetData => "setData",
            OpCode::GetAcl => "getACL",
            OpCode::SetAcl => "setACL",
            OpCode::GetChildren => "getChildren",
            OpCode::Sync => "sync",
            OpCode::Ping => "ping",
            OpCode::GetChildren2 => "getChildren2",
            OpCode::Check => "check",
            OpCode::Multi => "multi",
            OpCode::Create2 => "create2",
            OpCode::Reconfig => "reconfig",
            OpCode::CheckWatches => "checkWatches",
            OpCode::RemoveWatches => "removeWatches",
            OpCode::CreateContainer => "createContainer",
            OpCode::DeleteContainer => "deleteContainer",
            OpCode::CreateTtl => "createTTL",
            OpCode::MultiRead => "multiRead",
            OpCode::Auth => "auth",
            OpCode::SetWatches => "setWatches",
            OpCode::Sasl => "sasl",
            OpCode::GetEphemerals => "getEphemerals",
            OpCode::GetAllChildrenNumber => "getAllChildrenNumber",
            OpCode::SetWatches2 => "setWatches2",
            OpCode::AddWatch => "addWatch",
            OpCode::WhoAmI => "whoAmI",
            OpCode::CreateSession => "createSession",
            OpCode::CloseSession => "closeSession",
            OpCode::Error => "error",
        }
    }

    /// The abbreviation `cons` prints as `lastOp` after a reply to this op
    /// ("NA" for ops that have none).
    pub fn abbreviation(self) -> &'static str {
        match self.family() {
            OpCode::Create => "CREA",
            OpCode::Delete => "DELE",
            OpCode::Exists => "EXIS",
            OpCode::GetData => "GETD",
            OpCode::SetData => "SETD",
            OpCode::GetAcl => "GETA",
            OpCode::SetAcl => "SETA",
            OpCode::GetChildren => "GETC",
            OpCode::Sync => "SYNC",
            OpCode::Ping => "PING",
            OpCode::Check => "CHEC",
            OpCode::Multi => "MULT",
            OpCode::Reconfig => "RECO",
            OpCode::CheckWatches => "CHKW",
            OpCode::RemoveWatches => "REMW",
            OpCode::MultiRead => "MLTR",
            OpCode::GetEphemerals => "GETE",
            OpCode::GetAllChildrenNumber => "GETACN",
            OpCode::SetWatches => "SETW",
            OpCode::AddWatch => "ADDW",
            OpCode::WhoAmI => "HOMI",
            OpCode::CreateSession => "SESS",
            OpCode::CloseSession => "CLOS",
            _ => "NA",
        }
    }

    /// The op this one is a variant of: the create codes are one create,
    /// deleteContainer a delete, getChildren2 a getChildren, setWatches2 a
    /// setWatches (one latency series, one lastOp each).
    pub fn family(self) -> OpCode {
        match self {
            OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => OpCode::Create,
            OpCode::DeleteContainer => OpCode::Delete,
            OpCode::GetChildren2 => OpCode::GetChildren,
            OpCode::SetWatches2 => OpCode::SetWatches,
            op => op,
        }
    }

    /// Does a request of this op go through the replicated log? Those that
    /// change state, the session's own lifecycle, and `sync` (its entry
    /// applied here means everything committed before it is applied here).
    pub fn is_write(self) -> bool {
        matches!(
            self.family(),
            OpCode::Create
                | OpCode::Delete
                | OpCode::SetData
                | OpCode::SetAcl
                | OpCode::Check
                | OpCode::Multi
                | OpCode::Reconfig
                | OpCode::Sync
                | OpCode::CreateSession
                | OpCode::CloseSession
        )
    }

    /// Does a request of this op read the tree (and nothing else)? Pings,
    /// auth, watch bookkeeping and the session ops are neither reads nor
    /// writes.
    pub fn is_read(self) -> bool {
        matches!(
            self.family(),
            OpCode::Exists
                | OpCode::GetData
                | OpCode::GetAcl
                | OpCode::GetChildren
                | OpCode::MultiRead
                | OpCode::GetEphemerals
                | OpCode::GetAllChildrenNumber
        )
    }

    /// Does ZooKeeper record a failure of this op as an error transaction,
    /// whose reply leaves `lastOp` at "NA"? (A multi's failures are inside
    /// its results; sync and the session ops do not fail that way; a
    /// top-level check is left as ferrokeeper has compared it so far.)
    pub fn fails_as_error_txn(self) -> bool {
        matches!(
            self.family(),
            OpCode::Create | OpCode::Delete | OpCode::SetData | OpCode::SetAcl | OpCode::Reconfig
        )
    }
}

/// `cons`'s `lastOp` after a reply with error `err` to a request sent
/// under wire code `op` (any code, known or not).
pub fn last_op(op: i32, err: i32) -> &'static str {
    match OpCode::from_code(op) {
        Some(o) if err != 0 && o.fails_as_error_txn() => "NA",
        Some(o) => o.abbreviation(),
        None => "NA",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_families_share_their_abbreviation() {
        let mut names: Vec<_> = OpCode::ALL.iter().map(|o| o.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), OpCode::ALL.len());
        assert_eq!(OpCode::CreateTtl.abbreviation(), "CREA");
        assert_eq!(OpCode::GetChildren2.abbreviation(), "GETC");
        assert_eq!(OpCode::SetWatches2.abbreviation(), "SETW");
        assert_eq!(last_op(OpCode::SetData.code(), -103), "NA");
        assert_eq!(last_op(OpCode::Multi.code(), -103), "MULT");
        assert_eq!(last_op(OpCode::GetData.code(), -101), "GETD");
        assert_eq!(last_op(12345, 0), "NA");
    }

    #[test]
    fn the_writes_are_those_that_go_through_the_log() {
        let writes: Vec<&str> = OpCode::ALL
            .iter()
            .filter(|o| o.is_write())
            .map(|o| o.name())
            .collect();
        assert_eq!(
            writes,
            [
                "create",
                "delete",
                "setData",
                "setACL",
                "sync",
                "check",
                "multi",
                "create2",
                "reconfig",
                "createContainer",
                "deleteContainer",
                "createTTL",
                "createSession",
                "closeSession"
            ]
        );
    }
}
