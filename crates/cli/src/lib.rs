//! `ferrokeeper cli`: a zkCli-compatible shell. The same commands, options
//! and output as ZooKeeper 3.8's zkCli where scripts read them; one-shot
//! mode (`cli -server host:port get /x`) prints only the answer and exits
//! non-zero on error; interactively, line editing, persistent history,
//! completion of commands and znode paths, and a zkCli prompt. Beyond
//! zkCli: `--output json`, `tree`, `watch`.

pub mod client;
pub mod commands;

use std::cell::RefCell;
use std::io::{BufRead, IsTerminal};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;

use client::{Client, Event};
use commands::{Format, Shell};

thread_local! {
    /// Where watch events go: kept so `connect` can make a new client.
    pub(crate) static EVENTS: RefCell<Option<mpsc::Sender<Event>>> = const { RefCell::new(None) };
}

/// Whether watch events are printed (`printwatches`).
pub(crate) static PRINT_WATCHES: AtomicBool = AtomicBool::new(true);
/// Print what zkCli 3.9 prints where it differs from 3.8 (`--zkcli 3.9`;
/// `commands::zkcli39`).
pub(crate) static ZKCLI_39: AtomicBool = AtomicBool::new(false);
/// The `watch` command is streaming events.
pub(crate) static WATCHING: AtomicBool = AtomicBool::new(false);

struct Options {
    server: String,
    timeout_ms: i32,
    format: Format,
    command: Vec<String>,
}

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        server: "localhost:2181".into(),
        timeout_ms: 30_000,
        format: Format::Text,
        command: Vec::new(),
    };
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let value = || {
            args.get(i + 1)
                .cloned()
                .ok_or_else(|| format!("{a} needs a value"))
        };
        match a {
            "-server" | "--server" => {
                o.server = value()?;
                i += 2;
            }
            "-timeout" | "--timeout" => {
                o.timeout_ms = value()?
                    .parse()
                    .map_err(|_| "-timeout needs a number of ms")?;
                i += 2;
            }
            "-client-configuration" => i += 2,
            "-r" => i += 1,
            "--zkcli" | "-zkcli" => {
                match value()?.as_str() {
                    "3.9" => ZKCLI_39.store(true, Ordering::Relaxed),
                    "3.8" => ZKCLI_39.store(false, Ordering::Relaxed),
                    other => return Err(format!("--zkcli {other}: expected 3.8 or 3.9")),
                }
                i += 2;
            }
            "--output" | "-output" => {
                o.format = match value()?.as_str() {
                    "json" => Format::Json,
                    "text" => Format::Text,
                    other => return Err(format!("--output {other}: expected json or text")),
                };
                i += 2;
            }
            _ => {
                o.command = args[i..].to_vec();
                break;
            }
        }
    }
    Ok(o)
}

/// Runs the shell; returns the process exit code.
pub fn main(args: &[String]) -> i32 {
    let opts = match parse_args(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let (tx, rx) = mpsc::channel::<Event>();
    EVENTS.with(|e| *e.borrow_mut() = Some(tx.clone()));
    let one_shot = !opts.command.is_empty();
    let interactive = !one_shot && std::io::stdin().is_terminal();
    // Events print from their own thread, as zkCli's watcher does; the
    // one-shot mode prints nothing but the answer.
    std::thread::spawn(move || {
        for e in rx {
            if WATCHING.load(Ordering::Relaxed) {
                // `watch` streams node events and losses of the
                // connection, not (re)connections: the connect event may
                // reach this thread only after `watch` set WATCHING (seen
                // on a loaded CI machine).
                if e.path.is_some() || e.state != "SyncConnected" {
                    println!("{e}");
                }
            } else if !one_shot && PRINT_WATCHES.load(Ordering::Relaxed) {
                println!("\nWATCHER::\n\n{e}");
            }
        }
    });
    let client = Client::new(&opts.server, opts.timeout_ms, tx);
    let mut shell = Shell::new(client, opts.format);
    if one_shot {
        let code = match shell.client.connect() {
            Err(_) => {
                eprintln!(
                    "KeeperErrorCode = ConnectionLoss for {}",
                    opts.command.get(1).map(String::as_str).unwrap_or("/")
                );
                1
            }
            Ok(()) => match shell.run(&opts.command[0], &opts.command[1..]) {
                Ok(()) => 0,
                Err(()) => 1,
            },
        };
        shell.client.close();
        return code;
    }
    // As zkCli: the banner first, the connection (and its event) after.
    println!("Connecting to {}", opts.server);
    println!("Welcome to ZooKeeper!");
    if !interactive {
        println!("JLine support is disabled");
    }
    if let Err(e) = shell.client.connect() {
        eprintln!(
            "Could not connect to {} ({e:?}); commands will retry",
            opts.server
        );
    }
    if !interactive {
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            let line = line.trim().to_string();
            if line == "quit" {
                break;
            }
            let _ = shell.run_line(&line);
        }
        shell.client.close();
        // Let the printer show the Closed event.
        std::thread::sleep(std::time::Duration::from_millis(50));
        return 0;
    }
    interactive_loop(shell)
}

fn prompt(shell: &Shell, n: usize) -> String {
    let state = if shell.client.connected() {
        "CONNECTED"
    } else {
        "CONNECTING"
    };
    let server = shell
        .client
        .server()
        .map(str::to_string)
        .unwrap_or_else(|| shell.client.hosts.join(","));
    format!("[zk: {server}({state}) {n}] ")
}

/// Completes command names, then znode paths from the server.
struct Helper {
    shell: Rc<RefCell<Shell>>,
}

impl rustyline::completion::Completer for Helper {
    type Candidate = String;
    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &rustyline::Context<'_>,
    ) -> rustyline::Result<(usize, Vec<String>)> {
        let head = &line[..pos];
        let start = head.rfind(' ').map_or(0, |i| i + 1);
        let word = &head[start..];
        if start == 0 {
            let mut c: Vec<String> = commands::USAGE
                .iter()
                .map(|(c, _)| c.to_string())
                .filter(|c| c.starts_with(word))
                .collect();
            c.sort();
            return Ok((0, c));
        }
        if !word.starts_with('/') {
            return Ok((pos, vec![]));
        }
        let (dir, prefix) = match word.rfind('/') {
            Some(0) => ("/".to_string(), &word[1..]),
            Some(i) => (word[..i].to_string(), &word[i + 1..]),
            None => return Ok((pos, vec![])),
        };
        let Ok(mut shell) = self.shell.try_borrow_mut() else {
            return Ok((pos, vec![]));
        };
        let req = proto::Request::GetChildren(proto::PathWatchRequest {
            path: dir.clone(),
            watch: false,
        });
        let Ok(b) = shell.client.call(&req) else {
            return Ok((pos, vec![]));
        };
        let Ok(r) = <proto::GetChildrenResponse as proto::Jute>::from_bytes(&b) else {
            return Ok((pos, vec![]));
        };
        let mut c: Vec<String> = r
            .children
            .into_iter()
            .filter(|k| k.starts_with(prefix))
            .map(|k| {
                if dir == "/" {
                    format!("/{k}")
                } else {
                    format!("{dir}/{k}")
                }
            })
            .collect();
        c.sort();
        Ok((start, c))
    }
}

impl rustyline::hint::Hinter for Helper {
    type Hint = String;
}
impl rustyline::highlight::Highlighter for Helper {}
impl rustyline::validate::Validator for Helper {}
impl rustyline::Helper for Helper {}

fn interactive_loop(shell: Shell) -> i32 {
    let shell = Rc::new(RefCell::new(shell));
    // Bash-like completion: the common prefix, then the list on a second Tab.
    let config = rustyline::Config::builder()
        .completion_type(rustyline::CompletionType::List)
        .auto_add_history(false)
        .build();
    let Ok(mut rl) =
        rustyline::Editor::<Helper, rustyline::history::FileHistory>::with_config(config)
    else {
        eprintln!("cannot start line editing");
        return 1;
    };
    rl.set_helper(Some(Helper {
        shell: shell.clone(),
    }));
    let history = std::env::var_os("HOME")
        .map(|h| std::path::PathBuf::from(h).join(".ferrokeeper_cli_history"));
    if let Some(h) = &history {
        let _ = rl.load_history(h);
    }
    let mut n = 0;
    loop {
        let p = prompt(&shell.borrow(), n);
        match rl.readline(&p) {
            Ok(line) => {
                let line = line.trim().to_string();
                if line.is_empty() {
                    continue;
                }
                let _ = rl.add_history_entry(line.as_str());
                if line == "quit" {
                    break;
                }
                let _ = shell.borrow_mut().run_line(&line);
                n += 1;
            }
            Err(rustyline::error::ReadlineError::Interrupted) => continue,
            Err(_) => break,
        }
    }
    if let Some(h) = &history {
        let _ = rl.save_history(h);
    }
    shell.borrow_mut().client.close();
    0
}
