//! The records of `zookeeper.jute` used on the client port, field for field.

use crate::codec::{DecodeError, Jute, Reader};
use crate::record;

record! {
    pub struct Id { pub scheme: String, pub id: String }
}
record! {
    pub struct Acl { pub perms: i32, pub id: Id }
}

impl Acl {
    /// `ZooDefs.Ids.OPEN_ACL_UNSAFE`: world:anyone with every permission.
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl {
            perms: 31,
            id: Id {
                scheme: "world".into(),
                id: "anyone".into(),
            },
        }]
    }
}
record! {
    /// What a client sees of a znode.
    #[derive(Copy)]
    pub struct Stat {
        pub czxid: i64,
        pub mzxid: i64,
        pub ctime: i64,
        pub mtime: i64,
        pub version: i32,
        pub cversion: i32,
        pub aversion: i32,
        pub ephemeral_owner: i64,
        pub data_length: i32,
        pub num_children: i32,
        pub pzxid: i64,
    }
}
record! {
    /// `StatPersisted`: a node's Stat as ZooKeeper keeps it in snapshots —
    /// no dataLength or numChildren, and `cversion` the count of child
    /// creates (a client sees creates plus deletes).
    #[derive(Copy)]
    pub struct StatPersisted {
        pub czxid: i64,
        pub mzxid: i64,
        pub ctime: i64,
        pub mtime: i64,
        pub version: i32,
        pub cversion: i32,
        pub aversion: i32,
        pub ephemeral_owner: i64,
        pub pzxid: i64,
    }
}

impl StatPersisted {
    /// The persisted fields of `s` (whose cversion must be the persisted
    /// count of creates, not what a client sees).
    pub fn of(s: &Stat) -> StatPersisted {
        StatPersisted {
            czxid: s.czxid,
            mzxid: s.mzxid,
            ctime: s.ctime,
            mtime: s.mtime,
            version: s.version,
            cversion: s.cversion,
            aversion: s.aversion,
            ephemeral_owner: s.ephemeral_owner,
            pzxid: s.pzxid,
        }
    }

    /// The same fields in a `Stat`, dataLength and numChildren zero.
    pub fn to_stat(&self) -> Stat {
        Stat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: self.cversion,
            aversion: self.aversion,
            ephemeral_owner: self.ephemeral_owner,
            data_length: 0,
            num_children: 0,
            pzxid: self.pzxid,
        }
    }
}
record! {
    pub struct RequestHeader { pub xid: i32, pub op: i32 }
}
record! {
    pub struct ReplyHeader { pub xid: i32, pub zxid: i64, pub err: i32 }
}
record! {
    pub struct MultiHeader { pub op: i32, pub done: bool, pub err: i32 }
}
record! {
    pub struct AuthPacket { pub auth_type: i32, pub scheme: String, pub auth: Option<Vec<u8>> }
}
record! {
    /// A client's SASL token (jute `GetSASLRequest`, op sasl).
    pub struct GetSaslRequest { pub token: Option<Vec<u8>> }
}
record! {
    /// The server's SASL token (jute `SetSASLResponse`); none after a
    /// failure, or when the server has no SASL login.
    pub struct SetSaslResponse { pub token: Option<Vec<u8>> }
}
record! {
    pub struct SetWatches {
        pub relative_zxid: i64,
        pub data_watches: Vec<String>,
        pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>,
    }
}
record! {
    pub struct SetWatches2 {
        pub relative_zxid: i64,
        pub data_watches: Vec<String>,
        pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>,
        pub persistent_watches: Vec<String>,
        pub persistent_recursive_watches: Vec<String>,
    }
}
record! {
    /// Shared by getData, exists, getChildren and getChildren2.
    pub struct PathWatchRequest { pub path: String, pub watch: bool }
}
record! {
    /// Shared by sync, getACL, getAllChildrenNumber, getEphemerals and the
    /// sync/create responses.
    pub struct PathRecord { pub path: String }
}
record! {
    pub struct SetDataRequest { pub path: String, pub data: Option<Vec<u8>>, pub version: i32 }
}
record! {
    pub struct CreateRequest { pub path: String, pub data: Option<Vec<u8>>, pub acl: Vec<Acl>, pub flags: i32 }
}
record! {
    pub struct CreateTtlRequest {
        pub path: String,
        pub data: Option<Vec<u8>>,
        pub acl: Vec<Acl>,
        pub flags: i32,
        pub ttl: i64,
    }
}
record! {
    /// Shared by delete and check (`CheckVersionRequest`).
    pub struct PathVersionRequest { pub path: String, pub version: i32 }
}
record! {
    pub struct SetAclRequest { pub path: String, pub acl: Vec<Acl>, pub version: i32 }
}
record! {
    pub struct AddWatchRequest { pub path: String, pub mode: i32 }
}
record! {
    /// Shared by checkWatches and removeWatches.
    pub struct WatchTypeRequest { pub path: String, pub watcher_type: i32 }
}
record! {
    pub struct ReconfigRequest {
        pub joining_servers: String,
        pub leaving_servers: String,
        pub new_members: String,
        pub cur_config_id: i64,
    }
}
record! {
    pub struct WatcherEvent { pub event_type: i32, pub state: i32, pub path: String }
}
record! {
    pub struct StatResponse { pub stat: Stat }
}
record! {
    pub struct Create2Response { pub path: String, pub stat: Stat }
}
record! {
    pub struct GetDataResponse { pub data: Option<Vec<u8>>, pub stat: Stat }
}
record! {
    pub struct GetChildrenResponse { pub children: Vec<String> }
}
record! {
    pub struct GetChildren2Response { pub children: Vec<String>, pub stat: Stat }
}
record! {
    pub struct GetAclResponse { pub acl: Vec<Acl>, pub stat: Stat }
}
record! {
    pub struct CountResponse { pub count: i32 }
}
record! {
    pub struct ErrorResponse { pub err: i32 }
}
record! {
    pub struct ClientInfo { pub auth_scheme: String, pub user: String }
}
record! {
    pub struct WhoAmIResponse { pub client_info: Vec<ClientInfo> }
}

/// `ConnectRequest`, with the trailing `readOnly` flag that clients since
/// 3.4 send (absent from older clients, so it is optional here).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub passwd: Option<Vec<u8>>,
    pub read_only: Option<bool>,
}

impl Jute for ConnectRequest {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let protocol_version = r.i32()?;
        let last_zxid_seen = r.i64()?;
        let timeout_ms = r.i32()?;
        let session_id = r.i64()?;
        let passwd = Jute::read(r)?;
        let read_only = if r.remaining() > 0 {
            Some(r.bool()?)
        } else {
            None
        };
        Ok(ConnectRequest {
            protocol_version,
            last_zxid_seen,
            timeout_ms,
            session_id,
            passwd,
            read_only,
        })
    }
    fn write(&self, w: &mut Vec<u8>) {
        self.protocol_version.write(w);
        self.last_zxid_seen.write(w);
        self.timeout_ms.write(w);
        self.session_id.write(w);
        self.passwd.write(w);
        if let Some(ro) = self.read_only {
            ro.write(w);
        }
    }
}

/// `ConnectResponse` plus the `readOnly` flag. ZooKeeper appends that flag
/// only for a client whose ConnectRequest carried one: an older client
/// (ClickHouse's own before 2020, for one) checks that the response is
/// exactly 36 bytes and gives up on 37. `None` leaves it out.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub passwd: Option<Vec<u8>>,
    pub read_only: Option<bool>,
}

impl Jute for ConnectResponse {
    fn read(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let protocol_version = r.i32()?;
        let timeout_ms = r.i32()?;
        let session_id = r.i64()?;
        let passwd = Jute::read(r)?;
        let read_only = if r.remaining() > 0 {
            Some(r.bool()?)
        } else {
            None
        };
        Ok(ConnectResponse {
            protocol_version,
            timeout_ms,
            session_id,
            passwd,
            read_only,
        })
    }
    fn write(&self, w: &mut Vec<u8>) {
        self.protocol_version.write(w);
        self.timeout_ms.write(w);
        self.session_id.write(w);
        self.passwd.write(w);
        if let Some(ro) = self.read_only {
            ro.write(w);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn stat() -> impl Strategy<Value = Stat> {
        (any::<[i64; 6]>(), any::<[i32; 5]>()).prop_map(|(l, i)| Stat {
            czxid: l[0],
            mzxid: l[1],
            ctime: l[2],
            mtime: l[3],
            version: i[0],
            cversion: i[1],
            aversion: i[2],
            ephemeral_owner: l[4],
            data_length: i[3],
            num_children: i[4],
            pzxid: l[5],
        })
    }
    fn acl() -> impl Strategy<Value = Acl> {
        (any::<i32>(), ".*", ".*").prop_map(|(perms, scheme, id)| Acl {
            perms,
            id: Id { scheme, id },
        })
    }
    fn data() -> impl Strategy<Value = Option<Vec<u8>>> {
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..64))
    }

    fn round_trip<T: Jute + PartialEq + std::fmt::Debug>(v: T) {
        let b = v.to_bytes();
        assert_eq!(T::from_bytes(&b).unwrap(), v);
    }

    proptest! {
        #[test]
        fn stat_round_trips(s in stat()) { round_trip(s); prop_assert_eq!(s.to_bytes().len(), 68); }
        #[test]
        fn create_round_trips(path in ".*", d in data(), acl in proptest::collection::vec(acl(), 0..4), flags in any::<i32>(), ttl in any::<i64>()) {
            round_trip(CreateRequest { path: path.clone(), data: d.clone(), acl: acl.clone(), flags });
            round_trip(CreateTtlRequest { path, data: d, acl, flags, ttl });
        }
        #[test]
        fn connect_round_trips(v in any::<i32>(), z in any::<i64>(), t in any::<i32>(), s in any::<i64>(), p in data(), ro in proptest::option::of(any::<bool>())) {
            round_trip(ConnectRequest { protocol_version: v, last_zxid_seen: z, timeout_ms: t, session_id: s, passwd: p.clone(), read_only: ro });
            round_trip(ConnectResponse { protocol_version: v, timeout_ms: t, session_id: s, passwd: p, read_only: ro });
        }
        #[test]
        fn responses_round_trip(s in stat(), d in data(), names in proptest::collection::vec(".*", 0..5), acl in proptest::collection::vec(acl(), 0..4)) {
            round_trip(GetDataResponse { data: d, stat: s });
            round_trip(GetChildren2Response { children: names.clone(), stat: s });
            round_trip(GetAclResponse { acl, stat: s });
            round_trip(SetWatches2 { relative_zxid: 7, data_watches: names.clone(), exist_watches: names.clone(), child_watches: vec![], persistent_watches: names.clone(), persistent_recursive_watches: names });
        }
        #[test]
        fn decoding_garbage_never_panics(b in proptest::collection::vec(any::<u8>(), 0..128)) {
            let _ = CreateRequest::from_bytes(&b);
            let _ = SetWatches2::from_bytes(&b);
            let _ = ConnectRequest::from_bytes(&b);
        }
    }
}
