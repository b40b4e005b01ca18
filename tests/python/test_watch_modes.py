"""Watch modes on one path, removed one at a time, as ZooKeeper 3.9
(issue 20; ZOOKEEPER-4466, 4472): on a bare connection, a one-shot data
watch, a persistent and a persistent-recursive watch of the same session
on the same path; checkWatches and removeWatches of each watcher type
(1 children, 2 data, 3 any, 4 persistent, 5 recursive) and the events that
reach the connection as another client changes the tree — the same
answers and events from ZooKeeper 3.9.5 and ferrokeeper. (ZooKeeper 3.8
keeps one persistent mode per path and refuses types 4 and 5.)"""
import struct
import unittest

from kazoo.client import KazooClient

import harness

EVENTS = {1: "NodeCreated", 2: "NodeDeleted", 3: "NodeDataChanged", 4: "NodeChildrenChanged"}


class Session:
    """A bare session: requests by op code, replies in order, events kept."""

    def __init__(self, port):
        self.conn = harness.RawConn(port)
        self.xid = 0
        self.events = []

    def call(self, op, body):
        self.xid += 1
        self.conn.request(self.xid, op, body)
        while True:
            xid, _, err, rest = self.conn.reply()
            if xid == -1:
                typ, _state = struct.unpack_from(">ii", rest, 0)
                path, _ = harness.read_str(rest, 8)
                self.events.append((EVENTS.get(typ, typ), path))
            elif xid == self.xid:
                return err

    def watches(self, op, path, typ):
        return self.call(op, harness.jute_str(path) + struct.pack(">i", typ))

    def take_events(self):
        self.call(3, harness.jute_str("/") + b"\x00")  # exists: events before it arrive first
        out, self.events = self.events, []
        return out


def observe(kind, version="3.8"):
    s = harness.Server(kind, zookeeper=version).start()
    seen = []
    try:
        c = KazooClient(hosts=s.hosts)
        c.start()
        c.create("/a/b", b"", makepath=True)
        w = Session(s.port)
        seen.append(("getData watch", w.call(4, harness.jute_str("/a") + b"\x01")))
        seen.append(("addWatch persistent", w.call(106, harness.jute_str("/a") + struct.pack(">i", 0))))
        seen.append(("addWatch recursive", w.call(106, harness.jute_str("/a") + struct.pack(">i", 1))))
        for op, typ in ((17, 5), (17, 4), (17, 2), (17, 1), (17, 3), (18, 4), (18, 4), (17, 4), (17, 5),
                        (18, 1)):
            seen.append(("%s %d" % ("check" if op == 17 else "remove", typ), w.watches(op, "/a", typ)))
        for step, change in (("set /a/b", lambda: c.set("/a/b", b"1")),
                             ("set /a", lambda: c.set("/a", b"1")),
                             ("create /a/c", lambda: c.create("/a/c")),
                             ("set /a again", lambda: c.set("/a", b"2"))):
            change()
            seen.append((step, w.take_events()))
        seen.append(("remove 5", w.watches(18, "/a", 5)))
        seen.append(("check 3", w.watches(17, "/a", 3)))
        c.set("/a/b", b"2")
        seen.append(("set /a/b after", w.take_events()))
        w.conn.close()
        c.stop()
        c.close()
    finally:
        s.close()
    return seen


class WatchModesTest(unittest.TestCase):
    maxDiff = None

    def test_modes_on_one_path_as_zookeeper_3_9(self):
        fk = observe("ferrokeeper")
        self.assertIn(("remove 4", 0), fk)
        self.assertIn(("set /a/b", [("NodeDataChanged", "/a/b")]), fk)
        if not harness.HAVE_ZK39:
            self.skipTest("ZooKeeper 3.9.5 is not here (scripts/get_zookeeper_3.9.sh)")
        self.assertEqual(fk, observe("zookeeper", "3.9"))


if __name__ == "__main__":
    unittest.main()
