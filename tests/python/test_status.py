"""`ferrokeeper status` against what `zkServer.sh status` (ZooKeeper 3.8,
Debian's) prints for the same config and the same running server."""
import os
import subprocess
import unittest

import harness

ZKSERVER = "/usr/share/zookeeper/bin/zkServer.sh"


def status(cfg):
    p = subprocess.run([harness.BINARY, "status", cfg], capture_output=True, text=True, timeout=30)
    return p.returncode, p.stdout.splitlines()


def zk_status(cfg):
    """zkServer.sh status: its stdout lines (the JMX/config lines go to stderr)."""
    env = dict(os.environ, ZOO_LOG_DIR=os.path.dirname(cfg))
    p = subprocess.run(["bash", ZKSERVER, "status", cfg], capture_output=True, text=True, timeout=60, env=env)
    return p.returncode, [l for l in p.stdout.splitlines() if l.strip()]


@unittest.skipUnless(os.path.exists(ZKSERVER), "Debian's zookeeper package is not installed")
class StatusTest(unittest.TestCase):
    def assert_like_zkserver(self, cfg, mode):
        code, lines = status(cfg)
        zk_code, zk_lines = zk_status(cfg)
        self.assertEqual((code, zk_code), (0, 0), (lines, zk_lines))
        # Line for line what zkServer.sh prints, then our zxid and node count.
        self.assertEqual(lines[:len(zk_lines)], zk_lines)
        self.assertEqual(lines[len(zk_lines) - 1], "Mode: " + mode)
        self.assertRegex(lines[len(zk_lines)], r"^Zxid: 0x[0-9a-f]+$")
        self.assertRegex(lines[len(zk_lines) + 1], r"^Node count: \d+$")

    def test_standalone_running_and_stopped(self):
        s = harness.Server()
        self.addCleanup(s.close)
        s.start()
        self.assert_like_zkserver(s.cfg, "standalone")
        s.stop()
        code, lines = status(s.cfg)
        zk_code, zk_lines = zk_status(s.cfg)
        self.assertEqual((code, zk_code), (1, 1))
        self.assertEqual(lines, zk_lines)
        self.assertEqual(lines[-1], "Error contacting service. It is probably not running.")

    def test_ensemble_with_client_ports_in_server_lines(self):
        # No clientPort key: each server finds its port in its own server.N
        # line through myid, as ZooKeeper 3.5+ allows.
        ens = harness.Ensemble(3, client_port_in_server_lines=True)
        self.addCleanup(ens.close)
        ens.start()
        leader = ens.leader()
        for i in (1, 2, 3):
            self.assert_like_zkserver(ens.server(i).cfg, "leader" if i == leader else "follower")
        # A server that is up but has no quorum is "not running" to status.
        for i in (1, 2, 3):
            if i != leader:
                ens.server(i).kill()
        harness.wait_until(lambda: status(ens.server(leader).cfg)[0] == 1, what="status to report no service")


class CountsTest(unittest.TestCase):
    def test_node_and_ephemeral_counts_match_zookeeper(self):
        from kazoo.client import KazooClient
        seen = {}
        for kind in ("zookeeper", "ferrokeeper"):
            s = harness.Server(kind=kind)
            self.addCleanup(s.close)
            s.start()
            c = KazooClient(hosts=s.hosts)
            c.start(15)
            try:
                fresh = harness.four_letter(s.port, "srvr")
                c.create("/a/b", b"x", makepath=True)
                c.create("/a/e", ephemeral=True)
                mntr = dict(l.split("\t", 1) for l in harness.four_letter(s.port, "mntr").splitlines() if "\t" in l)
                srvr = harness.four_letter(s.port, "srvr")
            finally:
                c.stop()
            pick = lambda text: [l for l in text.splitlines() if l.startswith("Node count:")]
            seen[kind] = (pick(fresh), pick(srvr), mntr["zk_znode_count"], mntr["zk_ephemerals_count"])
        self.assertEqual(seen["ferrokeeper"], seen["zookeeper"])


if __name__ == "__main__":
    unittest.main()
