"""TLS between servers (issue 21, item 2), configured as ZooKeeper 3.8's
quorum TLS: sslQuorum=true with ssl.quorum.keyStore.* / trustStore.*
(host names verified unless ssl.quorum.hostnameVerification=false), and
portUnification=true for ZooKeeper's documented rolling switch: first
portUnification on every server, then sslQuorum, then portUnification
off, one server at a time, on a live 3-server ensemble under writes.
ferrokeeper's servers talk only to each other, so there is no ZooKeeper to
compare with; the zoo.cfg lines are ZooKeeper's."""
import shutil
import socket
import ssl
import struct
import tempfile
import unittest

import harness
import rolling
import test_tls


class QuorumTlsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.d = tempfile.mkdtemp(prefix="quorum-tls-")
        test_tls.make_certs(cls.d)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.d, True)

    def stores(self):
        return {
            "ssl.quorum.keyStore.location": self.d + "/quorum.p12",
            "ssl.quorum.keyStore.password": test_tls.PASSWORD,
            "ssl.quorum.trustStore.location": self.d + "/trust.p12",
            "ssl.quorum.trustStore.password": test_tls.PASSWORD,
        }

    def quorum_port(self, ens, i):
        return int(ens.server(i).lines["server.%d" % i].split(":")[1])

    def refused(self, port, ctx):
        """Whether the server closes a connection that names itself server 2
        and sends a frame, over TLS with `ctx` or plaintext (a TLS alert
        may come before the close)."""
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
                s = ctx.wrap_socket(raw, server_hostname="localhost") if ctx else raw
                s.sendall(struct.pack(">Q", 2) + struct.pack(">IB", 5, 1) + b"junk")
                while s.recv(100):
                    pass
                return True
        except (ssl.SSLError, ConnectionResetError):
            return True
        except socket.timeout:
            return False

    def test_a_rolling_switch_to_quorum_tls_loses_nothing(self):
        ens = harness.Ensemble(3)
        self.addCleanup(ens.close)
        ens.start()
        ens.serving_follower()
        writer = rolling.Writer(self, ens)
        steps = [
            dict(self.stores(), portUnification="true"),
            dict(self.stores(), portUnification="true", sslQuorum="true"),
            dict(self.stores(), sslQuorum="true"),
        ]
        for settings in steps:
            def configure(s, i, settings=settings):
                for k in ("portUnification", "sslQuorum"):
                    s.lines.pop(k, None)
                s.lines.update(settings)
                s.write_cfg()
            rolling.restart_each(ens, writer, configure)
        rolling.assert_every_write_everywhere(self, ens, writer)
        for i in (1, 2, 3):
            self.assertIn("quorum TLS: dialling over TLS, accepting TLS only", ens.server(i).log())
        # Now only TLS with a certificate the trust store vouches for gets in.
        leader = ens.leader()
        port = self.quorum_port(ens, leader)
        rogue = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        rogue.check_hostname = False
        rogue.verify_mode = ssl.CERT_NONE
        rogue.load_cert_chain(self.d + "/rogue.pem", self.d + "/rogue.key")
        self.assertTrue(self.refused(port, None), "plaintext refused")
        self.assertTrue(self.refused(port, rogue), "a certificate of another CA refused")
        for said in ("TLS (sslQuorum): not a TLS client", "TLS (sslQuorum): the client's certificate is refused"):
            harness.wait_until(lambda: said in ens.server(leader).log(), what="the log saying " + said)
        writer.put()
        rolling.assert_every_write_everywhere(self, ens, writer)

    def test_a_server_whose_certificate_is_not_trusted_cannot_join(self):
        ens = harness.Ensemble(3)
        self.addCleanup(ens.close)
        for i, s in enumerate(ens.servers, 1):
            s.lines.update(self.stores(), sslQuorum="true")
            if i == 3:
                s.lines["ssl.quorum.keyStore.location"] = self.d + "/rogue.p12"
            s.write_cfg()
        ens.start()
        harness.wait_until(lambda: {ens.mode(1), ens.mode(2)} == {"leader", "follower"},
                           what="servers 1 and 2 serving")
        harness.wait_until(lambda: "the client's certificate is refused: UnknownIssuer" in ens.server(1).log(),
                           what="server 1 refusing server 3's certificate")
        self.assertIn("UnknownCA", ens.server(3).log())
        self.assertIsNone(ens.mode(3))

    def test_changed_quorum_certificate_files_are_used_without_a_restart(self):
        """sslQuorumReloadCertFiles (ferrokeeper: on unless false): server 3
        holds a certificate of another CA and stays out until servers 1
        and 2 are given a trust store that vouches for it."""
        ens = harness.Ensemble(3)
        self.addCleanup(ens.close)
        both = open(self.d + "/ca.pem").read() + open(self.d + "/otherca.pem").read()
        for i, s in enumerate(ens.servers, 1):
            trust = "%s/reload-trust-%d.pem" % (s.dir, i)
            with open(trust, "w") as f:
                f.write(both if i == 3 else open(self.d + "/ca.pem").read())
            s.lines.update(self.stores(), sslQuorum="true")
            s.lines.update({"ssl.quorum.trustStore.location": trust, "ssl.quorum.trustStore.type": "PEM"})
            if i == 3:
                s.lines["ssl.quorum.keyStore.location"] = self.d + "/rogue.p12"
            s.write_cfg()
        ens.start()
        harness.wait_until(lambda: "the client's certificate is refused: UnknownIssuer" in ens.server(1).log(),
                           what="server 1 refusing server 3's certificate")
        self.assertIsNone(ens.mode(3))
        for i in (1, 2):
            with open(ens.server(i).lines["ssl.quorum.trustStore.location"], "w") as f:
                f.write(both)
        harness.wait_until(lambda: ens.mode(3) == "follower", timeout=30, what="server 3 joining after the reload")
        for i in (1, 2):
            self.assertIn("TLS (between servers): the certificate files changed", ens.server(i).log())


if __name__ == "__main__":
    unittest.main()
