"""Backup and restore in ZooKeeper's own snapshot format, through the
AdminServer's `snapshot` and `restore` commands (ZooKeeper 3.9's): a
ferrokeeper backup started by a real ZooKeeper 3.8 serves the same tree
field by field; a real ZooKeeper 3.8's snapshot file restored into a
ferrokeeper ensemble through one follower is served by every server, and
after a restart; the commands' authentication (the Authorization header,
ALL on /), switches and rate limits; bad bodies change nothing."""
import json
import os
import shutil
import subprocess
import unittest
import urllib.error
import urllib.request

from kazoo.client import KazooClient
from kazoo.security import make_acl, make_digest_acl

import harness

ROOT = "digest root:rootpw"


def admin(port, command, auth=None, body=None, query=""):
    """(status, headers, body bytes) of one AdminServer command."""
    req = urllib.request.Request("http://127.0.0.1:%d/commands/%s%s" % (port, command, query), data=body,
                                 method="POST" if body is not None else "GET")
    if auth is not None:
        req.add_header("Authorization", auth)
    if body is not None:
        req.add_header("Content-Type", "application/octet-stream")
    try:
        with urllib.request.urlopen(req, timeout=150) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def with_admin(server, **more):
    server.admin_port = harness.free_port()
    server.lines.update({"admin.enableServer": "true", "admin.serverPort": str(server.admin_port)})
    server.lines.update(more)
    server.write_cfg()
    return server


def load(c):
    """Every kind of node, under /app; the ACL of / then needs root."""
    harness.create_every_kind(c)
    c.set_acls("/", [make_digest_acl("root", "rootpw", all=True), make_acl("world", "anyone", read=True)])


def client(hosts):
    c = KazooClient(hosts=hosts, timeout=30, auth_data=[("digest", "root:rootpw"), ("digest", "user:pw")])
    c.start()
    return c


def loaded_ferrokeeper(test, **admin_lines):
    """A standalone ferrokeeper with its AdminServer, loaded by `load`:
    (server, a client with root's and user's identities, its tree)."""
    fk = with_admin(harness.Server(), **admin_lines)
    test.addCleanup(fk.close)
    fk.start()
    c = client(fk.hosts)
    test.addCleanup(c.stop)
    load(c)
    return fk, c, harness.znodes(c)


def same_tree(test, got, want, what):
    got, want = dict(got), dict(want)
    for t in (got, want):
        t.pop("/zookeeper/config", None)  # each server writes its own
    test.assertEqual(sorted(got), sorted(want), what)
    for path in want:
        test.assertEqual(got[path], want[path], (what, path))


class SnapshotTest(unittest.TestCase):
    def test_a_ferrokeeper_backup_is_served_by_zookeeper_unchanged(self):
        fk, c, _ = loaded_ferrokeeper(self, **{"admin.rateLimiterIntervalInMS": "2000000"})
        keep = KazooClient(hosts=fk.hosts, timeout=30)
        keep.start()
        self.addCleanup(keep.stop)
        keep.create("/app/eph", b"mine", ephemeral=True)

        # Who may: ALL on / (ZooKeeper 3.9's answers).
        status, _, body = admin(fk.admin_port, "snapshot")
        self.assertEqual(status, 401)
        self.assertEqual(json.loads(body)["error"], "Auth info is missing for the command")
        for auth in ("nosuch x", "digest", "sasl alice"):
            status, _, body = admin(fk.admin_port, "snapshot", auth)
            self.assertEqual((status, json.loads(body)["error"]), (401, "Not authenticated"), auth)
        for auth in ("digest user:pw", "ip"):
            status, _, body = admin(fk.admin_port, "snapshot", auth)
            self.assertEqual((status, json.loads(body)["error"]), (403, "Not authorized"), auth)

        served = harness.znodes(c)
        status, headers, snap = admin(fk.admin_port, "snapshot", ROOT, query="?streaming=true")
        self.assertEqual(status, 200, snap[:200])
        self.assertEqual(headers["Content-Type"], "application/octet-stream")
        self.assertEqual(int(headers["snapshot_size"]), len(snap))
        zxid = int(headers["last_zxid"], 16)
        self.assertEqual(snap[:4], b"ZKSN")
        # The rate limit (2,000,000 read as microseconds, as ZooKeeper 3.9.5
        # reads it for this command: 2 s).
        status, _, body = admin(fk.admin_port, "snap", ROOT)
        self.assertEqual(status, 429, body)

        # ZooKeeper 3.8 started on that file alone serves the same tree.
        zk = harness.Server("zookeeper")
        self.addCleanup(zk.close)
        os.makedirs(os.path.join(zk.dir, "data", "version-2"))
        with open(os.path.join(zk.dir, "data", "version-2", "snapshot.%x" % zxid), "wb") as f:
            f.write(snap)
        zk.start()
        z = client(zk.hosts)
        self.addCleanup(z.stop)
        back = harness.znodes(z)
        same_tree(self, back, served, "ZooKeeper 3.8 on a ferrokeeper backup")
        self.assertEqual(back["/app/eph"][1]["ephemeralOwner"], keep.client_id[0])
        # ZooKeeper goes on above the snapshot's zxid.
        z.create("/after", b"")
        self.assertGreater(z.exists("/after").czxid, zxid)

    def test_switched_off_and_headers_only(self):
        fk = with_admin(harness.Server(), **{"admin.snapshot.enabled": "false", "admin.restore.enabled": "false"})
        self.addCleanup(fk.close)
        fk.start()
        status, _, body = admin(fk.admin_port, "snapshot", "ip")
        self.assertEqual(status, 503, body)
        status, _, body = admin(fk.admin_port, "restore", "ip", body=b"ZKSN")
        self.assertEqual(status, 503, body)
        fk.close()
        fk = with_admin(harness.Server(), **{"admin.rateLimiterIntervalInMS": "0"})
        self.addCleanup(fk.close)
        fk.start()
        status, headers, body = admin(fk.admin_port, "snapshot", "ip", query="?streaming=false")
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body), {"command": "snapshot", "error": None})
        self.assertGreater(int(headers["snapshot_size"]), 0)


@unittest.skipUnless(harness.HAVE_ZK39, "ZooKeeper 3.9.5 not fetched (scripts/get_zookeeper_3.9.sh)")
class ZooKeeper39Test(unittest.TestCase):
    """Against ZooKeeper 3.9.5's own snapshot and restore commands: each
    side's backup restored into the other."""

    def zookeeper(self):
        zk = with_admin(harness.Server("zookeeper", zookeeper="3.9"))
        self.addCleanup(zk.close)
        zk.start()
        return zk

    def test_a_zookeeper_3_9_backup_restores_into_ferrokeeper(self):
        zk = self.zookeeper()
        z = client(zk.hosts)
        self.addCleanup(z.stop)
        load(z)
        want = harness.znodes(z)
        status, headers, snap = admin(zk.admin_port, "snapshot", ROOT, query="?streaming=true")
        self.assertEqual(status, 200, snap[:200])
        self.assertEqual(int(headers["snapshot_size"]), len(snap))

        fk = with_admin(harness.Server())
        self.addCleanup(fk.close)
        fk.start()
        status, _, body = admin(fk.admin_port, "restore", "ip", body=snap)
        self.assertEqual(status, 200, body)
        c = client(fk.hosts)
        self.addCleanup(c.stop)
        harness.wait_until(lambda: c.exists("/app") is not None, what="the restored tree")
        same_tree(self, harness.znodes(c), want, "ferrokeeper restored from ZooKeeper 3.9")

    def test_a_ferrokeeper_backup_restores_into_zookeeper_3_9(self):
        fk, c, want = loaded_ferrokeeper(self)
        status, _, snap = admin(fk.admin_port, "snapshot", ROOT)
        self.assertEqual(status, 200, snap[:200])

        zk = self.zookeeper()
        status, _, body = admin(zk.admin_port, "restore", "ip", body=snap)
        self.assertEqual(status, 200, body)
        self.assertEqual(json.loads(body)["error"], None)
        z = client(zk.hosts)
        self.addCleanup(z.stop)
        same_tree(self, harness.znodes(z), want, "ZooKeeper 3.9 restored from ferrokeeper")


def cli(server, *words):
    """One command: (exit code, its output)."""
    out = subprocess.run([harness.BINARY, "cli", "-server", server.hosts] + list(words),
                         capture_output=True, text=True, timeout=200)
    return out.returncode, out.stdout + out.stderr


def cli_as(server, user_password, line):
    """`line` after `addauth digest user_password`, in one session; its output."""
    out = subprocess.run([harness.BINARY, "cli", "-server", server.hosts], capture_output=True, text=True,
                         timeout=200, input="addauth digest %s\n%s\n" % (user_password, line))
    return out.stdout + out.stderr


class X509Test(unittest.TestCase):
    """`Authorization: x509` over the AdminServer's HTTPS with a client
    certificate (admin.needClientAuth): the certificate's subject needs ALL
    on /; the same steps against ZooKeeper 3.9.5 when it is here."""

    def setUp(self):
        import tempfile
        import test_tls
        self.d = tempfile.mkdtemp(prefix="admin-x509-")
        self.addCleanup(shutil.rmtree, self.d, True)
        test_tls.make_certs(self.d)
        self.password = test_tls.PASSWORD

    def snapshot_as(self, port, cert):
        import ssl
        ctx = ssl.create_default_context(cafile=os.path.join(self.d, "ca.pem"))
        if cert:
            ctx.load_cert_chain(os.path.join(self.d, cert + ".pem"), os.path.join(self.d, cert + ".key"))
        req = urllib.request.Request("https://localhost:%d/commands/snapshot?streaming=false" % port)
        req.add_header("Authorization", "x509")
        try:
            with urllib.request.urlopen(req, timeout=20, context=ctx) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except (urllib.error.URLError, OSError):
            return "refused"

    def observe(self, kind, **more):
        stores = {}
        for which in ("ssl.quorum.", "ssl."):
            stores.update({which + "keyStore.location": os.path.join(self.d, "server.p12"),
                           which + "keyStore.password": self.password,
                           which + "trustStore.location": os.path.join(self.d, "trust.p12"),
                           which + "trustStore.password": self.password})
        s = with_admin(harness.Server(kind, extra=dict(stores, **{
            "admin.forceHttps": "true", "admin.needClientAuth": "true",
            "authProvider.x509": "org.apache.zookeeper.server.auth.X509AuthenticationProvider"}), **more),
            **{"admin.rateLimiterIntervalInMS": "0"})
        self.addCleanup(s.close)
        s.start()
        c = KazooClient(hosts=s.hosts, timeout=30)
        c.start()
        self.addCleanup(c.stop)
        c.set_acls("/", [make_acl("x509", "CN=admin,O=example", all=True), make_acl("world", "anyone", read=True)])
        return [self.snapshot_as(s.admin_port, cert) for cert in ("admin", "app1", None)]

    def test_the_certificates_subject_is_the_identity(self):
        got = self.observe("ferrokeeper")
        self.assertEqual(got, [200, 403, "refused"])
        if harness.HAVE_ZK39:
            self.assertEqual(self.observe("zookeeper", zookeeper="3.9"), got, "as ZooKeeper 3.9.5")


class CliTest(unittest.TestCase):
    def test_backup_and_restore_from_the_shell(self):
        fk, c, want = loaded_ferrokeeper(self, **{"admin.rateLimiterIntervalInMS": "0"})
        url = "http://127.0.0.1:%d/commands" % fk.admin_port
        backup = os.path.join(fk.dir, "backup.snap")
        # / needs root: without its identity the AdminServer says no.
        rc, out = cli(fk, "backup", "-a", url, backup)
        self.assertEqual(rc, 1, out)
        self.assertIn("answered 403: Not authorized", out)
        out = cli_as(fk, "root:rootpw", "backup -a %s %s" % (url, backup))
        self.assertIn("written to " + backup, out)
        c.delete("/app", recursive=True)
        c.create("/later", b"")
        out = cli_as(fk, "root:rootpw", "restore -a %s %s" % (url, backup))
        self.assertIn("restored " + backup, out)
        harness.wait_until(lambda: c.connected and c.exists("/later") is None, what="the backup restored")
        same_tree(self, harness.znodes(c), want, "restored from the shell's backup")

    def test_a_subtree_moves_from_zookeeper_to_ferrokeeper_as_json(self):
        zk = harness.Server("zookeeper")
        self.addCleanup(zk.close)
        zk.start()
        z = client(zk.hosts)
        self.addCleanup(z.stop)
        load(z)
        z.create("/app/eph", b"", ephemeral=True)
        exported = os.path.join(zk.dir, "app.json")
        # /app/digest is readable by user:pw only.
        out = cli_as(zk, "user:pw", "export /app " + exported)
        self.assertIn("(1 ephemerals left out)", out)

        fk = harness.Server()
        self.addCleanup(fk.close)
        fk.start()
        rc, out = cli(fk, "import", exported, "/moved")
        self.assertEqual(rc, 0, out)
        f = client(fk.hosts)
        self.addCleanup(f.stop)
        src, dst = harness.znodes(z, "/app"), harness.znodes(f, "/moved")
        src.pop("/app/eph")
        self.assertEqual(sorted("/moved" + p[4:] for p in src), sorted(dst))
        for p, (data, _, acl) in src.items():
            self.assertEqual(dst["/moved" + p[4:]][0], data, p)
            self.assertEqual(dst["/moved" + p[4:]][2], acl, p)
        # Again: the nodes are there now, and the import says where it stopped.
        rc, out = cli(fk, "import", exported, "/moved")
        self.assertEqual(rc, 1, out)
        self.assertIn("import stopped at /moved/", out)
        self.assertIn("Node already exists", out)
        # Not an export: nothing created.
        with open(exported, "w") as fh:
            fh.write('{"root": "/x", "nodes": []}')
        rc, out = cli(fk, "import", exported, "/other")
        self.assertEqual(rc, 1, out)
        self.assertIn("not a ferrokeeper export", out)
        self.assertIsNone(f.exists("/other"))


class RestoreTest(unittest.TestCase):
    def zookeeper_snapshot(self):
        """A snapshot file a real ZooKeeper 3.8 wrote with everything in it
        (it writes one as it starts), and the tree it served."""
        zk = harness.Server("zookeeper", extra={"forceSync": "yes"})
        self.addCleanup(zk.close)
        zk.start()
        c = client(zk.hosts)
        load(c)
        keep = KazooClient(hosts=zk.hosts, timeout=30)
        keep.start()
        keep.create("/app/eph", b"zk's", ephemeral=True)
        session = keep.client_id
        want = harness.znodes(c)
        c.stop()
        zk.stop()
        keep.stop()  # its closeSession never reaches the stopped server
        zk.start()
        zk.stop()
        snaps = sorted((int(n.split(".")[1], 16), n) for n in os.listdir(os.path.join(zk.dir, "data", "version-2"))
                       if n.startswith("snapshot."))
        with open(os.path.join(zk.dir, "data", "version-2", snaps[-1][1]), "rb") as f:
            return f.read(), want, session

    def test_a_zookeeper_snapshot_restored_through_a_follower_reaches_every_server(self):
        snap, want, session = self.zookeeper_snapshot()
        ens = harness.Ensemble(3)
        self.addCleanup(ens.close)
        for s in ens.servers:
            with_admin(s, **{"admin.rateLimiterIntervalInMS": "0"})
        ens.start()
        follower = ens.serving_follower()
        c = client(ens.hosts)
        self.addCleanup(c.stop)
        c.create("/before", b"replaced by the restore")
        c.set_acls("/", [make_digest_acl("root", "rootpw", all=True), make_acl("world", "anyone", read=True)])

        # Refused, and nothing changes: no identity, one without ALL on /,
        # a body that is not a snapshot, a cut snapshot.
        status, _, body = admin(follower.admin_port, "restore", None, body=snap)
        self.assertEqual(status, 401, body)
        status, _, body = admin(follower.admin_port, "restore", "digest user:pw", body=snap)
        self.assertEqual(status, 403, body)
        for bad in (b"not a snapshot", snap[:len(snap) // 2]):
            status, _, body = admin(follower.admin_port, "restore", ROOT, body=bad)
            self.assertEqual(status, 500, body)
            self.assertIn("not a ZooKeeper snapshot", json.loads(body)["error"])
        status, _, body = admin(follower.admin_port, "restore", ROOT, body=b"")
        self.assertEqual(status, 400, body)
        self.assertEqual(c.get("/before")[0], b"replaced by the restore")

        status, _, body = admin(follower.admin_port, "rest", ROOT, body=snap)
        self.assertEqual(status, 200, body)
        answer = json.loads(body)
        self.assertEqual(answer["error"], None)
        self.assertGreater(answer["last_zxid"], 0)

        clients = {}

        def client_of(s):
            if s.port not in clients:
                clients[s.port] = client(s.hosts)
                self.addCleanup(clients[s.port].stop)
            return clients[s.port]

        for s in ens.servers:
            # Each server applies the entry; the follower answered once it had.
            harness.wait_until(lambda: client_of(s).exists("/before") is None, timeout=30,
                               what="the restore applied on port %d" % s.port)
            same_tree(self, harness.znodes(client_of(s)), want, "server on port %d" % s.port)
        # The session ZooKeeper had open is open here (its ephemeral would
        # be gone otherwise), and its client can go on with it: ZooKeeper's
        # password for it is accepted.
        self.assertEqual(want["/app/eph"][1]["ephemeralOwner"], session[0])
        again = KazooClient(hosts=ens.hosts, timeout=30, client_id=session)
        again.start()
        self.addCleanup(again.stop)
        self.assertEqual(again.client_id, session)
        self.assertEqual(again.get("/app/eph")[0], b"zk's")
        # The restore is durable: a restarted server serves it.
        ens.server(1).stop()
        ens.server(1).start()
        clients.pop(ens.server(1).port, None)
        same_tree(self, harness.znodes(client_of(ens.server(1))), want, "server 1 restarted")
        # Writes go on.
        c2 = client_of(ens.server(2))
        c2.create("/after", b"")
        harness.wait_until(lambda: client_of(ens.server(1)).exists("/after") is not None, what="a later write")

    def test_one_restore_per_interval(self):
        fk = with_admin(harness.Server())
        self.addCleanup(fk.close)
        fk.start()
        # The default interval (5 minutes): the first call, even one with
        # a bad body, uses it, as in ZooKeeper.
        status, _, body = admin(fk.admin_port, "restore", "ip", body=b"garbage")
        self.assertEqual(status, 500, body)
        status, _, body = admin(fk.admin_port, "restore", "ip", body=b"garbage")
        self.assertEqual(status, 429, body)


if __name__ == "__main__":
    unittest.main()
