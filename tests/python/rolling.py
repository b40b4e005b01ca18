"""A rolling restart under writes, as an operator switches a setting on an
ensemble one server at a time: each server in turn is stopped, a write
goes through the other two, the server is reconfigured and started, and
once every server serves again another write goes through. Afterwards
every server must hold every write."""
from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss, NodeExistsError, SessionMovedError

import harness


class Writer:
    """A client that writes /w-NNNN nodes through the whole ensemble."""

    def __init__(self, test, ens):
        self.test = test
        self.ens = ens
        self.n = 0
        self.c = KazooClient(hosts=ens.hosts, timeout=15)
        test.addCleanup(self.c.close)
        test.addCleanup(self.c.stop)
        self.c.start()

    def put(self):
        path = "/w-%04d" % self.n
        # A request in flight when its server stops may or may not have
        # been done: try again, and a node already there is done.
        for _ in range(50):
            try:
                self.c.create(path, b"")
                break
            except NodeExistsError:
                break
            except (ConnectionLoss, SessionMovedError):
                harness.wait_until(lambda: self.c.connected, what="the writer reconnected")
        else:
            self.test.fail("could not write " + path)
        self.n += 1


def restart_each(ens, writer, configure):
    """configure(server, i) between each server's stop and start."""
    for i in range(1, len(ens.servers) + 1):
        s = ens.server(i)
        s.stop()
        writer.put()
        configure(s, i)
        s.start()
        ens.serving_follower()
        writer.put()


def assert_every_write_everywhere(test, ens, writer):
    for i in range(1, len(ens.servers) + 1):
        c = KazooClient(hosts=ens.server(i).hosts, timeout=10)
        test.addCleanup(c.close)
        test.addCleanup(c.stop)
        c.start()
        c.sync("/")
        writes = [n for n in c.get_children("/") if n.startswith("w-")]
        test.assertEqual(len(writes), writer.n, "server %d has every write" % i)
