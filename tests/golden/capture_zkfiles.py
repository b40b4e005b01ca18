"""Makes ZooKeeper 3.8 data files for the zkdata crate's tests.

Starts a real ZooKeeper 3.8 (Debian's jars), writes every kind of node and
transaction through kazoo, restarts it (ZooKeeper takes a snapshot at
startup holding everything so far), writes more (only in the log then),
and stops it with a client session still open. The server's `version-2`
files go to `zookeeper-3.8-files/<compression>/` and what kazoo read
before the stop to `expected.json` beside them:

- `nodes`: every znode with its data, ACL and client-visible Stat;
- `open_session`: the id of the session still open, and its ephemerals;
- `snapshot_nodes`: the paths the startup snapshot holds.

Run by hand when the fixtures change: /usr/bin/python3 tests/golden/capture_zkfiles.py
(the tests read the committed files; they do not need ZooKeeper).
"""
import json
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

import harness  # noqa: E402
from kazoo.client import KazooClient  # noqa: E402
from kazoo.security import make_digest_acl, make_acl, OPEN_ACL_UNSAFE  # noqa: E402

OUT = os.path.join(HERE, "zookeeper-3.8-files")


def walk(c):
    return {p: {"data": None if d is None else d.hex(), "stat": st,
                "acl": [{"perms": a[0], "scheme": a[1], "id": a[2]} for a in acl]}
            for p, (d, st, acl) in harness.znodes(c).items()}


def first_phase(c):
    c.create("/app", b"persistent")
    for i in range(3):
        c.create("/app/seq-", b"%d" % i, sequence=True)
    c.create("/app/bin", bytes(range(256)) * 4)
    c.create("/app/null")  # kazoo sends b"" ; a raw null comes below
    harness.create_raw(c, 15, "/app/rawnull", None, 0)
    harness.create_raw(c, 19, "/app/container", b"", 4)
    c.create("/app/container/child", b"c")
    harness.create_raw(c, 21, "/app/ttl", b"t", 5, ttl=3_600_000)
    c.create("/app/digest", b"d", acl=[make_digest_acl("user", "pw", all=True)])
    c.create("/app/ip", b"i", acl=[make_acl("ip", "127.0.0.1", all=True)])
    c.set("/app", b"changed")
    c.set("/app", b"changed again", version=1)
    c.set_acls("/app/bin", OPEN_ACL_UNSAFE, version=0)
    c.create("/app/gone", b"")
    c.delete("/app/gone")
    t = c.transaction()
    t.create("/app/multi", b"m")
    t.set_data("/app", b"by multi")
    t.check("/app/bin", 0)
    t.commit()
    t = c.transaction()
    t.create("/app/never", b"")
    t.delete("/app/missing")
    t.commit()  # fails: an error txn per op
    big = bytes(range(256)) * 64  # 16 KiB; near-1 MB values are for the end-to-end test
    c.create("/app/big", big)


def main():
    for method in ("none", "gz", "snappy"):
        extra = {"snapCount": "1000000", "preAllocSize": "16", "forceSync": "yes"}
        if method != "none":
            # ZooKeeper makes an unknown zoo.cfg key a "zookeeper."
            # system property: zookeeper.snapshot.compression.method.
            extra["snapshot.compression.method"] = method
        zk = harness.Server("zookeeper", extra=extra)
        zk.start()
        try:
            hosts = "127.0.0.1:%d" % zk.port
            c = KazooClient(hosts=hosts, timeout=30)
            c.start()
            first_phase(c)
            # A session that closes, taking its ephemerals with it.
            closing = KazooClient(hosts=hosts, timeout=30)
            closing.start()
            closing.create("/app/eph-closed", b"", ephemeral=True)
            closing.stop()
            closing.close()
            c.stop()
            c.close()
            zk.stop()
            zk.start()  # ZooKeeper snapshots at startup: everything so far
            c = KazooClient(hosts=hosts, timeout=30, auth_data=[("digest", "user:pw")])
            c.start()
            snapshot_nodes = sorted(walk(c))
            keep = KazooClient(hosts=hosts, timeout=60)
            keep.start()
            keep.create("/app/eph", b"mine", ephemeral=True)
            keep.create("/app/eph-seq-", b"", ephemeral=True, sequence=True)
            c.set("/app/multi", b"after the snapshot")
            c.delete("/app/container/child")
            c.create("/app/late", b"late")
            time.sleep(0.5)
            nodes = walk(c)
            c.stop()
            c.close()
            sid = keep.client_id[0]
            zk.kill()  # keep's session stays open in the files
            keep.stop()
            keep.close()
            dest = os.path.join(OUT, method)
            shutil.rmtree(dest, True)
            os.makedirs(dest)
            for sub in ("data", "datalog"):
                src = os.path.join(zk.dir, sub, "version-2")
                if os.path.isdir(src):
                    for f in os.listdir(src):
                        shutil.copy(os.path.join(src, f), os.path.join(dest, f))
        finally:
            zk.close()
        with open(os.path.join(dest, "expected.json"), "w") as f:
            json.dump({"nodes": nodes, "snapshot_nodes": snapshot_nodes,
                       "open_session": {"id": sid, "ephemerals": sorted(
                           p for p, n in nodes.items() if n["stat"]["ephemeralOwner"] == sid)}},
                      f, indent=1, sort_keys=True)
        print("%s: %s" % (method, sorted(os.listdir(dest))))


if __name__ == "__main__":
    main()
