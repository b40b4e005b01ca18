"""ZooKeeper's metric names (issue 20, item 4): after the same small
workload, every `mntr` key ZooKeeper 3.8 prints — on a standalone server,
an ensemble's leader and a follower — is in ferrokeeper's `mntr` of the same
kind of server, and every ZooKeeper metric family (the `mntr` names without
`zk_`, a summary's avg/min/max/cnt/sum and percentiles being one family) is
on ferrokeeper's Prometheus endpoint with a TYPE line. ZooKeeper's
Prometheus provider is not in Debian's package, so its families are taken
from its `mntr`, as the provider registers the same metrics under the same
names. Keys named after a path's namespace (`*_per_namespace`) or a
learner's id (`*_learner_handler_qp_*`) are left out: ferrokeeper has
neither."""
import re
import unittest
import urllib.request

from kazoo.client import KazooClient

import harness

DYNAMIC = re.compile(r"_per_namespace$|learner_handler_qp")
SUMMARY = re.compile(r"^zk_(avg|min|max|cnt|sum|p50|p95|p99|p999)_(.+)$")


def workload(hosts):
    c = KazooClient(hosts=hosts)
    c.start()
    c.create("/a", b"x")
    c.get("/a")
    c.set("/a", b"y")
    c.delete("/a")
    c.stop()
    c.close()


def keys(mntr):
    return {l.split("\t", 1)[0] for l in mntr.splitlines() if "\t" in l and not DYNAMIC.search(l.split("\t")[0])}


def families(mntr_keys):
    out = set()
    for k in mntr_keys:
        m = SUMMARY.match(k)
        if m and ("zk_cnt_" + m.group(2)) in mntr_keys:
            out.add(m.group(2))
        elif k not in ("zk_version", "zk_server_state", "zk_peer_state"):
            out.add(k[3:])
    return out


def standalone(kind, extra=None):
    s = harness.Server(kind, extra=extra).start()
    try:
        workload(s.hosts)
        return harness.four_letter(s.port, "mntr")
    finally:
        s.close()


def ensemble(kind):
    ens = harness.Ensemble(3, kind=kind)
    try:
        ens.start()
        leader = ens.leader()
        harness.wait_until(lambda: all(ens.mode(i) in ("leader", "follower") for i in (1, 2, 3)), timeout=60,
                           what="every server serving (%s)" % kind)
        follower = next(i for i in (1, 2, 3) if i != leader)
        workload(ens.server(follower).hosts)
        return (harness.four_letter(ens.server(leader).port, "mntr"),
                harness.four_letter(ens.server(follower).port, "mntr"))
    finally:
        ens.close()


class MetricNamesTest(unittest.TestCase):
    maxDiff = None

    def test_every_zookeeper_mntr_key_is_there(self):
        zk = [standalone("zookeeper")] + list(ensemble("zookeeper"))
        fk = [standalone("ferrokeeper")] + list(ensemble("ferrokeeper"))
        for what, z, f in zip(("standalone", "leader", "follower"), zk, fk):
            self.assertGreater(len(keys(z)), 450, what)
            self.assertEqual(sorted(keys(z) - keys(f)), [], "ZooKeeper's %s keys missing" % what)
            z_state = dict(l.split("\t", 1) for l in z.splitlines() if "\t" in l)
            f_state = dict(l.split("\t", 1) for l in f.splitlines() if "\t" in l)
            for k in ("zk_server_state", "zk_peer_state", "zk_quorum_size", "zk_znode_count", "zk_ephemerals_count"):
                self.assertEqual(f_state.get(k), z_state.get(k), "%s %s" % (what, k))
            # The same numbers where ferrokeeper counts the same things.
            self.assertEqual(int(f_state["zk_cnt_updatelatency"]) > 0, int(z_state["zk_cnt_updatelatency"]) > 0)
        # Prometheus: every family, with its TYPE.
        port = harness.free_port()
        s = harness.Server("ferrokeeper", extra={"metricsProvider.httpPort": str(port),
                                                 "metricsProvider.httpHost": "127.0.0.1"}).start()
        try:
            workload(s.hosts)
            body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10).read().decode()
        finally:
            s.close()
        typed = set(re.findall(r"^# TYPE (\S+) (?:gauge|counter|summary|histogram)$", body, re.M))
        want = families(keys(zk[0]))
        self.assertGreater(len(want), 130)
        self.assertEqual(sorted(want - typed), [], "ZooKeeper's families missing")
        for name in ("readlatency", "updatelatency", "fsynctime"):
            self.assertRegex(body, r"(?m)^# TYPE %s summary$" % name)
        self.assertRegex(body, r"(?m)^updatelatency_count [1-9]")
        self.assertRegex(body, r"(?m)^# TYPE packets_received (gauge|counter)$")
        self.assertEqual(len(re.findall(r"(?m)^# TYPE (\S+) ", body)), len(typed), "a family twice")


if __name__ == "__main__":
    unittest.main()
