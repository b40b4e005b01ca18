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
        harness.create_every_kind(c, many=1000, sets=20)
        c.create("/expiring")
        harness.create_raw(c, 21, "/expiring/ttl", b"", 5, ttl=1000)
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

    def switch(self, zk_servers, which=None):
        """ferrokeeper servers on the zoo.cfg, myid, dataDir and port of
        each ZooKeeper server; started (those in `which`, 1-based) without
        waiting for a quorum."""
        out = []
        for zk in zk_servers:
            fk = harness.Server("ferrokeeper")
            self.addCleanup(fk.close)
            fk.cfg, fk.port, fk.log_path = zk.cfg, zk.port, os.path.join(zk.dir, "ferrokeeper.log")
            out.append(fk)
        for i in which or range(1, len(out) + 1):
            out[i - 1].start()
        return out

    def tree(self, hosts):
        c = KazooClient(hosts=hosts, auth_data=[("digest", "u:p")])
        c.start()
        c.sync("/")
        t = {p: (c.get(p)[0], harness.stat_dict(c.exists(p)), c.get_acls(p)[0])
             for p in harness.znodes(c) if not p.startswith("/zookeeper")}
        c.stop()
        c.close()
        return t

    def zookeeper_ensemble(self):
        zk = harness.Ensemble(3, kind="zookeeper")
        self.addCleanup(zk.close)
        zk.start()
        zk.leader()
        return zk

    def test_a_zookeeper_ensemble_is_taken_over_with_a_follower_behind(self):
        """Each server of a stopped ZooKeeper 3.8 ensemble takes over its
        own files; the one stopped early (behind) ends with the leader's
        state; the open session and its ephemeral survive."""
        zk = self.zookeeper_ensemble()
        harness.wait_until(lambda: all(zk.mode(i) in ("leader", "follower") for i in (1, 2, 3)),
                           timeout=60, what="ZooKeeper's three servers serving")
        behind = next(i for i in range(1, 4) if zk.mode(i) == "follower")
        # The kept session talks to the two that stay (a request in flight
        # on the stopped one would be lost to ConnectionLoss).
        keep = KazooClient(hosts=",".join(s.hosts for i, s in enumerate(zk.servers, 1) if i != behind), timeout=30)
        keep.start()
        keep.create("/app", b"v1")
        keep.create("/app/seq-", b"", sequence=True)
        keep.create("/app/eph", b"mine", ephemeral=True)
        keep.create("/acl", b"", acl=[make_digest_acl("u", "p", all=True)])
        zk.server(behind).stop()
        for i in range(30):
            keep.create("/app/after-", b"x" * i, sequence=True)
        keep.set("/app", b"v2")
        before = self.tree(",".join(s.hosts for i, s in enumerate(zk.servers, 1) if i != behind))
        last = keep.exists("/app").mzxid
        states = []
        keep.add_listener(states.append)
        for i in range(1, 4):
            zk.server(i).stop()
        zk_files = files_digest(*[os.path.join(s.dir, d, "version-2") for s in zk.servers for d in ("data", "datalog")])

        fks = self.switch(zk.servers)
        ens = harness.Ensemble.of(fks)
        ens.serving_follower()
        for fk in fks:
            self.assertIn("took over ZooKeeper's data", fk.log())
            self.assertEqual(self.tree(fk.hosts), before, "server %s serves ZooKeeper's tree" % fk.cfg)
        harness.wait_until(lambda: keep.state == KazooState.CONNECTED, what="the kept session back")
        self.assertNotIn(KazooState.LOST, states, "the session from ZooKeeper expired")
        self.assertEqual(keep.get("/app/eph")[0], b"mine")
        n = keep.create("/new", b"")
        self.assertGreater(keep.exists(n).czxid, last)
        for fk in fks:
            harness.wait_until(lambda: "confirmed the ZooKeeper data" in fk.log(),
                               what="the takeover confirmed on %s" % fk.cfg)
            marker = os.path.join(os.path.dirname(fk.cfg), "data", "ferrokeeper-snap", "zookeeper-takeover-unconfirmed")
            self.assertFalse(os.path.exists(marker))
        self.assertEqual(files_digest(*[os.path.join(s.dir, d, "version-2") for s in zk.servers
                                        for d in ("data", "datalog")]),
                         zk_files, "ZooKeeper's files untouched")

        # And back to ZooKeeper: every server stopped, export-zookeeper on
        # each, and ZooKeeper 3.8's ensemble on the same files serves on
        # every server what was written on ferrokeeper; the kept session
        # is still open.
        keep.create("/app/on-ferrokeeper", b"w")
        keep.set("/app", b"v3")
        on_fk = self.tree(fks[0].hosts)
        self.assertIn("/app/on-ferrokeeper", on_fk)
        for fk in fks:
            fk.stop()
        for fk in fks:
            out = subprocess.run([harness.BINARY, "export-zookeeper", fk.cfg], capture_output=True, text=True,
                                 timeout=60)
            self.assertEqual(out.returncode, 0, out.stderr)
        zk.start()
        harness.wait_until(lambda: all(zk.mode(i) in ("leader", "follower") for i in (1, 2, 3)),
                           timeout=60, what="ZooKeeper's three servers serving again")
        for s in zk.servers:
            self.assertEqual(self.tree(s.hosts), on_fk, "ZooKeeper server %s after the rollback" % s.cfg)
        harness.wait_until(lambda: keep.state == KazooState.CONNECTED, what="the kept session back on ZooKeeper")
        self.assertNotIn(KazooState.LOST, states, "the session expired on the way back")
        self.assertEqual(keep.get("/app/eph")[0], b"mine")
        keep.stop()
        keep.close()

    def test_a_server_ahead_of_the_leader_drops_what_zookeeper_never_committed(self):
        """Server 1's ZooKeeper files hold transactions servers 2 and 3 do
        not (they were copied before those were written): to the other
        two, they were never committed. Servers 2 and 3 elect a leader
        first; server 1 then finds the leader behind its data, drops its
        copy (not ZooKeeper's files) and stops, saying why; started
        again, it catches up and serves the leader's tree."""
        import shutil
        zk = self.zookeeper_ensemble()
        hosts = ",".join(s.hosts for s in zk.servers)
        c = KazooClient(hosts=hosts)
        c.start()
        c.create("/a", b"1")
        c.stop()
        c.close()
        saved = os.path.join(zk.server(1).dir, "saved")
        for i in (2, 3):
            zk.server(i).stop()
            shutil.copytree(zk.server(i).dir, os.path.join(saved, str(i)), ignore=shutil.ignore_patterns("saved"))
        # All three restarted together (server 1, left alone and LOOKING,
        # can take ZooKeeper up to a minute to rejoin otherwise).
        zk.server(1).stop()
        zk.start(1, 2, 3)
        harness.wait_until(lambda: all(zk.mode(i) in ("leader", "follower") for i in (1, 2, 3)),
                           timeout=60, what="ZooKeeper's three servers serving")
        c = KazooClient(hosts=hosts)
        c.start()
        for i in range(10):
            last = c.create("/only-on-1-", b"", sequence=True)
        c.stop()
        c.close()
        # A quorum of two acknowledges a write: server 1 may not have
        # logged it yet. It has once it serves it after a sync.
        c = KazooClient(hosts=zk.server(1).hosts)
        c.start()
        c.sync("/")
        self.assertIsNotNone(c.exists(last), "server 1 has the writes")
        c.stop()
        c.close()
        for i in (1, 2, 3):
            zk.server(i).stop()
        for i in (2, 3):
            for d in ("data", "datalog"):
                shutil.rmtree(os.path.join(zk.server(i).dir, d))
                shutil.copytree(os.path.join(saved, str(i), d), os.path.join(zk.server(i).dir, d))

        fks = self.switch(zk.servers, which=(2, 3))
        ens = harness.Ensemble.of(fks)
        harness.wait_until(lambda: ens.mode(2) in ("leader", "follower") and ens.mode(3) in ("leader", "follower"),
                           what="servers 2 and 3 serving")
        expected = self.tree(fks[1].hosts)
        self.assertIn("/a", expected)
        self.assertFalse([p for p in expected if p.startswith("/only-on-1-")])
        try:
            out = subprocess.run([harness.BINARY, "start-foreground", fks[0].cfg], capture_output=True, text=True,
                                 timeout=60)
        except subprocess.TimeoutExpired as e:
            self.fail("server 1 did not stop; its log ends:\n%s" % (e.stderr or b"")[-3000:].decode(errors="replace"))
        self.assertEqual(out.returncode, 2, out.stderr[-2000:])
        self.assertIn("no quorum of ZooKeeper's ensemble logged the transactions above it", out.stderr)
        v2 = [os.path.join(zk.server(1).dir, d, "version-2") for d in ("data", "datalog")]
        self.assertTrue(all(os.listdir(d) for d in v2), "ZooKeeper's files stay")
        fks[0].start()
        self.assertIn("starting empty, to catch up from the leader", fks[0].log())
        ens.serving_follower()
        self.assertEqual(self.tree(fks[0].hosts), expected)


if __name__ == "__main__":
    unittest.main(verbosity=2)
