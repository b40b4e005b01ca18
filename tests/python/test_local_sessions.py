"""Local sessions (issue 20, item 3): `localSessionsEnabled=true` on a
3-server ensemble, the same steps on ZooKeeper 3.8 and ferrokeeper — a
kazoo client's new session is local to its server (`zk_local_sessions`,
none global), it reads and writes, another server does not take it; its
first ephemeral node upgrades it with `localSessionsUpgradingEnabled=true`
(global, taken by every server); without (ZooKeeper's default) an
ephemeral create is EphemeralOnLocalSession (-120). What they save is
measured by scripts/measure_session_churn.py."""
import struct
import unittest

from kazoo.client import KazooClient

import harness


def create_body(path, flags):
    acl = struct.pack(">i", 1) + struct.pack(">i", 31) + harness.jute_str("world") + harness.jute_str("anyone")
    return harness.jute_str(path) + harness.jute_buf(b"") + acl + struct.pack(">i", flags)


def ensemble(kind, **extra):
    ens = harness.Ensemble(3, kind=kind, extra=dict({"localSessionsEnabled": "true"}, **extra))
    ens.start()
    leader = ens.leader()
    harness.wait_until(lambda: all(ens.mode(i) in ("leader", "follower") for i in (1, 2, 3)), timeout=60,
                       what="every server serving (%s)" % kind)
    return ens, leader


def taken_by(server, sid, passwd):
    raw = harness.RawConn(server.port, session_id=sid, passwd=passwd)
    try:
        return raw.session_id == sid
    finally:
        raw.close()


def observe(kind):
    seen = {}
    ens, leader = ensemble(kind, localSessionsUpgradingEnabled="true")
    try:
        home, other = [i for i in (1, 2, 3) if i != leader]
        c = KazooClient(hosts=ens.server(home).hosts, timeout=10)
        c.start()
        c.create("/p", b"x")
        c.set("/p", b"y")
        seen["reads its write"] = c.get("/p")[0]
        sid, passwd = c.client_id
        seen["counts before the ephemeral"] = (ens.mntr(home)["zk_local_sessions"],
                                               ens.mntr(leader)["zk_global_sessions"])
        seen["another server takes the local session"] = taken_by(ens.server(other), sid, passwd)
        c.create("/p/e", b"", ephemeral=True)
        harness.wait_until(lambda: ens.mntr(leader)["zk_global_sessions"] == "1", timeout=20,
                           what="the upgraded session global (%s)" % kind)
        seen["counts after the ephemeral"] = (ens.mntr(home)["zk_local_sessions"],
                                              ens.mntr(leader)["zk_global_sessions"])
        seen["same session after the upgrade"] = c.client_id[0] == sid
        seen["another server takes the upgraded session"] = taken_by(ens.server(other), sid, passwd)
        c.stop()
        c.close()
        c = KazooClient(hosts=ens.server(other).hosts, timeout=10)
        c.start()
        seen["the ephemeral is gone with its closed session"] = c.exists("/p/e") is None
        c.stop()
        c.close()
    finally:
        ens.close()
    ens, leader = ensemble(kind)
    try:
        raw = harness.RawConn(ens.server(leader).port)
        raw.request(1, 1, create_body("/eph", 1))
        seen["ephemeral without upgrading"] = raw.reply()[2]
        raw.request(2, 1, create_body("/plain", 0))
        seen["persistent without upgrading"] = raw.reply()[2]
        raw.close()
    finally:
        ens.close()
    return seen


class LocalSessionsTest(unittest.TestCase):
    maxDiff = None

    def test_local_sessions_as_in_zookeeper(self):
        fk = observe("ferrokeeper")
        self.assertEqual(fk["counts before the ephemeral"], ("1", "0"))
        self.assertEqual(fk["counts after the ephemeral"], ("0", "1"))
        self.assertEqual(fk["ephemeral without upgrading"], -120)
        self.assertEqual(fk, observe("zookeeper"))


if __name__ == "__main__":
    unittest.main()
