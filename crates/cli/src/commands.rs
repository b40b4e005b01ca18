//! zkCli 3.8's commands: the same options, the same output on stdout, the
//! same messages on stderr, so scripts that parse zkCli keep working.
//! `--output json` turns the read commands' answers into JSON.

use std::io::Write;

use proto::{
    Acl, AddWatchRequest, CreateTtlRequest, ErrorCode, Id, Jute, OpCode, PathRecord,
    PathVersionRequest, PathWatchRequest, Reader, Request, SetAclRequest, SetDataRequest, Stat,
    WatchTypeRequest,
};
use serde_json::json;

use crate::client::{Client, ClientError};

/// Output style of read commands.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

/// What a command ended with: zkCli's exit code for one-shot mode.
pub type Outcome = Result<(), ()>;

pub struct Shell {
    pub client: Client,
    pub format: Format,
    pub print_watches: bool,
    pub history: Vec<String>,
    out: Box<dyn Write>,
    err: Box<dyn Write>,
}

/// One line per command, as zkCli's usage lists them.
pub const USAGE: &[(&str, &str)] = &[
    ("addWatch", "addWatch [-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE"),
    ("addauth", "addauth scheme auth"),
    ("close", "close "),
    ("config", "config [-c] [-w] [-s]"),
    ("connect", "connect host:port"),
    ("create", "create [-s] [-e] [-c] [-t ttl] path [data] [acl]"),
    ("delete", "delete [-v version] path"),
    ("deleteall", "deleteall path [-b batch size]"),
    ("delquota", "delquota [-n|-b|-N|-B] path"),
    ("get", "get [-s] [-w] path"),
    ("getAcl", "getAcl [-s] path"),
    ("getAllChildrenNumber", "getAllChildrenNumber path"),
    ("getEphemerals", "getEphemerals path"),
    ("history", "history "),
    ("listquota", "listquota path"),
    ("ls", "ls [-s] [-w] [-R] path"),
    ("printwatches", "printwatches on|off"),
    ("quit", "quit "),
    ("reconfig", "reconfig [-s] [-v version] [[-file path] | [-members serverID=host:port1:port2;port3[,...]*]] | [-add serverId=host:port1:port2;port3[,...]]* [-remove serverId[,...]*]"),
    ("redo", "redo cmdno"),
    ("removewatches", "removewatches path [-c|-d|-a] [-l]"),
    ("set", "set [-s] [-v version] path data"),
    ("setAcl", "setAcl [-s] [-v version] [-R] path acl"),
    ("setquota", "setquota -n|-b|-N|-B val path"),
    ("stat", "stat [-w] path"),
    ("sync", "sync path"),
    ("version", "version "),
    ("whoami", "whoami "),
    ("tree", "tree [path] # ferrokeeper: draws the subtree"),
    ("watch", "watch [-R] path # ferrokeeper: prints events until Ctrl-C"),
];

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

fn keeper_message(e: &ClientError, path: &str) -> String {
    format!("KeeperErrorCode = {} for {path}", code_message(e.code()))
}

/// zkCli's CliWrapperException wording for an error on `path`.
fn cli_message(e: &ClientError, path: &str) -> String {
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
struct Args {
    flags: Vec<char>,
    values: Vec<(char, String)>,
    pos: Vec<String>,
}

impl Args {
    /// `with_value` lists the options that take a value.
    fn parse(words: &[String], with_value: &str) -> Result<Args, String> {
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
    fn has(&self, c: char) -> bool {
        self.flags.contains(&c)
    }
    fn value(&self, c: char) -> Option<&str> {
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

fn perms_string(p: i32) -> String {
    let mut s = String::new();
    for (bit, c) in [(4, 'c'), (8, 'd'), (1, 'r'), (2, 'w'), (16, 'a')] {
        if p & bit != 0 {
            s.push(c);
        }
    }
    s
}

/// zkCli's AclParser: "scheme:id:perms[,scheme:id:perms...]".
fn parse_acl(text: &str, err: &mut dyn Write) -> Vec<Acl> {
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

fn open_acl() -> Vec<Acl> {
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

fn stat_json(s: &Stat) -> serde_json::Value {
    json!({
        "czxid": s.czxid, "mzxid": s.mzxid, "pzxid": s.pzxid,
        "ctime": s.ctime, "mtime": s.mtime,
        "version": s.version, "cversion": s.cversion, "aversion": s.aversion,
        "ephemeralOwner": s.ephemeral_owner, "dataLength": s.data_length,
        "numChildren": s.num_children,
    })
}

fn data_text(d: &Option<Vec<u8>>) -> String {
    match d {
        None => "null".into(),
        Some(b) => String::from_utf8_lossy(b).into_owned(),
    }
}

fn decode<T: Jute>(b: &[u8]) -> Result<T, ClientError> {
    T::read(&mut Reader::new(b)).map_err(|e| ClientError::Protocol(e.to_string()))
}

fn pw(path: &str, watch: bool) -> PathWatchRequest {
    PathWatchRequest {
        path: path.to_string(),
        watch,
    }
}

impl Shell {
    pub fn new(client: Client, format: Format) -> Shell {
        Shell {
            client,
            format,
            print_watches: true,
            history: Vec::new(),
            out: Box::new(std::io::stdout()),
            err: Box::new(std::io::stderr()),
        }
    }

    fn say(&mut self, s: &str) {
        let _ = self.out.write_all(s.as_bytes());
        let _ = self.out.flush();
    }

    fn line(&mut self, s: &str) {
        let _ = writeln!(self.out, "{s}");
        let _ = self.out.flush();
    }

    fn complain(&mut self, s: &str) {
        let _ = writeln!(self.err, "{s}");
        let _ = self.err.flush();
    }

    fn json(&mut self, v: serde_json::Value) {
        let s = serde_json::to_string(&v).unwrap_or_default();
        self.line(&s);
    }

    fn usage_of(&mut self, cmd: &str) -> Outcome {
        if let Some((_, u)) = USAGE.iter().find(|(c, _)| *c == cmd) {
            let u = u.to_string();
            self.complain(&u);
        }
        Err(())
    }

    fn fail(&mut self, e: &ClientError, path: &str) -> Outcome {
        let m = cli_message(e, path);
        self.complain(&m);
        Err(())
    }

    fn call(&mut self, req: &Request) -> Result<Vec<u8>, ClientError> {
        self.client.call(req)
    }

    /// Prints the general usage (an unknown command or `help`).
    pub fn print_usage(&mut self) {
        self.complain("ZooKeeper -server host:port -client-configuration properties-file cmd args");
        // zkCli's own commands, in its (case-sensitive) order; ours
        // (tree, watch) are left out so the text stays the same.
        let mut all: Vec<&(&str, &str)> = USAGE
            .iter()
            .filter(|(c, _)| !matches!(*c, "tree" | "watch"))
            .collect();
        all.sort_by_key(|(c, _)| *c);
        for (_, u) in all {
            self.complain(&format!("\t{u}"));
        }
    }

    /// Runs one command line; records it in the history.
    pub fn run_line(&mut self, line: &str) -> Outcome {
        let words = split_words(line);
        let Some(cmd) = words.first().cloned() else {
            return Ok(());
        };
        // As zkCli: every line goes into the history before it runs (a
        // redo's entry becomes the line it redoes).
        self.history.push(line.to_string());
        self.run(&cmd, &words[1..])
    }

    pub fn run(&mut self, cmd: &str, args: &[String]) -> Outcome {
        // After `close`, zkCli answers server commands with this until `connect`.
        const LOCAL: &[&str] = &[
            "history",
            "redo",
            "version",
            "connect",
            "close",
            "printwatches",
            "quit",
        ];
        if self.client.is_closed() && !LOCAL.contains(&cmd) && USAGE.iter().any(|(c, _)| *c == cmd)
        {
            self.line("Not connected");
            return Err(());
        }
        match cmd {
            "ls" => self.ls(args),
            "create" => self.create(args),
            "get" => self.get(args),
            "set" => self.set(args),
            "delete" => self.delete(args),
            "deleteall" | "rmr" => self.deleteall(args),
            "stat" => self.stat(args),
            "getAcl" => self.get_acl(args),
            "setAcl" => self.set_acl(args),
            "addauth" => self.addauth(args),
            "sync" => self.sync(args),
            "config" => self.config(args),
            "reconfig" => self.reconfig(args),
            "whoami" => self.whoami(),
            "addWatch" => self.add_watch(args),
            "removewatches" => self.remove_watches(args),
            "printwatches" => self.printwatches(args),
            "getEphemerals" => self.get_ephemerals(args),
            "getAllChildrenNumber" => self.all_children(args),
            "setquota" | "listquota" | "delquota" => self.quota(cmd, args),
            "history" => {
                // zkCli prints entries count-10 ..= count (the current one).
                let lines: Vec<String> = self
                    .history
                    .iter()
                    .enumerate()
                    .skip(self.history.len().saturating_sub(11))
                    .map(|(i, l)| format!("{i} - {l}"))
                    .collect();
                for l in lines {
                    self.line(&l);
                }
                Ok(())
            }
            "redo" => {
                let current = self.history.len().saturating_sub(1);
                let line = args
                    .first()
                    .and_then(|n| n.parse::<usize>().ok())
                    .filter(|n| *n < current)
                    .and_then(|n| self.history.get(n).cloned());
                match line {
                    Some(l) if split_words(&l).first().map(String::as_str) == Some("redo") => {
                        self.complain("No redoing redos");
                        Err(())
                    }
                    Some(l) => {
                        self.history[current] = l.clone();
                        let words = split_words(&l);
                        self.run(&words[0], &words[1..])
                    }
                    None => {
                        self.complain("Command index out of range");
                        Err(())
                    }
                }
            }
            "version" => {
                self.line(&format!(
                    "ZooKeeper CLI version: 3.8.4-ferrokeeper-{}",
                    env!("CARGO_PKG_VERSION")
                ));
                Ok(())
            }
            "connect" => {
                let Some(hosts) = args.first() else {
                    return self.usage_of("connect");
                };
                self.client.close();
                let (tx, timeout) = (self.events_sender(), self.client.timeout_ms);
                self.client = Client::new(hosts, timeout, tx);
                self.client.connect().map_err(|e| {
                    let m = keeper_message(&e, "/");
                    self.complain(&m);
                })
            }
            "close" => {
                self.client.close();
                Ok(())
            }
            "tree" => self.tree(args),
            "watch" => self.watch(args),
            other => {
                self.print_usage();
                self.complain(&format!("Command not found: Command not found {other}"));
                Err(())
            }
        }
    }

    /// The sender watch events go to (kept across `connect`).
    fn events_sender(&self) -> std::sync::mpsc::Sender<crate::client::Event> {
        crate::EVENTS.with(|e| e.borrow().clone().expect("events channel set"))
    }

    fn path_arg(&mut self, a: &Args, cmd: &str, idx: usize) -> Result<String, ()> {
        match a.pos.get(idx) {
            Some(p) => match proto::path::validate(p, false) {
                Ok(()) => Ok(p.clone()),
                Err(m) => {
                    self.complain(&m);
                    Err(())
                }
            },
            None => {
                self.usage_of(cmd)?;
                Err(())
            }
        }
    }

    fn ls(&mut self, args: &[String]) -> Outcome {
        let a = Args::parse(args, "").map_err(|m| self.complain(&m))?;
        let path = self.path_arg(&a, "ls", 0)?;
        if a.has('R') {
            let mut stack = vec![path];
            let mut all = Vec::new();
            while let Some(p) = stack.pop() {
                match self.call(&Request::GetChildren(pw(&p, false))) {
                    Ok(b) => {
                        let mut kids = decode::<proto::GetChildrenResponse>(&b)
                            .map_err(|e| {
                                let _ = self.fail(&e, &p);
                            })?
                            .children;
                        kids.sort();
                        for k in kids.iter().rev() {
                            stack.push(if p == "/" {
                                format!("/{k}")
                            } else {
                                format!("{p}/{k}")
                            });
                        }
                        all.push(p);
                    }
                    Err(e) => return self.fail(&e, &p),
                }
            }
            if self.format == Format::Json {
                self.json(json!(all));
            } else {
                for p in all {
                    self.line(&p);
                }
            }
            return Ok(());
        }
        let with_stat = a.has('s');
        let req = Request::GetChildren2(pw(&path, a.has('w')));
        match self.call(&req) {
            Ok(b) => {
                let r = decode::<proto::GetChildren2Response>(&b).map_err(|e| {
                    let _ = self.fail(&e, &path);
                })?;
                let mut kids = r.children;
                kids.sort();
                if self.format == Format::Json {
                    let mut v = json!({ "path": path, "children": kids });
                    if with_stat {
                        v["stat"] = stat_json(&r.stat);
                    }
                    self.json(v);
                } else {
                    self.line(&format!("[{}]", kids.join(", ")));
                    if with_stat {
                        self.say(&stat_text(&r.stat));
                    }
                }
                Ok(())
            }
            Err(e) => self.fail(&e, &path),
        }
    }

    fn create(&mut self, args: &[String]) -> Outcome {
        let a = Args::parse(args, "t").map_err(|m| self.complain(&m))?;
        let Some(path) = a.pos.first().cloned() else {
            return self.usage_of("create");
        };
        let (seq, eph, cont) = (a.has('s'), a.has('e'), a.has('c'));
        let ttl = match a.value('t') {
            None => None,
            Some(t) => match t.parse::<i64>() {
                Ok(t) => Some(t),
                Err(_) => {
                    self.complain(&format!("For input string: \"{t}\""));
                    return Err(());
                }
            },
        };
        if cont && (seq || eph || ttl.is_some()) {
            self.complain("-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.");
            return Err(());
        }
        if eph && ttl.is_some() {
            self.complain("TTLs cannot be used with Ephemeral znodes");
            return Err(());
        }
        if let Err(m) = proto::path::validate(&path, seq) {
            self.complain(&m);
            return Err(());
        }
        let flags = match (cont, eph, seq, ttl.is_some()) {
            (true, ..) => 4,
            (_, true, true, _) => 3,
            (_, true, false, _) => 1,
            (_, false, true, true) => 6,
            (_, false, false, true) => 5,
            (_, false, true, false) => 2,
            _ => 0,
        };
        let data = a.pos.get(1).map(|d| d.as_bytes().to_vec());
        let acl = match a.pos.get(2) {
            Some(t) => {
                let acl = parse_acl(t, &mut *self.err);
                if acl.is_empty() {
                    // The Java client refuses an empty ACL before sending.
                    self.complain("KeeperErrorCode = InvalidACL");
                    self.complain("Acl is not valid : null");
                    return Err(());
                }
                acl
            }
            None => open_acl(),
        };
        let op = if cont {
            OpCode::CreateContainer
        } else if ttl.is_some() {
            OpCode::CreateTtl
        } else {
            OpCode::Create2
        };
        let req = Request::Create(
            op,
            CreateTtlRequest {
                path: path.clone(),
                data,
                acl,
                flags,
                ttl: ttl.unwrap_or(-1),
            },
        );
        match self.call(&req) {
            Ok(b) => {
                let created = decode::<proto::Create2Response>(&b)
                    .map(|r| r.path)
                    .unwrap_or(path);
                self.complain(&format!("Created {created}"));
                Ok(())
            }
            Err(e) => {
                if e.code() == ErrorCode::InvalidAcl {
                    let m = keeper_message(&e, &path);
                    self.complain(&m);
                }
                self.fail(&e, &path)
            }
        }
    }

    fn get(&mut self, args: &[String]) -> Outcome {
        let a = Args::parse(args, "").map_err(|m| self.complain(&m))?;
        let path = self.path_arg(&a, "get", 0)?;
        match self.call(&Request::GetData(pw(&path, a.has('w')))) {
            Ok(b) => {
                let r = decode::<proto::GetDataResponse>(&b).map_err(|e| {
                    let _ = self.fail(&e, &path);
                })?;
                if self.format == Format::Json {
                    let mut v = json!({ "path": path, "data": r.data.as_ref().map(|d| String::from_utf8_lossy(d).into_owned()) });
                    if a.has('s') {
                        v["stat"] = stat_json(&r.stat);
                    }
                    self.json(v);
                } else {
                    self.line(&data_text(&r.data));
                    if a.has('s') {
                        self.say(&stat_text(&r.stat));
                    }
                }
                Ok(())
            }
            Err(e) => self.fail(&e, &path),
        }
    }

    fn set(&mut self, args: &[String]) -> Outcome {
        let a = Args::parse(args, "v").map_err(|m| self.complain(&m))?;
        let path = self.path_arg(&a, "set", 0)?;
        let Some(data) = a.pos.get(1) else {
            return self.usage_of("set");
        };
        let version = a.value('v').and_then(|v| v.parse().ok()).unwrap_or(-1);
        let req = Request::SetData(SetDataRequest {
            path: path.clone(),
            data: Some(data.as_bytes().to_vec()),
            version,
        });
        match self.call(&req) {
            Ok(b) => {
                if a.has('s') {
                    let s = decode::<proto::StatResponse>(&b).map_err(|e| {
                        let _ = self.fail(&e, &path);
                    })?;
                    self.say(&stat_text(&s.stat));
                }
                Ok(())
            }
            Err(e) => self.fail(&e, &path),
        }
    }

    fn delete(&mut self, args: &[String]) -> Outcome {
        let a = Args::parse(args, "v").map_err(|m| self.complain(&m))?;
        let path = self.path_arg(&a, "delete", 0)?;
        let version = a.value('v').and_then(|v| v.parse().ok()).unwrap_or(-1);
        match self.call(&Request::Delete(PathVersionRequest {
            path: path.clone(),
            version,
        })) {
            Ok(_) => Ok(()),
            Err(e) => self.fail(&e, &path),
        }
    }

    fn children(&mut self, path: &str) -> Result<Vec<String>, ClientError> {
        let b = self.call(&Request::GetChildren(pw(path, false)))?;
        Ok(decode::<proto::GetChildrenResponse>(&b)?.children)
    }

    fn deleteall(&mut self, args: &[String]) -> Outcome {
        let a = Args::parse(args, "b").map_err(|m| self.complain(&m))?;
        let path = self.path_arg(&a, "deleteall", 0)?;
        // Deepest first, as ZKUtil.deleteRecursive.
        let mut order = Vec::new();
        let mut stack = vec![path.clone()];
        while let Some(p) = stack.pop() {
            match self.children(&p) {
                Ok(kids) => {
                    for k in kids {
                        stack.push(if p == "/" {
                            format!("/{k}")
                        } else {
                            format!("{p}/{k}")
                        });
                    }
                    order.push(p);
                }
                Err(e) if e.code() == ErrorCode::NoNode && p != path => {}
                Err(e) => return self.fail(&e, &p),
            }
        }
        for p in order.iter().rev() {
            if proto::path::is_system(p) {
                continue;
            }
            match self.call(&Request::Delete(PathVersionRequest {
                path: p.clone(),
                version: -1,
            })) {
                Ok(_) => {}
                Err(e) if e.code() == ErrorCode::NoNode => {}
                Err(e) => return self.fail(&e, p),
            }
        }
        Ok(())
    }

    fn stat(&mut self, args: &[String]) -> Outcome {
        let a = Args::parse(args, "").map_err(|m| self.complain(&m))?;
        let path = self.path_arg(&a, "stat", 0)?;
        match self.call(&Request::Exists(pw(&path, a.has('w')))) {
            Ok(b) => {
                let s = decode::<proto::StatResponse>(&b).map_err(|e| {
                    let _ = self.fail(&e, &path);
                })?;
                if self.format == Format::Json {
                    self.json(json!({ "path": path, "stat": stat_json(&s.stat) }));
                } else {
                    self.say(&stat_text(&s.stat));
                }
                Ok(())
            }
            Err(e) => self.fail(&e, &path),
        }
    }

    fn get_acl(&mut self, args: &[String]) -> Outcome {
        let a = Args::parse(args, "").map_err(|m| self.complain(&m))?;
        let path = self.path_arg(&a, "getAcl", 0)?;
        match self.call(&Request::GetAcl(PathRecord { path: path.clone() })) {
            Ok(b) => {
                let r = decode::<proto::GetAclResponse>(&b).map_err(|e| {
                    let _ = self.fail(&e, &path);
                })?;
                if self.format == Format::Json {
                    let acl: Vec<_> = r
                        .acl
                        .iter()
                        .map(|x| json!({ "scheme": x.id.scheme, "id": x.id.id, "perms": perms_string(x.perms) }))
                        .collect();
                    let mut v = json!({ "path": path, "acl": acl });
                    if a.has('s') {
                        v["stat"] = stat_json(&r.stat);
                    }
                    self.json(v);
                } else {
                    for x in &r.acl {
                        let t =
                            format!("'{},'{}\n: {}", x.id.scheme, x.id.id, perms_string(x.perms));
                        self.line(&t);
                    }
                    if a.has('s') {
                        self.say(&stat_text(&r.stat));
                    }
                }
                Ok(())
            }
            Err(e) => self.fail(&e, &path),
        }
    }

    fn set_acl(&mut self, args: &[String]) -> Outcome {
        let a = Args::parse(args, "v").map_err(|m| self.complain(&m))?;
        let path = self.path_arg(&a, "setAcl", 0)?;
        let Some(text) = a.pos.get(1).cloned() else {
            return self.usage_of("setAcl");
        };
        let acl = parse_acl(&text, &mut *self.err);
        let version = a.value('v').and_then(|v| v.parse().ok()).unwrap_or(-1);
        let mut targets = vec![path.clone()];
        if a.has('R') {
            let mut stack = vec![path.clone()];
            targets.clear();
            while let Some(p) = stack.pop() {
                if let Ok(kids) = self.children(&p) {
                    for k in kids {
                        stack.push(if p == "/" {
                            format!("/{k}")
                        } else {
                            format!("{p}/{k}")
                        });
                    }
                }
                targets.push(p);
            }
        }
        for p in targets {
            match self.call(&Request::SetAcl(SetAclRequest {
                path: p.clone(),
                acl: acl.clone(),
                version,
            })) {
                Ok(b) => {
                    if a.has('s') && p == path {
                        if let Ok(s) = decode::<proto::StatResponse>(&b) {
                            self.say(&stat_text(&s.stat));
                        }
                    }
                }
                Err(e) => return self.fail(&e, &p),
            }
        }
        Ok(())
    }

    fn addauth(&mut self, args: &[String]) -> Outcome {
        let (Some(scheme), auth) = (args.first(), args.get(1)) else {
            return self.usage_of("addauth");
        };
        let req = Request::Auth(proto::AuthPacket {
            auth_type: 0,
            scheme: scheme.clone(),
            auth: Some(auth.map(|a| a.as_bytes().to_vec()).unwrap_or_default()),
        });
        match self.call(&req) {
            Ok(_) => Ok(()),
            Err(e) => {
                let m = keeper_message(&e, "/");
                self.complain(&m);
                Err(())
            }
        }
    }

    fn sync(&mut self, args: &[String]) -> Outcome {
        let a = Args::parse(args, "").map_err(|m| self.complain(&m))?;
        let path = self.path_arg(&a, "sync", 0)?;
        match self.call(&Request::Sync(PathRecord { path: path.clone() })) {
            Ok(_) => {
                self.line("Sync is OK");
                Ok(())
            }
            Err(e) => {
                self.line(&format!("Sync returned {}", e.code().code()));
                Err(())
            }
        }
    }

    fn config(&mut self, args: &[String]) -> Outcome {
        let a = Args::parse(args, "").map_err(|m| self.complain(&m))?;
        let path = "/zookeeper/config";
        match self.call(&Request::GetData(pw(path, a.has('w')))) {
            Ok(b) => {
                let r = decode::<proto::GetDataResponse>(&b).map_err(|e| {
                    let _ = self.fail(&e, path);
                })?;
                let text = data_text(&r.data);
                if self.format == Format::Json {
                    let mut v = json!({ "config": text });
                    if a.has('s') {
                        v["stat"] = stat_json(&r.stat);
                    }
                    self.json(v);
                    return Ok(());
                }
                if a.has('c') {
                    // Only the client connect string part.
                    let hosts: Vec<String> = text
                        .lines()
                        .filter_map(|l| l.split_once(';').map(|(_, c)| c.to_string()))
                        .collect();
                    self.line(&hosts.join(","));
                } else {
                    self.line(&text);
                }
                if a.has('s') {
                    self.say(&stat_text(&r.stat));
                }
                Ok(())
            }
            Err(e) => self.fail(&e, path),
        }
    }

    fn reconfig(&mut self, _args: &[String]) -> Outcome {
        // Dynamic reconfiguration is off, as in a default ZooKeeper 3.8:
        // the server says so.
        let req = Request::Reconfig(proto::ReconfigRequest {
            joining_servers: String::new(),
            leaving_servers: String::new(),
            new_members: String::new(),
            cur_config_id: -1,
        });
        match self.call(&req) {
            Ok(_) => Ok(()),
            Err(e) => {
                let m = keeper_message(&e, "").trim_end_matches(" for ").to_string();
                self.complain(&m);
                Err(())
            }
        }
    }

    fn whoami(&mut self) -> Outcome {
        match self.call(&Request::WhoAmI) {
            Ok(b) => {
                let r = decode::<proto::WhoAmIResponse>(&b).map_err(|e| {
                    let _ = self.fail(&e, "");
                })?;
                if self.format == Format::Json {
                    let v: Vec<_> = r
                        .client_info
                        .iter()
                        .map(|c| json!({ "scheme": c.auth_scheme, "user": c.user }))
                        .collect();
                    self.json(json!(v));
                } else {
                    self.line("Auth scheme: User");
                    for c in &r.client_info {
                        let t = format!("{}: {}", c.auth_scheme, c.user);
                        self.line(&t);
                    }
                }
                Ok(())
            }
            Err(e) => self.fail(&e, ""),
        }
    }

    fn add_watch(&mut self, args: &[String]) -> Outcome {
        let a = Args::parse(args, "m").map_err(|m| self.complain(&m))?;
        let path = self.path_arg(&a, "addWatch", 0)?;
        let mode = match a.value('m') {
            None | Some("PERSISTENT_RECURSIVE") => 1,
            Some("PERSISTENT") => 0,
            Some(_) => return self.usage_of("addWatch"),
        };
        match self.call(&Request::AddWatch(AddWatchRequest {
            path: path.clone(),
            mode,
        })) {
            Ok(_) => Ok(()),
            Err(e) => self.fail(&e, &path),
        }
    }

    fn remove_watches(&mut self, args: &[String]) -> Outcome {
        let a = Args::parse(args, "").map_err(|m| self.complain(&m))?;
        let path = self.path_arg(&a, "removewatches", 0)?;
        let kind = if a.has('c') {
            1
        } else if a.has('d') {
            2
        } else {
            3
        };
        match self.call(&Request::RemoveWatches(WatchTypeRequest {
            path: path.clone(),
            watcher_type: kind,
        })) {
            Ok(_) => {
                // The Java client tells its own watchers they were removed;
                // printed here, before the next command runs (a following
                // `printwatches off` must not swallow them).
                for kind in self.client.forget_watches(&path, kind) {
                    let e = crate::client::Event {
                        state: "SyncConnected",
                        kind,
                        path: Some(path.clone()),
                    };
                    if self.print_watches {
                        self.say(&format!("\nWATCHER::\n\n{e}\n"));
                    }
                }
                Ok(())
            }
            Err(e) if e.code() == ErrorCode::NoWatcher => {
                let m = keeper_message(&e, &path);
                self.complain(&m);
                Err(())
            }
            Err(e) => self.fail(&e, &path),
        }
    }

    fn printwatches(&mut self, args: &[String]) -> Outcome {
        match args.first().map(String::as_str) {
            None => {
                let s = format!(
                    "printwatches is {}",
                    if self.print_watches { "on" } else { "off" }
                );
                self.line(&s);
            }
            Some("on") => {
                self.print_watches = true;
                crate::PRINT_WATCHES.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            Some(_) => {
                self.print_watches = false;
                crate::PRINT_WATCHES.store(false, std::sync::atomic::Ordering::Relaxed);
            }
        }
        Ok(())
    }

    fn get_ephemerals(&mut self, args: &[String]) -> Outcome {
        let path = args.first().cloned().unwrap_or_else(|| "/".into());
        if let Err(m) = proto::path::validate(&path, false) {
            self.complain(&m);
            return Err(());
        }
        match self.call(&Request::GetEphemerals(PathRecord { path: path.clone() })) {
            Ok(b) => {
                let mut r = Reader::new(&b);
                let list: Vec<String> = Jute::read(&mut r).map_err(|e| {
                    let _ = self.fail(&ClientError::Protocol(e.to_string()), &path);
                })?;
                if self.format == Format::Json {
                    self.json(json!(list));
                } else {
                    self.line(&format!("[{}]", list.join(", ")));
                }
                Ok(())
            }
            Err(e) => self.fail(&e, &path),
        }
    }

    fn all_children(&mut self, args: &[String]) -> Outcome {
        let a = Args::parse(args, "").map_err(|m| self.complain(&m))?;
        let path = self.path_arg(&a, "getAllChildrenNumber", 0)?;
        match self.call(&Request::GetAllChildrenNumber(PathRecord {
            path: path.clone(),
        })) {
            Ok(b) => {
                let n = decode::<proto::CountResponse>(&b).map_err(|e| {
                    let _ = self.fail(&e, &path);
                })?;
                if self.format == Format::Json {
                    self.json(json!({ "path": path, "count": n.count }));
                } else {
                    self.line(&n.count.to_string());
                }
                Ok(())
            }
            Err(e) => self.fail(&e, &path),
        }
    }

    /// Quotas live in /zookeeper/quota/<path>/zookeeper_limits (and
    /// zookeeper_stats), maintained by the client as zkCli does. They are
    /// not enforced (ZooKeeper's default).
    fn quota(&mut self, cmd: &str, args: &[String]) -> Outcome {
        let a = Args::parse(args, "nbNB").map_err(|m| self.complain(&m))?;
        let path = self.path_arg(&a, cmd, 0)?;
        let qpath = format!("/zookeeper/quota{path}");
        let limits = format!("{qpath}/zookeeper_limits");
        let stats = format!("{qpath}/zookeeper_stats");
        match cmd {
            "listquota" => {
                self.complain(&format!("absolute path is {limits}"));
                for (node, label) in [(&limits, "Output quota"), (&stats, "Output stat")] {
                    match self.call(&Request::GetData(pw(node, false))) {
                        Ok(b) => {
                            let r = decode::<proto::GetDataResponse>(&b).map_err(|_| ())?;
                            if self.format == Format::Json {
                                let key = if node == &limits { "quota" } else { "stat" };
                                self.json(json!({ "path": path, key: data_text(&r.data) }));
                            } else {
                                self.line(&format!("{label} for {path} {}", data_text(&r.data)));
                            }
                        }
                        Err(e) if e.code() == ErrorCode::NoNode => {
                            self.complain(&format!("quota for {path} does not exist."));
                            return Ok(());
                        }
                        Err(e) => return self.fail(&e, node),
                    }
                }
                Ok(())
            }
            "setquota" => {
                let val = |c: char| a.value(c).and_then(|v| v.parse::<i64>().ok()).unwrap_or(-1);
                let (n, b, hn, hb) = (val('n'), val('b'), val('N'), val('B'));
                if n < 0 && b < 0 && hn < 0 && hb < 0 {
                    return self.usage_of("setquota");
                }
                // zkCli's StatsTrack text, its stray "=" included.
                let text = format!("count={n},bytes={b}=;byteHardLimit={hb};countHardLimit={hn}");
                // As zkCli: the server keeps zookeeper_stats up to date.
                let stats_text = "count=0,bytes=0".to_string();
                // Parents of the quota node.
                let mut p = String::from("/zookeeper/quota");
                for part in path.split('/').filter(|s| !s.is_empty()) {
                    p = format!("{p}/{part}");
                    let _ = self.call(&Request::Create(
                        OpCode::Create,
                        CreateTtlRequest {
                            path: p.clone(),
                            data: None,
                            acl: open_acl(),
                            flags: 0,
                            ttl: -1,
                        },
                    ));
                }
                for (node, data) in [(&limits, text.clone()), (&stats, stats_text)] {
                    let created = self.call(&Request::Create(
                        OpCode::Create,
                        CreateTtlRequest {
                            path: node.clone(),
                            data: Some(data.as_bytes().to_vec()),
                            acl: open_acl(),
                            flags: 0,
                            ttl: -1,
                        },
                    ));
                    if let Err(e) = created {
                        if e.code() != ErrorCode::NodeExists {
                            return self.fail(&e, node);
                        }
                        if node == &limits {
                            let _ = self.call(&Request::SetData(SetDataRequest {
                                path: node.clone(),
                                data: Some(data.as_bytes().to_vec()),
                                version: -1,
                            }));
                        }
                    }
                }
                Ok(())
            }
            _ => {
                // delquota: without an option, the whole quota goes.
                for node in [&limits, &stats] {
                    match self.call(&Request::Delete(PathVersionRequest {
                        path: node.clone(),
                        version: -1,
                    })) {
                        Ok(_) => {}
                        Err(e) if e.code() == ErrorCode::NoNode => {
                            self.complain(&format!("Quota does not exist for {path}"));
                            return Err(());
                        }
                        Err(e) => return self.fail(&e, node),
                    }
                }
                // And the quota path itself, with parents left empty.
                let mut p = qpath.clone();
                while p.len() > "/zookeeper/quota".len() {
                    let gone = self.call(&Request::Delete(PathVersionRequest {
                        path: p.clone(),
                        version: -1,
                    }));
                    if gone.is_err() {
                        break;
                    }
                    p.truncate(p.rfind('/').unwrap_or(0));
                }
                Ok(())
            }
        }
    }

    /// ferrokeeper: draws a subtree.
    fn tree(&mut self, args: &[String]) -> Outcome {
        let path = args.first().cloned().unwrap_or_else(|| "/".into());
        if let Err(m) = proto::path::validate(&path, false) {
            self.complain(&m);
            return Err(());
        }
        let mut lines = vec![path.clone()];
        let mut stack: Vec<(String, String)> = Vec::new();
        let push_kids = |this: &mut Shell,
                         p: &str,
                         prefix: &str,
                         stack: &mut Vec<(String, String)>|
         -> Result<(), ClientError> {
            let mut kids = this.children(p)?;
            kids.sort();
            let n = kids.len();
            for (i, k) in kids.into_iter().enumerate().rev() {
                let last = i + 1 == n;
                let full = if p == "/" {
                    format!("/{k}")
                } else {
                    format!("{p}/{k}")
                };
                stack.push((
                    full,
                    format!("{prefix}{}", if last { "└── " } else { "├── " }),
                ));
            }
            Ok(())
        };
        if let Err(e) = push_kids(self, &path, "", &mut stack) {
            return self.fail(&e, &path);
        }
        while let Some((p, label)) = stack.pop() {
            let name = p.rsplit('/').next().unwrap_or("").to_string();
            lines.push(format!("{label}{name}"));
            let prefix = label.replace("├── ", "│   ").replace("└── ", "    ");
            let _ = push_kids(self, &p, &prefix, &mut stack);
        }
        for l in lines {
            self.line(&l);
        }
        Ok(())
    }

    /// ferrokeeper: a persistent (recursive with -R) watch whose events
    /// print until the process is interrupted.
    fn watch(&mut self, args: &[String]) -> Outcome {
        let a = Args::parse(args, "").map_err(|m| self.complain(&m))?;
        let path = self.path_arg(&a, "watch", 0)?;
        let mode = if a.has('R') { 1 } else { 0 };
        if let Err(e) = self.call(&Request::AddWatch(AddWatchRequest {
            path: path.clone(),
            mode,
        })) {
            return self.fail(&e, &path);
        }
        crate::WATCHING.store(true, std::sync::atomic::Ordering::Relaxed);
        loop {
            std::thread::sleep(std::time::Duration::from_millis(500));
            if !self.client.connected() && self.client.connect().is_err() {
                self.complain("connection lost");
                return Err(());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_acls() {
        assert_eq!(
            split_words("create /a 'hello world' world:anyone:r"),
            vec!["create", "/a", "hello world", "world:anyone:r"]
        );
        assert_eq!(split_words("set /a \"\""), vec!["set", "/a", ""]);
        let mut err = Vec::new();
        let acl = parse_acl("digest:u:h=:cdrwa,ip:1.2.3.4:r,bad", &mut err);
        assert_eq!(acl.len(), 2);
        assert_eq!(acl[0].id.id, "u:h=");
        assert_eq!(acl[0].perms, 31);
        assert_eq!(perms_string(acl[0].perms), "cdrwa");
        assert_eq!(
            String::from_utf8(err).unwrap(),
            "bad does not have the form scheme:id:perm\n"
        );
    }

    #[test]
    fn paths_as_zookeeper_checks_them() {
        assert!(proto::path::validate("/a/b", false).is_ok());
        assert_eq!(
            proto::path::validate("a", false).unwrap_err(),
            "Path must start with / character"
        );
        assert_eq!(
            proto::path::validate("/a//b", false).unwrap_err(),
            "Invalid path string \"/a//b\" caused by empty node name specified @3"
        );
        assert!(proto::path::validate("/a/", true).is_ok());
    }
}
