"""`ferrokeeper bench` drives both servers: every workload runs without
errors against ferrokeeper and ZooKeeper 3.8, reports sane numbers, and
leaves nothing behind. (Numbers are reported, never asserted.)"""
import json
import subprocess
import unittest

from kazoo.client import KazooClient

import harness

WORKLOADS = [["-w", "create"], ["-w", "set"], ["-w", "get"], ["-w", "exists"], ["-w", "children", "--keys", "50"],
             ["-w", "mixed:90"], ["-w", "multi"], ["-w", "ephemeral", "-c", "2"], ["-w", "watch", "-c", "5"], ["-w", "lock", "-c", "2"],
             ["-w", "get", "--rate", "200"], ["-w", "set", "--value-size", "500000", "-c", "2", "-i", "1", "--keys", "2"]]


def bench(server, args):
    base = ["-d", "0.5", "-c", "4", "--keys", "20"]
    # The workload's own settings win over the defaults here.
    for opt in ("-c", "--keys"):
        if opt in args:
            i = base.index(opt)
            del base[i:i + 2]
    r = subprocess.run([harness.BINARY, "bench", "--server", server.hosts, "--output", "json",
                        "--pids", str(server.proc.pid)] + base + args,
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0:
        raise AssertionError("bench %s failed: %s" % (args, r.stderr))
    return json.loads(r.stdout)


class BenchTest(unittest.TestCase):
    def test_every_workload_against_both_servers(self):
        for kind in ("zookeeper", "ferrokeeper"):
            s = harness.Server(kind)
            self.addCleanup(s.close)
            s.start()
            for args in WORKLOADS:
                r = bench(s, args)
                self.assertGreater(r["ops"], 0, (kind, args))
                self.assertEqual(r["errors"], {}, (kind, args))
                lat = r["latency_us"]
                self.assertTrue(0 < lat["p50"] <= lat["p99"] <= lat["p99.9"] <= lat["max"], (kind, args, lat))
                self.assertIsNotNone(r["server_cpu_us_per_op"])
                if "--rate" in args:
                    # Open loop at 200/s for 0.5 s: about 100 requests.
                    self.assertLess(r["ops"], 200, r)
            c = KazooClient(hosts=s.hosts)
            c.start(15)
            self.assertIsNone(c.exists("/ferrokeeper-bench"), "the benchmark cleans up after itself")
            c.stop()

    def test_errors_are_counted_not_dropped(self):
        s = harness.Server()
        self.addCleanup(s.close)
        s.start()
        # The first name the create workload uses already exists: that
        # create fails, and the failure is counted.
        c = KazooClient(hosts=s.hosts)
        c.start(15)
        c.create("/ferrokeeper-bench/c-0-0", makepath=True)
        c.stop()
        r = bench(s, ["-w", "create", "-c", "1", "-i", "1"])
        self.assertEqual(r["errors"].get("NodeExists"), 1, r["errors"])
        text = subprocess.run([harness.BINARY, "bench", "--server", s.hosts, "-d", "0.3", "-c", "1", "-w", "get",
                               "--keys", "5", "--no-progress"], capture_output=True, text=True, timeout=60).stdout
        self.assertRegex(text, r"ops +\d+ \(\d+/s\)\nerrors +0\nlatency ms p50 [\d.]+  p90 [\d.]+  p99 [\d.]+  p99\.9 [\d.]+  max [\d.]+\n")


if __name__ == "__main__":
    unittest.main()


class ComparisonScriptsTest(unittest.TestCase):
    def test_every_server_a_script_measures_fsyncs(self):
        # The harness turns ZooKeeper's fsync off (forceSync=no: the tests
        # use it as an oracle of answers, not of durability). A script in
        # scripts/ that starts servers to measure them must turn it on, or
        # it compares ferrokeeper with a ZooKeeper that never touches its
        # disk (measure_write_latency.py did, for a whole session). Only a
        # server whose kind is literally "ferrokeeper" (fsync on by
        # default) may leave it out.
        import ast
        import glob
        import os
        checked = 0
        for path in sorted(glob.glob(os.path.join(harness.ROOT, "scripts", "*.py"))):
            src = open(path).read()
            for node in ast.walk(ast.parse(src)):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                        and isinstance(node.func.value, ast.Name) and node.func.value.id == "harness"
                        and node.func.attr in ("Ensemble", "Server")):
                    continue
                kinds = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
                kinds += [k.value.value for k in node.keywords
                          if k.arg == "kind" and isinstance(k.value, ast.Constant)]
                checked += 1
                if kinds == ["ferrokeeper"]:
                    continue
                self.assertIn("forceSync", ast.get_source_segment(src, node),
                              "%s:%d starts servers without forceSync" % (os.path.basename(path), node.lineno))
        self.assertGreater(checked, 5)
