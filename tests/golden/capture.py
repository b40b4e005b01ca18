"""Captures ZooKeeper 3.8's wire bytes for golden tests.

Starts a real ZooKeeper 3.8 (Debian's jars, through the test harness), puts
a recording proxy between it and kazoo, runs one session that uses every op
kazoo speaks (and a few raw ones), and writes `zookeeper-3.8.jsonl`: one
line per exchange with the request and reply frames as hex and the values
each side meant, as kazoo (an independent implementation) parsed them. The
tree crate's golden test builds our encodings from those values and
compares them with ZooKeeper's bytes, and decodes ZooKeeper's bytes into the
same values — so an encoder and a decoder that are wrong the same way
cannot pass together.

Run by hand when adding exchanges: /usr/bin/python3 tests/golden/capture.py
(the test suite reads the committed file; it does not need ZooKeeper).
"""
import json
import os
import socket
import struct
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

import harness  # noqa: E402
from kazoo.client import KazooClient  # noqa: E402
from kazoo.security import make_digest_acl, OPEN_ACL_UNSAFE  # noqa: E402


class Proxy:
    """Relays one port to another and keeps every frame, in order."""

    def __init__(self, target_port):
        self.target = target_port
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.frames = []  # (direction, bytes) with '>' client to server
        self.lock = threading.Lock()
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            c, _ = self.sock.accept()
            s = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self.pump, args=(c, s, ">"), daemon=True).start()
            threading.Thread(target=self.pump, args=(s, c, "<"), daemon=True).start()

    def pump(self, src, dst, direction):
        buf = b""
        while True:
            try:
                d = src.recv(65536)
            except OSError:
                d = b""
            if not d:
                try:
                    dst.shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                return
            buf += d
            while len(buf) >= 4:
                n = struct.unpack(">i", buf[:4])[0]
                if len(buf) < 4 + n:
                    break
                with self.lock:
                    self.frames.append((direction, buf[:4 + n]))
                buf = buf[4 + n:]
            dst.sendall(d)

    def take(self):
        time.sleep(0.3)
        with self.lock:
            out, self.frames = self.frames, []
        return out


def recv_exact(s, n):
    out = b""
    while len(out) < n:
        d = s.recv(n - len(out))
        if not d:
            raise EOFError("connection closed")
        out += d
    return out


def acl_list(acls):
    return [{"perms": a.perms, "scheme": a.id.scheme, "id": a.id.id} for a in acls]


def main():
    zk = harness.Server("zookeeper").start()
    proxy = Proxy(zk.port)
    out = []

    def record(name, meant, frames=None):
        frames = proxy.take() if frames is None else frames
        out.append({"name": name, "meant": meant,
                    "frames": [[d, f.hex()] for d, f in frames]})

    try:
        # A client older than ZooKeeper 3.4's readOnly flag (ClickHouse's
        # own client until 2020) sends none, and ZooKeeper answers it
        # without one: 36 bytes, which such a client checks.
        with socket.create_connection(("127.0.0.1", proxy.port)) as s:
            body = struct.pack(">iqiqi", 0, 0, 20000, 0, 16) + b"\0" * 16
            s.sendall(struct.pack(">i", len(body)) + body)
            (n,) = struct.unpack(">i", recv_exact(s, 4))
            rep = recv_exact(s, n)
        _, negotiated, sid, plen = struct.unpack_from(">iiqi", rep)
        record("connect_old_client", {"timeout_ms": 20000, "session_id": sid,
                                      "passwd": rep[20:20 + plen].hex(),
                                      "negotiated_timeout_ms": negotiated, "read_only": None})
        c = KazooClient(hosts="127.0.0.1:%d" % proxy.port, timeout=30)
        c.start()
        sid, passwd = c.client_id
        record("connect", {"timeout_ms": 30000, "session_id": sid, "passwd": passwd.hex(),
                           "negotiated_timeout_ms": c._session_timeout, "read_only": False})
        record("create", {"path": "/g", "data": b"hello".hex(), "acl": acl_list(OPEN_ACL_UNSAFE),
                          "flags": 0, "reply_path": c.create("/g", b"hello")})
        p, st = c.create("/g/s-", b"", sequence=True, ephemeral=True, include_data=True)
        record("create2", {"path": "/g/s-", "data": "", "acl": acl_list(OPEN_ACL_UNSAFE),
                           "flags": 3, "reply_path": p, "stat": harness.stat_dict(st)})
        record("exists", {"path": "/g", "watch": False, "stat": harness.stat_dict(c.exists("/g"))})
        record("exists_missing", {"path": "/nope", "watch": True, "err": -101,
                                  "stat": c.exists("/nope", watch=lambda e: None)})
        d, st = c.get("/g")
        record("getData", {"path": "/g", "watch": False, "data": d.hex(), "stat": harness.stat_dict(st)})
        st = c.set("/g", b"world", version=0)
        record("setData", {"path": "/g", "data": b"world".hex(), "version": 0, "stat": harness.stat_dict(st)})
        record("getChildren", {"path": "/g", "watch": False, "children": c.get_children("/g")})
        ch, st = c.get_children("/g", include_data=True)
        record("getChildren2", {"path": "/g", "watch": False, "children": ch, "stat": harness.stat_dict(st)})
        acl, st = c.get_acls("/g")
        record("getACL", {"path": "/g", "acl": acl_list(acl), "stat": harness.stat_dict(st)})
        new_acl = [make_digest_acl("u", "p", all=True)]
        st = c.set_acls("/g", new_acl, version=0)
        record("setACL", {"path": "/g", "acl": acl_list(new_acl), "version": 0, "stat": harness.stat_dict(st)})
        c.add_auth("digest", "u:p")
        record("auth", {"scheme": "digest", "auth": b"u:p".hex()})
        record("sync", {"path": "/g", "reply_path": c.sync("/g")})
        t = c.transaction()
        t.create("/g/m", b"m")
        t.set_data("/g", b"x", version=1)
        t.check("/g", 2)
        t.delete("/g/m")
        res = t.commit()
        record("multi", {"results": [r if isinstance(r, str) else (harness.stat_dict(r) if hasattr(r, "czxid") else r)
                                     for r in res]})
        t = c.transaction()
        t.create("/g/n", b"")
        t.delete("/nope")
        res = t.commit()
        record("multi_failed", {"results": [type(r).__name__ if isinstance(r, Exception) else r for r in res]})
        # Ops kazoo has no call for, sent through its connection with
        # bodies and reply parsers of the test harness (Python, not ours).
        p2, st = harness.create_raw(c, 19, "/c", b"", 4)
        record("createContainer", {"path": "/c", "data": "", "acl": acl_list(OPEN_ACL_UNSAFE),
                                   "flags": 4, "reply_path": p2, "stat": harness.stat_dict(st)})
        p2, st = harness.create_raw(c, 21, "/t", b"t", 5, ttl=60000)
        record("createTTL", {"path": "/t", "data": b"t".hex(), "acl": acl_list(OPEN_ACL_UNSAFE),
                             "flags": 5, "ttl": 60000, "reply_path": p2, "stat": harness.stat_dict(st)})
        record("getAllChildrenNumber", {"path": "/g", "count": harness.get_all_children_number(c, "/g")})
        record("getEphemerals", {"path": "/g", "paths": harness.get_ephemerals(c, "/g")})
        record("whoAmI", {"client_info": [list(x) for x in harness.who_am_i(c)]})
        record("addWatch", {"path": "/g", "mode": 1, "err_record": harness.add_watch(c, "/g", 1)})
        harness.call(c, harness.Raw(18, harness.jute_str("/g") + struct.pack(">i", 3), lambda b, o: None))
        record("removeWatches", {"path": "/g", "watcher_type": 3})
        got = harness.multi_read(c, [("data", "/g"), ("children", "/g")])
        record("multiRead", {"data": got[0][0].hex(), "stat": harness.stat_dict(got[0][1]), "children": got[1]})
        c.get("/g", watch=lambda e: None)
        proxy.take()
        st = c.set("/g", b"y")
        record("watch_event", {"type": 3, "state": 3, "path": "/g", "stat": harness.stat_dict(st)})
        c.delete("/g/" + p.split("/")[-1])
        record("delete", {"path": p, "version": -1})
        c.stop()
        c.close()
        record("close", {})
    finally:
        zk.close()
    with open(os.path.join(HERE, "zookeeper-3.8.jsonl"), "w") as f:
        for e in out:
            f.write(json.dumps(e, default=str) + "\n")
    print("wrote %d exchanges" % len(out))


if __name__ == "__main__":
    main()
