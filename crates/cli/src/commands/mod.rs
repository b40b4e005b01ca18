//! zkCli 3.8's commands: the same options, the same output on stdout, the
//! same messages on stderr, so scripts that parse zkCli keep working.
//! `--output json` turns the read commands' answers into JSON.
//!
//! This file is the shell and the node commands (ls, create, get, set,
//! delete, stat, ACLs, sync, config, whoami, tree); `text` holds zkCli's
//! words and answer formats, `watches` and `quota` their commands;
//! ferrokeeper's own `backup`/`restore`/`transferleader` (through the
//! AdminServer) and `export`/`import` are in `backup` and `transfer`.

use std::io::Write;

mod backup;
mod quota;
mod reconfig;
mod text;
mod transfer;
mod watches;
mod zkcli39;

use text::*;
pub use text::{code_message, split_words, stat_text};

use proto::{
    CreateTtlRequest, ErrorCode, Jute, OpCode, PathRecord, PathVersionRequest, Reader, Request,
    SetAclRequest, SetDataRequest,
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
    ("backup", "backup [-a adminUrl] file # ferrokeeper: the whole state, as a ZooKeeper snapshot, from the AdminServer"),
    ("restore", "restore [-a adminUrl] file # ferrokeeper: replaces the ensemble's state with a backup"),
    ("transferleader", "transferleader [-a adminUrl] serverId # ferrokeeper: moves leadership to that server"),
    ("export", "export path file # ferrokeeper: a subtree's data and ACLs as JSON"),
    ("import", "import file [path] # ferrokeeper: creates an exported subtree (under path)"),
];

/// zkCli 3.9's output asked for (`--zkcli 3.9`).
fn zkcli_39() -> bool {
    crate::ZKCLI_39.load(std::sync::atomic::Ordering::Relaxed)
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
        if let Some(u) = zkcli39::usage(cmd).filter(|_| zkcli_39()) {
            self.complain(u);
            return Err(());
        }
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
            .filter(|(c, _)| {
                !matches!(
                    *c,
                    "tree"
                        | "watch"
                        | "backup"
                        | "restore"
                        | "transferleader"
                        | "export"
                        | "import"
                )
            })
            .collect();
        all.sort_by_key(|(c, _)| *c);
        for (c, u) in all {
            let u = zkcli39::usage_line(c).filter(|_| zkcli_39()).unwrap_or(u);
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
            "backup" => self.backup(args),
            "restore" => self.restore(args),
            "transferleader" => self.transfer_leader(args),
            "export" => self.export(args),
            "import" => self.import(args),
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
                } else if zkcli_39() && (a.has('b') || a.has('x')) {
                    // zkCli 3.9 formats "null" for no data, as the text.
                    let d = r.data.clone().unwrap_or_else(|| b"null".to_vec());
                    let text = if a.has('x') {
                        zkcli39::hex_dump(&d)
                    } else {
                        zkcli39::base64(&d)
                    };
                    self.line(&text);
                    if a.has('s') {
                        self.say(&stat_text(&r.stat));
                    }
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
        let data = if zkcli_39() && a.has('b') {
            zkcli39::from_base64(data).ok_or_else(|| {
                self.complain(&format!("Illegal base64 data: {data}"));
            })?
        } else {
            data.as_bytes().to_vec()
        };
        let req = Request::SetData(SetDataRequest {
            path: path.clone(),
            data: Some(data),
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
