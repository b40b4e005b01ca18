"""Who may talk on the quorum and election ports (issue 21, item 6):
only the ensemble's other members (and, with reconfig on, a server
that names where it listens: a non-voting follower), and with ZooKeeper's quorum SASL
settings (quorum.auth.enableSasl / serverRequireSasl / learnerRequireSasl
and the JAAS QuorumServer / QuorumLearner sections) only those that hold
the shared password. 3-server ferrokeeper ensembles on this host; the
quorum protocol is ferrokeeper's own, so there is no ZooKeeper to compare
with here, but the zoo.cfg lines and the JAAS file are ZooKeeper's."""
import os
import shutil
import socket
import struct
import tempfile
import time
import unittest

import harness
from kazoo.client import KazooClient

import rolling

JAAS = """
QuorumServer {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_zkquorum="%s";
};
QuorumLearner {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    username="zkquorum"
    password="%s";
};
"""
REQUIRED = {"quorum.auth.enableSasl": "true", "quorum.auth.serverRequireSasl": "true",
            "quorum.auth.learnerRequireSasl": "true"}


class QuorumAuthTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="quorum-auth-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def jaas(self, name, password):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(JAAS % (password, password))
        return "-Djava.security.auth.login.config=" + path

    def ensemble(self, settings, passwords=("secret",) * 3):
        ens = harness.Ensemble(3)
        self.addCleanup(ens.close)
        for i, s in enumerate(ens.servers):
            self.configure(s, settings, passwords[i], i)
        return ens

    def configure(self, s, settings, password, i):
        for k in REQUIRED:
            s.lines.pop(k, None)
        s.lines.update(settings)
        s.write_cfg()
        s.jvm_flags = [self.jaas("jaas-%d-%s.conf" % (i, password), password)] if settings else []

    def client(self, s):
        c = KazooClient(hosts=s.hosts, timeout=10)
        self.addCleanup(c.close)
        self.addCleanup(c.stop)
        c.start()
        return c

    def quorum_port(self, ens, i):
        return int(ens.server(i).lines["server.%d" % i].split(":")[1])

    def test_servers_with_the_password_form_the_ensemble_and_strangers_are_refused(self):
        ens = self.ensemble(REQUIRED).start()
        follower = ens.serving_follower()
        c = self.client(follower)
        c.create("/replicated", b"v")
        leader = ens.leader()
        # A process that names itself server 2 but cannot authenticate:
        # it sends a Raft-sized frame right after the id.
        for claimed in (2, 99):
            with socket.create_connection(("127.0.0.1", self.quorum_port(ens, leader))) as s:
                s.sendall(struct.pack(">Q", claimed) + struct.pack(">IB", 5, 1) + b"junk")
                s.settimeout(5)
                try:
                    closed = s.recv(100) == b""
                except ConnectionResetError:
                    closed = True  # closed with our junk unread
                self.assertTrue(closed, "the connection is closed")
        for said in ("did not authenticate and quorum.auth.serverRequireSasl is on",
                     "it calls itself server 99, which is not another server of this ensemble"):
            harness.wait_until(lambda: said in ens.server(leader).log(), what="the log saying " + said)
        self.assertEqual(ens.server(leader).proc.poll(), None)
        self.assertEqual(c.get("/replicated")[0], b"v")

    def test_a_server_with_the_wrong_password_cannot_join(self):
        ens = self.ensemble(REQUIRED, passwords=("secret", "secret", "wrong"))
        ens.start(1, 2)
        harness.wait_until(lambda: {ens.mode(1), ens.mode(2)} == {"leader", "follower"}, what="servers 1 and 2 serving")
        ens.start(3)
        c = self.client(ens.server(1))
        c.create("/two", b"")
        harness.wait_until(lambda: "refused our quorum authentication" in ens.server(3).log(),
                           what="server 3 told it was refused")
        self.assertIsNone(ens.mode(3))
        self.assertIn("wrong password for user zkquorum", ens.server(1).log() + ens.server(2).log())

    def test_a_joiner_follows_only_with_the_password(self):
        """With reconfig on, a server the members do not list follows as
        a non-voting follower once it authenticated: it is asked where it
        listens only after quorum authentication."""
        for password, follows in (("wrong", False), ("secret", True)):
            ens = harness.Ensemble(3, extra={"reconfigEnabled": "true"})
            self.addCleanup(ens.close)
            for i, s in enumerate(ens.servers):
                if i < 2:
                    del s.lines["server.3"]
                self.configure(s, REQUIRED, password if i == 2 else "secret", i)
            ens.start(1, 2)
            harness.wait_until(lambda: {ens.mode(1), ens.mode(2)} == {"leader", "follower"},
                               what="servers 1 and 2 serving")
            c = self.client(ens.server(1))
            c.create("/before-the-joiner", b"j")
            ens.start(3)
            if follows:
                harness.wait_until(lambda: ens.mode(3) == "follower", timeout=60, what="the joiner following")
                j = self.client(ens.server(3))
                j.sync("/")
                self.assertEqual(j.get("/before-the-joiner")[0], b"j")
                self.assertIn("server 3, not a member, calls in", ens.server(1).log() + ens.server(2).log())
            else:
                harness.wait_until(lambda: "refused our quorum authentication" in ens.server(3).log(),
                                   what="the joiner told it was refused")
                time.sleep(2)
                self.assertIsNone(ens.mode(3))
                self.assertNotIn("not a member, calls in", ens.server(1).log() + ens.server(2).log())

    def test_a_rolling_switch_to_required_quorum_auth_loses_nothing(self):
        """ZooKeeper's documented path: enableSasl on every server (nothing
        required yet), then the require flags, one server at a time."""
        ens = self.ensemble({}).start()
        ens.serving_follower()
        writer = rolling.Writer(self, ens)
        for settings in ({"quorum.auth.enableSasl": "true"}, REQUIRED):
            rolling.restart_each(ens, writer, lambda s, i: self.configure(s, settings, "secret", i))
        for i in (1, 2, 3):
            self.assertIn("quorum authentication on", ens.server(i).log())
        rolling.assert_every_write_everywhere(self, ens, writer)


if __name__ == "__main__":
    unittest.main()
