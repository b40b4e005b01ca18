"""Black-box tests of the ferrokeeper binary with real ZooKeeper clients:
kazoo (Debian's python3-kazoo) and a raw client-protocol connection for
wire-level cases. Each test names the ZooKeeper rule it pins.
"""
import os
import socket
import struct
import subprocess
import threading
import time
import unittest
import unittest.mock

from kazoo.client import KazooClient
from kazoo.exceptions import (AuthFailedError, BadArgumentsError, BadVersionError, NoAuthError,
                              NodeExistsError, NoNodeError, NotEmptyError, RolledBackError,
                              NoChildrenForEphemeralsError, InvalidACLError)
from kazoo.security import ACL, Id, make_digest_acl, OPEN_ACL_UNSAFE

import harness
from harness import RawConn, jute_str, jute_buf


def client(server, **kw):
    c = KazooClient(hosts=server.hosts, timeout=10, **kw)
    c.start()
    return c


class Events:
    """Collects watch events; waits for them with a bound, never sleeps blindly."""

    def __init__(self):
        self.items = []
        self.cond = threading.Condition()

    def __call__(self, event):
        with self.cond:
            self.items.append(event)
            self.cond.notify_all()

    def wait(self, n, timeout=10):
        with self.cond:
            self.cond.wait_for(lambda: len(self.items) >= n, timeout)
            return list(self.items)


class ServerTest(unittest.TestCase):
    extra = {}

    @classmethod
    def setUpClass(cls):
        cls.server = harness.Server("ferrokeeper", extra=cls.extra, container_check_ms=300).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def setUp(self):
        self.zk = client(self.server)
        self.addCleanup(self.zk.stop)
        self.base = "/" + self.id().split(".")[-1]
        self.zk.create(self.base)


class TestOps(ServerTest):
    def test_create_get_set_delete_and_stat_fields(self):
        # Programmer's guide, "ZooKeeper Stat Structure".
        p = self.base + "/n"
        self.assertEqual(self.zk.create(p, b"v1"), p)
        data, st = self.zk.get(p)
        self.assertEqual((data, st.version, st.dataLength, st.numChildren), (b"v1", 0, 2, 0))
        self.assertEqual(st.czxid, st.mzxid)
        st2 = self.zk.set(p, b"v22")
        self.assertEqual((st2.version, st2.dataLength, st2.czxid), (1, 3, st.czxid))
        self.assertGreater(st2.mzxid, st.mzxid)
        with self.assertRaises(BadVersionError):
            self.zk.set(p, b"x", version=0)
        with self.assertRaises(BadVersionError):
            self.zk.delete(p, version=0)
        self.zk.delete(p, version=1)
        self.assertIsNone(self.zk.exists(p))
        parent = self.zk.exists(self.base)
        self.assertEqual(parent.cversion, 2, "one create and one delete")

    def test_errors(self):
        with self.assertRaises(NoNodeError):
            self.zk.create(self.base + "/missing/child")
        self.zk.create(self.base + "/x")
        with self.assertRaises(NodeExistsError):
            self.zk.create(self.base + "/x")
        self.zk.create(self.base + "/x/y")
        with self.assertRaises(NotEmptyError):
            self.zk.delete(self.base + "/x")
        self.zk.create(self.base + "/e", ephemeral=True)
        with self.assertRaises(NoChildrenForEphemeralsError):
            self.zk.create(self.base + "/e/c")
        with self.assertRaises(InvalidACLError):
            self.zk.create(self.base + "/bad", acl=[ACL(31, Id("world", "nobody"))])

    def test_sequential_names_use_ten_digits_from_parent_cversion(self):
        # Programmer's guide, "Sequence Nodes -- Unique Naming".
        a = self.zk.create(self.base + "/s-", sequence=True)
        b = self.zk.create(self.base + "/s-", sequence=True, ephemeral=True)
        self.assertEqual((a, b), (self.base + "/s-0000000000", self.base + "/s-0000000001"))

    def test_multi_is_atomic(self):
        t = self.zk.transaction()
        t.create(self.base + "/m1")
        t.delete(self.base + "/nope")
        t.create(self.base + "/m2")
        r = t.commit()
        self.assertIsInstance(r[0], RolledBackError)
        self.assertIsInstance(r[1], NoNodeError)
        self.assertEqual(type(r[2]).__name__, "RuntimeInconsistency")
        self.assertIsNone(self.zk.exists(self.base + "/m1"))
        t = self.zk.transaction()
        t.create(self.base + "/m1", b"a")
        t.check(self.base + "/m1", 0)
        t.set_data(self.base + "/m1", b"b")
        self.assertEqual(t.commit()[0], self.base + "/m1")
        self.assertEqual(self.zk.get(self.base + "/m1")[0], b"b")

    def test_special_nodes_exist(self):
        for p in ("/zookeeper", "/zookeeper/quota", "/zookeeper/config"):
            self.assertIsNotNone(self.zk.exists(p), p)

    def test_get_all_children_number_ephemerals_and_whoami(self):
        self.zk.create(self.base + "/a/b/c", makepath=True)
        self.assertEqual(harness.get_all_children_number(self.zk, self.base), 3)
        self.zk.create(self.base + "/e1", ephemeral=True)
        self.zk.create(self.base + "/a/e2", ephemeral=True)
        self.assertEqual(sorted(harness.get_ephemerals(self.zk, self.base)),
                         [self.base + "/a/e2", self.base + "/e1"])
        self.assertEqual(harness.who_am_i(self.zk), [("ip", "127.0.0.1")])

    def test_pipelined_requests_complete_in_order(self):
        # Programmer's guide, "ZooKeeper Guarantees": sequential consistency;
        # a read after a write on the same session sees it. kazoo fails any
        # reply whose xid is out of order.
        results = []
        for i in range(200):
            p = "%s/p%d" % (self.base, i)
            results.append(self.zk.create_async(p, b"%d" % i))
            results.append(self.zk.get_async(p))
        for i in range(200):
            self.assertEqual(results[2 * i].get(10), "%s/p%d" % (self.base, i))
            self.assertEqual(results[2 * i + 1].get(10)[0], b"%d" % i)


class TestAcl(ServerTest):
    extra = {"DigestAuthenticationProvider.superDigest": "super:D/InIHSb7yEEbrWz8b9l71RjZJU="}

    def test_digest_auth_and_world(self):
        # Programmer's guide, "Builtin ACL Schemes".
        p = self.base + "/sec"
        self.zk.add_auth("digest", "alice:pw")
        self.zk.create(p, b"s", acl=[make_digest_acl("alice", "pw", all=True)])
        other = client(self.server)
        self.addCleanup(other.stop)
        with self.assertRaises(NoAuthError):
            other.get(p)
        other.add_auth("digest", "bob:pw")
        with self.assertRaises(NoAuthError):
            other.set(p, b"x")
        self.assertEqual(self.zk.get(p)[0], b"s")

    def test_get_acl_masks_digest_without_admin(self):
        p = self.base + "/r"
        self.zk.create(p, acl=[ACL(1, Id("world", "anyone")), make_digest_acl("carol", "pw", all=True)])
        other = client(self.server)
        self.addCleanup(other.stop)
        acl, _ = other.get_acls(p)
        self.assertEqual([a.id.id for a in acl], ["anyone", "carol:x"])

    def test_super_digest_passes_every_acl(self):
        p = self.base + "/locked"
        self.zk.create(p, acl=[make_digest_acl("nobody", "x", all=True)])
        su = client(self.server)
        self.addCleanup(su.stop)
        su.add_auth("digest", "super:test")
        su.set(p, b"by super")
        su.delete(p)

    def test_auth_scheme_acl_needs_an_authenticated_identity(self):
        with self.assertRaises(InvalidACLError):
            self.zk.create(self.base + "/a", acl=[ACL(31, Id("auth", ""))])
        self.zk.add_auth("digest", "dave:pw")
        self.zk.create(self.base + "/a", acl=[ACL(31, Id("auth", ""))])
        acl, _ = self.zk.get_acls(self.base + "/a")
        self.assertEqual(acl[0].id.scheme, "digest")

    def test_ip_acl(self):
        self.zk.create(self.base + "/ip", acl=[ACL(31, Id("ip", "127.0.0.1"))])
        self.zk.set(self.base + "/ip", b"ok")
        self.zk.create(self.base + "/net", acl=[ACL(31, Id("ip", "10.0.0.0/8"))])
        with self.assertRaises(NoAuthError):
            self.zk.get(self.base + "/net")

    def test_unknown_auth_scheme_fails_and_closes(self):
        r = RawConn(self.server.port)
        r.request(-4, 100, struct.pack(">i", 0) + jute_str("nosuch") + jute_buf(b"x"))
        xid, _, err, _ = r.reply()
        self.assertEqual((xid, err), (-4, -115))
        self.assertIsNone(r.reply())


class TestWatches(ServerTest):
    def test_one_shot_watches(self):
        # Programmer's guide, "ZooKeeper Watches": one-time triggers.
        p = self.base + "/w"
        ev = Events()
        self.assertIsNone(self.zk.exists(p, watch=ev))
        self.zk.create(p)
        self.zk.get(p, watch=ev)
        self.zk.get_children(self.base, watch=ev)
        self.zk.set(p, b"1")
        self.zk.set(p, b"2")
        self.zk.create(p + "2")
        got = ev.wait(3)
        self.assertEqual([(e.type, e.path) for e in got],
                         [("CREATED", p), ("CHANGED", p), ("CHILD", self.base)])
        self.zk.sync(self.base)
        self.assertEqual(len(ev.items), 3, "fired once each")

    def test_event_before_later_reply(self):
        # Programmer's guide, "ZooKeeper Watches": a client sees the watch
        # event before the reply to any request it sends after the change.
        p = self.base + "/o"
        self.zk.create(p)
        a = RawConn(self.server.port)
        a.request(1, 4, jute_str(p) + b"\1")  # getData with watch
        self.assertEqual(a.reply()[:3:2], (1, 0))
        self.zk.set(p, b"x")
        a.request(2, 4, jute_str(p) + b"\0")
        first, second = a.reply(), a.reply()
        self.assertEqual((first[0], struct.unpack_from(">i", first[3], 0)[0]), (-1, 3), "NodeDataChanged first")
        self.assertEqual(second[:3:2], (2, 0))
        self.assertEqual(harness.read_str(second[3], 0)[0], "x")

    def test_ping(self):
        r = RawConn(self.server.port)
        r.request(-2, 11)
        xid, zxid, err, body = r.reply()
        self.assertEqual((xid, err, body), (-2, 0, b""))
        self.assertGreater(zxid, 0)

    def test_delete_fires_data_and_child_watches_once(self):
        p = self.base + "/d"
        self.zk.create(p)
        ev = Events()
        self.zk.get(p, watch=ev)
        self.zk.get_children(p, watch=ev)
        self.zk.delete(p)
        got = ev.wait(2)
        self.assertEqual([(e.type, e.path) for e in got][0], ("DELETED", p))

    def test_persistent_and_recursive_watches(self):
        # addWatch (ZooKeeper 3.6+): persistent watches stay; recursive ones
        # see descendants but not NodeChildrenChanged.
        r = RawConn(self.server.port)
        r.request(1, 106, jute_str(self.base) + struct.pack(">i", 1))
        self.assertEqual(r.reply()[2], 0)
        self.zk.create(self.base + "/a")
        self.zk.set(self.base + "/a", b"x")
        self.zk.create(self.base + "/a/b")
        self.zk.delete(self.base + "/a/b")
        events = []
        for _ in range(4):
            xid, _, _, body = r.reply()
            self.assertEqual(xid, -1)
            typ, state = struct.unpack_from(">ii", body, 0)
            events.append((typ, harness.read_str(body, 8)[0]))
        self.assertEqual(events, [(1, self.base + "/a"), (3, self.base + "/a"),
                                  (1, self.base + "/a/b"), (2, self.base + "/a/b")])
        # checkWatches / removeWatches: type 3 (any) exists, then removed.
        r.request(2, 17, jute_str(self.base) + struct.pack(">i", 3))
        self.assertEqual(r.reply()[:3:2], (2, 0))
        r.request(3, 18, jute_str(self.base) + struct.pack(">i", 3))
        self.assertEqual(r.reply()[:3:2], (3, 0))
        r.request(4, 17, jute_str(self.base) + struct.pack(">i", 3))
        self.assertEqual(r.reply()[:3:2], (4, -121))

    def test_set_watches2_restores_persistent_watches(self):
        p = self.base + "/sw2"
        r = RawConn(self.server.port)
        empty = struct.pack(">i", 0)
        body = struct.pack(">q", 0) + empty * 3 + struct.pack(">i", 1) + jute_str(p) + empty
        r.request(-8, 105, body)
        self.assertEqual(r.reply()[:3:2], (-8, 0))
        self.zk.create(p)
        self.zk.create(p + "/kid")
        events = [r.reply() for _ in range(2)]
        self.assertEqual([struct.unpack_from(">i", e[3], 0)[0] for e in events], [1, 4],
                         "persistent watch: NodeCreated, then NodeChildrenChanged")

    def test_set_watches_reports_missed_changes(self):
        # On reconnect a client re-sends its watches with the last zxid it
        # saw; changes after that fire at once.
        p = self.base + "/sw"
        self.zk.create(p, b"a")
        old = self.zk.exists(p).mzxid
        self.zk.set(p, b"b")
        r = RawConn(self.server.port)
        body = struct.pack(">q", old) + struct.pack(">i", 1) + jute_str(p) + struct.pack(">ii", 0, 0)
        r.request(-8, 101, body)
        xid, _, _, ev = r.reply()
        self.assertEqual(xid, -1)
        self.assertEqual(struct.unpack_from(">i", ev, 0)[0], 3, "NodeDataChanged")
        self.assertEqual(r.reply()[0], -8)


class TestSessions(ServerTest):
    extra = {"tickTime": "200"}

    def test_expiry_deletes_ephemerals_and_notifies(self):
        # Programmer's guide, "ZooKeeper Sessions": when a session expires
        # its ephemeral nodes are deleted and watchers are told.
        r = RawConn(self.server.port, timeout_ms=800)
        self.assertEqual(r.timeout_ms, 800)
        eph = self.base + "/eph"
        body = jute_str(eph) + jute_buf(b"") + harness.jute_acl_world_all() + struct.pack(">i", 1)
        r.request(1, 1, body)
        self.assertEqual(r.reply()[2], 0)
        ev = Events()
        self.assertIsNotNone(self.zk.exists(eph, watch=ev))
        # Stop talking: no pings. The session must expire.
        got = ev.wait(1, timeout=10)
        self.assertEqual([(e.type, e.path) for e in got], [("DELETED", eph)])
        self.assertTrue(r.closed(), "the server closes an expired session's connection")
        again = RawConn(self.server.port, session_id=r.session_id, passwd=r.passwd)
        self.assertEqual(again.session_id, 0, "an expired session is refused")

    def test_timeout_is_negotiated_within_bounds(self):
        # minSessionTimeout/maxSessionTimeout default to 2x and 20x tickTime.
        self.assertEqual(RawConn(self.server.port, timeout_ms=1).timeout_ms, 400)
        self.assertEqual(RawConn(self.server.port, timeout_ms=10**6).timeout_ms, 4000)

    def test_reconnect_keeps_session_and_checks_password(self):
        a = client(self.server)
        sid, pw = a.client_id
        a.create(self.base + "/mine", ephemeral=True)
        b = RawConn(self.server.port, session_id=sid, passwd=pw)
        self.assertEqual(b.session_id, sid)
        bad = RawConn(self.server.port, session_id=sid, passwd=b"x" * 16)
        self.assertEqual(bad.session_id, 0)
        self.assertIsNotNone(self.zk.exists(self.base + "/mine"))
        a.stop()

    def test_close_session_removes_ephemerals(self):
        a = client(self.server)
        a.create(self.base + "/gone", ephemeral=True)
        a.stop()
        self.assertIsNone(self.zk.exists(self.base + "/gone"))

    def test_client_ahead_of_server_is_refused(self):
        # A client that saw a newer zxid than this server must not attach.
        r = RawConn(self.server.port, last_zxid=1 << 40)
        self.assertIsNone(r.session_id)


class TestContainersAndTtl(ServerTest):
    def test_container_is_removed_after_its_last_child(self):
        c = self.base + "/c"
        harness.create_raw(self.zk, 19, c, b"", 4)
        self.zk.create(c + "/x")
        self.zk.delete(c + "/x")
        harness.wait_until(lambda: self.zk.exists(c) is None, timeout=10, what="container reaped")

    def test_empty_container_that_never_had_children_stays(self):
        c = self.base + "/c0"
        harness.create_raw(self.zk, 19, c, b"", 4)
        self.zk.create(self.base + "/marker")
        time.sleep(1)  # several reaper intervals (300 ms): nothing may happen
        self.assertIsNotNone(self.zk.exists(c))

    def test_ttl_node_expires(self):
        t = self.base + "/t"
        harness.create_raw(self.zk, 21, t, b"", 5, 200)
        harness.wait_until(lambda: self.zk.exists(t) is None, timeout=10, what="TTL node reaped")

    def test_ttl_needs_extended_types(self):
        srv = harness.Server("ferrokeeper", extra={"extendedTypesEnabled": "false"}).start()
        self.addCleanup(srv.close)
        c = client(srv)
        self.addCleanup(c.stop)
        from kazoo.exceptions import UnimplementedError
        with self.assertRaises(UnimplementedError):
            harness.create_raw(c, 21, "/t", b"", 5, 1000)


class TestRobustness(ServerTest):
    extra = {"jute.maxbuffer": "4096", "maxClientCnxns": "5"}

    def test_oversized_frame_closes_only_that_connection(self):
        r = RawConn(self.server.port)
        body = jute_str(self.base + "/big") + jute_buf(b"x" * 5000) + struct.pack(">i", -1)
        r.request(1, 5, body)
        self.assertIsNone(r.reply())
        self.assertIn("jute.maxbuffer", self.server.log())
        self.zk.create(self.base + "/still-serving")

    def test_malformed_requests_close_only_that_connection(self):
        for garbage in (struct.pack(">ii", 1, 4) + b"\xff\xff", struct.pack(">ii", 1, 9999),
                        struct.pack(">ii", 1, 1) + b"\x7f\xff\xff\xff"):
            r = RawConn(self.server.port)
            r.send_frame(garbage)
            self.assertIsNone(r.reply())
        s = socket.create_connection(("127.0.0.1", self.server.port))
        s.sendall(b"\x00\x00\x00\x05hello")
        self.assertEqual(s.recv(10), b"")
        self.zk.create(self.base + "/alive")

    def test_max_client_cnxns_per_ip(self):
        conns = [RawConn(self.server.port) for _ in range(4)]  # + self.zk = 5
        extra = socket.create_connection(("127.0.0.1", self.server.port))
        self.assertEqual(extra.recv(10), b"")
        self.assertIn("Too many connections from 127.0.0.1 - max is 5", self.server.log())
        for c in conns:
            c.close()


class OnEnsembleFollower:
    """Runs a test class against a follower of a 3-server ensemble."""

    @classmethod
    def setUpClass(cls):
        extra = dict(cls.extra)
        extra["znode.container.checkIntervalMs"] = "300"
        cls.ensemble = harness.Ensemble(3, extra=extra).start()
        cls.server = cls.ensemble.serving_follower()

    @classmethod
    def tearDownClass(cls):
        cls.ensemble.close()


class TestOpsOnEnsemble(OnEnsembleFollower, TestOps):
    pass


class TestAclOnEnsemble(OnEnsembleFollower, TestAcl):
    pass


class TestWatchesOnEnsemble(OnEnsembleFollower, TestWatches):
    pass


class TestContainersAndTtlOnEnsemble(OnEnsembleFollower, TestContainersAndTtl):
    pass


class TestSessionsOnEnsemble(OnEnsembleFollower, TestSessions):
    """Expiry is the leader's, from liveness the follower reports."""
    pass


class TestRobustnessOnEnsemble(OnEnsembleFollower, TestRobustness):
    pass


class TestFourLetterWords(unittest.TestCase):
    def test_whitelist(self):
        srv = harness.Server("ferrokeeper", extra={"4lw.commands.whitelist": "srvr"})
        srv.proc = subprocess.Popen([harness.BINARY, "start-foreground", srv.cfg],
                                    stdout=open(srv.log_path, "ab"), stderr=subprocess.STDOUT)
        self.addCleanup(srv.close)
        harness.wait_until(lambda: "Mode: standalone" in harness.four_letter(srv.port, "srvr"), what="srvr")
        self.assertEqual(harness.four_letter(srv.port, "ruok"),
                         "ruok is not executed because it is not in the whitelist.\n")


class TestConfig(unittest.TestCase):
    def run_with(self, text):
        d = harness.tempfile.mkdtemp()
        cfg = os.path.join(d, "zoo.cfg")
        with open(cfg, "w") as f:
            f.write(text)
        return subprocess.run([harness.BINARY, "start-foreground", cfg], capture_output=True, text=True, timeout=20), cfg

    def test_bad_value_names_file_line_and_key(self):
        r, cfg = self.run_with("tickTime=2000\ndataDir=/tmp/x\nclientPort=notaport\n")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("%s:3: clientPort:" % cfg, r.stderr)

    def test_missing_data_dir(self):
        r, cfg = self.run_with("clientPort=%d\n" % harness.free_port())
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("dataDir is not set", r.stderr)


class TestWorkerThreads(unittest.TestCase):
    """ferrokeeper.workerThreads (ours): the runtime's thread count; by
    default the CPUs the process may use."""

    def workers(self, srv):
        task = "/proc/%d/task" % srv.proc.pid
        names = []
        for t in os.listdir(task):
            try:
                with open(os.path.join(task, t, "comm")) as f:
                    names.append(f.read().strip())
            except FileNotFoundError:
                pass
        return names.count("worker")

    def test_worker_threads(self):
        for setting, want in ((None, len(os.sched_getaffinity(0))), ("1", 1), ("3", 3)):
            extra = {"ferrokeeper.workerThreads": setting} if setting else {}
            srv = harness.Server(extra=extra).start()
            self.addCleanup(srv.close)
            self.assertEqual(self.workers(srv), want, setting)
            c = client(srv)
            c.create("/w", b"x")
            self.assertEqual(c.get("/w")[0], b"x")
            c.stop()
            srv.close()


def thp_enabled(pid):
    """The kernel's THP_enabled for a process (0 once it asked for no
    transparent huge pages), or None on a kernel that does not say."""
    with open("/proc/%s/status" % pid) as f:
        for line in f:
            if line.startswith("THP_enabled:"):
                return int(line.split()[1])
    return None


class TestTransparentHugePages(unittest.TestCase):
    """ferrokeeper runs without transparent huge pages (a fresh 2 MiB page
    zeroed inside one allocation's fault stalled a leader 30-110 ms when a
    follower rejoined); MIMALLOC_ALLOW_THP in its environment is mimalloc's
    own switch and is then left to decide."""

    def thp_of_server(self, env):
        srv = harness.Server(env=env).start()
        self.addCleanup(srv.close)
        c = client(srv)
        c.create("/thp", b"x" * 1000)
        c.stop()
        try:
            return thp_enabled(srv.proc.pid)
        finally:
            srv.close()

    def test_off_by_default_and_mimalloc_switch_honoured(self):
        inherited = thp_enabled("self")
        if inherited is None:
            self.skipTest("this kernel does not report THP_enabled")
        with unittest.mock.patch.dict(os.environ):
            os.environ.pop("MIMALLOC_ALLOW_THP", None)
            self.assertEqual(self.thp_of_server(None), 0)
        # Told to allow them: the process keeps what it inherited (this
        # test's own setting), which is 1 unless a parent turned them off.
        self.assertEqual(self.thp_of_server({"MIMALLOC_ALLOW_THP": "1"}), inherited)
        self.assertEqual(self.thp_of_server({"MIMALLOC_ALLOW_THP": "0"}), 0)


if __name__ == "__main__":
    unittest.main()
