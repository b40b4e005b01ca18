"""Closed-loop write latency (issue 23): one connection with one setData
in flight, through the leader and through a follower, 8 connections with
one each, and the lock recipe's cycle (create ephemeral-sequential,
getChildren, delete: one op is the whole cycle) on 1 and 8 connections, against 3-server ZooKeeper 3.8 and ferrokeeper ensembles
on this host, side by side in one run (the rounds alternate), beside the
floor measured on the same disk and loopback (`ferrokeeper floor`): a
512-byte record fdatasync'd in a preallocated log, on two logs at once (a
quorum sharing this disk), and a TCP round trip. Ends with ferrokeeper's own breakdown of
the last one-write-at-a-time round through its leader (`bench --budget`).

    cargo build --release && /usr/bin/python3 scripts/measure_write_latency.py [SECONDS] [ROUNDS] [--busy N]

--busy N: N processes spin at normal priority through the rounds (a busy
machine; the floor is measured after them, on a quiet one).

Prints Markdown tables: medians of the rounds and their spread.
"""
import json
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "python"))
import harness  # noqa: E402


def floor(directory):
    """The floor on this host (`ferrokeeper floor`, its json): fsyncs in
    `directory`, loopback TCP round trips; µs, p50 and p99."""
    r = subprocess.run([harness.BINARY, "floor", "--dir", directory, "--output", "json"],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0:
        raise RuntimeError("floor failed: %s" % r.stderr)
    return json.loads(r.stdout)


def busy_loops(n):
    """`n` processes that spin at normal priority until stopped: a busy
    machine (the servers compete for the cores)."""
    return [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]


def stop(procs):
    for p in procs:
        p.kill()
        p.wait()
    procs.clear()


def bench(hosts, seconds, args, budget=False, tolerate_errors=False):
    cmd = [harness.BINARY, "bench", "--server", hosts, "--output", "json", "-d", str(seconds),
           "--keys", "100"] + args + (["--budget"] if budget else [])
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds * 10 + 120)
    if r.returncode != 0 and not tolerate_errors:
        raise RuntimeError("bench failed: %s" % r.stderr)
    return json.loads(r.stdout)


def serving(kind):
    # fsync on for both: the harness turns ZooKeeper's off (forceSync=no)
    # for the black-box tests.
    ens = harness.Ensemble(3, kind=kind, extra={"forceSync": "yes"})
    ens.start()
    leader = ens.leader(timeout=60)
    harness.wait_until(lambda: all(ens.mode(i) in ("leader", "follower") for i in (1, 2, 3)), timeout=60,
                       what="every server serving")
    follower = next(i for i in (1, 2, 3) if i != leader)
    # Warm-up, not measured: ZooKeeper's JIT, and its first connection
    # after start may be dropped ("unexpected end of file").
    bench(",".join(ens.server(i).hosts for i in (1, 2, 3)), 2, ["-c", "8", "-i", "1", "-w", "set", "--no-progress"],
          tolerate_errors=True)
    return ens, leader, follower


def main():
    args = sys.argv[1:]
    busy = 0
    if "--busy" in args:
        i = args.index("--busy")
        busy = int(args[i + 1])
        del args[i:i + 2]
    seconds = float(args[0]) if len(args) > 0 else 10
    rounds = int(args[1]) if len(args) > 1 else 3
    kinds = ("zookeeper", "ferrokeeper")
    ensembles = {k: serving(k) for k in kinds}
    spinning = []
    try:
        cases = [("1 connection x 1 setData, through the leader", "leader", ["-c", "1", "-i", "1", "-w", "set"]),
                 ("1 connection x 1 setData, through a follower", "follower", ["-c", "1", "-i", "1", "-w", "set"]),
                 ("8 connections x 1 setData, over all servers", "all", ["-c", "8", "-i", "1", "-w", "set"]),
                 ("1 connection x lock cycle, through a follower", "follower", ["-c", "1", "-w", "lock"]),
                 ("8 connections x lock cycle, over all servers", "all", ["-c", "8", "-w", "lock"])]
        results = {}
        budget = None
        spinning += busy_loops(busy)
        for rnd in range(rounds):
            for name, where, args in cases:
                for kind in (kinds if rnd % 2 == 0 else kinds[::-1]):
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
        stop(spinning)
        fl = floor(ensembles["ferrokeeper"][0].server(1).dir)
        print("floor on this host (`ferrokeeper floor`): fdatasync of a 512-byte record in a preallocated log "
              "p50 %.0f µs, p99 %.0f µs; on two logs at once (a quorum of two on this disk) p50 %.0f µs, p99 %.0f µs; "
              "loopback TCP round trip p50 %.0f µs, p99 %.0f µs (between sleeping threads p50 %.0f µs); "
              "quorum fsync + 2 round trips %.0f µs%s\n" % (
                  fl["fsync_p50_us"], fl["fsync_p99_us"], fl["quorum_fsync_p50_us"], fl["quorum_fsync_p99_us"],
                  fl["round_trip_p50_us"], fl["round_trip_p99_us"], fl["woken_round_trip_p50_us"],
                  fl["one_host_p50_us"], "; the rounds ran beside %d spinning processes" % busy if busy else ""))
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
        least = fl["one_host_p50_us"]
        print("\np50 of one write at a time over the floor (quorum fsync + 2 round trips, %.0f µs):" % least)
        for name, _, args in cases[:2]:
            print("- %s: %s" % (name, ", ".join(
                "%s %.2f×" % ("ZooKeeper 3.8" if kind == "zookeeper" else "ferrokeeper",
                              statistics.median(r["latency_us"]["p50"] for r in results[(name, kind)]) / least)
                for kind in kinds)))
        if budget:
            print("\nferrokeeper's breakdown, the last round through its leader (µs: count, p50, p99, p99.9):\n")
            for b in budget:
                print("- %s (%s): %s" % (b["server"], b["state"], ", ".join(
                    "%s %d/%.0f/%.0f/%.0f" % (s, v["count"], v["p50_us"], v["p99_us"], v["p99.9_us"])
                    for s, v in b["stages"].items())))
    finally:
        stop(spinning)
        for ens, _, _ in ensembles.values():
            ens.close()


if __name__ == "__main__":
    main()
