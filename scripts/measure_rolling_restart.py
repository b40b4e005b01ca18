"""Measures what a rolling restart of a 3-server ensemble costs the
writes (issue 19): ferrokeeper and ZooKeeper 3.8 side by side, each server
stopped (as `zkServer.sh stop`: SIGTERM) and started again in turn, the
leader last, as operators do. One kazoo client per server writes
(setData) in a loop; while a server is down, the writers on the two other
servers show what the ensemble costs them: the longest time between two
of their successful writes, and the writes that failed.

    cargo build --release && /usr/bin/python3 scripts/measure_rolling_restart.py [rounds]
    ONLY=ferrokeeper (or zookeeper) measures one of the two
    KILL=1 kills each server (SIGKILL, a crash) instead of stopping it
"""
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "python"))
import harness  # noqa: E402
from kazoo.client import KazooClient  # noqa: E402


class Writer(threading.Thread):
    def __init__(self, server, path):
        super().__init__(daemon=True)
        self.c = KazooClient(hosts=server.hosts, timeout=10)
        self.c.start()
        self.path = path
        self.c.ensure_path(path)
        self.ok = []  # monotonic times of successful writes
        self.failed = []  # (time, error name)
        self.done = False

    def run(self):
        while not self.done:
            try:
                self.c.set(self.path, b"x")
                self.ok.append(time.monotonic())
            except Exception as e:  # noqa: BLE001 - every failure is counted
                self.failed.append((time.monotonic(), type(e).__name__))
                time.sleep(0.01)

    def stall(self, t0, t1):
        """The longest gap between successful writes around [t0, t1]."""
        times = [t for t in self.ok if t0 - 1 <= t <= t1]
        if len(times) < 2:
            return t1 - t0
        return max(b - a for a, b in zip(times, times[1:]))

    def failures(self, t0, t1):
        return [e for t, e in self.failed if t0 <= t <= t1]


def measure(kind):
    # fsync on for both (the harness turns ZooKeeper's off for the tests).
    ens = harness.Ensemble(3, kind=kind, extra={"forceSync": "yes"})
    try:
        ens.start()
        leader = ens.leader()
        harness.wait_until(lambda: all(ens.mode(i) in ("leader", "follower") for i in (1, 2, 3)), timeout=60,
                           what="every server serving")
        writers = [Writer(ens.server(i), "/stall-%d" % i) for i in (1, 2, 3)]
        for w in writers:
            w.start()
        time.sleep(2)
        rows = []
        for i in [j for j in (1, 2, 3) if j != leader] + [leader]:
            was_leader = ens.mode(i) == "leader"
            t0 = time.monotonic()
            if os.environ.get("KILL"):
                ens.server(i).kill()
            else:
                ens.server(i).stop()
            stopped = time.monotonic()
            time.sleep(1)
            ens.server(i).start()
            harness.wait_until(lambda: all(ens.mode(j) in ("leader", "follower") for j in (1, 2, 3)), timeout=60,
                               what="every server serving again")
            time.sleep(1)
            t1 = time.monotonic()
            others = [writers[j - 1] for j in (1, 2, 3) if j != i]
            rows.append((i, was_leader, stopped - t0, max(w.stall(t0, t1) for w in others),
                         sum(len(w.failures(t0, t1)) for w in others)))
        for w in writers:
            w.done = True
        for w in writers:
            w.join(5)
            w.c.stop()
        return rows
    finally:
        ens.close()


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    for r in range(rounds):
        for kind in [k for k in ("ferrokeeper", "zookeeper") if os.environ.get("ONLY", k) == k]:
            for i, was_leader, stop_s, stall, failed in measure(kind):
                print("%-11s round %d server %d%s: stop took %.2f s; writers on the other servers: longest stall "
                      "%.0f ms, %d failed writes" % (kind, r + 1, i, " (leader)" if was_leader else "", stop_s,
                                                     stall * 1000, failed), flush=True)


if __name__ == "__main__":
    main()
