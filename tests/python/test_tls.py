"""TLS on the client port and the x509 ACL scheme (issue 21), configured
as for ZooKeeper 3.8: secureClientPort, ssl.keyStore.* / ssl.trustStore.*
(PKCS12 made by OpenSSL 3, a trust store made by keytool, PEM),
ssl.clientAuth, authProvider.x509=X509AuthenticationProvider,
-Dzookeeper.X509AuthenticationProvider.superUser. The same zoo.cfg runs a
real ZooKeeper 3.8 (NettyServerCnxnFactory) and ferrokeeper, and what
ferrokeeper answers must be what ZooKeeper answers; the facts that matter
are also asserted on their own.

Clients: kazoo (use_ssl, certfile/keyfile, ca), the Java client
(ZooKeeperMain with ClientCnxnSocketNetty and zookeeper.client.secure),
and bare TLS sockets from Python's ssl module for the refusals.
Certificates are made here with openssl and keytool, never committed."""
import os
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import unittest

import harness

from kazoo.client import KazooClient
from kazoo.exceptions import NoAuthError
from kazoo.security import make_acl

KINDS = ("zookeeper", "ferrokeeper")
PASSWORD = "store_secret"
APP1 = "CN=app1,OU=ops,O=example"
# A comma in a name: Java writes it escaped (RFC 2253).
APP2 = "CN=app2,O=Example\\, Inc."
ADMIN = "CN=admin,O=example"
X509_PROVIDER = "org.apache.zookeeper.server.auth.X509AuthenticationProvider"


def run(*cmd, cwd):
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def make_certs(d):
    """A CA, the server's certificate (localhost, 127.0.0.1), clients app1,
    app2 and admin signed by it, and `stranger` signed by another CA; as
    PEM files, PKCS12 key stores (OpenSSL 3's defaults), a keytool trust
    store, and a real JKS key store."""
    def v3(name, subj, ca, ext):
        with open(os.path.join(d, name + ".ext"), "w") as f:
            f.write(ext)
        run("openssl", "req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-out", name + ".csr",
            "-subj", subj, cwd=d)
        run("openssl", "x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem", "-CAkey", ca + ".key",
            "-CAcreateserial", "-out", name + ".pem", "-days", "2", "-extfile", name + ".ext", cwd=d)
        run("openssl", "pkcs12", "-export", "-in", name + ".pem", "-inkey", name + ".key", "-certfile", ca + ".pem",
            "-out", name + ".p12", "-passout", "pass:" + PASSWORD, cwd=d)
        with open(os.path.join(d, name + "-keystore.pem"), "w") as f:
            for part in (".key", ".pem"):
                f.write(open(os.path.join(d, name + part)).read())

    for ca in ("ca", "otherca"):
        run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca + ".key", "-out", ca + ".pem",
            "-days", "2", "-subj", "/CN=%s test CA" % ca, cwd=d)
    client = "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n"
    v3("server", "/CN=localhost", "ca", "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
       "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n")
    v3("app1", "/O=example/OU=ops/CN=app1", "ca", client)
    v3("app2", "/O=Example, Inc./CN=app2", "ca", client)
    v3("admin", "/O=example/CN=admin", "ca", client)
    v3("stranger", "/O=example/CN=stranger", "otherca", client)
    # Between servers: each end is a server and a client (test_quorum_tls.py).
    peer = ("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
            "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\n")
    v3("quorum", "/O=ensemble/CN=localhost", "ca", peer)
    v3("rogue", "/O=ensemble/CN=localhost", "otherca", peer)
    # app1's key with a certificate that expired yesterday.
    run("openssl", "x509", "-req", "-in", "app1.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
        "-out", "expired.pem", "-days", "-1", "-extfile", "app1.ext", cwd=d)
    shutil.copy(os.path.join(d, "app1.key"), os.path.join(d, "expired.key"))
    # A key store whose key is not its certificate's.
    with open(os.path.join(d, "mismatch-keystore.pem"), "w") as f:
        f.write(open(os.path.join(d, "app1.key")).read() + open(os.path.join(d, "server.pem")).read())
    run("keytool", "-importcert", "-noprompt", "-storetype", "PKCS12", "-alias", "ca", "-file", "ca.pem",
        "-keystore", "trust.p12", "-storepass", PASSWORD, cwd=d)
    # Real JKS (keytool writes PKCS12 unless told otherwise since JDK 9).
    run("keytool", "-importkeystore", "-srckeystore", "server.p12", "-srcstoretype", "PKCS12",
        "-srcstorepass", PASSWORD, "-destkeystore", "server.jks", "-deststoretype", "JKS",
        "-deststorepass", PASSWORD, cwd=d)
    run("keytool", "-importcert", "-noprompt", "-storetype", "JKS", "-alias", "ca", "-file", "ca.pem",
        "-keystore", "trust.jks", "-storepass", PASSWORD, cwd=d)


def connect_request():
    body = struct.pack(">iqiq", 0, 0, 10000, 0) + struct.pack(">i", 16) + b"\0" * 16 + b"\0"
    return struct.pack(">i", len(body)) + body


def session_over(port, ctx):
    """What a client gets on `port`: 'session' when a ConnectRequest is
    answered with a session, else 'refused'. `ctx` None: plaintext."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            s = ctx.wrap_socket(raw, server_hostname="localhost") if ctx else raw
            s.sendall(connect_request())
            head = b""
            while len(head) < 4:
                b = s.recv(4 - len(head))
                if not b:
                    return "refused"
                head += b
            (n,) = struct.unpack(">i", head)
            body = b""
            while len(body) < n:
                b = s.recv(n - len(body))
                if not b:
                    return "refused"
                body += b
            (_, _, sid) = struct.unpack_from(">iiq", body, 0)
            return "session" if sid != 0 else "refused"
    except (ssl.SSLError, OSError):
        return "refused"


class TlsTest(unittest.TestCase):
    maxDiff = None

    @classmethod
    def setUpClass(cls):
        cls.d = tempfile.mkdtemp(prefix="tls-certs-")
        make_certs(cls.d)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.d, True)

    def path(self, name):
        return os.path.join(self.d, name)

    def server(self, kind, stores="p12", extra=None, flags=(), client_port=True):
        secure = harness.free_port()
        lines = {
            "secureClientPort": str(secure),
            "serverCnxnFactory": "org.apache.zookeeper.server.NettyServerCnxnFactory",
            "authProvider.x509": X509_PROVIDER,
        }
        if stores == "p12":
            lines.update({
                "ssl.keyStore.location": self.path("server.p12"),
                "ssl.keyStore.password": PASSWORD,
                "ssl.trustStore.location": self.path("trust.p12"),
                "ssl.trustStore.password": PASSWORD,
            })
        elif stores == "jks":
            lines.update({
                "ssl.keyStore.location": self.path("server.jks"),
                "ssl.keyStore.password": PASSWORD,
                "ssl.trustStore.location": self.path("trust.jks"),
                "ssl.trustStore.password": PASSWORD,
            })
        elif stores == "pem":
            lines.update({
                "ssl.keyStore.location": self.path("server-keystore.pem"),
                "ssl.keyStore.type": "PEM",
                "ssl.trustStore.location": self.path("ca.pem"),
                "ssl.trustStore.type": "PEM",
            })
        lines.update(extra or {})
        s = harness.Server(kind, extra=lines, jvm_flags=list(flags))
        if not client_port:
            del s.lines["clientPort"]
            del s.lines["clientPortAddress"]
            s.write_cfg()
        s.secure = secure
        self.addCleanup(s.close)
        return s

    def kazoo(self, s, who):
        c = KazooClient(hosts="127.0.0.1:%d" % s.secure, use_ssl=True, ca=self.path("ca.pem"),
                        certfile=self.path(who + ".pem"), keyfile=self.path(who + ".key"), timeout=10)
        self.addCleanup(c.close)
        self.addCleanup(c.stop)
        c.start()
        return c

    def ctx(self, who):
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        c.load_verify_locations(self.path("ca.pem"))
        if who:
            c.load_cert_chain(self.path(who + ".pem"), self.path(who + ".key"))
        return c

    def observe(self, kind):
        s = self.server(kind, flags=["-Dzookeeper.X509AuthenticationProvider.superUser=" + ADMIN]).start()
        out = {}
        app1, app2, admin = (self.kazoo(s, w) for w in ("app1", "app2", "admin"))
        plain = KazooClient(hosts=s.hosts, timeout=10)
        self.addCleanup(plain.close)
        self.addCleanup(plain.stop)
        plain.start()
        for name, c in (("app1", app1), ("app2", app2), ("admin", admin), ("plain", plain)):
            out["whoami " + name] = harness.who_am_i(c)
        app1.create("/x509", b"app1's", acl=[make_acl("x509", APP1, all=True)])
        out["app1 reads"] = app1.get("/x509")[0]
        for name, c in (("app2", app2), ("plain", plain)):
            try:
                c.get("/x509")
                out[name + " reads"] = "read"
            except NoAuthError:
                out[name + " reads"] = "NoAuth"
        out["admin (super) reads"] = admin.get("/x509")[0]
        # `auth` expands to the certificate's identity.
        app2.create("/auth", b"", acl=[make_acl("auth", "", all=True)])
        out["auth acl"] = [(a.id.scheme, a.id.id, a.perms) for a in app2.get_acls("/auth")[0]]
        return out

    def test_x509_identities_and_acls(self):
        zk, fk = (self.observe(k) for k in KINDS)
        self.assertEqual(fk, zk)
        self.assertEqual(fk["whoami app1"], [("x509", APP1), ("ip", "127.0.0.1")])
        self.assertEqual(fk["whoami app2"], [("x509", APP2), ("ip", "127.0.0.1")])
        self.assertEqual(fk["app1 reads"], b"app1's")
        self.assertEqual(fk["app2 reads"], "NoAuth")
        self.assertEqual(fk["plain reads"], "NoAuth")
        self.assertEqual(fk["admin (super) reads"], b"app1's")
        self.assertEqual(fk["auth acl"], [("x509", APP2, 31)])

    def refusals(self, s):
        return {
            "trusted client": session_over(s.secure, self.ctx("app1")),
            "no certificate": session_over(s.secure, self.ctx(None)),
            "untrusted certificate": session_over(s.secure, self.ctx("stranger")),
            "expired certificate": session_over(s.secure, self.ctx("expired")),
            "plaintext on the TLS port": session_over(s.secure, None),
            "plaintext port": session_over(s.port, None),
        }

    def test_refused_clients_get_no_session_and_the_rest_are_served(self):
        got = {k: self.refusals(self.server(k).start()) for k in KINDS}
        self.assertEqual(got["ferrokeeper"], got["zookeeper"])
        self.assertEqual(got["ferrokeeper"], {
            "trusted client": "session",
            "no certificate": "refused",
            "untrusted certificate": "refused",
            "expired certificate": "refused",
            "plaintext on the TLS port": "refused",
            "plaintext port": "session",
        })
        # ssl.clientAuth=want: a client without a certificate is served.
        for k in KINDS:
            s = self.server(k, extra={"ssl.clientAuth": "want"}).start()
            self.assertEqual(session_over(s.secure, self.ctx(None)), "session", k)
            self.assertEqual(session_over(s.secure, self.ctx("stranger")), "refused", k)
        # ferrokeeper's log says which and why.
        log = self.server("ferrokeeper").start()
        self.refusals(log)
        for said in ("Unsuccessful TLS handshake: not a TLS client",
                     "Unsuccessful TLS handshake: the client sent no certificate",
                     "Unsuccessful TLS handshake: the client's certificate is refused"):
            harness.wait_until(lambda: said in log.log(), what="the log saying " + said)

    def java_client(self, s, who):
        flags = ["-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty",
                 "-Dzookeeper.client.secure=true",
                 "-Dzookeeper.ssl.keyStore.location=" + self.path(who + ".p12"),
                 "-Dzookeeper.ssl.keyStore.password=" + PASSWORD,
                 "-Dzookeeper.ssl.trustStore.location=" + self.path("trust.p12"),
                 "-Dzookeeper.ssl.trustStore.password=" + PASSWORD]
        # zkCli splits ACLs at commas, so a DN is given through `auth`.
        script = "whoami\ncreate /j java\nsetAcl /j auth::cdrwa\ngetAcl /j\nget /j\nquit\n"
        r = subprocess.run(["java", "-cp", harness.ZK_CLASSPATH] + flags +
                           ["org.apache.zookeeper.ZooKeeperMain", "-server", "127.0.0.1:%d" % s.secure],
                           input=script, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
        keep = ("x509", "ip:", "Created", "java", "'x509", ": cdrwa", "KeeperErrorCode")
        return [l for l in r.stdout.splitlines() if l.startswith(keep)]

    def test_java_client_over_tls(self):
        got = {k: self.java_client(self.server(k).start(), "app1") for k in KINDS}
        self.assertEqual(got["ferrokeeper"], got["zookeeper"])
        self.assertEqual(got["ferrokeeper"], [
            # getAcl writes the commas of an id as %2C.
            "x509: " + APP1, "ip: 127.0.0.1", "Created /j", "'x509,'" + APP1.replace(",", "%2C"), ": cdrwa", "java"])

    def test_pem_and_jks_stores(self):
        for k, stores in ((k, st) for k in KINDS for st in ("pem", "jks")):
            s = self.server(k, stores=stores).start()
            self.assertEqual(harness.who_am_i(self.kazoo(s, "app1")), [("x509", APP1), ("ip", "127.0.0.1")], (k, stores))
            self.assertEqual(session_over(s.secure, self.ctx("stranger")), "refused", (k, stores))

    def test_changed_certificate_files_are_used_without_a_restart(self):
        """ZooKeeper 3.9's client.certReload (on by default in ferrokeeper;
        ZooKeeper 3.8 has no reload, so this is ferrokeeper's alone)."""
        trust = self.path("reload-trust.pem")
        shutil.copy(self.path("ca.pem"), trust)
        s = self.server("ferrokeeper", stores="pem", extra={"ssl.trustStore.location": trust}).start()
        self.assertEqual(session_over(s.secure, self.ctx("stranger")), "refused")
        # A file that cannot be used keeps the stores there were.
        with open(trust, "w") as f:
            f.write("not a certificate")
        harness.wait_until(lambda: "cannot be used" in s.log(), what="the refused reload")
        self.assertEqual(session_over(s.secure, self.ctx("app1")), "session")
        # Now trust the other CA as well: its client is served.
        with open(trust, "w") as f:
            f.write(open(self.path("ca.pem")).read() + open(self.path("otherca.pem")).read())
        harness.wait_until(lambda: session_over(s.secure, self.ctx("stranger")) == "session",
                           what="the other CA's client served after the reload")
        self.assertEqual(session_over(s.secure, self.ctx("app1")), "session")
        harness.wait_until(lambda: "the certificate files changed; new connections use them" in s.log(),
                           what="the reload logged")

    def test_port_unification_takes_both_on_the_client_port(self):
        """client.portUnification=true: the client port serves TLS and
        plaintext clients alike (ZooKeeper's way to move clients to TLS one
        by one)."""
        got = {}
        for k in KINDS:
            s = self.server(k, extra={"client.portUnification": "true"}).start()
            got[k] = {
                "plaintext": session_over(s.port, None),
                "TLS": session_over(s.port, self.ctx("app1")),
                "TLS, untrusted": session_over(s.port, self.ctx("stranger")),
                "ruok": harness.four_letter(s.port, "ruok"),
            }
            s.secure = s.port
            got[k]["whoami over TLS"] = harness.who_am_i(self.kazoo(s, "app1"))
        self.assertEqual(got["ferrokeeper"], got["zookeeper"])
        self.assertEqual(got["ferrokeeper"], {
            "plaintext": "session", "TLS": "session", "TLS, untrusted": "refused", "ruok": "imok",
            "whoami over TLS": [("x509", APP1), ("ip", "127.0.0.1")]})

    def test_only_a_secure_port(self):
        s = self.server("ferrokeeper", client_port=False)
        s.start(probe=lambda: session_over(s.secure, self.ctx("app1")) == "session")
        c = self.kazoo(s, "app1")
        c.create("/only-tls", b"v")
        self.assertEqual(c.get("/only-tls")[0], b"v")
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", s.port), timeout=2).close()

    def test_stores_that_cannot_be_used_stop_the_server_with_the_reason(self):
        cases = [
            ({"ssl.keyStore.password": "wrong"}, "ssl.keyStore.location %s" % self.path("server.p12")),
            ({"ssl.keyStore.location": self.path("server.jks"), "ssl.keyStore.password": "wrong"},
             "its integrity check fails"),
            ({"ssl.trustStore.location": self.path("missing.p12")}, "cannot read"),
            ({"ssl.clientAuth": "sometimes"}, "ssl.clientAuth"),
            ({"ssl.keyStore.location": self.path("mismatch-keystore.pem"), "ssl.keyStore.type": "PEM"},
             "the key does not go with the certificate"),
        ]
        for extra, said in cases:
            s = self.server("ferrokeeper", extra=extra)
            s.proc = subprocess.Popen([harness.BINARY, "start-foreground", s.cfg], stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True)
            out, _ = s.proc.communicate(timeout=30)
            self.assertNotEqual(s.proc.returncode, 0, out)
            self.assertIn(said, out)


if __name__ == "__main__":
    unittest.main()
