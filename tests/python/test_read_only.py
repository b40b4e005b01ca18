"""Read-only mode (issue 19): the same steps on a ZooKeeper 3.8 ensemble
and a ferrokeeper one, both with `-Dreadonlymode.enabled=true` in the
server's JVM flags (SERVER_JVMFLAGS for ferrokeeper) and
localSessionsEnabled=true (ZooKeeper 3.8's read-only server takes only new
local sessions): two of three servers killed, the third serves clients
that asked for read-only — kazoo's read_only=True and zkCli's -r — from its
last state, refuses their writes with NotReadOnly and refuses clients that
did not ask; isro says ro, srvr `Mode: read-only`; when the quorum is
back the read-only clients move to a read-write server and write again.

ferrokeeper also keeps a session the ensemble made (a client that was
connected before the quorum went stays in its session, read-only);
ZooKeeper 3.8 refuses it. That is checked on its own."""
import re
import subprocess
import unittest

from kazoo.client import KazooClient
from kazoo.exceptions import NotReadOnlyCallError
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.protocol.states import KeeperState

import harness


def zkcli_read_only(server, script):
    r = subprocess.run([harness.ZKCLI, "-server", server.hosts, "-r"], input=script,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    keep = []
    for l in r.stdout.splitlines():
        l = re.sub(r"\[zk: [^\]]*\]", "[zk]", l)
        l = re.sub(r"0x[0-9a-f]+", "0xN", l)
        if l.strip() and not l.startswith(("SLF4J:", "Connecting to", "Welcome to", "JLine", "WATCHER::",
                                           "WatchedEvent")):
            keep.append(l)
    return keep


class ReadOnlyTest(unittest.TestCase):
    maxDiff = None

    def run_steps(self, kind):
        seen = {}
        ens = harness.Ensemble(3, kind=kind, extra={"localSessionsEnabled": "true"})
        self.addCleanup(ens.close)
        for s in ens.servers:
            s.jvm_flags = ["-Dreadonlymode.enabled=true"]
        ens.start()
        ens.leader()
        harness.wait_until(lambda: all(ens.mode(i) in ("leader", "follower") for i in (1, 2, 3)),
                           timeout=60, what="every server serving (%s)" % kind)
        one = ens.server(1)
        seen["isro with a quorum"] = harness.four_letter(one.port, "isro")
        w = KazooClient(hosts=one.hosts, timeout=10)
        w.start()
        w.create("/a", b"before")
        w.sync("/")
        w.stop()
        before = KazooClient(hosts=one.hosts, timeout=10, read_only=True)
        before.start()
        before.get("/a")
        ens.server(2).kill()
        ens.server(3).kill()
        harness.wait_until(lambda: harness.four_letter(one.port, "isro") == "ro", timeout=30,
                           what="server 1 read-only (%s)" % kind)
        seen["isro without a quorum"] = harness.four_letter(one.port, "isro")
        seen["srvr mode"] = [l for l in harness.four_letter(one.port, "srvr").splitlines() if l.startswith("Mode")]
        seen["mntr state"] = ens.mntr(1).get("zk_server_state")
        ro = KazooClient(hosts=one.hosts, timeout=10, read_only=True)
        ro.start(timeout=15)
        seen["read-only client"] = ro.client_state
        seen["reads"] = (ro.get("/a")[0], sorted(ro.get_children("/")))
        refused = {}
        for what, call in [("create", lambda: ro.create("/b")), ("set", lambda: ro.set("/a", b"x")),
                           ("delete", lambda: ro.delete("/a")), ("sync", lambda: ro.sync("/"))]:
            try:
                call()
                refused[what] = "ok"
            except NotReadOnlyCallError:
                refused[what] = "NotReadOnly"
        seen["writes"] = refused
        plain = KazooClient(hosts=one.hosts, timeout=5, connection_retry=None)
        try:
            plain.start(timeout=5)
            seen["client that did not ask"] = "connected"
        except KazooTimeoutError:
            seen["client that did not ask"] = "refused"
        plain.stop()
        seen["zkCli -r"] = zkcli_read_only(one, "get /a\ncreate /x\nquit\n")
        # The session made before the quorum went: kept by ferrokeeper,
        # refused by ZooKeeper 3.8 (compared apart).
        harness.wait_until(lambda: before.client_state in (KeeperState.CONNECTED_RO, KeeperState.EXPIRED_SESSION)
                           or not before.connected, timeout=30, what="the earlier client's state (%s)" % kind)
        kept = before.client_state == KeeperState.CONNECTED_RO
        # The quorum back: read-only clients move to read-write.
        ens.server(2).start(probe=lambda: True)
        ens.server(3).start(probe=lambda: True)
        harness.wait_until(lambda: ro.client_state == KeeperState.CONNECTED, timeout=90,
                           what="the read-only client back to read-write (%s)" % kind)
        ro.create("/after", b"rw")
        seen["write after the quorum came back"] = ro.get("/after")[0]
        seen["isro after"] = harness.four_letter(one.port, "isro")
        ro.stop()
        before.stop()
        return seen, kept

    def test_read_only_mode_as_zookeeper(self):
        fk, fk_kept = self.run_steps("ferrokeeper")
        self.assertEqual(fk["isro without a quorum"], "ro")
        self.assertEqual(fk["writes"], {"create": "NotReadOnly", "set": "NotReadOnly", "delete": "NotReadOnly",
                                        "sync": "NotReadOnly"})
        self.assertEqual(fk["client that did not ask"], "refused")
        self.assertTrue(fk_kept, "ferrokeeper keeps the ensemble's session read-only")
        zk, _ = self.run_steps("zookeeper")
        self.assertEqual(fk, zk)


if __name__ == "__main__":
    unittest.main()
