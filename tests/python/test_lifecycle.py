"""The lifecycle commands through bin/zkServer.sh (ferrokeeper's wrapper):
start (daemonized, pid file, log file), status, stop, restart, print-cmd,
compared with what Debian's zkServer.sh prints for ZooKeeper 3.8."""
import json
import os
import re
import signal
import subprocess
import unittest
import urllib.request

from kazoo.client import KazooClient

import harness

WRAPPER = os.path.join(harness.ROOT, "bin", "zkServer.sh")
ZKSERVER = "/usr/share/zookeeper/bin/zkServer.sh"


def run(script, *args, env=None):
    e = dict(os.environ, FERROKEEPER_BIN=harness.BINARY)
    e.update(env or {})
    p = subprocess.run(["bash", script] + list(args), capture_output=True, text=True, timeout=120, env=e)
    return p.returncode, p.stdout, p.stderr


def pid_of(server):
    try:
        with open(os.path.join(server.lines["dataDir"], "zookeeper_server.pid")) as f:
            return int(f.read().strip())
    except (OSError, ValueError):
        return None


def kill_daemon(server):
    """Cleanup: the daemon is not the harness's child; kill it by pid file."""
    pid = pid_of(server)
    if pid:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def mask(text):
    return re.sub(r"process \d+", "process N", text)


class LifecycleTest(unittest.TestCase):
    def server(self, kind="ferrokeeper"):
        s = harness.Server(kind=kind)
        os.makedirs(s.lines["dataDir"], exist_ok=True)
        self.addCleanup(s.close)
        self.addCleanup(kill_daemon, s)
        return s

    def test_start_status_stop_restart_round_trip(self):
        s = self.server()
        code, out, err = run(WRAPPER, "start", s.cfg)
        self.assertEqual((code, out), (0, "Starting zookeeper ... STARTED\n"), err)
        self.assertIn("Using config: " + s.cfg, err)
        pid = pid_of(s)
        self.assertTrue(pid and alive(pid), "the pid file names a live process")
        # Serving right away: start returns once the client port listens.
        c = KazooClient(hosts=s.hosts)
        c.start(15)
        c.create("/kept", b"across restart")
        c.stop()
        code, out, _ = run(WRAPPER, "start", s.cfg)
        self.assertEqual((code, out), (1, "Starting zookeeper ... already running as process %d.\n" % pid))
        code, out, _ = run(WRAPPER, "status", s.cfg)
        self.assertEqual(code, 0)
        self.assertIn("Mode: standalone\n", out)
        # The log file, one line per event with the server id and module.
        log = os.path.join(s.lines["dataDir"], "logs", "ferrokeeper-server.log")
        with open(log) as f:
            text = f.read()
        self.assertRegex(text, r"\[myid:\]\s+INFO server::core_task: snapshot at index|\[myid:\]\s+INFO ferrokeeper: ferrokeeper started")
        code, out, _ = run(WRAPPER, "restart", s.cfg)
        self.assertEqual((code, out), (0, "Stopping zookeeper ... STOPPED\nStarting zookeeper ... STARTED\n"))
        self.assertFalse(alive(pid), "the old process is gone")
        new_pid = pid_of(s)
        self.assertNotEqual(new_pid, pid)
        c = KazooClient(hosts=s.hosts)
        c.start(15)
        self.assertEqual(c.get("/kept")[0], b"across restart")
        c.stop()
        code, out, _ = run(WRAPPER, "stop", s.cfg)
        self.assertEqual((code, out), (0, "Stopping zookeeper ... STOPPED\n"))
        self.assertFalse(alive(new_pid), "stop waits until the server is gone")
        self.assertIn("shutting down", open(log).read(), "a clean shutdown on SIGTERM")
        pidfile = os.path.join(s.lines["dataDir"], "zookeeper_server.pid")
        self.assertFalse(os.path.exists(pidfile))
        code, out, _ = run(WRAPPER, "stop", s.cfg)
        self.assertEqual((code, out), (0, "Stopping zookeeper ... no zookeeper to stop (could not find file %s)\n" % pidfile))
        code, out, _ = run(WRAPPER, "status", s.cfg)
        self.assertEqual(code, 1)
        self.assertTrue(out.endswith("Error contacting service. It is probably not running.\n"), out)

    @unittest.skipUnless(os.path.exists(ZKSERVER), "Debian's zookeeper package is not installed")
    def test_start_and_stop_print_what_zkserver_sh_prints(self):
        transcripts = {}
        for kind, script in (("zookeeper", ZKSERVER), ("ferrokeeper", WRAPPER)):
            s = self.server(kind)
            env = {"ZOO_LOG_DIR": os.path.join(s.dir, "logs")}
            lines = []
            for cmd in ("start", "start", "stop", "stop"):
                code, out, _ = run(script, cmd, s.cfg, env=env)
                if cmd == "start" and code == 0:
                    harness.wait_until(lambda: harness.four_letter(s.port, "ruok") == "imok", what=kind)
                lines.append((cmd, code, mask(out).replace(s.lines["dataDir"], "DATADIR")))
            transcripts[kind] = lines
        # zkServer.sh's second start says "already running" with exit 1.
        self.assertEqual(transcripts["ferrokeeper"], transcripts["zookeeper"])

    def test_stale_pid_file_names_another_process(self):
        # The pid file survived a crash and its number now belongs to some
        # other process: stop must not signal it, start must not refuse.
        s = self.server()
        other = subprocess.Popen(["sleep", "60"])
        self.addCleanup(other.kill)
        with open(os.path.join(s.lines["dataDir"], "zookeeper_server.pid"), "w") as f:
            f.write(str(other.pid))
        code, out, err = run(WRAPPER, "stop", s.cfg)
        self.assertEqual((code, out), (0, "Stopping zookeeper ... STOPPED\n"))
        self.assertIn("is not a ferrokeeper server", err)
        self.assertIsNone(other.poll(), "the other process was left alone")
        with open(os.path.join(s.lines["dataDir"], "zookeeper_server.pid"), "w") as f:
            f.write(str(other.pid))
        code, out, _ = run(WRAPPER, "start", s.cfg)
        self.assertEqual((code, out), (0, "Starting zookeeper ... STARTED\n"))
        pid = pid_of(s)
        # The same config named another way still finds its server.
        other_name = os.path.join(os.path.dirname(s.cfg), ".", os.path.basename(s.cfg))
        self.assertEqual(run(WRAPPER, "stop", other_name)[:2], (0, "Stopping zookeeper ... STOPPED\n"))
        self.assertFalse(alive(pid))

    def test_start_failure_says_why(self):
        s = self.server()
        with open(s.cfg, "a") as f:
            f.write("tickTime=often\n")
        code, out, err = run(WRAPPER, "start", s.cfg)
        self.assertEqual((code, out), (1, "Starting zookeeper ... FAILED TO START\n"))
        self.assertRegex(err, r"zoo\.cfg:\d+: tickTime")
        # A port already taken: the server's own reason comes back.
        s2 = self.server()
        s.lines.pop("tickTime")
        s2.lines["clientPort"] = str(s.port)
        s2.write_cfg()
        s.write_cfg()
        self.assertEqual(run(WRAPPER, "start", s.cfg)[0], 0)
        code, out, err = run(WRAPPER, "start", s2.cfg)
        self.assertEqual((code, out), (1, "Starting zookeeper ... FAILED TO START\n"))
        self.assertIn("cannot bind the client port", err)
        self.assertIsNone(pid_of(s2), "no pid file left behind")

    def test_print_cmd_and_version(self):
        s = self.server()
        code, out, _ = run(WRAPPER, "print-cmd", s.cfg)
        self.assertEqual(code, 0)
        self.assertIn("start-foreground", out)
        self.assertIn('"%s"' % s.cfg, out)
        code, out, _ = run(WRAPPER, "version")
        self.assertEqual(code, 0)
        self.assertIn("ferrokeeper", out)

    def test_the_walkthrough_with_zkserver_sh(self):
        # The shipped conf/zoo1.cfg..zoo3.cfg, with every port and directory
        # moved to test values and nothing else changed; operators start
        # each member in the background and ask for its mode.
        ens = harness.Ensemble(3)
        self.addCleanup(ens.close)
        for s in ens.servers:
            self.addCleanup(kill_daemon, s)
        ports = {}
        for i, s in enumerate(ens.servers, start=1):
            for key in ("quorum", "election", "admin"):
                ports[(i, key)] = harness.free_port()
        for i, s in enumerate(ens.servers, start=1):
            with open(os.path.join(harness.ROOT, "conf", "zoo%d.cfg" % i)) as f:
                text = f.read()
            text = text.replace("/tmp/ferrokeeper/zk%d" % i, s.dir)
            text = re.sub(r"(?m)^clientPort=\d+$", "clientPort=%d" % s.port, text)
            text = re.sub(r"(?m)^admin\.serverPort=\d+$", "admin.serverPort=%d" % ports[(i, "admin")], text)
            for j in (1, 2, 3):
                text = re.sub(r"(?m)^server\.%d=localhost:\d+:\d+$" % j,
                              "server.%d=localhost:%d:%d" % (j, ports[(j, "quorum")], ports[(j, "election")]), text)
            with open(s.cfg, "w") as f:
                f.write(text)
            s.lines = dict(l.split("=", 1) for l in text.splitlines() if "=" in l and not l.startswith("#"))
        for s in ens.servers:
            code, out, err = run(WRAPPER, "start", s.cfg)
            self.assertEqual((code, out), (0, "Starting zookeeper ... STARTED\n"), err)
        modes = []
        harness.wait_until(lambda: modes.append(sorted(
            re.search(r"Mode: (\w+)", run(WRAPPER, "status", s.cfg)[1] + "Mode: none").group(1)
            for s in ens.servers)) or modes[-1] == ["follower", "follower", "leader"], what="leader and followers")
        # ruok is whitelisted in the shipped configs: imok from each.
        for s in ens.servers:
            self.assertEqual(harness.four_letter(s.port, "ruok"), "imok")
        c = KazooClient(hosts=ens.hosts)
        c.start(15)
        c.create("/walk", b"through")
        c.stop()
        for i, s in enumerate(ens.servers, start=1):
            with open(os.path.join(s.lines["dataDir"], "logs", "ferrokeeper-server.log")) as f:
                self.assertIn("[myid:%d]" % i, f.read())
            # Each has its own AdminServer port from its config.
            with urllib.request.urlopen("http://127.0.0.1:%d/commands/ruok" % ports[(i, "admin")], timeout=10) as r:
                self.assertEqual(json.loads(r.read())["command"], "ruok")
        for s in ens.servers:
            self.assertEqual(run(WRAPPER, "stop", s.cfg)[:2], (0, "Stopping zookeeper ... STOPPED\n"))

if __name__ == "__main__":
    unittest.main()
