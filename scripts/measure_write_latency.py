"""Closed-loop write latency (issue 23): one connection with one setData
in flight, through the leader and through a follower, 8 connections with
one each, and the lock recipe's cycle (create ephemeral-sequential,
getChildren, delete: one op is the whole cycle) on 1 and 8 connections, against 3-server ZooKeeper 3.8 and ferrokeeper ensembles
on this host, side by side in one run (the rounds alternate), beside the
floor measured on the same disk and loopback: a 512-byte append with
fdatasync, and a TCP round trip. Ends with ferrokeeper's own breakdown of
the last one-write-at-a-time round through its leader (`bench --budget`).

    cargo build --release && /usr/bin/python3 scripts/measure_write_latency.py [SECONDS] [ROUNDS]

Prints Markdown tables: medians of the rounds and their spread.
"""
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "python"))
import harness  # noqa: E402


def fsync_probe(directory, n=2000):
    """µs of a 512-byte append and fdatasync: p50, p99."""
    path = os.path.join(directory, "fsync-probe")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    took = []
    try:
        for _ in range(n):
            t = time.perf_counter()
            os.write(fd, b"x" * 512)
            os.fdatasync(fd)
            took.append((time.perf_counter() - t) * 1e6)
    finally:
        os.close(fd)
        os.unlink(path)
    took.sort()
    return took[len(took) // 2], took[len(took) * 99 // 100]


def loopback_probe(n=2000):
    """µs of a TCP round trip over loopback (8 bytes each way): p50, p99."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)

    def echo():
        c, _ = srv.accept()
        c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        while True:
            b = c.recv(8)
            if not b:
                return
            c.sendall(b)
    threading.Thread(target=echo, daemon=True).start()
    c = socket.create_connection(srv.getsockname())
    c.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    took = []
    for _ in range(n):
        t = time.perf_counter()
        c.sendall(b"12345678")
        c.recv(8)
        took.append((time.perf_counter() - t) * 1e6)
    c.close()
    srv.close()
    took.sort()
    return took[len(took) // 2], took[len(took) * 99 // 100]


def bench(hosts, seconds, args, budget=False):
    cmd = [harness.BINARY, "bench", "--server", hosts, "--output", "json", "-d", str(seconds),
           "--keys", "100"] + args + (["--budget"] if budget else [])
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 10 + 120)
    if r.returncode != 0:
        raise RuntimeError("bench failed: %s" % r.stderr)
    return json.loads(r.stdout)


def serving(kind):
    ens = harness.Ensemble(3, kind=kind)
    ens.start()
    leader = ens.leader(timeout=60)
    harness.wait_until(lambda: all(ens.mode(i) in ("leader", "follower") for i in (1, 2, 3)), timeout=60,
                       what="every server serving")
    follower = next(i for i in (1, 2, 3) if i != leader)
    return ens, leader, follower


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    kinds = ("zookeeper", "ferrokeeper")
    ensembles = {k: serving(k) for k in kinds}
    try:
        cases = [("1 connection x 1 setData, through the leader", "leader", ["-c", "1", "-i", "1", "-w", "set"]),
                 ("1 connection x 1 setData, through a follower", "follower", ["-c", "1", "-i", "1", "-w", "set"]),
                 ("8 connections x 1 setData, over all servers", "all", ["-c", "8", "-i", "1", "-w", "set"]),
                 ("1 connection x lock cycle, through a follower", "follower", ["-c", "1", "-w", "lock"]),
                 ("8 connections x lock cycle, over all servers", "all", ["-c", "8", "-w", "lock"])]
        results = {}
        budget = None
        for _ in range(rounds):
            for name, where, args in cases:
                for kind in kinds:
                    ens, leader, follower = ensembles[kind]
                    first = {"leader": [leader], "follower": [follower], "all": []}[where]
                    order = first + [i for i in (1, 2, 3) if i not in first]
                    hosts = ",".join(ens.server(i).hosts for i in order)
                    want_budget = kind == "ferrokeeper" and where == "leader"
                    r = bench(hosts, seconds, args + ["--no-progress"], want_budget)
                    if r["errors"]:
                        raise RuntimeError("%s %s: errors %s" % (kind, name, r["errors"]))
                    if want_budget:
                        budget = r["budget"]
                    results.setdefault((name, kind), []).append(r)
        fs = fsync_probe(ensembles["ferrokeeper"][0].server(1).dir)
        lo = loopback_probe()
        print("floor on this host: fdatasync of a 512-byte append p50 %.0f µs, p99 %.0f µs; "
              "loopback TCP round trip p50 %.0f µs, p99 %.0f µs\n" % (fs[0], fs[1], lo[0], lo[1]))
        print("| %.0f s x %d rounds, medians (range) | | ops/s | p50 ms | p99 ms | p99.9 ms |" % (seconds, rounds))
        print("|---|---|---|---|---|---|")
        for name, _, _ in cases:
            med = {}
            for kind in kinds:
                rs = results[(name, kind)]
                cells = []
                for key in ("ops_per_s", "p50", "p99", "p99.9"):
                    vals = [r["ops_per_s"] if key == "ops_per_s" else r["latency_us"][key] / 1000 for r in rs]
                    med[(kind, key)] = statistics.median(vals)
                    fmt = "%.0f (%.0f–%.0f)" if key == "ops_per_s" else "%.3f (%.3f–%.3f)"
                    cells.append(fmt % (statistics.median(vals), min(vals), max(vals)))
                print("| %s | %s | %s |" % (name, "ZooKeeper 3.8" if kind == "zookeeper" else "ferrokeeper",
                                            " | ".join(cells)))
            print("| | ratio | %.2f | %.2f | %.2f | %.2f |" % tuple(
                (med[("ferrokeeper", k)] / med[("zookeeper", k)]) if med[("zookeeper", k)] else float("nan")
                for k in ("ops_per_s", "p50", "p99", "p99.9")))
        if budget:
            print("\nferrokeeper's breakdown, the last round through its leader (µs: count, p50, p99, p99.9):\n")
            for b in budget:
                print("- %s (%s): %s" % (b["server"], b["state"], ", ".join(
                    "%s %d/%.0f/%.0f/%.0f" % (s, v["count"], v["p50_us"], v["p99_us"], v["p99.9_us"])
                    for s, v in b["stages"].items())))
    finally:
        for ens, _, _ in ensembles.values():
            ens.close()


if __name__ == "__main__":
    main()
