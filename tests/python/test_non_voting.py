"""Non-voting followers (issue 19), the same steps on ZooKeeper 3.8 and
ferrokeeper: a server whose config lists the ensemble and itself syncs
and serves before `reconfig -add` lets it in — so a one-server ensemble
grows to two, which needs the joiner in the new quorum — and a server a
reconfig removed goes on following: it serves its clients every write
made after its removal and forwards theirs."""
import re
import time
import unittest

from kazoo.client import KazooClient

import harness

SUPER_FLAG = "-Dzookeeper.DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU="


def client(hosts, su=False):
    c = KazooClient(hosts=hosts, timeout=10, auth_data=[("digest", "super:test")] if su else None)
    c.start()
    return c


def reads(server, path):
    """What a client of `server` reads at `path` after a sync, or the
    error's class name."""
    c = KazooClient(hosts=server.hosts, timeout=10)
    try:
        c.start(timeout=15)
        c.sync("/")
        return c.get(path)[0]
    except Exception as e:
        return type(e).__name__
    finally:
        c.stop()
        c.close()


class NonVotingFollowers(unittest.TestCase):

    def joined(self, kind):
        seen = {}
        ens = harness.Ensemble(2, kind=kind, extra={"reconfigEnabled": "true", "standaloneEnabled": "false"},
                               client_port_in_server_lines=True)
        self.addCleanup(ens.close)
        for s in ens.servers:
            s.jvm_flags = [SUPER_FLAG]
            s.write_cfg()
        # Server 1 alone is a one-server ensemble; server 2's config lists
        # it and itself, as ZooKeeper's documentation has a joiner's.
        line2 = ens.server(1).lines.pop("server.2")
        ens.server(1).write_cfg()
        ens.start(1)
        harness.wait_until(lambda: ens.mode(1) == "leader", timeout=60, what="server 1 leading alone (%s)" % kind)
        su = client(ens.server(1).hosts, su=True)
        su.create("/before", b"b")
        ens.server(2).start(probe=lambda: harness.four_letter(ens.server(2).port, "ruok") == "imok")
        harness.wait_until(lambda: reads(ens.server(2), "/before") == b"b", timeout=60,
                           what="the joiner serving before it is added (%s)" % kind)
        seen["joiner before the add"] = (ens.mode(2), reads(ens.server(2), "/before"))
        seen["members before the add"] = re.findall(r"server\.(\d+)=", su.get("/zookeeper/config")[0].decode())
        # The new membership's quorum is both servers: the joiner counts.
        data, _ = su.reconfig(joining="server.2=" + line2, leaving=None, new_members=None)
        seen["members after the add"] = re.findall(r"server\.(\d+)=[^:]+:\d+:\d+:(\w+)", data.decode())
        harness.wait_until(lambda: sorted([ens.mode(1), ens.mode(2)]) == ["follower", "leader"], timeout=60,
                           what="a leader and a follower (%s)" % kind)
        via2 = client(ens.server(2).hosts)
        via2.create("/through-2", b"2")
        via2.stop()
        seen["written through the joiner"] = reads(ens.server(1), "/through-2")
        su.stop()
        return seen

    def test_a_joiner_syncs_and_serves_before_it_is_added_as_in_zookeeper(self):
        fk = self.joined("ferrokeeper")
        self.assertEqual(fk["joiner before the add"], ("follower", b"b"))
        self.assertEqual(fk["members after the add"], [("1", "participant"), ("2", "participant")])
        zk = self.joined("zookeeper")
        self.assertEqual(fk, zk)

    def removed(self, kind):
        seen = {}
        ens = harness.Ensemble(3, kind=kind, extra={"reconfigEnabled": "true"}, client_port_in_server_lines=True)
        self.addCleanup(ens.close)
        for s in ens.servers:
            s.jvm_flags = [SUPER_FLAG]
            s.write_cfg()
        ens.start()
        leader = ens.leader()
        harness.wait_until(lambda: all(ens.mode(i) in ("leader", "follower") for i in (1, 2, 3)), timeout=60,
                           what="every server serving (%s)" % kind)
        gone = next(i for i in (3, 2) if i != leader)
        su = client(ens.server(leader).hosts, su=True)
        data, _ = su.reconfig(joining=None, leaving=str(gone), new_members=None)
        seen["members after the removal"] = len(re.findall(r"server\.(\d+)=", data.decode()))
        su.create("/after-removal", b"a")
        harness.wait_until(lambda: reads(ens.server(gone), "/after-removal") == b"a", timeout=60,
                           what="the removed server serving the write made after (%s)" % kind)
        seen["removed server"] = (ens.mode(gone), reads(ens.server(gone), "/after-removal"))
        try:
            harness.wait_until(lambda: ens.mntr(leader).get("zk_synced_non_voting_followers") == "1", timeout=15,
                               what="the leader counting a non-voting follower (%s)" % kind)
        except Exception:
            pass
        seen["leader's synced non-voting followers"] = ens.mntr(leader).get("zk_synced_non_voting_followers")
        c = client(ens.server(gone).hosts)
        c.create("/through-the-removed", b"r")
        c.stop()
        seen["written through the removed server"] = reads(ens.server(leader), "/through-the-removed")
        seen["removed server listed"] = ("server.%d=" % gone) in reads(ens.server(gone), "/zookeeper/config").decode()
        # The two members still make the quorum alone.
        ens.server(gone).kill()
        su.create("/without-it", b"w")
        seen["written without it"] = reads(ens.server(leader), "/without-it")
        su.stop()
        return seen

    def test_a_removed_server_goes_on_as_a_non_voting_follower_as_in_zookeeper(self):
        fk = self.removed("ferrokeeper")
        self.assertEqual(fk["removed server"], ("follower", b"a"))
        self.assertEqual(fk["members after the removal"], 2)
        zk = self.removed("zookeeper")
        self.assertEqual(fk, zk)


if __name__ == "__main__":
    unittest.main()
