"""Taking over a ZooKeeper 3.8 server's data in place (issue 18).

A real ZooKeeper 3.8 (Debian's) is loaded with every kind of node, stopped
with a client session still open, and ferrokeeper is started on the same
zoo.cfg, dataDir and port. Every znode must read back exactly as it did
from ZooKeeper (data, ACL, every Stat field), the open session must come
back with its ephemerals, zxids and sequential names must continue above
ZooKeeper's, and ZooKeeper's own files must be left as they were.
"""
import hashlib
import os
import re
import subprocess
import unittest

import harness
from kazoo.client import KazooClient
from kazoo.protocol.states import KazooState
from kazoo.security import make_acl, make_digest_acl


def files_digest(*dirs):
    """sha256 of every file under `dirs`, by path."""
    out = {}
    for d in dirs:
        for root, _, files in os.walk(d):
            for f in files:
                p = os.path.join(root, f)
                with open(p, "rb") as fh:
                    out[p] = hashlib.sha256(fh.read()).hexdigest()
    return out


def place_zookeeper_files(fixture, server_dir):
    """A ZooKeeper server's files from `fixture` into a harness server's
    dataDir (snapshots) and dataLogDir (logs), as ZooKeeper keeps them."""
    for f in os.listdir(fixture):
        sub = "data" if f.startswith("snapshot.") else "datalog" if f.startswith("log.") else None
        if sub:
            v2 = os.path.join(server_dir, sub, "version-2")
            os.makedirs(v2, exist_ok=True)
            with open(os.path.join(fixture, f), "rb") as src, open(os.path.join(v2, f), "wb") as dst:
                dst.write(src.read())


class TakeoverTest(unittest.TestCase):
    def test_a_zookeeper_datadir_is_served_unchanged(self):
        zk = harness.Server("zookeeper", extra={"forceSync": "yes", "snapCount": "200"})
        self.addCleanup(zk.close)
        zk.start()
        hosts = zk.hosts
        c = KazooClient(hosts=hosts, timeout=30, auth_data=[("digest", "user:pw")])
        c.start()
        # Every kind of node ZooKeeper keeps.
        c.create("/app", b"persistent")
        for i in range(5):
            c.create("/app/seq-", b"%d" % i, sequence=True)
        c.create("/app/bin", bytes(range(256)))
        harness.create_raw(c, 15, "/app/null", None, 0)
        harness.create_raw(c, 19, "/app/container", b"", 4)
        c.create("/app/container/child", b"c")
        harness.create_raw(c, 21, "/app/ttl", b"t", 5, ttl=3_600_000)
        c.create("/expiring")
        harness.create_raw(c, 21, "/expiring/ttl", b"", 5, ttl=1000)
        c.create("/app/digest", b"d", acl=[make_digest_acl("user", "pw", all=True)])
        c.create("/app/ip", b"i", acl=[make_acl("ip", "127.0.0.1", all=True)])
        c.create("/app/big", os.urandom(1024 * 1024 - 4096))
        c.create("/app/many")
        for i in range(1000):
            c.create("/app/many/n%04d" % i, b"v")
        for i in range(0, 1000, 3):
            c.delete("/app/many/n%04d" % i)
        for i in range(20):
            c.set("/app", b"v%d" % i)
        t = c.transaction()
        t.create("/app/multi", b"m")
        t.set_data("/app/bin", b"by multi")
        t.check("/app", 20)
        t.commit()
        t = c.transaction()
        t.create("/app/never", b"")
        t.delete("/app/missing")
        t.commit()
        # A session that stays open across the switch, with ephemerals.
        keep = KazooClient(hosts=hosts, timeout=30)
        keep.start()
        keep.create("/app/eph", b"mine", ephemeral=True)
        keep.create("/app/eph-seq-", b"", ephemeral=True, sequence=True)
        states = []
        keep.add_listener(states.append)
        sid, passwd = keep.client_id
        # ...and one that closed, taking its ephemeral with it.
        gone = KazooClient(hosts=hosts, timeout=30)
        gone.start()
        gone.create("/app/eph-gone", b"", ephemeral=True)
        gone.stop()
        gone.close()
        want = harness.znodes(c)
        zk_zxid = int(re.search(r"Zxid: (0x[0-9a-f]+)", harness.four_letter(zk.port, "srvr")).group(1), 16)
        c.stop()
        c.close()
        zk.stop()  # zkServer.sh stop: SIGTERM
        zk_dirs = [os.path.join(zk.dir, "data", "version-2"), os.path.join(zk.dir, "datalog", "version-2")]
        before = files_digest(*zk_dirs)
        self.assertTrue(any("/log." in p for p in before) and any("/snapshot." in p for p in before), before)

        # ferrokeeper on the same zoo.cfg, dataDir, dataLogDir and port.
        fk = harness.Server("ferrokeeper", env={"SERVER_JVMFLAGS": "-Dznode.container.checkIntervalMs=300"})
        self.addCleanup(fk.close)
        fk.cfg, fk.port = zk.cfg, zk.port
        fk.start()
        self.assertIn("took over ZooKeeper's data", fk.log())

        # The open session is back on its own, with its ephemerals.
        harness.wait_until(lambda: keep.state == KazooState.CONNECTED and states and states[-1] == KazooState.CONNECTED,
                           timeout=30, what="the kept session to reconnect")
        self.assertNotIn(KazooState.LOST, states, "the session from ZooKeeper expired")
        self.assertEqual(keep.client_id, (sid, passwd))
        c = KazooClient(hosts=hosts, timeout=30, auth_data=[("digest", "user:pw")])
        c.start()
        got = harness.znodes(c)
        # Expired (1 s TTL) by the time ferrokeeper runs its first check,
        # which may have reaped it (and changed its parent's Stat) by now.
        self.assertIn("/expiring/ttl", want)
        for p in ("/expiring", "/expiring/ttl"):
            want.pop(p)
            got.pop(p, None)
        self.assertEqual(sorted(got), sorted(want), "the same znodes")
        for path in want:
            self.assertEqual(got[path], want[path], path)
        mine = sorted(p for p in want if want[p][1]["ephemeralOwner"] == sid)
        self.assertEqual(len(mine), 2)
        self.assertEqual(sorted(p for p in got if got[p][1]["ephemeralOwner"] == sid), mine)
        self.assertEqual(keep.get("/app/eph")[0], b"mine")

        # zxids and sequential names go on above ZooKeeper's.
        p = c.create("/app/seq-", b"after", sequence=True)
        seqs = sorted(int(k[-10:]) for k in want if k.startswith("/app/seq-") or k.startswith("/app/eph-seq-"))
        self.assertGreater(int(p[-10:]), max(seqs))
        self.assertGreater(c.exists(p).czxid, zk_zxid)
        keep.set("/app/eph", b"still mine")
        self.assertGreater(keep.exists("/app/eph").mzxid, zk_zxid)

        # Containers and TTL nodes keep being reaped: the expired TTL node
        # at once (if that check had not run yet), the container when its
        # last child goes.
        harness.wait_until(lambda: c.exists("/expiring/ttl") is None, timeout=10, what="the expired TTL node reaped")
        c.delete("/app/container/child")
        harness.wait_until(lambda: c.exists("/app/container") is None, timeout=10, what="the empty container reaped")
        self.assertIsNotNone(c.exists("/app/ttl"))

        # ZooKeeper's files are as ZooKeeper left them (until the rollback
        # below adds a snapshot beside them).
        self.assertEqual(files_digest(*zk_dirs), before)

        # A restart starts from ferrokeeper's own files, not a new import.
        c.stop()
        c.close()
        fk.stop()
        fk.start()
        self.assertEqual(fk.log().count("took over ZooKeeper's data"), 1)
        c = KazooClient(hosts=hosts, timeout=30, auth_data=[("digest", "user:pw")])
        c.start()
        self.assertEqual(c.get("/app/eph")[0], b"still mine")
        self.assertEqual(c.get("/app/big")[0], want["/app/big"][0])

        # Back to ZooKeeper: with ferrokeeper stopped, export-zookeeper
        # writes its state into version-2, and ZooKeeper 3.8 started on the
        # same zoo.cfg serves it, writes made on ferrokeeper included.
        c.create("/written-on-ferrokeeper", b"w")
        c.set("/app", b"changed on ferrokeeper")
        served = harness.znodes(c)
        c.stop()
        c.close()
        fk.stop()
        out = subprocess.run([harness.BINARY, "export-zookeeper", zk.cfg], capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("wrote ", out.stdout)
        zk.start()
        harness.wait_until(lambda: keep.state == KazooState.CONNECTED and states[-1] == KazooState.CONNECTED,
                           timeout=30, what="the kept session back on ZooKeeper")
        self.assertNotIn(KazooState.LOST, states, "the session expired on the way back")
        c = KazooClient(hosts=hosts, timeout=30, auth_data=[("digest", "user:pw")])
        c.start()
        back = harness.znodes(c)
        self.assertEqual(sorted(back), sorted(served), "the same znodes on ZooKeeper")
        for path in served:
            self.assertEqual(back[path], served[path], path)
        self.assertEqual(keep.get("/app/eph")[0], b"still mine")
        # ZooKeeper goes on from ferrokeeper's zxid.
        c.create("/after-rollback", b"")
        self.assertGreater(c.exists("/after-rollback").czxid, served["/written-on-ferrokeeper"][1]["czxid"])
        c.stop()
        c.close()
        # ferrokeeper started again now would serve its own state, older
        # than that write ZooKeeper acknowledged: it refuses, and says why.
        zk.stop()
        out = subprocess.run([harness.BINARY, "start-foreground", zk.cfg], capture_output=True, text=True, timeout=30)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("ZooKeeper wrote to", out.stderr)
        keep.stop()
        keep.close()

    def test_zxids_of_a_later_epoch_go_on(self):
        """A ZooKeeper that ran in quorum mode (here one voter with
        standaloneEnabled=false) has zxids of epoch 1 and above
        (0x1_0000_0001, ...): ferrokeeper's zxids continue above them,
        also across its own restart."""
        q, e = harness.free_port(), harness.free_port()
        zk = harness.Server("zookeeper", extra={"standaloneEnabled": "false", "initLimit": "10", "syncLimit": "5",
                                                "server.1": "localhost:%d:%d" % (q, e)})
        self.addCleanup(zk.close)
        os.makedirs(os.path.join(zk.dir, "data"), exist_ok=True)
        with open(os.path.join(zk.dir, "data", "myid"), "w") as f:
            f.write("1")
        zk.start(probe="srvr")
        c = KazooClient(hosts=zk.hosts)
        c.start()
        for i in range(50):
            c.create("/n%d" % i, b"x")
        zk_last = old = c.exists("/n49").czxid
        self.assertGreaterEqual(old >> 32, 1, "a quorum-mode zxid")
        c.stop()
        c.close()
        zk.stop()
        fk = harness.Server("ferrokeeper")
        self.addCleanup(fk.close)
        fk.cfg, fk.port = zk.cfg, zk.port
        for _ in range(2):
            fk.start()
            c = KazooClient(hosts=zk.hosts)
            c.start()
            self.assertEqual(c.exists("/n49").czxid, zk_last)
            new = c.create("/m", b"y", sequence=True)
            self.assertGreater(c.exists(new).czxid, old)
            old = c.exists(new).czxid
            c.stop()
            c.close()
            fk.stop()

    def test_a_corrupt_zookeeper_log_stops_the_server_naming_file_and_offset(self):
        s = harness.Server("ferrokeeper")
        self.addCleanup(s.close)
        fixture = os.path.join(harness.ROOT, "tests", "golden", "zookeeper-3.8-files", "none")
        place_zookeeper_files(fixture, s.dir)
        log = os.path.join(s.dir, "datalog", "version-2", "log.1a")
        with open(log, "r+b") as f:
            f.seek(16 + 12 + 20)  # inside the first record's transaction bytes
            b = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([b[0] ^ 0x10]))
        out = subprocess.run([harness.BINARY, "start-foreground", s.cfg], capture_output=True, text=True, timeout=30)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("log.1a: at byte 16: record checksum mismatch", out.stderr)
        snaps = os.path.join(s.dir, "data", "ferrokeeper-snap")
        self.assertEqual(os.listdir(snaps) if os.path.isdir(snaps) else [], [], "nothing half-imported")

    def test_an_empty_zookeeper_is_nothing_to_take_over(self):
        """ZooKeeper's first start leaves snapshot.0 of an empty tree: a
        server starts on it as on an empty dataDir, and serves."""
        s = harness.Server("ferrokeeper")
        self.addCleanup(s.close)
        v2 = os.path.join(s.dir, "data", "version-2")
        os.makedirs(v2)
        fixture = os.path.join(harness.ROOT, "tests", "golden", "zookeeper-3.8-files", "none", "snapshot.0")
        with open(fixture, "rb") as src, open(os.path.join(v2, "snapshot.0"), "wb") as dst:
            dst.write(src.read())
        s.start()
        self.assertIn("no transaction: nothing to take over", s.log())
        c = KazooClient(hosts=s.hosts)
        c.start()
        c.create("/x", b"y")
        self.assertEqual(c.get("/x")[0], b"y")
        c.stop()
        c.close()

    def test_an_ensemble_member_refuses_zookeeper_data_for_now(self):
        """Until ensembles are taken over (each server importing its own,
        the ones ahead brought back to the leader's state), a server of an
        ensemble on ZooKeeper's data stops with the reason instead of
        starting empty beside it."""
        ens = harness.Ensemble(3)
        self.addCleanup(ens.close)
        s = ens.server(1)
        fixture = os.path.join(harness.ROOT, "tests", "golden", "zookeeper-3.8-files", "none")
        place_zookeeper_files(fixture, s.dir)
        out = subprocess.run([harness.BINARY, "start-foreground", s.cfg], capture_output=True, text=True, timeout=30)
        self.assertNotEqual(out.returncode, 0)
        self.assertIn("holds ZooKeeper's data and this server is one of an ensemble of 3", out.stderr)
        snaps = os.path.join(s.dir, "data", "ferrokeeper-snap")
        self.assertEqual(os.listdir(snaps) if os.path.isdir(snaps) else [], [], "no snapshot written")


if __name__ == "__main__":
    unittest.main(verbosity=2)
