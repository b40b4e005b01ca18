"""Opt-in linearizable reads (issue 19; beyond ZooKeeper): with
`linearizableReads=true` a server answers a read only once it has applied
everything the leader had committed when the read arrived (Raft's
ReadIndex), so a read reflects every write acknowledged before it, through
any server, without a sync.

The follower under test is stopped (SIGSTOP) while a write is
acknowledged through the leader and a read is sent to it; then it goes on
(SIGCONT) and finds the leader's append and the read side by side in its
sockets. With linearizable reads the read shows the write every time;
without them it sometimes does not (ZooKeeper's sequential consistency,
which the same steps are run against too, only counted: they are
allowed to be stale)."""
import os
import signal
import subprocess
import time
import unittest

from kazoo.client import KazooClient

import harness

TRIALS = 30


def client(hosts):
    c = KazooClient(hosts=hosts, timeout=10)
    c.start()
    return c


def stale_reads(test, kind, extra=None):
    """Runs the trials on a 3-server ensemble; returns how many reads
    through the stopped follower missed the write acknowledged before."""
    ens = harness.Ensemble(3, kind=kind, extra=extra)
    test.addCleanup(ens.close)
    ens.start()
    follower = ens.serving_follower()
    leader = ens.server(ens.leader())
    writer, reader = client(leader.hosts), client(follower.hosts)
    test.addCleanup(writer.stop)
    test.addCleanup(reader.stop)
    writer.create("/x", b"0")
    reader.sync("/x")
    stale = 0
    for i in range(1, TRIALS + 1):
        os.kill(follower.proc.pid, signal.SIGSTOP)
        try:
            writer.set("/x", b"%d" % i)
            # The read is in the follower's socket before it runs again.
            pending = reader.get_async("/x")
            time.sleep(0.02)
        finally:
            os.kill(follower.proc.pid, signal.SIGCONT)
        data, _ = pending.get(timeout=10)
        if data != b"%d" % i:
            stale += 1
    return stale


class LinearizableReadsTest(unittest.TestCase):
    def test_a_read_shows_every_write_acknowledged_before_it(self):
        plain = stale_reads(self, "ferrokeeper")
        zookeeper = stale_reads(self, "zookeeper")
        linear = stale_reads(self, "ferrokeeper", {"linearizableReads": "true"})
        print("\nstale reads of %d: ferrokeeper %d, ZooKeeper 3.8 %d, ferrokeeper with linearizableReads %d"
              % (TRIALS, plain, zookeeper, linear))
        self.assertEqual(linear, 0)

    def test_every_kind_of_read_is_served(self):
        """A linearizable server answers every read ZooKeeper's clients
        send, in each session's order, watches included; read-only
        sessions stay local (they have no leader to ask)."""
        ens = harness.Ensemble(3)
        self.addCleanup(ens.close)
        for s in ens.servers:
            # As a -D property in SERVER_JVMFLAGS, as zkServer.sh passes them.
            s.jvm_flags = ["-DlinearizableReads=true"]
        ens.start()
        follower = ens.serving_follower()
        c = client(follower.hosts)
        self.addCleanup(c.stop)
        fired = []
        c.create("/a", b"1")
        c.create("/a/b", b"2", ephemeral=True)
        self.assertEqual(c.get("/a", watch=lambda e: fired.append(e.type))[0], b"1")
        self.assertEqual(c.get_children("/a"), ["b"])
        self.assertEqual(c.get_children("/a", include_data=True)[1].numChildren, 1)
        self.assertIsNotNone(c.exists("/a/b"))
        self.assertIsNone(c.exists("/nothing"))
        self.assertEqual(c.get_acls("/a")[1].version, 0)
        # Writes and reads pipelined: each read sees the writes before it.
        ops = []
        for i in range(50):
            ops.append(c.set_async("/a", b"v%d" % i))
            ops.append(c.get_async("/a"))
        for i in range(50):
            ops[2 * i].get(timeout=10)
            self.assertEqual(ops[2 * i + 1].get(timeout=10)[0], b"v%d" % i)
        harness.wait_until(lambda: fired, what="the data watch")
        # zkCli (the Java client) on the same server.
        out = subprocess.run([harness.ZKCLI, "-server", follower.hosts, "get", "/a"],
                             capture_output=True, text=True, timeout=60).stdout
        self.assertIn("v49", out)
        # mntr counts them.
        self.assertGreaterEqual(int(ens.mntr(ens.servers.index(follower) + 1)["ferrokeeper_linearizable_reads"]), 57)


if __name__ == "__main__":
    unittest.main()
