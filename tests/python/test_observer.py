"""Observers (issue 19): `server.N=host:port:port:observer` (and
`peerType=observer` in the observer's own zoo.cfg), the same steps on a
ZooKeeper 3.8 ensemble and a ferrokeeper one of three voters and one
observer: the observer serves reads and forwards writes, says `Mode:
observer`, the leader counts it in `zk_synced_observers`; killing it costs
the quorum nothing, and it does not stand in for lost voters."""
import unittest

from kazoo.client import KazooClient

import harness

OBSERVER = 4


def observer_ensemble(test, kind):
    ens = harness.Ensemble(4, kind=kind)
    test.addCleanup(ens.close)
    for s in ens.servers:
        s.lines["server.%d" % OBSERVER] += ":observer"
        s.write_cfg()
    ens.server(OBSERVER).lines["peerType"] = "observer"
    ens.server(OBSERVER).write_cfg()
    ens.start()
    harness.wait_until(lambda: [ens.mode(i) for i in (1, 2, 3, 4)].count("leader") == 1
                       and ens.mode(OBSERVER) == "observer"
                       and all(ens.mode(i) in ("leader", "follower") for i in (1, 2, 3)),
                       timeout=60, what="three voters and the observer serving (%s)" % kind)
    return ens


def client(server):
    c = KazooClient(hosts=server.hosts, timeout=10)
    c.start()
    return c


class ObserverTest(unittest.TestCase):
    def observe(self, kind):
        seen = {}
        ens = observer_ensemble(self, kind)
        leader = ens.leader()
        seen["observer mode"] = ens.mode(OBSERVER)
        seen["isro serving"] = harness.four_letter(ens.server(OBSERVER).port, "isro")
        seen["observer srvr keys"] = sorted(l.split(":")[0] for l in
                                            harness.four_letter(ens.server(OBSERVER).port, "srvr").splitlines())
        # Writes through the observer reach the voters; its reads see theirs.
        obs = client(ens.server(OBSERVER))
        obs.create("/from-observer", b"o")
        voter = client(ens.server(leader))
        voter.sync("/")
        seen["voter reads the observer's write"] = voter.get("/from-observer")[0]
        voter.create("/from-voter", b"v")
        obs.sync("/")
        seen["observer reads a voter's write"] = obs.get("/from-voter")[0]
        harness.wait_until(lambda: ens.mntr(leader).get("zk_synced_observers") == "1",
                           what="the leader counting its observer (%s)" % kind)
        m = ens.mntr(leader)
        seen["leader mntr"] = {k: m.get(k) for k in ("zk_synced_observers", "zk_synced_followers")}
        seen["observer mntr state"] = ens.mntr(OBSERVER).get("zk_server_state")
        obs.stop()
        # The observer gone: the voters write on.
        ens.server(OBSERVER).kill()
        voter.create("/observer-down", b"")
        seen["write with the observer down"] = voter.exists("/observer-down") is not None
        # Back, it catches up; then two voters gone: the observer is no
        # quorum, and serves nothing (no stale reads, no writes).
        ens.server(OBSERVER).start(probe=lambda: ens.mode(OBSERVER) == "observer")
        obs = client(ens.server(OBSERVER))
        obs.sync("/")
        seen["observer caught up"] = obs.exists("/observer-down") is not None
        obs.stop()
        voter.stop()
        for i in [j for j in (1, 2, 3) if j != leader][:2]:
            ens.server(i).kill()
        harness.wait_until(lambda: ens.mode(OBSERVER) is None, timeout=60,
                           what="the observer without a quorum to stop serving (%s)" % kind)
        seen["observer without a quorum"] = harness.four_letter(ens.server(OBSERVER).port, "srvr").strip()
        seen["isro without a quorum"] = harness.four_letter(ens.server(OBSERVER).port, "isro")
        return seen

    def test_an_observer_serves_and_does_not_vote_as_in_zookeeper(self):
        fk = self.observe("ferrokeeper")
        self.assertEqual(fk["observer mode"], "observer")
        self.assertEqual(fk["leader mntr"], {"zk_synced_observers": "1", "zk_synced_followers": "2"})
        self.assertTrue(fk["write with the observer down"])
        self.assertTrue(fk["observer caught up"])
        self.assertEqual(fk["observer without a quorum"], "This ZooKeeper instance is not currently serving requests")
        self.assertEqual((fk["isro serving"], fk["isro without a quorum"]), ("rw", "null"))
        zk = self.observe("zookeeper")
        self.assertEqual(fk, zk)


if __name__ == "__main__":
    unittest.main()
