"""What linearizable reads (`linearizableReads=true`, issue 19) cost:
three 3-server ensembles on this host in one run — ZooKeeper 3.8,
ferrokeeper, ferrokeeper with linearizableReads — each fsyncing, and
`ferrokeeper bench` reading through one follower (where a read index is a
round trip to the leader and a heartbeat round) and a mixed load through
all three servers.

    cargo build --release && /usr/bin/python3 scripts/measure_linearizable_reads.py [SECONDS]

Prints a Markdown table: ops/s and p99 per workload and ensemble, and the
ratio linearizable / plain ferrokeeper.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "python"))
sys.path.insert(0, HERE)
import harness  # noqa: E402
from bench_tls import bench  # noqa: E402

# (workload, connections, in flight, through): one follower, or all.
WORKLOADS = [("get", 32, 8, "follower"), ("get", 1, 1, "follower"), ("mixed:90", 32, 8, "all")]
ENSEMBLES = [("ZooKeeper 3.8", "zookeeper", {}), ("ferrokeeper", "ferrokeeper", {}),
             ("ferrokeeper linearizable", "ferrokeeper", {"linearizableReads": "true"})]


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10
    results = {}
    for name, kind, extra in ENSEMBLES:
        ens = harness.Ensemble(3, kind=kind, extra=dict(extra, forceSync="yes", maxClientCnxns="0"))
        try:
            ens.start()
            follower = ens.serving_follower()
            for w, c, i, through in WORKLOADS:
                hosts = follower.hosts if through == "follower" else ens.hosts
                results[(name, w, c)] = bench(None, w, c, i, seconds, hosts=hosts)
        finally:
            ens.close()
    names = [n for n, _, _ in ENSEMBLES]
    print("| workload | " + " | ".join("%s ops/s (p99 ms)" % n for n in names) + " | linearizable / ferrokeeper |")
    print("|---" * (len(names) + 2) + "|")
    for w, c, i, through in WORKLOADS:
        cells = ["%.0f (%.2f)" % results[(n, w, c)] for n in names]
        ratio = results[(names[2], w, c)][0] / results[(names[1], w, c)][0]
        print("| %s, %d × %d, through %s | %s | %.2f |" % (w, c, i, through, " | ".join(cells), ratio))


if __name__ == "__main__":
    main()
