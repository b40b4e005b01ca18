"""Faults a newcomer and an adversarial operator found (issue 22), each
reproduced with real processes: a second server on a live dataDir, silent
connections, a closed stderr, colour codes in logs, IPv6 clients, the
addauth reply's xid, a one-shot watch beside a recursive one, settings
passed as -D flags, and the messages an operator reads.
"""
import glob
import os
import shutil
import socket
import struct
import subprocess
import threading
import time
import unittest
import urllib.request

from kazoo.client import KazooClient

import harness
from harness import RawConn, jute_str, jute_buf, wait_until

WRAPPER = os.path.join(harness.ROOT, "bin", "zkServer.sh")


def run(cmd, env=None, timeout=30):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))


class WriteLoad:
    """Creates /load/n through kazoo until stopped; remembers what was acknowledged."""

    def __init__(self, server):
        self.zk = KazooClient(hosts=server.hosts, timeout=10)
        self.zk.start()
        self.zk.ensure_path("/load")
        self.acked = []
        self.errors = []
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.loop, daemon=True)
        self.thread.start()

    def loop(self):
        n = 0
        while not self.stop.is_set():
            try:
                self.zk.create("/load/%d" % n, b"v" * 2000)
                self.acked.append(n)
            except Exception as e:  # noqa: BLE001 — any failure is a finding
                self.errors.append(repr(e))
                return
            n += 1

    def finish(self):
        self.stop.set()
        self.thread.join(30)
        self.zk.stop()


class TestDataDirLock(unittest.TestCase):
    def setUp(self):
        # Small snapCount: snapshots are written all the time under the load,
        # so a newcomer's startup meets one in progress.
        self.server = harness.Server(extra={"snapCount": "100"}).start()
        self.addCleanup(self.server.close)

    def second(self, cfg):
        return subprocess.run([harness.BINARY, "start-foreground", cfg], capture_output=True,
                              text=True, timeout=30)

    def test_a_second_server_on_a_live_data_dir_exits_and_touches_nothing(self):
        load = WriteLoad(self.server)
        pid = self.server.proc.pid
        # The same config (the port too), and one with other ports but the
        # same directories: both must stop before touching anything.
        other = os.path.join(self.server.dir, "other.cfg")
        lines = dict(self.server.lines, clientPort=str(harness.free_port()))
        with open(other, "w") as f:
            f.writelines("%s=%s\n" % kv for kv in lines.items())
        for round_ in range(3):
            for cfg in (self.server.cfg, other):
                r = self.second(cfg)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn("is in use by another ferrokeeper server (process %d" % pid, r.stderr)
                self.assertIn(os.path.join(self.server.dir, "data"), r.stderr)
                self.assertIsNone(self.server.proc.poll(), "the running server died (round %d)" % round_)
        # Log dir on its own: the lock on dataLogDir holds too.
        lines = dict(lines, dataDir=os.path.join(self.server.dir, "elsewhere"))
        with open(other, "w") as f:
            f.writelines("%s=%s\n" % kv for kv in lines.items())
        r = self.second(other)
        self.assertEqual(r.returncode, 1, r.stderr)
        self.assertIn("dataLogDir %s is in use" % os.path.join(self.server.dir, "datalog"), r.stderr)
        time.sleep(0.5)
        load.finish()
        self.assertEqual(load.errors, [])
        self.assertGreater(len(load.acked), 100)
        self.assertIsNone(self.server.proc.poll())
        self.assertEqual(harness.four_letter(self.server.port, "ruok"), "imok")
        # Nothing acknowledged is lost, across a restart of the first server.
        self.server.stop()
        self.server.start()
        zk = KazooClient(hosts=self.server.hosts, timeout=10)
        zk.start()
        try:
            have = set(int(c) for c in zk.get_children("/load"))
        finally:
            zk.stop()
        self.assertEqual(set(load.acked) - have, set())

    def test_offline_tools_beside_a_running_server(self):
        load = WriteLoad(self.server)
        wait_until(lambda: len(glob.glob(os.path.join(self.server.dir, "data", "ferrokeeper-snap", "*.snap"))) >= 5,
                   what="five snapshots")
        data, log = os.path.join(self.server.dir, "data"), os.path.join(self.server.dir, "datalog")
        r = run([harness.BINARY, "log", "dump", log])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("index=0x", r.stdout)
        snap = sorted(glob.glob(os.path.join(data, "ferrokeeper-snap", "*.snap")))[-1]
        r = run([harness.BINARY, "snapshot", "dump", snap])
        self.assertEqual(r.returncode, 0, r.stderr)
        # purge beside the server, as zkCleanup.sh: says so, removes only old files.
        r = run([harness.BINARY, "purge", data, log, "-n", "3"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("a server (process %d) is running" % self.server.proc.pid, r.stdout)
        load.finish()
        self.assertEqual(load.errors, [])
        self.assertIsNone(self.server.proc.poll())
        # Stopped: purge takes the lock itself, and a restart finds every write.
        self.server.stop()
        r = run([harness.BINARY, "purge", data, log, "-n", "3"])
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertNotIn("is running", r.stdout)
        self.server.start()
        zk = KazooClient(hosts=self.server.hosts, timeout=10)
        zk.start()
        try:
            self.assertEqual(set(load.acked) - set(int(c) for c in zk.get_children("/load")), set())
        finally:
            zk.stop()


class TestSilentConnections(unittest.TestCase):
    def test_sessionless_connections_are_closed_and_free_their_address(self):
        # The timeout comes as ZooKeeper's system property through
        # SERVER_JVMFLAGS (issue 22, item 9, too).
        s = harness.Server(extra={"maxClientCnxns": "5"},
                           env={"SERVER_JVMFLAGS": "-Dzookeeper.nio.sessionlessCnxnTimeout=1500"})
        s.start(probe="srvr")
        self.addCleanup(s.close)
        # The probe's own connections free their slots as their tasks end,
        # just after the answer: give them a moment.
        time.sleep(0.5)
        silent = [socket.create_connection(("127.0.0.1", s.port)) for _ in range(5)]
        self.addCleanup(lambda: [c.close() for c in silent])
        time.sleep(0.2)
        try:
            refused = RawConn(s.port)
            self.assertIsNone(refused.session_id, "a sixth connection from one address is over maxClientCnxns")
            refused.close()
        except ConnectionResetError:
            pass  # closed with the connect request unread: a reset
        for c in silent:
            c.settimeout(10)
            self.assertEqual(c.recv(1), b"", "the server closes a connection that never sent a connect request")
        ok = RawConn(s.port)
        self.assertIsNotNone(ok.session_id)
        ok.close()
        zk = KazooClient(hosts=s.hosts, timeout=10)
        zk.start(timeout=10)
        zk.stop()
        self.assertIn("no connect request within 1500 ms", s.log())


class TestLogging(unittest.TestCase):
    def test_a_closed_stderr_does_not_stop_the_server(self):
        port, mport = harness.free_port(), harness.free_port()
        d = harness.tempfile.mkdtemp(prefix="fk-stderr-")
        self.addCleanup(shutil.rmtree, d, True)
        cfg = os.path.join(d, "zoo.cfg")
        with open(cfg, "w") as f:
            f.write("dataDir=%s/data\nclientPort=%d\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n"
                    "4lw.commands.whitelist=*\nmetricsProvider.httpPort=%d\nmetricsProvider.httpHost=127.0.0.1\n"
                    % (d, port, mport))
        # `start-foreground cfg 2>&1 | head -1`: the reader goes away after a line.
        p = subprocess.Popen([harness.BINARY, "start-foreground", cfg], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT)
        self.addCleanup(lambda: (p.kill(), p.wait()))
        p.stdout.readline()
        p.stdout.close()
        wait_until(lambda: harness.four_letter(port, "ruok") == "imok", what="the server")
        # Events that log: oversized frames close their connections with a warning.
        for _ in range(5):
            with socket.create_connection(("127.0.0.1", port)) as c:
                c.sendall(struct.pack(">i", 1 << 30))
                c.settimeout(5)
                c.recv(1)
        self.assertIsNone(p.poll(), "the server died when its log reader went away")
        zk = KazooClient(hosts="127.0.0.1:%d" % port, timeout=10)
        zk.start()
        zk.create("/still-serving", b"x")
        zk.stop()
        text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % mport, timeout=10).read().decode()
        dropped = [float(l.split()[1]) for l in text.splitlines() if l.startswith("log_writes_dropped_total ")]
        self.assertEqual(len(dropped), 1, text[:500])
        self.assertGreater(dropped[0], 0)

    def test_log_files_are_plain_text_and_causes_are_said_once(self):
        s = harness.Server().start()
        self.addCleanup(s.close)
        with socket.create_connection(("127.0.0.1", s.port)) as c:
            c.sendall(struct.pack(">i", 1 << 30))
            c.settimeout(5)
            c.recv(1)
        wait_until(lambda: "jute.maxbuffer" in s.log(), what="the warning")
        self.assertNotIn("\x1b[", s.log(), "colour codes in a log that is not a terminal")
        self.assertIn("peer=127.0.0.1:", s.log(), "key=value fields greppable as they read")
        # A client port already taken: the reason once, the port named.
        other = harness.Server()
        self.addCleanup(other.close)
        other.lines["clientPort"] = str(s.port)
        other.write_cfg()
        r = run([harness.BINARY, "start-foreground", other.cfg])
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot bind the client port 127.0.0.1:%d" % s.port, r.stderr)
        self.assertEqual(r.stderr.count("Address already in use"), 1, r.stderr)

    def test_a_taken_quorum_port_is_named_as_such(self):
        ens = harness.Ensemble(3)
        self.addCleanup(ens.close)
        s = ens.server(1)
        quorum_port = int(s.lines["server.1"].split(":")[1])
        with socket.socket() as blocker:
            blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            blocker.bind(("127.0.0.1", quorum_port))
            blocker.listen()
            r = run([harness.BINARY, "start-foreground", s.cfg])
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot bind the quorum port 127.0.0.1:%d" % quorum_port, r.stderr)
        self.assertNotIn("client port", r.stderr)


class TestDualStack(unittest.TestCase):
    def test_ipv6_and_ipv4_clients_on_the_wildcard(self):
        try:
            with socket.socket(socket.AF_INET6) as t:
                t.bind(("::1", 0))
        except OSError:
            self.skipTest("no IPv6 loopback here")
        admin = harness.free_port()
        s = harness.Server(extra={"admin.enableServer": "true", "admin.serverPort": str(admin)})
        del s.lines["clientPortAddress"]
        s.write_cfg()
        s.start()
        self.addCleanup(s.close)
        for host in ("[::1]", "127.0.0.1"):
            zk = KazooClient(hosts="%s:%d" % (host, s.port), timeout=10)
            zk.start(timeout=10)
            zk.ensure_path("/dual")
            zk.stop()
        # An IPv4 client is shown as IPv4, as ZooKeeper shows it.
        r = RawConn(s.port)
        self.addCleanup(r.close)
        cons = harness.four_letter(s.port, "cons")
        self.assertIn("/127.0.0.1:", cons)
        self.assertNotIn("::ffff:", cons)
        body = urllib.request.urlopen("http://[::1]:%d/commands/ruok" % admin, timeout=10).read()
        self.assertIn(b"error", body)


def _headers(port, other_port):
    """(xid, zxid kind, err) of each reply and event for a fixed exchange:
    addauth with an ordinary xid, a ping (with xid -2 and with an ordinary
    one), a watched getData answered by an
    event, and addauth with an unknown scheme (AuthFailed, then closed)."""
    def kind(z):
        return "zero" if z == 0 else "minus-one" if z == -1 else "positive" if z > 0 else z

    r = RawConn(port)
    out = []
    r.request(5, 100, struct.pack(">i", 0) + jute_str("digest") + jute_buf(b"u:p"))
    out.append(r.reply()[:3])
    r.request(-2, 11)
    out.append(r.reply()[:3])
    # A ping with an ordinary xid: ZooKeeper still answers with xid -2.
    r.request(8, 11)
    out.append(r.reply()[:3])
    acl = struct.pack(">i", 1) + struct.pack(">i", 31) + jute_str("world") + jute_str("anyone")
    r.request(6, 1, jute_str("/hdr") + jute_buf(b"a") + acl + struct.pack(">i", 0))
    out.append(r.reply()[:3])
    r.request(7, 4, jute_str("/hdr") + b"\x01")
    out.append(r.reply()[:3])
    w = RawConn(other_port)
    w.request(1, 5, jute_str("/hdr") + jute_buf(b"b") + struct.pack(">i", -1))
    w.reply()
    w.close()
    out.append(r.reply()[:3])
    r.request(9, 100, struct.pack(">i", 0) + jute_str("nosuchscheme") + jute_buf(b"x"))
    out.append(r.reply()[:3])
    closed = r.reply() is None
    r.close()
    return [(x, kind(z), e) for x, z, e in out], closed


def _watch_events(port):
    """A recursive watch and a one-shot children watch on /p in one session;
    another session creates /p/c."""
    r = RawConn(port)
    acl = struct.pack(">i", 1) + struct.pack(">i", 31) + jute_str("world") + jute_str("anyone")
    r.request(1, 1, jute_str("/p") + jute_buf(b"") + acl + struct.pack(">i", 0))
    assert r.reply()[2] == 0
    r.request(2, 106, jute_str("/p") + struct.pack(">i", 1))
    assert r.reply()[2] == 0
    r.request(3, 8, jute_str("/p") + b"\x01")
    assert r.reply()[2] == 0
    w = RawConn(port)
    w.request(1, 1, jute_str("/p/c") + jute_buf(b"") + acl + struct.pack(">i", 0))
    w.reply()
    w.close()
    events = set()
    r.s.settimeout(3)
    try:
        while len(events) < 3:
            xid, _, _, body = r.reply()
            typ, _ = struct.unpack_from(">ii", body, 0)
            events.add((typ, harness.read_str(body, 8)[0]))
    except (socket.timeout, TypeError):
        pass
    r.close()
    return events


class TestAgainstZooKeeper(unittest.TestCase):
    """The same exchange with ZooKeeper 3.8 and ferrokeeper: the oracle."""

    @classmethod
    def setUpClass(cls):
        cls.zk = harness.Server("zookeeper").start()
        cls.fk = harness.Server("ferrokeeper").start()

    @classmethod
    def tearDownClass(cls):
        cls.zk.close()
        cls.fk.close()

    def test_reply_and_event_headers_match_zookeeper(self):
        want = _headers(self.zk.port, self.zk.port)
        got = _headers(self.fk.port, self.fk.port)
        self.assertEqual(want[0][0], (5, "zero", 0), "ZooKeeper answers addauth with the client's xid")
        # The event (-1 xid): ZooKeeper 3.9 puts the zxid of the change in
        # its header (ZOOKEEPER-4655), as ferrokeeper does; 3.8 put -1.
        event = want[0].index((-1, "minus-one", 0))
        want[0][event] = (-1, "positive", 0)
        self.assertEqual(got, want)
        if harness.HAVE_ZK39:
            zk39 = harness.Server("zookeeper", zookeeper="3.9").start()
            self.addCleanup(zk39.close)
            self.assertEqual(got, _headers(zk39.port, zk39.port), "as ZooKeeper 3.9.5")

    def test_version_line_parses_as_zookeepers(self):
        import re
        form = re.compile(r"^Zookeeper version: \d+\.\d+\.\d+-\S+, built on \d{4}-\d\d-\d\d \d\d:\d\d UTC$")
        for s in (self.zk, self.fk):
            first = harness.four_letter(s.port, "srvr").splitlines()[0]
            self.assertRegex(first, form)

    def test_bench_takes_zkclis_server_flag(self):
        r = run([harness.BINARY, "bench", "-server", self.fk.hosts, "-w", "create", "-c", "1", "-i", "1",
                 "-d", "0.5", "--no-progress"], timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_one_shot_children_watch_beside_a_recursive_watch(self):
        want = _watch_events(self.zk.port)
        got = _watch_events(self.fk.port)
        self.assertEqual(want, {(1, "/p/c"), (4, "/p")})
        self.assertEqual(got, want)


class TestElection(unittest.TestCase):
    def test_a_client_arriving_without_a_leader_waits_for_one(self):
        ens = harness.Ensemble(3)
        self.addCleanup(ens.close)
        ens.start(1)  # alone: no quorum, no leader
        s1 = ens.server(1)
        waiting = RawConn.__new__(RawConn)
        waiting.s = socket.create_connection(("127.0.0.1", s1.port), timeout=30)
        waiting.send_frame(struct.pack(">iqiq", 0, 0, 30000, 0) + jute_buf(b"\0" * 16) + b"\0")
        # A short session timeout: given up on when no leader comes in time.
        short = RawConn.__new__(RawConn)
        short.s = socket.create_connection(("127.0.0.1", s1.port), timeout=30)
        short.send_frame(struct.pack(">iqiq", 0, 0, 4000, 0) + jute_buf(b"\0" * 16) + b"\0")
        self.addCleanup(waiting.close)
        self.addCleanup(short.close)
        # The short one is closed after its 4 s without a leader.
        short.s.settimeout(15)
        self.assertIsNone(short.read_frame())
        kz = KazooClient(hosts=s1.hosts, timeout=30)
        started = []
        t = threading.Thread(target=lambda: started.append(kz.start(timeout=60) or True), daemon=True)
        t.start()
        self.addCleanup(kz.stop)
        ens.start(2)
        ens.leader()
        resp = waiting.read_frame()
        self.assertIsNotNone(resp, "held, then answered once a leader was elected")
        self.assertNotEqual(struct.unpack_from(">iiq", resp, 0)[2], 0, "a session")
        t.join(60)
        self.assertEqual(started, [True])
        kz.create("/after-election")


class TestSnapshotDisk(unittest.TestCase):
    def test_snapshots_stay_in_proportion_to_what_was_written(self):
        # A 64 KiB size limit and a tree that grows to 4 MB: one whole-tree
        # snapshot per 64 KiB of log wrote about 30 times the data.
        s = harness.Server(extra={"snapSizeLimitInKb": "64", "preAllocSize": "1024"}).start()
        self.addCleanup(s.close)
        zk = KazooClient(hosts=s.hosts, timeout=10)
        zk.start()
        self.addCleanup(zk.stop)
        value = b"v" * 8192
        for i in range(500):
            zk.create("/big%d" % i, value)
        written = 500 * len(value)
        snaps = glob.glob(os.path.join(s.dir, "data", "ferrokeeper-snap", "*.snap"))
        self.assertGreater(len(snaps), 0, "snapshots by bytes still happen")
        on_disk = sum(os.path.getsize(p) for p in snaps)
        self.assertLess(on_disk, 3 * written, "%d snapshots, %d bytes" % (len(snaps), on_disk))


class TestSmallLogDisk(unittest.TestCase):
    def test_a_log_disk_smaller_than_a_segment_names_the_setting(self):
        mnt = harness.tmpfs(self, "8m")
        s = harness.Server(extra={"dataLogDir": mnt})  # preAllocSize: the default 64 MiB
        self.addCleanup(s.close)
        r = run([harness.BINARY, "start", s.cfg])
        self.assertEqual(r.returncode, 1)
        self.assertIn("FAILED TO START", r.stdout)
        self.assertIn("lower preAllocSize", r.stderr)
        self.assertIn("No space left on device", r.stderr)


class TestJvmFlags(unittest.TestCase):
    def test_server_jvmflags_through_the_wrapper(self):
        s = harness.Server()
        del s.lines["extendedTypesEnabled"]
        s.write_cfg()
        self.addCleanup(s.close)
        env = dict(os.environ, FERROKEEPER_BIN=harness.BINARY,
                   SERVER_JVMFLAGS="-Xmx512m -Dzookeeper.extendedTypesEnabled=true "
                                   "-Dzookeeper.emulate353TTLNodes=true")
        log = open(s.log_path, "ab")
        s.proc = subprocess.Popen([WRAPPER, "start-foreground", s.cfg], stdout=log,
                                  stderr=subprocess.STDOUT, env=env)
        wait_until(lambda: harness.four_letter(s.port, "ruok") == "imok", what="the server")
        # createTTL (op 21) works only with extended types on.
        r = RawConn(s.port)
        self.addCleanup(r.close)
        acl = struct.pack(">i", 1) + struct.pack(">i", 31) + jute_str("world") + jute_str("anyone")
        r.request(1, 21, jute_str("/ttl") + jute_buf(b"") + acl + struct.pack(">i", 5) + struct.pack(">q", 60000))
        self.assertEqual(r.reply()[2], 0)
        self.assertIn("SERVER_JVMFLAGS: -Dzookeeper.emulate353TTLNodes: emulate353TTLNodes is not supported yet",
                      s.log())
        # print-cmd shows what start would run, flags included.
        r2 = run([WRAPPER, "print-cmd", s.cfg], env={"FERROKEEPER_BIN": harness.BINARY,
                                                     "SERVER_JVMFLAGS": "-Dzookeeper.snapCount=7"})
        self.assertIn('SERVER_JVMFLAGS="-Dzookeeper.snapCount=7"', r2.stdout + r2.stderr)
        # conf/java.env, as zkEnv.sh sources it (written for a shell without set -u).
        with open(os.path.join(s.dir, "java.env"), "w") as f:
            f.write('SERVER_JVMFLAGS="$SERVER_JVMFLAGS -Dzookeeper.snapCount=9"\n')
        r3 = run([WRAPPER, "--config", s.dir, "print-cmd", "zoo.cfg"], env={"FERROKEEPER_BIN": harness.BINARY})
        self.assertEqual(r3.returncode, 0, r3.stderr)
        self.assertIn("-Dzookeeper.snapCount=9", r3.stdout)


if __name__ == "__main__":
    unittest.main()
