"""`zookeeper.skipACL=yes` (issue 19: reconfig's rights "with skipACL
semantics as ZooKeeper 3.8"): no ACL is checked, so a client without any
identity reads, writes, changes the ACL of and deletes under a node only
another user may use, and may reconfig. The same steps on a ZooKeeper 3.8
ensemble and a ferrokeeper one, the property given as ZooKeeper takes it
(`-Dzookeeper.skipACL=yes`); and without it, the same client refused."""
import re
import unittest

from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import make_digest_acl

import harness


def steps(test, kind, skip):
    ens = harness.Ensemble(3, kind=kind, extra={"reconfigEnabled": "true"}, client_port_in_server_lines=True)
    test.addCleanup(ens.close)
    for s in ens.servers:
        if skip:
            s.jvm_flags = ["-Dzookeeper.skipACL=yes"]
    ens.start()
    ens.serving_follower()
    owner = KazooClient(hosts=ens.hosts, timeout=10, auth_data=[("digest", "bob:secret")])
    owner.start()
    test.addCleanup(owner.stop)
    owner.create("/locked", b"mine", acl=[make_digest_acl("bob", "secret", all=True)])
    anyone = KazooClient(hosts=ens.hosts, timeout=10)
    anyone.start()
    test.addCleanup(anyone.stop)
    seen = {}

    def attempt(name, f):
        try:
            r = f()
            seen[name] = "ok" if name != "get" else r[0].decode()
        except NoAuthError:
            seen[name] = "NoAuth"

    attempt("get", lambda: anyone.get("/locked"))
    attempt("set", lambda: anyone.set("/locked", b"theirs"))
    attempt("create child", lambda: anyone.create("/locked/child", b""))
    attempt("set acl", lambda: anyone.set_acls("/locked", [make_digest_acl("eve", "x", all=True)]))
    attempt("delete child", lambda: anyone.delete("/locked/child"))
    # A reconfig without the super identity: an observer that never runs.
    line = "server.100=127.0.0.1:%d:%d:observer;127.0.0.1:%d" % (
        harness.free_port(), harness.free_port(), harness.free_port())
    attempt("reconfig", lambda: anyone.reconfig(joining=line, leaving=None, new_members=None))
    # Through the server the owner is connected to, once it has caught up.
    owner.sync("/zookeeper/config")
    data, _ = owner.get("/zookeeper/config")
    seen["observer in the membership"] = bool(re.search(r"^server\.100=", data.decode(), re.M))
    return seen


class SkipAclTest(unittest.TestCase):
    maxDiff = None

    def test_skip_acl_as_in_zookeeper(self):
        fk = steps(self, "ferrokeeper", skip=True)
        self.assertEqual(fk, {"get": "mine", "set": "ok", "create child": "ok", "set acl": "ok",
                              "delete child": "ok", "reconfig": "ok", "observer in the membership": True})
        self.assertEqual(fk, steps(self, "zookeeper", skip=True))

    def test_without_it_the_same_client_is_refused(self):
        fk = steps(self, "ferrokeeper", skip=False)
        self.assertEqual(set(v for k, v in fk.items() if k != "observer in the membership"), {"NoAuth"})
        self.assertEqual(fk, steps(self, "zookeeper", skip=False))


if __name__ == "__main__":
    unittest.main()
