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
from test_differential import Observer

EVENTS = {1: "NodeCreated", 2: "NodeDeleted", 3: "NodeDataChanged", 4: "NodeChildrenChanged"}


def observe(kind, version="3.8"):
    s = harness.Server(kind, zookeeper=version).start()
    seen = []
    try:
        c = KazooClient(hosts=s.hosts)
        c.start()
        c.create("/a/b", b"", makepath=True)
        w = Observer(s.port)
        watches = lambda op, typ: w.call(op, harness.jute_str("/a") + struct.pack(">i", typ))
        events = lambda: [(EVENTS.get(t, t), p) for t, p in w.take_events()]
        seen.append(("getData watch", w.call(4, harness.jute_str("/a") + b"\x01")))
        seen.append(("addWatch persistent", w.call(106, harness.jute_str("/a") + struct.pack(">i", 0))))
        seen.append(("addWatch recursive", w.call(106, harness.jute_str("/a") + struct.pack(">i", 1))))
        for op, typ in ((17, 5), (17, 4), (17, 2), (17, 1), (17, 3), (18, 4), (18, 4), (17, 4), (17, 5),
                        (18, 1)):
            seen.append(("%s %d" % ("check" if op == 17 else "remove", typ), watches(op, typ)))
        for step, change in (("set /a/b", lambda: c.set("/a/b", b"1")),
                             ("set /a", lambda: c.set("/a", b"1")),
                             ("create /a/c", lambda: c.create("/a/c")),
                             ("set /a again", lambda: c.set("/a", b"2"))):
            change()
            seen.append((step, events()))
        seen.append(("remove 5", watches(18, 5)))
        seen.append(("check 3", watches(17, 3)))
        c.set("/a/b", b"2")
        seen.append(("set /a/b after", events()))
        w.close()
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
