//! zkCli's words and answers: the messages it prints for each error, its
//! option parsing, quoting, ACL syntax, and how it prints a Stat, data
//! and (with `--output json`) the same as JSON.

use std::io::Write;

use proto::{Acl, ErrorCode, Id, Jute, PathWatchRequest, Reader, Stat};
use serde_json::json;

use crate::client::ClientError;

/// zkCli's KeeperException messages ("KeeperErrorCode = X for /path").
pub fn code_message(c: ErrorCode) -> &'static str {
    use ErrorCode::*;
    match c {
        Ok => "ok",
        SystemError => "SystemError",
        RuntimeInconsistency => "RuntimeInconsistency",
        DataInconsistency => "DataInconsistency",
        ConnectionLoss => "ConnectionLoss",
        MarshallingError => "MarshallingError",
        Unimplemented => "Unimplemented",
        OperationTimeout => "OperationTimeout",
        BadArguments => "BadArguments",
        UnknownSession => "Unknown session",
        NewConfigNoQuorum => "NewConfigNoQuorum",
        ReconfigInProgress => "ReconfigInProgress",
        ApiError => "APIError",
        NoNode => "NoNode",
        NoAuth => "NoAuth",
        BadVersion => "BadVersion",
        NoChildrenForEphemerals => "NoChildrenForEphemerals",
        NodeExists => "NodeExists",
        NotEmpty => "Directory not empty",
        SessionExpired => "Session expired",
        InvalidCallback => "Invalid callback",
        InvalidAcl => "InvalidACL",
        AuthFailed => "AuthFailed",
        SessionMoved => "Session moved",
        NotReadOnly => "Not a read-only call",
        EphemeralOnLocalSession => "Ephemeral node on local session",
        NoWatcher => "No such watcher",
        RequestTimeout => "Request timeout",
        ReconfigDisabled => "Reconfig is disabled",
        SessionClosedRequireSaslAuth => "Session closed because client failed to authenticate",
        QuotaExceeded => "Quota has exceeded",
        Throttled => "Op throttled due to high load",
    }
}

pub(super) fn keeper_message(e: &ClientError, path: &str) -> String {
    format!("KeeperErrorCode = {} for {path}", code_message(e.code()))
}

/// zkCli's CliWrapperException wording for an error on `path`.
pub(super) fn cli_message(e: &ClientError, path: &str) -> String {
    match e.code() {
        ErrorCode::NoNode => format!("Node does not exist: {path}"),
        ErrorCode::NoChildrenForEphemerals => format!("Ephemerals cannot have children: {path}"),
        ErrorCode::NodeExists => format!("Node already exists: {path}"),
        ErrorCode::NotEmpty => format!("Node not empty: {path}"),
        ErrorCode::NotReadOnly => format!("Not a read-only call: {path}"),
        ErrorCode::InvalidAcl => format!("Acl is not valid : {path}"),
        ErrorCode::NoAuth => format!("Insufficient permission : {path}"),
        ErrorCode::BadArguments => format!("Argument error : {path}"),
        ErrorCode::BadVersion => format!("version No is not valid : {path}"),
        ErrorCode::ReconfigInProgress => {
            "Another reconfiguration is in progress -- concurrent reconfigs not supported (yet)"
                .into()
        }
        _ => keeper_message(e, path),
    }
}

/// Parsed options: flags seen, option values, positional arguments.
pub(super) struct Args {
    pub(super) flags: Vec<char>,
    pub(super) values: Vec<(char, String)>,
    pub(super) pos: Vec<String>,
}

impl Args {
    /// `with_value` lists the options that take a value.
    pub(super) fn parse(words: &[String], with_value: &str) -> Result<Args, String> {
        let mut a = Args {
            flags: vec![],
            values: vec![],
            pos: vec![],
        };
        let mut i = 0;
        while i < words.len() {
            let w = &words[i];
            if w.len() == 2
                && w.starts_with('-')
                && !w[1..].starts_with(|c: char| c.is_ascii_digit())
            {
                let c = w.chars().nth(1).unwrap();
                if with_value.contains(c) {
                    let v = words
                        .get(i + 1)
                        .ok_or_else(|| format!("Missing argument for option: {c}"))?;
                    a.values.push((c, v.clone()));
                    i += 2;
                    continue;
                }
                a.flags.push(c);
            } else {
                a.pos.push(w.clone());
            }
            i += 1;
        }
        Ok(a)
    }
    pub(super) fn has(&self, c: char) -> bool {
        self.flags.contains(&c)
    }
    pub(super) fn value(&self, c: char) -> Option<&str> {
        self.values
            .iter()
            .find(|(k, _)| *k == c)
            .map(|(_, v)| v.as_str())
    }
}

/// zkCli's way of splitting a command line: on spaces, with "double" or
/// 'single' quoted words.
pub fn split_words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quote: Option<char> = None;
    let mut any = false;
    for c in line.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => cur.push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                any = true;
            }
            None if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            None => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

pub(super) fn perms_string(p: i32) -> String {
    let mut s = String::new();
    for (bit, c) in [(4, 'c'), (8, 'd'), (1, 'r'), (2, 'w'), (16, 'a')] {
        if p & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// zkCli's AclParser: "scheme:id:perms[,scheme:id:perms...]".
pub(super) fn parse_acl(text: &str, err: &mut dyn Write) -> Vec<Acl> {
    let mut out = Vec::new();
    for a in text.split(',') {
        let (Some(first), Some(last)) = (a.find(':'), a.rfind(':')) else {
            let _ = writeln!(err, "{a} does not have the form scheme:id:perm");
            continue;
        };
        if first == last {
            let _ = writeln!(err, "{a} does not have the form scheme:id:perm");
            continue;
        }
        let mut perms = 0;
        for c in a[last + 1..].chars() {
            perms |= match c {
                'r' | 'R' => 1,
                'w' | 'W' => 2,
                'c' | 'C' => 4,
                'd' | 'D' => 8,
                'a' | 'A' => 16,
                other => {
                    let _ = writeln!(err, "Unknown perm type: {other}");
                    0
                }
            };
        }
        out.push(Acl {
            perms,
            id: Id {
                scheme: a[..first].to_string(),
                id: a[first + 1..last].to_string(),
            },
        });
    }
    out
}

pub(super) fn open_acl() -> Vec<Acl> {
    Acl::open_unsafe()
}

pub fn stat_text(s: &Stat) -> String {
    format!(
        "cZxid = 0x{:x}\nctime = {}\nmZxid = 0x{:x}\nmtime = {}\npZxid = 0x{:x}\ncversion = {}\ndataVersion = {}\naclVersion = {}\nephemeralOwner = 0x{:x}\ndataLength = {}\nnumChildren = {}\n",
        s.czxid,
        proto::java_date(s.ctime),
        s.mzxid,
        proto::java_date(s.mtime),
        s.pzxid,
        s.cversion,
        s.version,
        s.aversion,
        s.ephemeral_owner,
        s.data_length,
        s.num_children
    )
}

pub(super) fn stat_json(s: &Stat) -> serde_json::Value {
    json!({
        "czxid": s.czxid, "mzxid": s.mzxid, "pzxid": s.pzxid,
        "ctime": s.ctime, "mtime": s.mtime,
        "version": s.version, "cversion": s.cversion, "aversion": s.aversion,
        "ephemeralOwner": s.ephemeral_owner, "dataLength": s.data_length,
        "numChildren": s.num_children,
    })
}

pub(super) fn data_text(d: &Option<Vec<u8>>) -> String {
    match d {
        None => "null".into(),
        Some(b) => String::from_utf8_lossy(b).into_owned(),
    }
}

pub(super) fn decode<T: Jute>(b: &[u8]) -> Result<T, ClientError> {
    T::read(&mut Reader::new(b)).map_err(|e| ClientError::Protocol(e.to_string()))
}

pub(super) fn pw(path: &str, watch: bool) -> PathWatchRequest {
    PathWatchRequest {
        path: path.to_string(),
        watch,
    }
}
