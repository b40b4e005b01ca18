"""Recovery of a lost quorum (issue 19; beyond ZooKeeper, which has none):
the walkthrough's three servers (static server.N lines, no reconfig),
two of them lost for good (killed, their directories deleted); the
survivor, stopped, is made a one-server ensemble by `ferrokeeper
force-new-ensemble --confirm` (a dry run without --confirm, refused while
the server runs), serves everything it had, and grows back to three
voters by reconfig (each fresh server added as an observer, then as a
participant); then the survivor itself can be lost."""
import os
import re
import shutil
import subprocess
import unittest

from kazoo.client import KazooClient

import harness

SUPER_FLAG = "-Dzookeeper.DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU="


def client(hosts, su=False):
    c = KazooClient(hosts=hosts, timeout=10, auth_data=[("digest", "super:test")] if su else None)
    c.start()
    return c


def force(server, *args):
    return subprocess.run([harness.BINARY, "force-new-ensemble", *args, server.cfg],
                          capture_output=True, text=True, timeout=60)


def files_under(d):
    out = {}
    for root, _, names in os.walk(d):
        for n in names:
            p = os.path.join(root, n)
            out[os.path.relpath(p, d)] = os.path.getsize(p)
    return out


class ForceNewEnsembleTest(unittest.TestCase):
    def test_a_survivor_of_a_lost_quorum_serves_alone_and_grows_back(self):
        ens = harness.Ensemble(3)
        self.addCleanup(ens.close)
        for s in ens.servers:
            s.jvm_flags = [SUPER_FLAG]
        ens.start()
        leader = ens.leader()
        survivor_id = next(i for i in (1, 2, 3) if i != leader)
        lost = [i for i in (1, 2, 3) if i != survivor_id]
        survivor = ens.server(survivor_id)
        c = client(ens.hosts)
        c.ensure_path("/precious")
        acknowledged = [c.create("/precious/n-", b"v%d" % i, sequence=True) for i in range(300)]
        c.set("/precious", b"top")
        c.stop()
        # Everything acknowledged has reached the survivor (a sync through it).
        s = client(survivor.hosts)
        s.sync("/precious")
        self.assertEqual(len(s.get_children("/precious")), 300)
        s.stop()
        for i in lost:
            ens.server(i).kill()
            shutil.rmtree(os.path.join(ens.server(i).dir, "data"))
            shutil.rmtree(os.path.join(ens.server(i).dir, "datalog"))
        harness.wait_until(lambda: "not currently serving" in harness.four_letter(survivor.port, "srvr"),
                           timeout=30, what="the survivor without a quorum")

        # Refused while the server runs (it holds its directories).
        r = force(survivor, "--confirm")
        self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
        self.assertIn("lock", r.stderr)
        survivor.stop()
        with open(survivor.cfg) as f:
            cfg_before = f.read()
        files_before = files_under(survivor.dir)
        # A dry run: says what it would do, changes nothing, exit 2.
        r = force(survivor)
        self.assertEqual(r.returncode, 2, r.stdout + r.stderr)
        self.assertIn("nothing changed", r.stdout)
        self.assertIn("server %d " % survivor_id, r.stdout)
        self.assertIn("servers %s are no longer members" % ", ".join(map(str, lost)), r.stdout)
        with open(survivor.cfg) as f:
            self.assertEqual(f.read(), cfg_before)
        self.assertEqual(files_under(survivor.dir), files_before)

        r = force(survivor, "--confirm")
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn("done:", r.stdout)
        with open(survivor.cfg) as f:
            cfg_after = f.read()
        self.assertIn("standaloneEnabled=false\n", cfg_after)
        self.assertIn("reconfigEnabled=true\n", cfg_after)
        self.assertNotIn("server.", cfg_after)
        dynamic = re.search(r"^dynamicConfigFile=(.*)$", cfg_after, re.M).group(1)
        with open(dynamic) as f:
            self.assertEqual(re.findall(r"^server\.(\d+)=", f.read(), re.M), [str(survivor_id)])
        self.assertTrue(any(n.startswith("ferrokeeper-wal.before-force-new-ensemble-")
                            for n in os.listdir(os.path.join(survivor.dir, "datalog"))))

        # Alone, it leads and serves everything it had.
        survivor.start(probe=lambda: ens.mode(survivor_id) == "leader")
        su = client(survivor.hosts, su=True)
        have = set("/precious/" + k for k in su.get_children("/precious"))
        self.assertEqual([p for p in acknowledged if p not in have], [])
        self.assertEqual(su.get("/precious")[0], b"top")
        self.assertEqual(su.get(acknowledged[-1])[0], b"v299")
        data, stat = su.get("/zookeeper/config")
        text = data.decode()
        self.assertEqual(re.findall(r"server\.(\d+)=", text), [str(survivor_id)])
        self.assertIn(":participant", text)
        self.assertEqual(int(text.rsplit("version=", 1)[1], 16), stat.mzxid)
        su.create("/after-recovery", b"a")

        # Grows back: each lost server, fresh, as an observer, then a voter.
        survivor_line = re.search(r"server\.%d=(\S+)" % survivor_id, text).group(1)
        for i in lost:
            s = ens.server(i)
            os.makedirs(os.path.join(s.dir, "data"))
            with open(os.path.join(s.dir, "data", "myid"), "w") as f:
                f.write("%d\n" % i)
            q, e = s.lines["server.%d" % i].split(":")[1:3]
            line = "localhost:%s:%s:observer;127.0.0.1:%d" % (q, e, s.port)
            for k in [k for k in s.lines if k.startswith("server.") or k.startswith("clientPort")]:
                del s.lines[k]
            s.lines["server.%d" % survivor_id] = survivor_line
            s.lines["server.%d" % i] = line
            s.lines["peerType"] = "observer"
            s.lines["reconfigEnabled"] = "true"
            s.write_cfg()
            s.start(probe=lambda: harness.four_letter(s.port, "ruok") == "imok")
            data, _ = su.reconfig(joining="server.%d=%s" % (i, line), leaving=None, new_members=None)
            self.assertIn("server.%d=" % i, data.decode())
            harness.wait_until(lambda: ens.mode(i) == "observer", timeout=60, what="server %d observing" % i)
            harness.wait_until(lambda: ens.mntr(survivor_id).get("zk_synced_observers") == "1", timeout=60,
                               what="the leader counting server %d a synced observer" % i)
            data, _ = su.reconfig(joining="server.%d=%s" % (i, line.replace(":observer", ":participant")),
                                  leaving=None, new_members=None)
            harness.wait_until(lambda: ens.mode(i) == "follower", timeout=60, what="server %d voting" % i)
        data, _ = su.get("/zookeeper/config")
        self.assertEqual(sorted(re.findall(r"server\.(\d+)=\S+:participant", data.decode())), ["1", "2", "3"])
        su.stop()

        # Three voters again: the survivor itself can now be lost.
        survivor.kill()
        harness.wait_until(lambda: any(ens.mode(i) == "leader" for i in lost), timeout=60,
                           what="a leader among the servers that grew back")
        c = client(",".join(ens.server(i).hosts for i in lost))
        c.sync("/precious")
        have = set("/precious/" + k for k in c.get_children("/precious"))
        self.assertEqual([p for p in acknowledged if p not in have], [])
        self.assertEqual(c.get("/after-recovery")[0], b"a")
        c.create("/after-the-survivor-left", b"b")
        c.stop()


if __name__ == "__main__":
    unittest.main()
