"""`ip` ACLs with IPv6 addresses and CIDR networks (issue 20, item 1), as
ZooKeeper 3.9's IPAuthenticationProvider reads them: servers listening on
`::` (IPv4 and IPv6), kazoo clients over 127.0.0.1 and ::1; which nodes
each may read, which ACL ids are refused (InvalidACL), what getACL gives
back, and how `cons` writes an IPv6 client — the same on ferrokeeper and
ZooKeeper 3.9.5. ZooKeeper 3.8 knows IPv4 only (an IPv6 ACL is InvalidACL
there): ferrokeeper answers as 3.9."""
import re
import unittest

from kazoo.client import KazooClient
from kazoo.security import make_acl

import harness

ACLS = {
    "/v6": "::1",
    "/v6net": "::/0",
    "/v6long": "0:0:0:0:0:0:0:1",
    "/v4net": "127.0.0.0/8",
    "/v4net24": "127.0.0.0/24",
    "/other": "10.0.0.0/8",
    "/fe80": "fe80::/10",
}
BAD = ["1.2.3.4/33", "::1/129", "fe80::1%lo", "1::2::3", "::ffff:127.0.0.1", "12345::", "localhost", "1.2.3"]


def observe(kind, version="3.8"):
    s = harness.Server(kind, extra={"clientPortAddress": "::"}, zookeeper=version).start()
    seen = {}
    try:
        admin = KazooClient(hosts="127.0.0.1:%d" % s.port, timeout=10)
        admin.start(15)
        for path, ip in ACLS.items():
            admin.create(path, b"x", acl=[make_acl("ip", ip, all=True), make_acl("world", "anyone", admin=True)])
            seen["acl " + path] = [(a.id.scheme, a.id.id) for a in admin.get_acls(path)[0]]
        for ip in BAD:
            try:
                admin.create("/bad", b"", acl=[make_acl("ip", ip, all=True)])
                seen["bad " + ip] = "created"
                admin.delete("/bad")
            except Exception as e:
                seen["bad " + ip] = type(e).__name__
        for name, hosts in (("v4", "127.0.0.1:%d" % s.port), ("v6", "[::1]:%d" % s.port)):
            c = KazooClient(hosts=hosts, timeout=10)
            c.start(15)
            for path in ACLS:
                try:
                    c.get(path)
                    seen[name + " reads " + path] = True
                except Exception as e:
                    seen[name + " reads " + path] = type(e).__name__
            if name == "v6":
                cons = harness.four_letter(s.port, "cons")
                seen["cons v6 client"] = sorted(set(re.findall(r" /(\[[0-9a-f:]+\]):\d+\[", cons)))
            c.stop()
            c.close()
        admin.stop()
        admin.close()
    finally:
        s.close()
    return seen


class IpAclTest(unittest.TestCase):
    maxDiff = None

    def test_ipv6_and_cidr_acls_as_zookeeper_3_9(self):
        fk = observe("ferrokeeper")
        self.assertEqual(fk["v6 reads /v6"], True)
        self.assertEqual(fk["v4 reads /v6"], "NoAuthError")
        self.assertEqual(fk["v4 reads /v4net"], True)
        self.assertEqual(fk["v6 reads /v4net"], "NoAuthError")
        self.assertEqual(fk["bad 1.2.3.4/33"], "InvalidACLError")
        self.assertEqual(fk["cons v6 client"], ["[0:0:0:0:0:0:0:1]"])
        if not harness.HAVE_ZK39:
            self.skipTest("ZooKeeper 3.9.5 is not here (scripts/get_zookeeper_3.9.sh)")
        self.assertEqual(fk, observe("zookeeper", "3.9"))


if __name__ == "__main__":
    unittest.main()
