"""The zxid counter never forces an election (issue 20, item 5; beyond
ZooKeeper, whose zxid is epoch << 32 | a 32-bit counter: when the counter
reaches 0xffffffff its leader steps down and a new epoch is elected,
ZOOKEEPER-1277). A ferrokeeper zxid is its Raft log index, 64 bits.

ZooKeeper 3.8's data (a standalone server's, its newest snapshot) is put
just below a 2^32 boundary — renamed snapshot.1fffffff0, as if epoch 1's
counter were at 0xfffffff0 — into each server of a 3-server ferrokeeper
ensemble, which takes it over; clients of every server then write across
0x200000000: the leader stays, no client loses its connection, a client
that saw a zxid past the boundary is taken by every server (its
lastZxidSeen is not refused), sequential names go on from ZooKeeper's,
and a restarted follower comes back past the boundary."""
import os
import re
import unittest

from kazoo.client import KazooClient

import harness

BOUNDARY = 0x2_0000_0000
START = BOUNDARY - 0x10


def zookeeper_snapshot():
    """The bytes of ZooKeeper 3.8's newest snapshot after /app and three
    sequential children were written (a restart makes ZooKeeper snapshot
    what it loaded)."""
    zk = harness.Server("zookeeper")
    try:
        zk.start()
        c = KazooClient(hosts=zk.hosts)
        c.start()
        c.create("/app", b"v")
        for _ in range(3):
            c.create("/app/seq-", b"", sequence=True)
        c.stop()
        c.close()
        zk.stop()
        zk.start()
        zk.stop()
        v2 = os.path.join(zk.dir, "data", "version-2")
        newest = max((f for f in os.listdir(v2) if f.startswith("snapshot.")), key=lambda f: int(f[9:], 16))
        with open(os.path.join(v2, newest), "rb") as f:
            return f.read()
    finally:
        zk.close()


class ZxidBoundaryTest(unittest.TestCase):

    def test_writes_across_a_2_32_boundary_need_no_election(self):
        snap = zookeeper_snapshot()
        ens = harness.Ensemble(3)
        self.addCleanup(ens.close)
        for s in ens.servers:
            v2 = os.path.join(s.dir, "data", "version-2")
            os.makedirs(v2)
            with open(os.path.join(v2, "snapshot.%x" % START), "wb") as f:
                f.write(snap)
        ens.start()
        leader = ens.leader()
        harness.wait_until(lambda: all(ens.mode(i) in ("leader", "follower") for i in (1, 2, 3)), timeout=60,
                           what="every server serving")
        changes = {i: ens.mntr(i).get("ferrokeeper_leader_changes") for i in (1, 2, 3)}
        states = {}
        clients = []
        for i in (1, 2, 3):
            c = KazooClient(hosts=ens.server(i).hosts, timeout=10)
            c.start()
            states[i] = []
            c.add_listener(states[i].append)
            clients.append(c)
        self.assertEqual(clients[0].get("/app")[0], b"v")
        names, zxids = [], []
        for k in range(48):
            c = clients[k % 3]
            p = c.create("/app/seq-", b"%d" % k, sequence=True)
            names.append(p)
            zxids.append(c.exists(p).czxid)
            c.set("/app", b"%d" % k)
        self.assertLess(zxids[0], BOUNDARY)
        self.assertGreater(zxids[-1], BOUNDARY)
        self.assertEqual(zxids, sorted(zxids))
        self.assertEqual(names, ["/app/seq-%010d" % n for n in range(3, 51)])
        self.assertEqual(ens.leader(), leader)
        self.assertEqual({i: ens.mntr(i).get("ferrokeeper_leader_changes") for i in (1, 2, 3)}, changes)
        self.assertEqual(states, {1: [], 2: [], 3: []}, "no client lost its connection")
        # A session that saw the newest zxid is taken by every server.
        for i in (1, 2, 3):
            clients[0].sync("/")
            raw = harness.RawConn(ens.server(i).port, last_zxid=zxids[-1])
            self.assertIsNotNone(raw.session_id, "server %d refused lastZxidSeen 0x%x" % (i, zxids[-1]))
            raw.close()
        # A follower restarted on its own files comes back past the boundary.
        follower = next(i for i in (1, 2, 3) if i != leader)
        ens.server(follower).kill()
        clients[leader - 1].create("/while-down", b"")
        ens.server(follower).start()
        c = KazooClient(hosts=ens.server(follower).hosts, timeout=10)
        c.start()
        c.sync("/")
        self.assertGreater(c.exists("/while-down").czxid, BOUNDARY)
        self.assertEqual(c.get_children("/app"), clients[leader - 1].get_children("/app"))
        c.stop()
        c.close()
        for c in clients:
            c.stop()
            c.close()
        srvr = harness.four_letter(ens.server(leader).port, "srvr")
        self.assertGreater(int(re.search(r"Zxid: (0x[0-9a-f]+)", srvr).group(1), 16), BOUNDARY)


if __name__ == "__main__":
    unittest.main()
