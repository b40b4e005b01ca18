"""Runs `ferrokeeper bench` against a 3-server ZooKeeper 3.8 ensemble and a
3-server ferrokeeper ensemble (same layout, both fsync on, same tickTime),
workload by workload, alternating, and writes docs/BENCHMARKS.md.

    /usr/bin/python3 scripts/bench_vs_zookeeper.py [SECONDS] [WORKLOAD ...]

Then, on fresh ensembles loaded with ZNODES (default 1,000,000) znodes of
100 bytes: resident memory per znode, snapshot size, restart-to-serving
(all three SIGKILLed and started again) and leader SIGKILL -> first write
through another server. ZNODES=0 skips that part; WORKLOAD "none" skips
the workloads.

A report, never a test: numbers depend on the machine and on what else it
runs; the load generator shares the machine with the servers."""
import glob
import json
import os
import threading
import platform
import struct
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
import harness  # noqa: E402

ZNODES = int(os.environ.get("ZNODES", "1000000"))

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


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(f.read().split("VmRSS:")[1].split()[0]) / 1024


def newest_snapshot_mib(srv):
    files = [f for p in ("ferrokeeper-snap/snap-*.snap", "version-2/snapshot.*")
             for f in glob.glob(os.path.join(srv.dir, "data", p))]
    return os.path.getsize(max(files, key=os.path.getmtime)) / 2**20 if files else 0.0


def until(what, f, timeout=600):
    """Seconds until f() succeeds (retried every 20 ms)."""
    t = time.monotonic()
    while True:
        try:
            f()
            return time.monotonic() - t
        except Exception:
            if time.monotonic() - t > timeout:
                raise RuntimeError("gave up waiting for " + what)
            time.sleep(0.02)


def raw_call(port, op, body):
    """One request on a new session; raises unless it succeeds."""
    c = harness.RawConn(port, timeout_ms=6000)
    try:
        if not c.session_id:
            raise RuntimeError("no session")
        c.s.settimeout(5)
        c.request(1, op, body)
        r = c.reply()
        if r is None or r[2] != 0:
            raise RuntimeError("error %s" % (r and r[2]))
    finally:
        c.close()


def read_any(ens, path):
    for s in ens.servers:
        try:
            return raw_call(s.port, 4, harness.jute_str(path) + b"\0")  # getData
        except Exception:
            pass
    raise RuntimeError("no server answered")


def create_on(srv, path):
    body = harness.jute_str(path) + harness.jute_buf(b"") + harness.jute_acl_world_all() + struct.pack(">i", 0)
    raw_call(srv.port, 1, body)


def storage(kind, n):
    """Loads n znodes of 100 bytes into a fresh ensemble, then measures."""
    ens = start(kind)
    try:
        base = [rss_mib(s.proc.pid) for s in ens.servers]
        r = bench(ens, ["-w", "create", "-c", "32", "-i", "8", "--total", str(n), "--keep",
                        "--root", "/m"], 3600)
        created = r["ops"] - sum(r["errors"].values())
        time.sleep(10)  # a snapshot in progress lands
        loaded = [rss_mib(s.proc.pid) for s in ens.servers]
        snap = max(newest_snapshot_mib(s) for s in ens.servers)
        for s in ens.servers:
            s.kill()
        t = time.monotonic()
        threads = [threading.Thread(target=s.start, kwargs={"probe": "srvr"}) for s in ens.servers]
        for th in threads:
            th.start()
        # Serving: a read of a loaded node answers, through any server.
        until("a read after restart", lambda: read_any(ens, "/m/c-0-0"))
        restart = time.monotonic() - t
        for th in threads:
            th.join()
        time.sleep(5)
        restarted = [rss_mib(s.proc.pid) for s in ens.servers]
        leader = ens.leader()
        other = ens.server(next(i for i in (1, 2, 3) if i != leader))
        ens.server(leader).kill()
        failover = until("a write after the leader died", lambda: create_on(other, "/after-kill"))
        per = lambda rss: sum(b - a for a, b in zip(base, rss)) / len(rss) * 2**20 / max(created, 1)
        out = dict(created=created, load_ops=r["ops_per_s"], per_znode_loaded=per(loaded),
                   per_znode_restarted=per(restarted), rss_restarted=sum(restarted) / len(restarted),
                   snap_mib=snap, restart_s=restart, failover_s=failover)
        print(kind, json.dumps(out), flush=True)
        return out
    finally:
        ens.close()


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
    rss = None
    if WORKLOADS:
        rss = race(results)
    stored = {k: storage(k, ZNODES) for k in ("zookeeper", "ferrokeeper")} if ZNODES else None
    write_report(results, rss, stored)


def race(results):
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
    return rss


def write_report(results, rss, stored):
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
    if rss:
        lines += ["", "Resident memory of the three servers at the end: ferrokeeper %d MiB, ZooKeeper %d MiB." % (
            rss["ferrokeeper"], rss["zookeeper"])]
    if stored:
        f, z = stored["ferrokeeper"], stored["zookeeper"]
        lines += ["", "Loaded state (fresh 3-server ensembles, same settings, %d znodes of 100 bytes created with"
                  " `ferrokeeper bench -w create -c 32 -i 8 --total %d --keep`; memory = growth of each server's"
                  " resident set over its empty start, averaged over the three; restart = all three SIGKILLed and"
                  " started together, until a read answers; failover = the leader SIGKILLed, until a new session's"
                  " create succeeds through another server):" % (ZNODES, ZNODES), "",
                  "| measure | ferrokeeper | ZooKeeper | ratio |", "|---|---|---|---|"]
        for name, key, fmt in [("load rate (creates/s)", "load_ops", "%.0f"),
                               ("memory per znode after the load (bytes)", "per_znode_loaded", "%.0f"),
                               ("memory per znode after a restart (bytes)", "per_znode_restarted", "%.0f"),
                               ("resident memory per server after a restart (MiB)", "rss_restarted", "%.0f"),
                               ("newest snapshot on disk (MiB)", "snap_mib", "%.1f"),
                               ("restart to serving (s)", "restart_s", "%.2f"),
                               ("leader killed -> first write (s)", "failover_s", "%.2f")]:
            lines.append("| %s | %s | %s | %.2f |" % (name, fmt % f[key], fmt % z[key],
                                                      f[key] / z[key] if z[key] else float("nan")))
    lines.append("")
    path = os.path.join(ROOT, "docs", "BENCHMARKS.md")
    # The one-write-at-a-time section (scripts/measure_write_latency.py,
    # written by hand from its output) stays as it is.
    kept = ""
    if os.path.exists(path):
        with open(path) as f:
            old = f.read()
        at = old.find(KEPT_SECTION)
        if at >= 0:
            kept = "\n" + old[at:]
    with open(path, "w") as f:
        f.write("\n".join(lines) + kept)
    print("\n".join(lines))


KEPT_SECTION = "## One write at a time"


if __name__ == "__main__":
    main()
