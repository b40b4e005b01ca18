"""3-server ensembles side by side, ferrokeeper vs ZooKeeper 3.8, both
with fsync on: write and read throughput with clients spread over all
servers, and the time from killing the leader to the first successful
write through another server. A measuring tool: it asserts nothing.

Usage: /usr/bin/python3 scripts/measure_ensemble.py [SECONDS] [PROCESSES]
"""
import multiprocessing as mp
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python"))
import harness  # noqa: E402
from kazoo.client import KazooClient  # noqa: E402

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 10
PROCS = int(sys.argv[2]) if len(sys.argv) > 2 else 6
WINDOW = 200


def worker(hosts, kind, seconds, tag, out):
    c = KazooClient(hosts=hosts, timeout=30)
    c.start(30)
    done, i, pending = 0, 0, []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if kind == "write":
            pending.append(c.create_async("/bench/%s-%d" % (tag, i), b"x" * 100))
        else:
            pending.append(c.get_async("/bench/r%d" % (i % 1000)))
        i += 1
        if len(pending) >= WINDOW:
            for f in pending:
                f.get(30)
            done += len(pending)
            pending = []
    for f in pending:
        f.get(30)
    done += len(pending)
    c.stop()
    out.put(done)


def run_load(ens, kind):
    out = mp.Queue()
    procs = [mp.Process(target=worker, args=(ens.server(1 + k % 3).hosts, kind, SECONDS, "p%d" % k, out))
             for k in range(PROCS)]
    for p in procs:
        p.start()
    total = sum(out.get() for _ in procs)
    for p in procs:
        p.join()
    return total / SECONDS


def failover(ens):
    leader = ens.leader()
    other = next(i for i in (1, 2, 3) if i != leader)
    killed = time.monotonic()
    ens.server(leader).kill()
    while True:
        try:
            c = KazooClient(hosts=ens.server(other).hosts, timeout=5)
            c.start(5)
            c.create("/after-kill")
            c.stop()
            return time.monotonic() - killed
        except Exception:
            time.sleep(0.05)


def measure(kind):
    ens = harness.Ensemble(3, extra={"forceSync": "yes", "snapCount": "100000"}, kind=kind).start()
    try:
        ens.leader(timeout=60)
        c = KazooClient(hosts=ens.hosts, timeout=30)
        c.start(30)
        c.create("/bench")
        for i in range(1000):
            c.create("/bench/r%d" % i, b"x" * 100)
        c.stop()
        w = run_load(ens, "write")
        r = run_load(ens, "read")
        f = failover(ens)
        return w, r, f
    finally:
        ens.close()


if __name__ == "__main__":
    res = {k: measure(k) for k in ("ferrokeeper", "zookeeper")}
    (fw, fr, ff), (zw, zr, zf) = res["ferrokeeper"], res["zookeeper"]
    print("3-server ensembles, fsync on, %d client processes spread over the servers, %.0f s each" % (PROCS, SECONDS))
    print("%-42s %12s %12s %8s" % ("", "ferrokeeper", "zookeeper", "fk/zk"))
    print("%-42s %12.0f %12.0f %8.2f" % ("writes/s (create, 100 B)", fw, zw, fw / zw))
    print("%-42s %12.0f %12.0f %8.2f" % ("reads/s (getData)", fr, zr, fr / zr))
    print("%-42s %12.2f %12.2f %8.2f" % ("leader killed -> first write elsewhere (s)", ff, zf, ff / zf))
