"""The latency budget (issue 23): `ferrokeeper bench --budget` resets
each server's counters, runs, and prints per server where the time of
the run's requests went, stage by stage, from `mntr`; Prometheus has the
same stages as one histogram family. One write at a time through the
leader, then through a follower (a forwarded write): each stage is
counted where it happens, and only there. ZooKeeper has no stages: the
bench says so. (Durations are printed, never asserted.)"""
import json
import subprocess
import unittest
import urllib.request

import harness

WRITE_PATH = ["to_core", "to_disk", "disk", "from_disk", "to_commit", "commit_to_answer", "to_socket", "write"]


def bench(hosts, *args):
    r = subprocess.run([harness.BINARY, "bench", "--server", hosts, "--output", "json", "--budget",
                        "-d", "1", "-c", "1", "-i", "1", "--keys", "5"] + list(args),
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise AssertionError("bench failed: %s" % r.stderr)
    return json.loads(r.stdout)


class BudgetTest(unittest.TestCase):
    def setUp(self):
        self.ens = harness.Ensemble(3)
        self.metrics = []
        for s in self.ens.servers:
            p = harness.free_port()
            self.metrics.append(p)
            s.lines["metricsProvider.httpPort"] = str(p)
            s.lines["metricsProvider.httpHost"] = "127.0.0.1"
            s.write_cfg()
        self.addCleanup(self.ens.close)
        self.ens.start()
        self.ens.serving_follower()
        self.leader = self.ens.leader()
        harness.wait_until(lambda: self.ens.mntr(self.leader).get("zk_synced_followers") == "2",
                           what="two followers")

    def run_through(self, first, workload="set"):
        """The bench's one connection goes to the first server listed;
        every server's budget is read."""
        order = [first] + [i for i in range(1, 4) if i != first]
        r = bench(",".join(self.ens.server(i).hosts for i in order), "-w", workload)
        self.assertEqual(r["errors"], {})
        self.assertGreater(r["ops"], 0)
        by_port = {b["server"]: b for b in r["budget"]}
        return r, {i: by_port[self.ens.server(i).hosts] for i in order}

    def check_percentiles(self, budgets):
        for b in budgets.values():
            for stage, v in b["stages"].items():
                self.assertGreater(v["count"], 0, stage)
                self.assertTrue(0 <= v["p50_us"] <= v["p99_us"] <= v["p99.9_us"], (stage, v))

    def test_writes_through_the_leader(self):
        r, b = self.run_through(self.leader)
        print("\nwrites through the leader: %d ops" % r["ops"])
        for i, x in b.items():
            print(i, x["state"], {k: (v["count"], v["p50_us"], v["p99_us"]) for k, v in x["stages"].items()})
        self.check_percentiles(b)
        lead = b[self.leader]
        self.assertEqual(lead["state"], "leader")
        for stage in WRITE_PATH:
            self.assertIn(stage, lead["stages"], stage)
        # Every write the bench counted was answered by the leader, and
        # the srst before the run left out the bench's set-up writes.
        writes = lead["stages"]["write"]["count"]
        self.assertGreaterEqual(writes, r["ops"])
        self.assertLessEqual(writes, r["ops"] + 1)
        self.assertGreaterEqual(lead["stages"]["to_commit"]["count"], 1)
        self.assertNotIn("to_ack", lead["stages"], "the leader acknowledges to no one")
        for i, x in b.items():
            if i == self.leader:
                continue
            self.assertEqual(x["state"], "follower")
            self.assertIn("to_ack", x["stages"])
            self.assertIn("disk", x["stages"])
            self.assertNotIn("write", x["stages"], "no client wrote through this follower")
        # The same stages in Prometheus, since start.
        body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.metrics[self.leader - 1],
                                      timeout=10).read().decode()
        from prometheus_client.parser import text_string_to_metric_families
        fam = {f.name: f for f in text_string_to_metric_families(body)}["ferrokeeper_stage_seconds"]
        self.assertEqual(fam.type, "histogram")
        counts = {s.labels["stage"]: s.value for s in fam.samples if s.name.endswith("_count")}
        for stage in WRITE_PATH:
            self.assertGreaterEqual(counts[stage], lead["stages"][stage]["count"], stage)

    def test_writes_forwarded_by_a_follower_and_reads(self):
        follower = next(i for i in range(1, 4) if i != self.leader)
        r, b = self.run_through(follower)
        self.check_percentiles(b)
        f = b[follower]
        for stage in ("to_core", "to_ack", "to_commit", "commit_to_answer", "to_socket", "write"):
            self.assertIn(stage, f["stages"], stage)
        self.assertNotIn("write", b[self.leader]["stages"], "the leader answered no client")
        self.assertIn("to_commit", b[self.leader]["stages"])
        r, b = self.run_through(follower, "get")
        reads = b[follower]["stages"]["read"]["count"]
        self.assertGreaterEqual(reads, r["ops"])
        # The only writes: the bench's session, opened and closed.
        self.assertLessEqual(b[follower]["stages"].get("write", {"count": 0})["count"], 1)

    def test_zookeeper_has_no_stages(self):
        z = harness.Server("zookeeper")
        self.addCleanup(z.close)
        z.start()
        r = subprocess.run([harness.BINARY, "bench", "--server", z.hosts, "--budget", "--no-progress",
                            "-d", "0.3", "-c", "1", "-w", "get", "--keys", "5"],
                           capture_output=True, text=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("latency budget", r.stdout)
        self.assertIn("%s standalone\n    no stage timings" % z.hosts, r.stdout)


if __name__ == "__main__":
    unittest.main()
