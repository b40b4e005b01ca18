"""The AdminServer's JSON commands against ZooKeeper 3.8's (its Jetty
AdminServer, with Debian's jars), and the Prometheus metrics endpoint
parsed by the Prometheus project's own Python parser."""
import http.client
import json
import os
import re
import socket
import unittest
import urllib.error
import urllib.request

from kazoo.client import KazooClient

import harness

JARS = ["jetty9-server.jar", "jetty9-servlet.jar", "jetty9-util.jar", "jetty9-http.jar", "jetty9-io.jar",
        "jetty9-security.jar", "servlet-api.jar", "jackson-core.jar", "jackson-databind.jar",
        "jackson-annotations.jar", "jetty9-util-ajax.jar"]
HAVE_JETTY = all(os.path.exists("/usr/share/java/" + j) for j in JARS)

# Every command's answer has these fields, beside "command" and "error".
FIELDS = {
    "configuration": {"client_port", "data_dir", "data_log_dir", "tick_time", "max_client_cnxns",
                      "min_session_timeout", "max_session_timeout", "server_id", "client_port_listen_backlog"},
    "connections": {"connections", "secure_connections"},
    "connection_stat_reset": set(),
    "dirs": {"datadir_size", "logdir_size"},
    "dump": {"expiry_time_to_session_ids", "session_id_to_ephemeral_paths"},
    "get_trace_mask": {"tracemask"},
    "initial_configuration": {"initial_configuration"},
    "is_read_only": {"read_only"},
    "last_snapshot": {"zxid", "timestamp"},
    "observer_connection_stat_reset": set(),
    "ruok": set(),
    "stat_reset": set(),
    "voting_view": {"current_config"},
    "watches": {"session_id_to_watched_paths"},
    "watches_by_path": {"path_to_session_ids"},
    "watch_summary": {"num_connections", "num_paths", "num_total_watches"},
    "zabstate": {"voting", "zabstate"},
}
MONITOR_KEYS = {"server_state", "znode_count", "watch_count", "ephemerals_count", "approximate_data_size",
                "outstanding_requests", "avg_latency", "max_latency", "min_latency", "num_alive_connections",
                "packets_received", "packets_sent", "global_sessions", "open_file_descriptor_count", "uptime"}


def get(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=10) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def start_with_jetty(s):
    """Starts `s`; a ZooKeeper with Debian's Jetty jars, for its AdminServer."""
    saved = harness.ZK_CLASSPATH
    if s.kind == "zookeeper":
        harness.ZK_CLASSPATH += ":" + ":".join("/usr/share/java/" + j for j in JARS)
    try:
        s.start()
    finally:
        harness.ZK_CLASSPATH = saved


def scenario(kind):
    admin_port = harness.free_port()
    s = harness.Server(kind=kind, extra={"admin.enableServer": "true", "admin.serverPort": str(admin_port)})
    start_with_jetty(s)
    c1, c2 = KazooClient(hosts=s.hosts), KazooClient(hosts=s.hosts)
    try:
        c1.start(15)
        c2.start(15)
        c1.create("/w/x", b"abc", makepath=True)
        c1.create("/e", b"12345", ephemeral=True)
        c1.get("/w/x", watch=lambda e: None)
        c1.exists("/nope", watch=lambda e: None)
        c2.get("/w/x", watch=lambda e: None)
        harness.wait_until(lambda: get(admin_port, "/commands/ruok")[0] == 200, what="the AdminServer")
        out = {"index": get(admin_port, "/commands")[2]}
        for cmd in list(FIELDS) + ["monitor", "server_stats", "stats", "environment", "leader", "mntr", "nonsense"]:
            status, ctype, body = get(admin_port, "/commands/" + cmd)
            out[cmd] = (status, ctype, json.loads(body) if body else None)
        return out, (c1.client_id[0], c2.client_id[0])
    finally:
        c1.stop()
        c2.stop()
        s.close()


class AdminServerTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.fk, cls.fk_sids = scenario("ferrokeeper")
        cls.zk, cls.zk_sids = scenario("zookeeper") if HAVE_JETTY else (None, None)

    def test_every_command_answers_json_with_zookeepers_fields(self):
        for cmd, fields in FIELDS.items():
            status, ctype, body = self.fk[cmd]
            self.assertEqual((status, ctype), (200, "application/json"), cmd)
            self.assertEqual(body["command"], cmd)
            self.assertIsNone(body["error"], cmd)
            self.assertEqual(set(body) - {"command", "error"}, fields, cmd)
        keys = set(self.fk["monitor"][2])
        self.assertTrue(MONITOR_KEYS <= keys, MONITOR_KEYS - keys)
        self.assertEqual(self.fk["mntr"][2]["command"], "monitor", "ZooKeeper's aliases work")
        self.assertEqual(self.fk["nonsense"][0], 404)
        for cmd in ("configuration", "dump", "monitor", "server_stats", "watches", "ruok", "zabstate"):
            self.assertIn('<a href="/commands/%s">%s</a>' % (cmd, cmd), self.fk["index"])

    @unittest.skipUnless(HAVE_JETTY, "Debian's Jetty jars are missing: no ZooKeeper AdminServer to compare with")
    def test_same_fields_and_values_as_zookeeper(self):
        for cmd in FIELDS:
            self.assertEqual(set(self.fk[cmd][2]), set(self.zk[cmd][2]), cmd)
        # Connection entries carry the same fields.
        fk_conn = self.fk["connections"][2]["connections"]
        zk_conn = self.zk["connections"][2]["connections"]
        self.assertEqual(len(fk_conn), len(zk_conn))
        self.assertEqual(set(fk_conn[0]), set(zk_conn[0]))
        # Same watches, ephemerals and counts, with session ids in order.
        def by_rank(d, sids):
            return {("S%d" % sids.index(int(k))) if k.isdigit() and int(k) in sids else k: v for k, v in d.items()}
        for cmd, key in (("watches", "session_id_to_watched_paths"), ("dump", "session_id_to_ephemeral_paths")):
            f = {k: sorted(v) for k, v in by_rank(self.fk[cmd][2][key], list(self.fk_sids)).items()}
            z = {k: sorted(v) for k, v in by_rank(self.zk[cmd][2][key], list(self.zk_sids)).items()}
            self.assertEqual(f, z, cmd)
        f = {p: sorted(list(self.fk_sids).index(s) for s in ss) for p, ss in self.fk["watches_by_path"][2]["path_to_session_ids"].items()}
        z = {p: sorted(list(self.zk_sids).index(s) for s in ss) for p, ss in self.zk["watches_by_path"][2]["path_to_session_ids"].items()}
        self.assertEqual(f, z)
        for cmd in ("watch_summary", "is_read_only", "get_trace_mask", "zabstate"):
            self.assertEqual(self.fk[cmd][2], self.zk[cmd][2], cmd)
        for key in ("znode_count", "watch_count", "ephemerals_count", "approximate_data_size", "global_sessions",
                    "server_state", "outstanding_requests"):
            self.assertEqual(self.fk["monitor"][2][key], self.zk["monitor"][2][key], key)
        self.assertEqual(self.fk["leader"][2]["error"], self.zk["leader"][2]["error"])
        self.assertEqual(self.fk["server_stats"][2]["node_count"], self.zk["server_stats"][2]["node_count"])

    def test_disabled_admin_server_does_not_listen(self):
        port = harness.free_port()
        s = harness.Server(extra={"admin.enableServer": "false", "admin.serverPort": str(port)})
        self.addCleanup(s.close)
        s.start()
        with self.assertRaises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()


@unittest.skipUnless(HAVE_JETTY, "Debian's Jetty jars are not installed")
class AdminHttpsTest(unittest.TestCase):
    """admin.forceHttps / admin.portUnification, with the ssl.quorum.* key
    store, as ZooKeeper 3.8's Jetty AdminServer: the same requests get the
    same outcome from both."""

    def setUp(self):
        import shutil
        import tempfile
        import test_tls
        self.d = tempfile.mkdtemp(prefix="admin-https-")
        self.addCleanup(shutil.rmtree, self.d, True)
        test_tls.make_certs(self.d)
        self.password = test_tls.PASSWORD

    def outcome(self, port, scheme):
        import ssl
        ctx = ssl.create_default_context(cafile=os.path.join(self.d, "ca.pem"))
        try:
            with urllib.request.urlopen("%s://127.0.0.1:%d/commands/ruok" % (scheme, port), timeout=10,
                                        context=ctx if scheme == "https" else None) as r:
                return r.status, json.loads(r.read().decode()).get("command")
        except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
            return "refused (%s)" % type(e).__name__

    def observe(self, kind, mode):
        admin_port = harness.free_port()
        s = harness.Server(kind=kind, extra={
            "admin.enableServer": "true", "admin.serverPort": str(admin_port), mode: "true",
            "ssl.quorum.keyStore.location": os.path.join(self.d, "server.p12"),
            "ssl.quorum.keyStore.password": self.password,
            "ssl.quorum.trustStore.location": os.path.join(self.d, "trust.p12"),
            "ssl.quorum.trustStore.password": self.password,
        })
        self.addCleanup(s.close)
        start_with_jetty(s)
        harness.wait_until(lambda: self.outcome(admin_port, "https")[0] == 200, what="the AdminServer over HTTPS")
        plain = self.outcome(admin_port, "http")
        # A plain request to an HTTPS-only port: refused, however each says it.
        plain = plain if plain[0] == 200 else "refused"
        return {"https": self.outcome(admin_port, "https"), "http": plain}

    def test_https_as_zookeeper(self):
        for mode, expected in (("admin.forceHttps", {"https": (200, "ruok"), "http": "refused"}),
                               ("admin.portUnification", {"https": (200, "ruok"), "http": (200, "ruok")})):
            got = {k: self.observe(k, mode) for k in ("zookeeper", "ferrokeeper")}
            self.assertEqual(got["ferrokeeper"], got["zookeeper"], mode)
            self.assertEqual(got["ferrokeeper"], expected, mode)


class MetricsTest(unittest.TestCase):
    def test_prometheus_text_parses_and_counts(self):
        from prometheus_client.parser import text_string_to_metric_families
        ens = harness.Ensemble(3, extra={"metricsProvider.className":
                                         "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"})
        ports = []
        for s in ens.servers:
            p = harness.free_port()
            ports.append(p)
            s.lines["metricsProvider.httpPort"] = str(p)
            s.write_cfg()
        self.addCleanup(ens.close)
        ens.start()
        ens.serving_follower()
        leader = ens.leader()
        # Quorum comes with the first two servers: wait for the third to sync.
        harness.wait_until(lambda: ens.mntr(leader).get("zk_synced_followers") == "2", what="two followers")
        def inline_writes(i):
            text = get(ports[i - 1], "/metrics")[2]
            fams = {f.name: f for f in text_string_to_metric_families(text)}
            return fams["txn_log_batches_inline"].samples[0].value
        inline_before = {i: inline_writes(i) for i in (1, 2, 3)}
        c = KazooClient(hosts=ens.server(leader).hosts)
        c.start(15)
        try:
            for i in range(20):
                c.create("/m%d" % i, b"x")
            c.get("/m1")
        finally:
            c.stop()
        status, ctype, text = get(ports[leader - 1], "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(ctype.startswith("text/plain; version=0.0.4"))
        fams = {f.name: f for f in text_string_to_metric_families(text)}
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in fams.values() for s in f.samples}
        self.assertEqual(fams["request_latency_seconds"].type, "histogram")
        self.assertEqual(samples[("request_latency_seconds_count", (("op", "create"),))], 20)
        self.assertEqual(samples[("request_latency_seconds_count", (("op", "getData"),))], 1)
        self.assertGreater(samples[("fsync_seconds_count", ())], 0)
        self.assertEqual(samples[("server_state", (("state", "leader"),))], 1)
        self.assertEqual(samples[("learners", ())], 2)
        self.assertGreaterEqual(samples[("leader_elections_total", ())], 1)
        mntr = ens.mntr(leader)
        self.assertEqual(samples[("znode_count", ())], int(mntr["zk_znode_count"]))
        for name in ("outstanding_requests", "global_sessions", "watch_count", "approximate_data_size",
                     "apply_lag_entries", "snapshot_seconds", "max_follower_lag_entries"):
            self.assertIn(name, fams)
        # A leader's log batches all go through its log thread: it never
        # waits on its disk in the core. With one write at a time, the
        # followers' cores wrote some of theirs themselves (log_writer).
        self.assertEqual(inline_writes(leader), inline_before[leader])
        followers = [i for i in (1, 2, 3) if i != leader]
        self.assertGreater(sum(inline_writes(i) - inline_before[i] for i in followers), 0)
        # A follower serves its own numbers.
        text = get(ports[followers[0] - 1], "/metrics")[2]
        self.assertIn('server_state{state="follower"} 1', text)

    def test_off_unless_configured(self):
        s = harness.Server()
        self.addCleanup(s.close)
        s.start()
        self.assertNotIn("Prometheus metrics", s.log())
        self.assertNotIn("AdminServer listening", s.log(), "the harness turns the AdminServer off")
        s2 = harness.Server(extra={"admin.enableServer": "true", "admin.serverPort": str(harness.free_port())})
        self.addCleanup(s2.close)
        s2.start()
        self.assertIn("AdminServer listening", s2.log())
        self.assertNotIn("Prometheus metrics", s2.log())

class BackPressureTest(unittest.TestCase):
    def test_global_outstanding_limit_throttles_without_losing_requests(self):
        # At the limit connections stop reading; every pipelined request
        # still completes, in order, with the right answer.
        s = harness.Server(extra={"globalOutstandingLimit": "2"})
        self.addCleanup(s.close)
        s.start()
        clients = [KazooClient(hosts=s.hosts) for _ in range(3)]
        for c in clients:
            c.start(15)
        try:
            pending = [(c, i, c.create_async("/bp-%d-%d" % (k, i), b"x"))
                       for k, c in enumerate(clients) for i in range(400)]
            names = [p.get(timeout=60) for _, _, p in pending]
            self.assertEqual(len(set(names)), 1200)
            self.assertEqual(len([n for n in clients[0].get_children("/") if n.startswith("bp-")]), 1200)
            self.assertEqual(harness.four_letter(s.port, "mntr").count("zk_outstanding_requests\t0"), 1)
        finally:
            for c in clients:
                c.stop()


if __name__ == "__main__":
    unittest.main()
