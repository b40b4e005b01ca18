"""Runs `ferrokeeper bench` against a 3-server ZooKeeper 3.8 ensemble and a
3-server ferrokeeper ensemble (same layout, both fsync on, same tickTime),
workload by workload, alternating, and writes docs/BENCHMARKS.md.

    /usr/bin/python3 scripts/bench_vs_zookeeper.py [SECONDS] [WORKLOAD ...]

A report, never a test: numbers depend on the machine and on what else it
runs; the load generator shares the machine with the servers."""
import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
import harness  # noqa: E402

SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 10
# (name, bench arguments)
WORKLOADS = [
    ("create", ["-w", "create", "-c", "32", "-i", "8"]),
    ("setData", ["-w", "set", "-c", "32", "-i", "8"]),
    ("getData", ["-w", "get", "-c", "32", "-i", "8"]),
    ("exists", ["-w", "exists", "-c", "32", "-i", "8"]),
    ("mixed 90% read", ["-w", "mixed:90", "-c", "32", "-i", "8"]),
    ("getChildren (1,000 children)", ["-w", "children", "-c", "32", "-i", "4"]),
    ("multi (create+set+delete)", ["-w", "multi", "-c", "32", "-i", "8"]),
    ("create, 1 in flight (latency)", ["-w", "create", "-c", "32", "-i", "1"]),
    ("getData, 1 in flight (latency)", ["-w", "get", "-c", "32", "-i", "1"]),
    ("session churn (connect, ephemeral, close)", ["-w", "ephemeral", "-c", "8"]),
    ("watch fan-out (32 watchers)", ["-w", "watch", "-c", "33"]),
    ("setData 512 KiB values", ["-w", "set", "-c", "4", "-i", "2", "--value-size", "524288", "--keys", "8"]),
]
if len(sys.argv) > 2:
    WORKLOADS = [w for w in WORKLOADS if w[0] in sys.argv[2:] or w[1][1] in sys.argv[2:]]


def bench(ens, args, seconds):
    pids = ",".join(str(s.proc.pid) for s in ens.servers)
    cmd = [harness.BINARY, "bench", "--server", ens.hosts, "-d", str(seconds), "--output", "json",
           "--pids", pids] + args
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise RuntimeError("bench failed: %s" % r.stderr)
    return json.loads(r.stdout)


def start(kind):
    # Same layout and settings for both: fsync on, tickTime 2000.
    ens = harness.Ensemble(3, extra={"forceSync": "yes", "tickTime": "2000"}, kind=kind)
    ens.start()
    ens.serving_follower()
    return ens


def main():
    results = {}
    for kind in ("zookeeper", "ferrokeeper"):
        results[kind] = {}
    ensembles = {k: start(k) for k in ("zookeeper", "ferrokeeper")}
    try:
        # Warm-up (ZooKeeper's JIT): a short create run against each.
        for kind, ens in ensembles.items():
            bench(ens, ["-w", "create", "-c", "16", "-i", "8"], 5)
        for name, args in WORKLOADS:
            # Alternate which system goes first.
            order = ("zookeeper", "ferrokeeper") if len(results["zookeeper"]) % 2 == 0 else ("ferrokeeper", "zookeeper")
            for kind in order:
                r = bench(ensembles[kind], args, SECONDS)
                results[kind][name] = r
                print("%-45s %-12s %10.0f ops/s  p99 %8.3f ms  cpu %s us/op  errors %s" % (
                    name, kind, r["ops_per_s"], r["latency_us"]["p99"] / 1000.0,
                    "%.1f" % r["server_cpu_us_per_op"] if r["server_cpu_us_per_op"] else "-",
                    sum(r["errors"].values())), flush=True)
        rss = {k: sum(int(open("/proc/%d/status" % s.proc.pid).read().split("VmRSS:")[1].split()[0])
                      for s in e.servers) // 1024 for k, e in ensembles.items()}
    finally:
        if os.environ.get("KEEP_LOGS"):
            for i, srv in enumerate(ensembles["ferrokeeper"].servers, start=1):
                with open("/tmp/fk-server%d.log" % i, "w") as f:
                    f.write(srv.log())
        for e in ensembles.values():
            e.close()
    write_report(results, rss)


def write_report(results, rss):
    zk_version = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "zookeeper"], capture_output=True,
                                text=True).stdout or "?"
    fk_version = subprocess.run([harness.BINARY, "version"], capture_output=True, text=True).stdout.strip()
    cpu = open("/proc/cpuinfo").read().split("model name")[1].split("\n")[0].strip(": \t")
    lines = [
        "# Benchmarks: ferrokeeper vs ZooKeeper 3.8",
        "",
        "Made by `/usr/bin/python3 scripts/bench_vs_zookeeper.py %g` (or `scripts/bench-vs-zookeeper.sh`)"
        " on %s, %s, %d cores, %s. ZooKeeper: Debian's `zookeeper` %s; %s." % (
            SECONDS, time.strftime("%Y-%m-%d"), platform.machine(), os.cpu_count(), cpu, zk_version, fk_version),
        "",
        "Both are 3-server ensembles on this one host (like `conf/zoo1.cfg`..`zoo3.cfg`), fsync on (`forceSync=yes`),"
        " tickTime 2000; the load generator is `ferrokeeper bench` for both, connections spread over the three"
        " servers, and it shares the machine's cores with the six server processes. Each workload ran %g s against"
        " each system, alternating which went first, after a 5 s warm-up. Ratio = ferrokeeper / ZooKeeper"
        " (throughput: higher is better for ferrokeeper above 1; latency and CPU: lower is better below 1)." % SECONDS,
        "",
        "| workload | ferrokeeper ops/s | ZooKeeper ops/s | ratio | p99 ms fk / zk | p99.9 ms fk / zk | server CPU µs/op fk / zk | errors fk / zk |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, _ in WORKLOADS:
        f, z = results["ferrokeeper"].get(name), results["zookeeper"].get(name)
        if not f or not z:
            continue
        cpu_f, cpu_z = f["server_cpu_us_per_op"], z["server_cpu_us_per_op"]
        lines.append("| %s | %.0f | %.0f | %.2f | %.2f / %.2f | %.2f / %.2f | %s / %s | %d / %d |" % (
            name, f["ops_per_s"], z["ops_per_s"], f["ops_per_s"] / max(z["ops_per_s"], 1e-9),
            f["latency_us"]["p99"] / 1000, z["latency_us"]["p99"] / 1000,
            f["latency_us"]["p99.9"] / 1000, z["latency_us"]["p99.9"] / 1000,
            "%.0f" % cpu_f if cpu_f else "-", "%.0f" % cpu_z if cpu_z else "-",
            sum(f["errors"].values()), sum(z["errors"].values())))
    lines += ["", "Resident memory of the three servers at the end: ferrokeeper %d MiB, ZooKeeper %d MiB." % (
        rss["ferrokeeper"], rss["zookeeper"]), "",
        "Memory per znode at 1,000,000 znodes, restart-to-serving and snapshot size: `scripts/measure_storage.py`"
        " (numbers in the README); leader failover: `scripts/measure_ensemble.py`.", ""]
    path = os.path.join(ROOT, "docs", "BENCHMARKS.md")
    with open(path, "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
