"""Side-by-side storage measurements, ferrokeeper vs ZooKeeper 3.8, both
with fsync on (forceSync=yes) and the same snapCount, in one run:

- write latency of synchronous creates (one at a time, fsync each), p50/p99;
- load N znodes of 100 bytes (pipelined), then SIGKILL and restart:
  time until the server answers a read, resident memory after recovery,
  snapshot bytes on disk.

A measuring tool, not a test: it asserts nothing about speed.
Usage: /usr/bin/python3 scripts/measure_storage.py [N [KINDS]]
  N defaults to 1000000; KINDS is ferrokeeper,zookeeper by default.
"""
import glob
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python"))
import harness  # noqa: E402
from kazoo.client import KazooClient  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
PAYLOAD = b"x" * 100


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def snapshot_bytes(srv):
    pats = [os.path.join(srv.dir, "data", "ferrokeeper-snap", "snap-*.snap"),
            os.path.join(srv.dir, "data", "version-2", "snapshot.*")]
    files = [f for p in pats for f in glob.glob(p)]
    newest = max(files, key=os.path.getmtime) if files else None
    return (os.path.getsize(newest) if newest else 0), len(files)


def latency(c, n=2000):
    c.ensure_path("/lat")
    samples = []
    for i in range(n):
        t = time.perf_counter()
        c.create("/lat/n%d" % i, PAYLOAD)
        samples.append((time.perf_counter() - t) * 1000)
    samples.sort()
    return samples[len(samples) // 2], samples[int(len(samples) * 0.99)]


def load(c, n):
    c.ensure_path("/load")
    t = time.perf_counter()
    window = []
    for i in range(n):
        window.append(c.create_async("/load/n%d" % i, PAYLOAD))
        if len(window) >= 2000:
            for f in window:
                f.get(60)
            window = []
    for f in window:
        f.get(60)
    return n / (time.perf_counter() - t)


def measure(kind):
    srv = harness.Server(kind, extra={"snapCount": "100000", "forceSync": "yes"}).start()
    try:
        c = KazooClient(hosts=srv.hosts, timeout=30)
        c.start(30)
        p50, p99 = latency(c)
        rate = load(c, N)
        c.stop()
        time.sleep(2)  # let a snapshot in progress finish
        rss_loaded = rss_mib(srv.proc.pid)
        srv.kill()
        t = time.perf_counter()
        srv.start()
        c = KazooClient(hosts=srv.hosts, timeout=120)
        c.start(300)
        c.get("/load/n%d" % (N - 1))
        recovery = time.perf_counter() - t
        rss = rss_mib(srv.proc.pid)
        snap, nsnaps = snapshot_bytes(srv)
        c.stop()
        return dict(p50=p50, p99=p99, rate=rate, recovery=recovery, rss=rss, rss_loaded=rss_loaded,
                    snap_mib=snap / 2**20, nsnaps=nsnaps)
    finally:
        srv.close()


if __name__ == "__main__":
    kinds = sys.argv[2].split(",") if len(sys.argv) > 2 else ["ferrokeeper", "zookeeper"]
    results = {k: measure(k) for k in kinds}
    empty = dict.fromkeys(["p50", "p99", "rate", "recovery", "rss", "rss_loaded", "snap_mib"], 0.0)
    f, z = results.get("ferrokeeper", empty), results.get("zookeeper", empty)
    print("N = %d znodes of %d bytes, fsync on, snapCount 100000" % (N, len(PAYLOAD)))
    rows = [("sync create p50 (ms)", "p50"), ("sync create p99 (ms)", "p99"),
            ("pipelined load (creates/s)", "rate"), ("recovery to first read (s)", "recovery"),
            ("RSS after recovery (MiB)", "rss"), ("RSS after load (MiB)", "rss_loaded"),
            ("newest snapshot (MiB)", "snap_mib")]
    print("%-30s %14s %14s %9s" % ("", "ferrokeeper", "zookeeper", "fk/zk"))
    for name, k in rows:
        ratio = f[k] / z[k] if z[k] else float("nan")
        print("%-30s %14.2f %14.2f %9.2f" % (name, f[k], z[k], ratio))
