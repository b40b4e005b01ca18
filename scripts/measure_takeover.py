"""Measures a takeover (README, "Migrating from ZooKeeper"): N znodes of
100 bytes (default 1,000,000) written into a ZooKeeper 3.8 by `ferrokeeper
bench`, ZooKeeper stopped; then the time from start to serving of
ferrokeeper taking those files over, of ferrokeeper restarting on its own
files, and of ZooKeeper 3.8 restarting on its untouched files.

    cargo build --release && /usr/bin/python3 scripts/measure_takeover.py   # N=100000 for a quick run
"""
import os, re, subprocess, sys, time
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "python"))
import harness
N = int(os.environ.get("N", "1000000"))
zk = harness.Server("zookeeper", extra={"snapCount": "100000", "forceSync": "yes"})
zk.start()
try:
    out = subprocess.run([harness.BINARY, "bench", "--server", zk.hosts, "-w", "create", "-c", "32", "-i", "16",
                          "-d", "600", "--total", str(N), "--keep", "--no-progress", "--value-size", "100"],
                         capture_output=True, text=True)
    print(out.stdout[-900:], out.stderr[-300:])
    print(harness.four_letter(zk.port, "srvr"))
    zk.stop()
    du = subprocess.run(["du", "-sh", os.path.join(zk.dir, "data"), os.path.join(zk.dir, "datalog")], capture_output=True, text=True).stdout
    print(du)
    fk = harness.Server("ferrokeeper")
    fk.cfg, fk.port = zk.cfg, zk.port
    t = time.monotonic(); fk.start(); fk_s = time.monotonic() - t
    print("ferrokeeper takeover to serving: %.1f s" % fk_s)
    print(harness.four_letter(fk.port, "srvr"))
    print("\n".join(l for l in fk.log().splitlines() if "took over" in l or "loaded" in l or "applied" in l))
    fk.stop()
    snaps = sorted(os.path.join(zk.dir, "data", "ferrokeeper-snap", f)
                   for f in os.listdir(os.path.join(zk.dir, "data", "ferrokeeper-snap")) if f.endswith(".snap"))
    print("ferrokeeper snapshot: %.1f MB (%s)" % (os.path.getsize(snaps[-1]) / 1e6, os.path.basename(snaps[-1])))
    t = time.monotonic(); fk.start(); fk2 = time.monotonic() - t
    print("ferrokeeper restart on its own files to serving: %.1f s" % fk2)
    fk.stop()
    fk.close()
    # ZooKeeper restarting on its own (untouched) files, to serving.
    t = time.monotonic(); zk.start(); zk_s = time.monotonic() - t
    print("zookeeper restart to serving: %.1f s" % zk_s)
    print(harness.four_letter(zk.port, "srvr"))
    zk.stop()
finally:
    zk.close()
