"""Required authentication (issue 21, item 5), as ZooKeeper 3.8's
AuthenticationHelper: enforce.auth.enabled + enforce.auth.schemes, and
-Dzookeeper.sessionRequireClientSASLAuth=true (which means `sasl`). An
unauthenticated client still gets a session; its first request other
than auth and SASL is answered SessionClosedRequireSaslAuth (-124) and the
connection is closed. Every step runs against a real ZooKeeper 3.8 too,
byte for byte on bare connections, and the facts are also asserted."""
import os
import shutil
import struct
import subprocess
import tempfile
import unittest

import harness

KINDS = ("zookeeper", "ferrokeeper")
SASL_PROVIDER = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"
JAAS = """
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_app="app_password";
};
"""


BOGUS = b'username="app",realm="zk-sasl-md5",nonce="x",nc=00000001,cnonce="y",' \
        b'digest-uri="zookeeper/zk-sasl-md5",response=00000000000000000000000000000000,qop=auth'


def path_watch(path):
    return harness.jute_buf(path.encode()) + b"\0"


class EnforceAuthTest(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="enforce-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def server(self, kind, extra, flags=()):
        s = harness.Server(kind, extra=extra, jvm_flags=list(flags))
        self.addCleanup(s.close)
        return s.start()

    def exchange(self, s, requests):
        """(xid, zxid, err) of each reply on a fresh session, zxids of
        successful reads masked; then whether the server closed it."""
        c = harness.RawConn(s.port)
        self.addCleanup(c.close)
        out = [c.session_id != 0]
        for xid, op, body in requests:
            c.request(xid, op, body)
            r = c.reply()
            if r is None:
                out.append(None)
                break
            rxid, zxid, err, _ = r
            out.append((rxid, zxid if err else "Z", err))
        c.s.settimeout(3)
        out.append("closed" if c.closed() else "open")
        return out

    def test_unauthenticated_requests_are_refused_and_the_connection_closed(self):
        enforce = {"enforce.auth.enabled": "true", "enforce.auth.schemes": "digest"}
        get_root = (1, 4, path_watch("/"))
        ping = (-2, 11, b"")
        addauth = (-4, 100, struct.pack(">i", 0) + harness.jute_buf(b"digest") + harness.jute_buf(b"u:p"))
        got = {}
        for k in KINDS:
            s = self.server(k, enforce)
            got[k] = {
                "read": self.exchange(s, [get_root]),
                "ping": self.exchange(s, [ping]),
                "addauth, then read": self.exchange(s, [addauth, (2, 4, path_watch("/"))]),
            }
            ip_only = self.server(k, {"enforce.auth.enabled": "true", "enforce.auth.schemes": "ip"})
            got[k]["ip is enough"] = self.exchange(ip_only, [get_root])
        self.assertEqual(got["ferrokeeper"], got["zookeeper"])
        self.assertEqual(got["ferrokeeper"]["read"], [True, (1, 0, -124), "closed"])
        self.assertEqual(got["ferrokeeper"]["addauth, then read"], [True, (-4, "Z", 0), (2, "Z", 0), "open"])
        self.assertEqual(got["ferrokeeper"]["ip is enough"], [True, (1, "Z", 0), "open"])

    def test_session_require_client_sasl_auth(self):
        # kazoo 2.8 has no exception for -124: its unauthenticated side is
        # looked at on a bare connection.
        from kazoo.client import KazooClient
        got = {}
        for k in KINDS:
            jaas = os.path.join(self.dir, "jaas-%s.conf" % k)
            with open(jaas, "w") as f:
                f.write(JAAS)
            s = self.server(k, {"authProvider.1": SASL_PROVIDER},
                            ["-Djava.security.auth.login.config=" + jaas,
                             "-Dzookeeper.sessionRequireClientSASLAuth=true"])
            app = KazooClient(hosts=s.hosts, timeout=10,
                              sasl_options={"mechanism": "DIGEST-MD5", "username": "app", "password": "app_password"})
            self.addCleanup(app.close)
            self.addCleanup(app.stop)
            app.start()
            app.create("/ok", b"")
            got[k] = {"whoami": harness.who_am_i(app), "plain read": self.exchange(s, [(1, 4, path_watch("/"))])}
            # A failed SASL login, even with allowSaslFailedClients: -124
            # instead of AuthFailed, and the connection closed.
            s2 = self.server(k, {"authProvider.1": SASL_PROVIDER},
                             ["-Djava.security.auth.login.config=" + jaas,
                              "-Dzookeeper.sessionRequireClientSASLAuth=true",
                              "-Dzookeeper.allowSaslFailedClients=true"])
            got[k]["failed login"] = self.exchange(s2, [(1, 102, harness.jute_buf(b"")), (2, 102, harness.jute_buf(BOGUS))])
        self.assertEqual(got["ferrokeeper"], got["zookeeper"])
        self.assertEqual(got["ferrokeeper"]["plain read"], [True, (1, 0, -124), "closed"])
        self.assertEqual(got["ferrokeeper"]["whoami"], [("sasl", "app"), ("ip", "127.0.0.1")])
        self.assertEqual(got["ferrokeeper"]["failed login"], [True, (1, "Z", 0), (2, 0, -124), "closed"])

    def test_settings_zookeeper_refuses_are_refused(self):
        for extra, said in [
            ({"enforce.auth.enabled": "true"}, "zookeeper.enforce.auth.schemes must be configured"),
            ({"enforce.auth.enabled": "true", "enforce.auth.schemes": "sasl"},
             "Authentication scheme sasl is not available"),
        ]:
            s = harness.Server("ferrokeeper", extra=extra)
            self.addCleanup(s.close)
            r = subprocess.run([harness.BINARY, "start-foreground", s.cfg], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, timeout=30)
            self.assertNotEqual(r.returncode, 0, r.stdout)
            self.assertIn(said, r.stdout)


if __name__ == "__main__":
    unittest.main()
