"""Per-hop timestamps (issue 23): servers started with FERROKEEPER_HOPS=DIR
record every hand-off a write crosses, on the one clock the servers of a
host share, and scripts/hop_breakdown.py puts an ensemble's hops together,
network and wake-ups included. One write at a time through the leader:
every hop of the path shows up, for the writes the bench made, and the
leader is told apart from its followers. (Durations are printed, never
asserted.)"""
import json
import os
import subprocess
import sys
import unittest

import harness

SCRIPT = os.path.join(harness.ROOT, "scripts", "hop_breakdown.py")
sys.path.insert(0, os.path.dirname(SCRIPT))
import hop_breakdown  # noqa: E402


class HopsTest(unittest.TestCase):
    def test_every_hop_of_one_write_at_a_time(self):
        ens, hops, leader = harness.ensemble_recording_hops(self)
        order = [leader] + [i for i in (1, 2, 3) if i != leader]
        r = subprocess.run([harness.BINARY, "bench", "--server", ",".join(ens.server(i).hosts for i in order),
                            "--output", "json", "-d", "1", "-c", "1", "-i", "1", "-w", "set", "--keys", "5"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stderr)
        ops = json.loads(r.stdout)["ops"]
        self.assertGreater(ops, 50)
        ens.close()
        self.assertEqual(sorted(os.listdir(hops)), ["server-1.hops", "server-2.hops", "server-3.hops"])
        out = subprocess.run([sys.executable, SCRIPT, hops, "--json"], capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stderr)
        got = json.loads(out.stdout)
        print(subprocess.run([sys.executable, SCRIPT, hops], capture_output=True, text=True).stdout)
        self.assertEqual(got["leader"], "server-%d" % leader)
        rows = got["hops"]
        for hop in hop_breakdown.PATH + hop_breakdown.TOTALS[:1]:
            self.assertIn(hop, rows)
            # The middle 80% of the writes, each seen on the leader (or on
            # both followers: twice).
            self.assertGreaterEqual(rows[hop]["count"], ops * 0.7, hop)
            self.assertGreaterEqual(rows[hop]["p99"], rows[hop]["p50"], hop)

    def test_off_by_default(self):
        srv = harness.Server().start()
        self.addCleanup(srv.close)
        self.assertNotIn("FERROKEEPER_HOPS", srv.log())
        self.assertFalse(any(f.endswith(".hops") for f in os.listdir(srv.dir)))


if __name__ == "__main__":
    unittest.main()
