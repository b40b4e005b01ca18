"""The zxid in a watch notification's header (issue 20; ZooKeeper 3.9,
ZOOKEEPER-4655): the change that fired it — a setData's new mzxid, a
create's czxid on the exists watch's NodeCreated and the parent's
NodeChildrenChanged alike, a delete's zxid, a multi's zxid; -1 for the
events setWatches replays. The same steps against ZooKeeper 3.9.5 when it
is here (ZooKeeper 3.8 sends -1 for all, and its clients do not read it)."""
import struct
import unittest

from kazoo.client import KazooClient

import harness

EXISTS, GET_DATA, GET_CHILDREN, SET_WATCHES = 3, 4, 8, 101


def path_watch(path):
    return harness.jute_str(path) + b"\x01"


class Events:
    """A bare connection holding watches; its notifications as
    (type, path, header zxid)."""

    def __init__(self, port):
        self.c = harness.RawConn(port)
        self.xid = 0
        # Events that came before a reply (setWatches sends them first).
        self.early = []

    def ask(self, op, body):
        self.xid += 1
        self.c.request(self.xid, op, body)
        while True:
            xid, zxid, err, rest = self.c.reply()
            if xid == self.xid:
                return err
            if xid == -1:
                self.early.append((zxid, rest))

    def next_event(self):
        if self.early:
            zxid, body = self.early.pop(0)
        else:
            xid, zxid, err, body = self.c.reply()
            assert xid == -1, xid
        kind, _state = struct.unpack_from(">ii", body, 0)
        (n,) = struct.unpack_from(">i", body, 8)
        return kind, body[12:12 + n].decode(), zxid


def observe(port):
    seen = []
    k = KazooClient(hosts="127.0.0.1:%d" % port, timeout=10)
    k.start()
    try:
        k.create("/w")
        ev = Events(port)
        ev.ask(EXISTS, path_watch("/w/a"))
        ev.ask(GET_CHILDREN, path_watch("/w"))
        k.create("/w/a", b"1")
        created = k.exists("/w/a").czxid
        seen += [(t, p, z == created) for t, p, z in sorted([ev.next_event(), ev.next_event()])]
        ev.ask(GET_DATA, path_watch("/w/a"))
        k.set("/w/a", b"2")
        t, p, z = ev.next_event()
        seen.append((t, p, z == k.exists("/w/a").mzxid))
        ev.ask(EXISTS, path_watch("/w/a"))
        ev.ask(GET_CHILDREN, path_watch("/w"))
        k.delete("/w/a")
        deleted = k.exists("/w").pzxid
        seen += [(t, p, z == deleted) for t, p, z in sorted([ev.next_event(), ev.next_event()])]
        ev.ask(EXISTS, path_watch("/w/m"))
        t = k.transaction()
        t.create("/w/m", b"")
        t.set_data("/w", b"x")
        t.commit()
        t, p, z = ev.next_event()
        seen.append((t, p, z == k.exists("/w/m").czxid))
        # setWatches after a change the connection missed: the replayed
        # event carries no zxid.
        last = k.exists("/w").mzxid
        k.set("/w", b"y")
        replay = Events(port)
        body = struct.pack(">q", last) + struct.pack(">i", 1) + harness.jute_str("/w") + struct.pack(">ii", 0, 0)
        replay.ask(SET_WATCHES, body)
        seen.append(replay.next_event())
    finally:
        k.stop()
    return seen


class WatchZxidTest(unittest.TestCase):
    def test_a_notification_carries_the_zxid_of_its_change(self):
        s = harness.Server()
        self.addCleanup(s.close)
        s.start()
        got = observe(s.port)
        # NodeCreated 1, NodeDeleted 2, NodeDataChanged 3, NodeChildrenChanged 4.
        self.assertEqual(got, [
            (1, "/w/a", True), (4, "/w", True),
            (3, "/w/a", True),
            (2, "/w/a", True), (4, "/w", True),
            (1, "/w/m", True),
            (3, "/w", -1),
        ])
        if harness.HAVE_ZK39:
            zk = harness.Server("zookeeper", zookeeper="3.9")
            self.addCleanup(zk.close)
            zk.start()
            self.assertEqual(observe(zk.port), got, "as ZooKeeper 3.9.5")


if __name__ == "__main__":
    unittest.main()
