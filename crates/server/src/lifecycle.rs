//! `zkServer.sh`'s lifecycle commands: start (daemonized), stop, restart,
//! print-cmd. Each prints what zkServer.sh prints (stdout) and returns an
//! exit code; `Using config: …` goes to stderr, as there.
//!
//! Files, as zkServer.sh places them: the pid file is
//! `<dataDir>/zookeeper_server.pid` (or `$ZOOPIDFILE`); logs go to
//! `$ZOO_LOG_DIR` (default `<dataDir>/logs`): `ferrokeeper-server.log`
//! (the server's log, rotated by size) and `ferrokeeper-server.out` (its
//! stdout and stderr: anything printed before logging starts).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::Config;

/// How long `start` waits for the server to listen (recovery of a large
/// log comes first).
const START_TIMEOUT: Duration = Duration::from_secs(120);
/// How long `stop` waits for the server to finish after SIGTERM.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

/// What a command printed and its exit code.
#[derive(Debug, Default)]
pub struct Outcome {
    pub stdout: String,
    pub stderr: String,
    pub code: u8,
}

/// Where a server started with `start` keeps its pid and logs.
pub struct Paths {
    pub pid_file: PathBuf,
    pub log_dir: PathBuf,
    pub log_file: PathBuf,
    pub out_file: PathBuf,
}

impl Paths {
    pub fn of(cfg: &Config) -> Paths {
        let pid_file = std::env::var_os("ZOOPIDFILE")
            .map(PathBuf::from)
            .unwrap_or_else(|| cfg.data_dir.join("zookeeper_server.pid"));
        let log_dir = std::env::var_os("ZOO_LOG_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| cfg.data_dir.join("logs"));
        Paths {
            pid_file,
            log_file: log_dir.join("ferrokeeper-server.log"),
            out_file: log_dir.join("ferrokeeper-server.out"),
            log_dir,
        }
    }
}

fn load(cfg_path: &Path, out: &mut Outcome) -> Option<Config> {
    out.stderr = format!("Using config: {}\n", cfg_path.display());
    match Config::load(cfg_path) {
        Ok(c) => Some(c),
        Err(e) => {
            out.stderr.push_str(&format!("{e}\n"));
            out.code = 1;
            None
        }
    }
}

/// A process's state letter from `/proc/PID/stat` (R, S, D, T, Z, …).
fn proc_state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Is a process with this pid alive (not a zombie)?
pub fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists.
    if pid <= 0 || unsafe { libc::kill(pid, 0) } != 0 {
        return false;
    }
    // A zombie (exited, not yet reaped: e.g. in a container whose init
    // does not reap) counts as gone.
    proc_state(pid) != Some('Z')
}

/// Why a process may not have acted on SIGTERM, from its state.
fn why_not_stopped(pid: i32) -> String {
    match proc_state(pid) {
        Some('T') | Some('t') => format!(
            "; it is stopped (SIGSTOP, Ctrl-Z or a debugger) and acts on no signal until continued: kill -CONT {pid}"
        ),
        Some('D') => "; it is waiting on the disk (uninterruptible sleep)".into(),
        _ => String::new(),
    }
}

/// Is `pid` the server `start` ran for this config (and not another
/// process that reused a stale pid file's number)? Its command line has
/// `start-foreground` and the config path, as `start` passed them.
fn is_ours(pid: i32, cfg_path: &Path) -> bool {
    let cfg = absolute(cfg_path);
    let want = cfg.as_os_str().as_encoded_bytes();
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| {
            let args: Vec<&[u8]> = c.split(|b| *b == 0).collect();
            args.contains(&&b"start-foreground"[..]) && args.contains(&want)
        })
        .unwrap_or(false)
}

/// The config path as `start` hands it to the server: absolute, so that
/// `stop ./conf/zoo.cfg` recognises a server started with `conf/zoo.cfg`.
fn absolute(cfg_path: &Path) -> PathBuf {
    std::fs::canonicalize(cfg_path).unwrap_or_else(|_| cfg_path.to_path_buf())
}

fn read_pid(pid_file: &Path) -> Option<i32> {
    std::fs::read_to_string(pid_file).ok()?.trim().parse().ok()
}

/// The command `start` runs, as print-cmd shows it: the `-D` settings it
/// hands on (`SERVER_JVMFLAGS`, `JVMFLAGS`) first, as the server reads them.
fn command_line(exe: &Path, cfg_path: &Path, p: &Paths) -> String {
    let flags: String = crate::config::JVM_FLAG_VARS
        .iter()
        .filter_map(|v| Some(format!("{v}=\"{}\" ", std::env::var(v).ok()?)))
        .collect();
    format!(
        "{flags}\"{}\" start-foreground --log-file \"{}\" \"{}\" > \"{}\" 2>&1 < /dev/null",
        exe.display(),
        p.log_file.display(),
        cfg_path.display(),
        p.out_file.display()
    )
}

pub fn print_cmd(exe: &Path, cfg_path: &Path) -> Outcome {
    let mut out = Outcome::default();
    let Some(cfg) = load(cfg_path, &mut out) else {
        return out;
    };
    out.stdout = command_line(exe, cfg_path, &Paths::of(&cfg)) + "\n";
    out
}

/// Starts `exe start-foreground CFG` as a daemon (its own session, stdio
/// to the .out file), writes the pid file, and returns once the client
/// port accepts connections — or says why it did not start.
pub fn start(exe: &Path, cfg_path: &Path) -> Outcome {
    let mut out = Outcome::default();
    let Some(cfg) = load(cfg_path, &mut out) else {
        out.stdout = "Starting zookeeper ... FAILED TO START\n".into();
        return out;
    };
    out.stdout = "Starting zookeeper ... ".into();
    let fail = |mut out: Outcome, why: String| {
        out.stdout.push_str("FAILED TO START\n");
        out.stderr.push_str(&why);
        if !why.ends_with('\n') {
            out.stderr.push('\n');
        }
        out.code = 1;
        out
    };
    let p = Paths::of(&cfg);
    if let Some(pid) = read_pid(&p.pid_file) {
        if alive(pid) && is_ours(pid, cfg_path) {
            out.stdout
                .push_str(&format!("already running as process {pid}.\n"));
            out.code = 1;
            return out;
        }
    }
    let (_, port) = match cfg.client_endpoint() {
        Ok(x) => x,
        Err(e) => return fail(out, e),
    };
    for d in [&p.log_dir, p.pid_file.parent().unwrap_or(Path::new("."))] {
        if let Err(e) = std::fs::create_dir_all(d) {
            return fail(out, format!("{}: {e}", d.display()));
        }
    }
    let stdio = match std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&p.out_file)
    {
        Ok(f) => f,
        Err(e) => return fail(out, format!("{}: {e}", p.out_file.display())),
    };
    let out_len = stdio.metadata().map(|m| m.len()).unwrap_or(0);
    let mut cmd = std::process::Command::new(exe);
    cmd.arg("start-foreground")
        .arg("--log-file")
        .arg(&p.log_file)
        .arg(absolute(cfg_path))
        .stdin(std::process::Stdio::null())
        .stdout(stdio.try_clone().expect("dup of an open file"))
        .stderr(stdio);
    // The server says it is ready (client port bound) by writing a byte
    // to this pipe; its end of the pipe closing unwritten means it failed.
    let mut fds = [0i32; 2];
    // SAFETY: pipe2 fills two fds we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return fail(out, format!("pipe: {}", std::io::Error::last_os_error()));
    }
    use std::os::fd::FromRawFd;
    // SAFETY: fresh fds from pipe2, owned here from now on.
    let (ready_r, ready_w) = unsafe {
        (
            std::fs::File::from_raw_fd(fds[0]),
            std::fs::File::from_raw_fd(fds[1]),
        )
    };
    cmd.env(READY_FD_ENV, READY_FD.to_string());
    use std::os::unix::process::CommandExt;
    let w = fds[1];
    // SAFETY: setsid and dup2 are async-signal-safe. setsid detaches the
    // daemon from this terminal's session (no SIGHUP or Ctrl-C from it);
    // dup2 hands it the pipe's write end as fd 3, without close-on-exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::setsid();
            if libc::dup2(w, READY_FD) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let spawned = cmd.spawn();
    drop(ready_w);
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => return fail(out, format!("cannot run {}: {e}", exe.display())),
    };
    let pid = child.id() as i32;
    if let Err(e) = std::fs::write(&p.pid_file, pid.to_string()) {
        out.stdout.push_str("FAILED TO WRITE PID\n");
        out.stderr
            .push_str(&format!("{}: {e}\n", p.pid_file.display()));
        out.code = 1;
        return out;
    }
    let deadline = Instant::now() + START_TIMEOUT;
    let ready = wait_ready(&ready_r, deadline);
    if ready == Some(true) {
        out.stdout.push_str("STARTED\n");
        return out;
    }
    if ready.is_none() {
        return fail(
            out,
            format!(
                "process {pid} did not report ready within {} s (still listening for port {port}?); see {}",
                START_TIMEOUT.as_secs(),
                p.log_file.display()
            ),
        );
    }
    // It closed the pipe without a word: it is exiting.
    let status = child.wait();
    let _ = std::fs::remove_file(&p.pid_file);
    let tail = tail_since(&p.out_file, out_len);
    fail(
        out,
        format!(
            "the server exited ({}); {} says:\n{tail}",
            status.map(|s| s.to_string()).unwrap_or_default(),
            p.out_file.display()
        ),
    )
}

/// The server's start signal: Some(true) once it wrote, Some(false) when
/// its end closed first, None at the deadline.
fn wait_ready(r: &std::fs::File, deadline: Instant) -> Option<bool> {
    use std::io::Read;
    use std::os::fd::AsRawFd;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return None;
        }
        let mut pfd = libc::pollfd {
            fd: r.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(1000) as i32) };
        if n > 0 {
            let mut b = [0u8; 1];
            return Some(matches!((&*r).read(&mut b), Ok(1)));
        }
    }
}

/// The fd a daemon started by `start` writes its ready byte to.
const READY_FD: i32 = 3;
const READY_FD_ENV: &str = "FERROKEEPER_READY_FD";

/// Called by the server once it listens: tells a waiting `start` that
/// it started. Does nothing when not started by `start`.
pub fn signal_ready() {
    use std::io::Write;
    use std::os::fd::FromRawFd;
    let Some(fd) = std::env::var(READY_FD_ENV)
        .ok()
        .and_then(|v| v.parse::<i32>().ok())
    else {
        return;
    };
    // SAFETY: the fd `start` handed us; it is ours to write and close.
    let mut f = unsafe { std::fs::File::from_raw_fd(fd) };
    let _ = f.write_all(b"1");
}

/// What was appended to `file` after byte `from` (the last 20 lines).
fn tail_since(file: &Path, from: u64) -> String {
    let text = std::fs::read(file).unwrap_or_default();
    let text = String::from_utf8_lossy(text.get(from as usize..).unwrap_or_default());
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// SIGTERM to the pid in the pid file, then wait until it is gone (a
/// clean shutdown) and remove the pid file.
pub fn stop(cfg_path: &Path) -> Outcome {
    let mut out = Outcome::default();
    let Some(cfg) = load(cfg_path, &mut out) else {
        return out;
    };
    let p = Paths::of(&cfg);
    out.stdout = "Stopping zookeeper ... ".into();
    let Some(pid) = read_pid(&p.pid_file) else {
        out.stdout.push_str(&format!(
            "no zookeeper to stop (could not find file {})\n",
            p.pid_file.display()
        ));
        return out;
    };
    if alive(pid) && !is_ours(pid, cfg_path) {
        // A stale pid file whose number now belongs to another process:
        // zkServer.sh would signal it; we leave it alone.
        out.stderr.push_str(&format!(
            "{}: process {pid} is not a ferrokeeper server; not signalling it\n",
            p.pid_file.display()
        ));
    } else if alive(pid) {
        // SAFETY: sending SIGTERM to the pid recorded by `start`.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while alive(pid) {
            if Instant::now() > deadline {
                out.stdout.push_str("NOT STOPPED\n");
                out.stderr.push_str(&format!(
                    "process {pid} is still running {} s after SIGTERM{}\n",
                    STOP_TIMEOUT.as_secs(),
                    why_not_stopped(pid)
                ));
                out.code = 1;
                return out;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    let _ = std::fs::remove_file(&p.pid_file);
    out.stdout.push_str("STOPPED\n");
    out
}

pub fn restart(exe: &Path, cfg_path: &Path) -> Outcome {
    let a = stop(cfg_path);
    if a.code != 0 {
        return a;
    }
    let b = start(exe, cfg_path);
    Outcome {
        stdout: a.stdout + &b.stdout,
        stderr: a.stderr + &b.stderr,
        code: b.code,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_process_is_named_as_such() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        // Just after exec the child may still be loading from disk (state
        // D, which is named too): wait until it sleeps as a server would.
        let deadline = Instant::now() + Duration::from_secs(10);
        while proc_state(pid) != Some('S') && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(why_not_stopped(pid), "");
        // SAFETY: signals to the child this test started.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while proc_state(pid) != Some('T') && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let why = why_not_stopped(pid);
        assert!(why.contains(&format!("kill -CONT {pid}")), "{why}");
        let _ = child.kill();
        let _ = child.wait();
    }
}
