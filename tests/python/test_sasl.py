"""SASL DIGEST-MD5 on the client port (issue 21), configured as for
ZooKeeper 3.8: a JAAS `Server` section named by
-Djava.security.auth.login.config (in SERVER_JVMFLAGS for ferrokeeper, on
java's command line for ZooKeeper), authProvider.1=SASLAuthenticationProvider
for `sasl` ACLs, -Dzookeeper.superUser. Every step runs against a real
ZooKeeper 3.8 as well, and what ferrokeeper answers must be what ZooKeeper
answers; the facts that matter are also asserted on their own, so the test
fails if both went wrong the same way.

Clients: kazoo (pure-sasl, `sasl_options`) and the Java client (zkCli.sh
with a JAAS `Client` section in CLIENT_JVMFLAGS)."""
import os
import re
import shutil
import struct
import subprocess
import tempfile
import unittest

import harness

try:
    import puresasl  # noqa: F401
    from kazoo.client import KazooClient
    from kazoo.exceptions import AuthFailedError, NoAuthError, InvalidACLError
    from kazoo.protocol.states import KeeperState
    from kazoo.security import make_acl
    HAVE_SASL = True
except ImportError:
    HAVE_SASL = False

SASL_PROVIDER = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"
SERVER_JAAS = """
// The users a client may authenticate as.
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="super_secret"
    user_app="app_password";
};
"""
CLIENT_JAAS = """
Client {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    username="%s"
    password="%s";
};
"""
KINDS = ("zookeeper", "ferrokeeper")


@unittest.skipUnless(HAVE_SASL, "pure-sasl is not installed (scripts/test.sh installs it)")
class SaslTest(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sasl-")
        self.addCleanup(shutil.rmtree, self.dir, True)

    def file(self, name, text):
        path = os.path.join(self.dir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def server(self, kind, jaas=SERVER_JAAS, provider=True, flags=()):
        extra = {"authProvider.1": SASL_PROVIDER} if provider else {}
        jvm = list(flags)
        if jaas is not None:
            jvm.append("-Djava.security.auth.login.config=%s" % self.file("jaas-%s.conf" % kind, jaas))
        s = harness.Server(kind, extra=extra, jvm_flags=jvm)
        self.addCleanup(s.close)
        return s.start()

    def client(self, s, user=None, password=None):
        opts = {"mechanism": "DIGEST-MD5", "username": user, "password": password} if user else None
        c = KazooClient(hosts=s.hosts, sasl_options=opts, timeout=10)
        self.addCleanup(c.close)
        self.addCleanup(c.stop)
        return c

    def observe(self, kind):
        """The steps of test_sasl_users_and_acls against one server; what
        each answered."""
        s = self.server(kind, flags=["-Dzookeeper.superUser=super"])
        out = {}
        plain = self.client(s)
        plain.start()
        app = self.client(s, "app", "app_password")
        app.start()
        out["whoami app"] = sorted(harness.who_am_i(app))
        out["whoami plain"] = sorted(harness.who_am_i(plain))
        app.create("/app", b"mine", acl=[make_acl("sasl", "app", all=True)])
        out["app reads its node"] = app.get("/app")[0]
        try:
            plain.get("/app")
            out["plain reads it"] = "read"
        except NoAuthError:
            out["plain reads it"] = "NoAuth"
        # `auth` expands to the sasl identity.
        app.create("/auth", b"", acl=[make_acl("auth", "", all=True)])
        out["auth acl"] = [(a.id.scheme, a.id.id, a.perms) for a in app.get_acls("/auth")[0]]
        sup = self.client(s, "super", "super_secret")
        sup.start()
        out["super reads it"] = sup.get("/app")[0]
        out["whoami super"] = sorted(harness.who_am_i(sup))
        for who, pw in (("app", "wrong"), ("nobody", "x")):
            # kazoo reports CONNECTED before its SASL exchange, so start()
            # may return or time out whichever way the exchange ends, and
            # the client's state passes AUTH_FAILED on to CLOSED: record
            # the states it goes through instead.
            bad = self.client(s, who, pw)
            seen = []
            report = bad._session_callback
            bad._session_callback = lambda state, report=report, seen=seen: (seen.append(state), report(state))
            bad.start_async()
            harness.wait_until(lambda: KeeperState.AUTH_FAILED in seen or KeeperState.CLOSED in seen,
                               what="the end of the SASL exchange for %s" % who)
            out["%s/%s" % (who, pw)] = [st for st in seen if st != KeeperState.CONNECTING]
        return out

    def test_sasl_users_and_acls(self):
        zk, fk = (self.observe(k) for k in KINDS)
        self.assertEqual(fk, zk)
        self.assertEqual(fk["whoami app"], [("ip", "127.0.0.1"), ("sasl", "app")])
        self.assertEqual(fk["plain reads it"], "NoAuth")
        self.assertEqual(fk["auth acl"], [("sasl", "app", 31)])
        self.assertEqual(fk["super reads it"], b"mine")
        refused = [KeeperState.CONNECTED, KeeperState.AUTH_FAILED, KeeperState.CLOSED]
        self.assertEqual(fk["app/wrong"], refused)
        self.assertEqual(fk["nobody/x"], refused)

    def test_sasl_acls_need_the_provider(self):
        """Without authProvider.N=SASLAuthenticationProvider the scheme is
        unknown: a `sasl` ACL is InvalidACL, though the login works (and
        whoami, with no provider to name the user, shows it empty)."""
        for kind in KINDS:
            s = self.server(kind, provider=False)
            app = self.client(s, "app", "app_password")
            app.start()
            self.assertEqual(harness.who_am_i(app), [("sasl", ""), ("ip", "127.0.0.1")], kind)
            with self.assertRaises(InvalidACLError, msg=kind):
                app.create("/x", b"", acl=[make_acl("sasl", "app", all=True)])

    def raw_sasl(self, s, tokens):
        """(err, token) for each SASL token sent on a bare connection, the
        server's challenge masked; None once the connection is closed."""
        c = harness.RawConn(s.port)
        self.addCleanup(c.close)
        out = []
        for xid, tok in enumerate(tokens, 1):
            c.request(xid, 102, harness.jute_buf(tok))
            r = c.reply()
            if r is None:
                out.append(None)
                break
            rxid, zxid, err, body = r
            (n,) = struct.unpack_from(">i", body, 0)
            tok = None if n < 0 else re.sub(rb'nonce="[^"]*"', b'nonce="N"', bytes(body[4:4 + n]))
            out.append((rxid, zxid, err, tok))
        # A closing server closes at once; 2 s is far below the session
        # timeout (10 s), after which both servers close the connection anyway.
        c.s.settimeout(2)
        out.append("closed" if c.closed() else "open")
        return out

    def test_wire_bytes_match_zookeeper(self):
        bogus = b'username="app",realm="zk-sasl-md5",nonce="x",nc=00000001,cnonce="y",' \
                b'digest-uri="zookeeper/zk-sasl-md5",response=00000000000000000000000000000000,qop=auth'
        got = {}
        for kind in KINDS:
            s = self.server(kind)
            got[kind] = self.raw_sasl(s, [b"", bogus])
            # allowSaslFailedClients keeps the connection: OK, no token.
            s2 = self.server(kind, flags=["-Dzookeeper.allowSaslFailedClients=true"])
            got[kind + " allow"] = self.raw_sasl(s2, [b"", bogus])
            # An empty JAAS file (no Server section): no SASL server;
            # ZooKeeper answers OK with no token.
            s3 = self.server(kind, jaas="")
            got[kind + " none"] = self.raw_sasl(s3, [b""])
        self.assertEqual(got["ferrokeeper"], got["zookeeper"])
        self.assertEqual(got["ferrokeeper allow"], got["zookeeper allow"])
        self.assertEqual(got["ferrokeeper none"], got["zookeeper none"])
        challenge = b'realm="zk-sasl-md5",nonce="N",charset=utf-8,algorithm=md5-sess'
        self.assertEqual(got["ferrokeeper"], [(1, 0, 0, challenge), (2, 0, -115, None), "closed"])
        self.assertEqual(got["ferrokeeper allow"], [(1, 0, 0, challenge), (2, 0, 0, None), "open"])
        self.assertEqual(got["ferrokeeper none"], [(1, 0, 0, None), "open"])

    def zkcli(self, s, user, password, script):
        flags = "-Djava.security.auth.login.config=%s" % self.file("client-%s.conf" % user,
                                                                    CLIENT_JAAS % (user, password))
        r = subprocess.run([harness.ZKCLI, "-server", s.hosts], input=script, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=120,
                           env=dict(os.environ, CLIENT_JVMFLAGS=flags))
        # The client's event thread prints its lines whenever the events
        # come: those are compared as a set, the commands' output in order.
        events, lines = set(), []
        for line in r.stdout.splitlines():
            line = re.sub(r"0x[0-9a-f]+", "0xN", line)
            if line.startswith(("WatchedEvent state:AuthFailed", "WatchedEvent state:SaslAuthenticated")):
                events.add(line)
            elif line.startswith(("[", "'", "Insufficient", "Authentication", "KeeperErrorCode", "Node ",
                                  "Auth scheme", "ip: ", "sasl: ")) \
                    or line in ("x", "Created /j"):
                lines.append(line)
        return sorted(events) + lines

    def test_the_java_client(self):
        script = "whoami\ncreate /j x sasl:app:cdrwa\ngetAcl /j\nget /j\nquit\n"
        got = {}
        for kind in KINDS:
            s = self.server(kind)
            got[kind] = self.zkcli(s, "app", "app_password", script)
            got[kind + " wrong"] = self.zkcli(s, "app", "nope", "get /j\nquit\n")
        self.assertEqual(got["ferrokeeper"], got["zookeeper"])
        self.assertEqual(got["ferrokeeper wrong"], got["zookeeper wrong"])
        self.assertIn("WatchedEvent state:SaslAuthenticated type:None path:null", got["ferrokeeper"])
        self.assertIn("sasl: app", got["ferrokeeper"])
        self.assertIn("Created /j", got["ferrokeeper"])
        self.assertIn("'sasl,'app", got["ferrokeeper"])
        self.assertIn("x", got["ferrokeeper"])
        self.assertIn("WatchedEvent state:AuthFailed type:None path:null", got["ferrokeeper wrong"])

    def test_a_missing_jaas_file_or_kerberos_stops_the_server(self):
        missing = os.path.join(self.dir, "nope.conf")
        s = harness.Server("ferrokeeper", jvm_flags=["-Djava.security.auth.login.config=%s" % missing])
        self.addCleanup(s.close)
        r = subprocess.run([harness.BINARY, "start-foreground", s.cfg], capture_output=True, text=True,
                           timeout=30, env=dict(os.environ, SERVER_JVMFLAGS=" ".join(s.jvm_flags)))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("No JAAS configuration section named 'Server' was found in '%s'" % missing, r.stderr)
        krb = self.file("krb.conf", "Server { com.sun.security.auth.module.Krb5LoginModule required useKeyTab=true; };")
        r = subprocess.run([harness.BINARY, "start-foreground", s.cfg], capture_output=True, text=True,
                           timeout=30, env=dict(os.environ, SERVER_JVMFLAGS="-Djava.security.auth.login.config=" + krb))
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("Kerberos (GSSAPI) is not yet", r.stderr)
        # ZooKeeper refuses to start without the file too.
        zk = harness.Server("zookeeper", jvm_flags=["-Djava.security.auth.login.config=%s" % missing])
        self.addCleanup(zk.close)
        with self.assertRaises(TimeoutError):
            zk.start()


if __name__ == "__main__":
    unittest.main()
