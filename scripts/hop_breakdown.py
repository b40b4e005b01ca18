"""Where one write at a time spends its time, hop by hop, over a whole
ensemble on one host (issue 23). Run the servers with FERROKEEPER_HOPS=DIR
(each writes DIR/server-<id>.hops: CLOCK_MONOTONIC ns, hop, log index; see
crates/server/src/hops.rs), drive one connection with one write in flight
through the leader, stop them, then:

    /usr/bin/python3 scripts/hop_breakdown.py DIR [--json]

The leader is the server that answered most writes. Prints, for the
middle 80% of the writes it answered, each hop's p50/p90/p99 in µs, in the
order a write crosses them, and the server's total (request read to
answer flushed). The instrumented servers are a little slower than
uninstrumented ones: read the hops against each other.
"""
import bisect
import collections
import glob
import json
import os
import sys


# The hops a write crosses, in order; those beside the path (in parallel
# with it, or sums of others); the totals.
PATH = [
    "leader: request read -> proposed (handed to its log thread)",
    "leader: append handed to the link -> flushed (first follower)",
    "wire: leader's flush -> follower read it",
    "follower: read -> core took it",
    "follower: core took it -> its log write prepared",
    "follower: prepared -> write began (its core when idle, else its log thread)",
    "follower: write + fdatasync",
    "follower: fsync done -> acknowledgement flushed",
    "wire: follower's flush -> leader read it",
    "leader: read the acknowledgement -> core took it",
    "leader: core took it -> commit",
    "leader: commit -> answer",
    "leader: answer -> flushed to the client",
]
ASIDE = [
    "(leader: handed -> log thread started)",
    "(leader: write + fdatasync)",
    "(follower: read the append -> acknowledgement flushed)",
]
TOTALS = [
    "server total: request read -> answer flushed",
    "client: answer flushed -> its next request read",
]


def load(directory):
    servers = {}
    for path in glob.glob(os.path.join(directory, "*.hops")):
        hops = collections.defaultdict(list)
        with open(path) as f:
            for line in f:
                p = line.split()
                if len(p) == 3:
                    hops[p[1]].append((int(p[0]), int(p[2])))
        servers[os.path.basename(path)[:-5]] = hops
    return servers


def first_by_index(hops, name):
    out = {}
    for t, i in hops.get(name, []):
        out.setdefault(i, t)
    return out


def all_by_index(hops, name):
    out = collections.defaultdict(list)
    for t, i in hops.get(name, []):
        out[i].append(t)
    return out


def breakdown(servers):
    """{hop: [µs, ...]} over the writes the leader answered."""
    if not servers:
        raise SystemExit("no .hops files")
    leader_name = max(servers, key=lambda s: len(servers[s].get("answer", [])))
    L = servers[leader_name]
    followers = [servers[s] for s in servers if s != leader_name]
    persist, out = first_by_index(L, "persist"), first_by_index(L, "core_out_append")
    flushed = all_by_index(L, "flushed_append")
    disk_start, disk_done = first_by_index(L, "disk_start"), first_by_index(L, "disk_done")
    acks_read, acks_in = all_by_index(L, "read_ack"), all_by_index(L, "core_in_ack")
    answers = first_by_index(L, "answer")
    commits = sorted(L.get("commit", []), key=lambda c: c[1])
    commit_index = [c[1] for c in commits]
    conn_in = sorted(t for t, _ in L.get("conn_in", []))
    conn_out = sorted(t for t, _ in L.get("conn_out", []))
    F = [{k: first_by_index(f, h) for k, h in (
        ("read", "read_append"), ("core_in", "core_in_append"), ("persist", "persist"),
        ("disk_start", "disk_start"), ("disk_done", "disk_done"), ("flushed", "flushed_ack"))}
        for f in followers]
    rows = collections.OrderedDict((k, []) for k in PATH + ASIDE + TOTALS)
    answered = sorted(answers)
    cut = len(answered) // 10
    for i in answered[cut:len(answered) - cut]:
        if i not in persist:
            continue
        k = bisect.bisect_right(conn_in, persist[i]) - 1
        if k < 0:
            continue
        t0 = conn_in[k]
        rows["leader: request read -> proposed (handed to its log thread)"].append(persist[i] - t0)
        ws = sorted(flushed.get(i, []))
        if ws and i in out:
            rows["leader: append handed to the link -> flushed (first follower)"].append(ws[0] - out[i])
        if i in disk_start and i in disk_done:
            rows["(leader: handed -> log thread started)"].append(disk_start[i] - persist[i])
            rows["(leader: write + fdatasync)"].append(disk_done[i] - disk_start[i])
        for f in F:
            if not all(i in f[k] for k in f):
                continue
            before = [w for w in ws if w <= f["read"][i]]
            if before:
                rows["wire: leader's flush -> follower read it"].append(f["read"][i] - before[-1])
            rows["follower: read -> core took it"].append(f["core_in"][i] - f["read"][i])
            rows["follower: core took it -> its log write prepared"].append(f["persist"][i] - f["core_in"][i])
            rows["follower: prepared -> write began (its core when idle, else its log thread)"].append(f["disk_start"][i] - f["persist"][i])
            rows["follower: write + fdatasync"].append(f["disk_done"][i] - f["disk_start"][i])
            rows["follower: fsync done -> acknowledgement flushed"].append(f["flushed"][i] - f["disk_done"][i])
            rows["(follower: read the append -> acknowledgement flushed)"].append(f["flushed"][i] - f["read"][i])
            back = [r for r in acks_read.get(i, []) if r >= f["flushed"][i]]
            if back:
                rows["wire: follower's flush -> leader read it"].append(min(back) - f["flushed"][i])
        rs, cs = sorted(acks_read.get(i, [])), sorted(acks_in.get(i, []))
        if rs and cs:
            rows["leader: read the acknowledgement -> core took it"].append(cs[0] - rs[0])
        j = bisect.bisect_left(commit_index, i)
        if j < len(commits):
            if cs:
                rows["leader: core took it -> commit"].append(commits[j][0] - cs[0])
            rows["leader: commit -> answer"].append(answers[i] - commits[j][0])
        k2 = bisect.bisect_left(conn_out, answers[i])
        if k2 < len(conn_out):
            rows["leader: answer -> flushed to the client"].append(conn_out[k2] - answers[i])
            rows["server total: request read -> answer flushed"].append(conn_out[k2] - t0)
            k3 = bisect.bisect_right(conn_in, conn_out[k2])
            if k3 < len(conn_in):
                rows["client: answer flushed -> its next request read"].append(conn_in[k3] - conn_out[k2])
    return leader_name, rows


def quantiles(v):
    v = sorted(v)
    return {q: v[min(len(v) - 1, int(len(v) * f))] / 1000 for q, f in (("p50", .5), ("p90", .9), ("p99", .99))}


def main():
    args = [a for a in sys.argv[1:] if a != "--json"]
    if len(args) != 1:
        raise SystemExit(__doc__)
    leader, rows = breakdown(load(args[0]))
    table = {k: dict(count=len(v), **quantiles(v)) for k, v in rows.items() if v}
    if "--json" in sys.argv:
        print(json.dumps({"leader": leader, "hops": table}, indent=1))
        return
    print("leader: %s; µs over the middle 80%% of its answered writes\n" % leader)
    print("| hop | count | p50 | p90 | p99 |")
    print("|---|---|---|---|---|")
    for k, q in table.items():
        print("| %s | %d | %.1f | %.1f | %.1f |" % (k, q["count"], q["p50"], q["p90"], q["p99"]))


if __name__ == "__main__":
    main()
