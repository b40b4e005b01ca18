"""Leadership transfer (issue 19, beyond ZooKeeper): a stopping leader
hands leadership to an up-to-date follower before it exits, and the
AdminServer's `transfer_leadership` (and the shell's `transferleader`)
moves it to a named server on demand, from any server. Nothing written is
lost on the way; scripts/measure_rolling_restart.py measures what it saves
against ZooKeeper 3.8's election. Clients of the other servers keep their
connections across a leader change, handed over or crashed: no
ConnectionLoss, every write of theirs answered."""
import json
import subprocess
import threading
import time
import unittest
import urllib.error
import urllib.request

from kazoo.client import KazooClient

import harness
import rolling


def ensemble_with_admin(test):
    ens = harness.Ensemble(3)
    test.addCleanup(ens.close)
    for s in ens.servers:
        s.admin_port = harness.free_port()
        s.lines.update({"admin.enableServer": "true", "admin.serverPort": str(s.admin_port)})
        s.write_cfg()
    ens.start()
    ens.serving_follower()
    return ens


def transfer(server, to, auth="ip"):
    req = urllib.request.Request("http://127.0.0.1:%d/commands/transfer_leadership?to=%s" % (server.admin_port, to))
    if auth:
        req.add_header("Authorization", auth)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


class LeadershipTest(unittest.TestCase):
    def test_a_named_server_takes_over_on_demand_from_any_server(self):
        ens = ensemble_with_admin(self)
        writer = rolling.Writer(self, ens)
        writer.put()
        leader = ens.leader()
        to, via = [i for i in (1, 2, 3) if i != leader]
        # Asked of a follower that is not the one to lead.
        status, body = transfer(ens.server(via), to)
        self.assertEqual((status, body.get("leader"), body["error"]), (200, to, None), body)
        self.assertEqual(ens.leader(), to)
        writer.put()
        # From the shell, back to the first leader.
        url = "http://127.0.0.1:%d/commands" % ens.server(via).admin_port
        out = subprocess.run([harness.BINARY, "cli", "-server", ens.server(via).hosts, "transferleader", "-a", url,
                              str(leader)], capture_output=True, text=True, timeout=60)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertIn("server %d leads" % leader, out.stdout)
        self.assertEqual(ens.leader(), leader)
        writer.put()
        # Refused: not a member; no identity.
        status, body = transfer(ens.server(via), 9)
        self.assertEqual(status, 409, body)
        self.assertIn("server 9 cannot take over", body["error"])
        status, body = transfer(ens.server(via), to, auth=None)
        self.assertEqual(status, 401, body)
        self.assertEqual(ens.leader(), leader)
        rolling.assert_every_write_everywhere(self, ens, writer)

    def test_a_stopping_leader_hands_leadership_over_first(self):
        ens = ensemble_with_admin(self)
        writer = rolling.Writer(self, ens)
        for _ in range(20):
            writer.put()
        leader = ens.leader()
        ens.server(leader).stop()
        log = ens.server(leader).log()
        self.assertIn("handing leadership to server", log)
        self.assertIn("leads now", log)
        self.assertNotIn("was not handed over", log)
        handed_to = int(log.split("handing leadership to server ")[1].split()[0])
        self.assertEqual(ens.leader(), handed_to)
        for _ in range(20):
            writer.put()
        ens.server(leader).start()
        ens.serving_follower()
        writer.put()
        rolling.assert_every_write_everywhere(self, ens, writer)

    def test_a_client_keeps_its_connection_across_leader_changes(self):
        ens = ensemble_with_admin(self)
        a = ens.leader()
        b, c = [i for i in (1, 2, 3) if i != a]
        # A client of server c writes in a loop while the leader moves
        # from a to b on demand, then b crashes (an election).
        stop = threading.Event()
        states, done, failed = [], [], []
        client = KazooClient(hosts=ens.server(c).hosts, timeout=10)
        client.start()
        client.add_listener(states.append)
        self.addCleanup(client.stop)
        path = client.create("/loop-", b"", sequence=True)

        def loop():
            while not stop.is_set():
                try:
                    client.set(path, b"%d" % len(done))
                    done.append(time.monotonic())
                except Exception as e:  # noqa: BLE001 - every failure counts
                    failed.append(type(e).__name__)

        t = threading.Thread(target=loop, daemon=True)
        t.start()
        self.addCleanup(stop.set)
        time.sleep(0.5)
        changed = time.monotonic()
        self.assertEqual(transfer(ens.server(c), b)[0], 200)
        self.assertEqual(ens.leader(), b)
        time.sleep(0.5)
        self.assertTrue(any(d > changed for d in done), "no write after the hand-over")
        crashed = time.monotonic()
        ens.server(b).kill()
        harness.wait_until(lambda: ens.mode(a) == "leader" or ens.mode(c) == "leader", timeout=30,
                           what="a leader after the crash")
        time.sleep(0.5)
        stop.set()
        t.join(10)
        self.assertTrue(any(d > crashed for d in done), "no write after the crash")
        # ZooKeeper's servers close their clients' connections when the
        # leader goes: kazoo would have seen SUSPENDED and ConnectionLoss.
        self.assertEqual(states, [])
        self.assertEqual(failed, [])
        self.assertEqual(client.get(path)[0], b"%d" % (len(done) - 1))
        print("\nwrites server %d sent again: %s" % (c, ens.mntr(c).get("ferrokeeper_writes_resent")))

    def test_a_stopping_follower_or_standalone_server_just_stops(self):
        ens = ensemble_with_admin(self)
        follower = next(i for i in (1, 2, 3) if i != ens.leader())
        ens.server(follower).stop()
        self.assertNotIn("handing leadership", ens.server(follower).log())
        s = harness.Server().start()
        self.addCleanup(s.close)
        c = KazooClient(hosts=s.hosts)
        c.start()
        c.create("/x")
        c.stop()
        s.stop()
        self.assertNotIn("handing leadership", s.log())


if __name__ == "__main__":
    unittest.main()
