"""Starts ferrokeeper and Apache ZooKeeper 3.8 servers for black-box tests.

Every server gets free ports and its own temporary directory; a test
kills only the processes it started. Run with Debian's /usr/bin/python3
(python3-kazoo lives there).
"""
import os
import random
import shutil
import socket
import struct
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BINARY = os.environ.get("FERROKEEPER_BIN", os.path.join(ROOT, "target", "release", "ferrokeeper"))
# Debian's zookeeper.jar names the Netty jars it needs in its manifest but
# for three that ZooKeeper's TLS (NettyServerCnxnFactory, the Netty client
# socket) loads too.
ZK_CLASSPATH = ":".join(["/etc/zookeeper/conf", "/usr/share/java/zookeeper.jar"] + [
    "/usr/share/java/netty-%s.jar" % j for j in ("codec", "resolver", "transport-native-unix-common")])
ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"
# A reference ZooKeeper 3.9.5 (scripts/get_zookeeper_3.9.sh fetches it;
# scripts/test.sh does), with Debian's Jetty 9.4 for its AdminServer.
ZK39_DIR = os.environ.get("FK_ZOOKEEPER_39", os.path.join(
    os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "ferrokeeper", "zookeeper-3.9.5"))
HAVE_ZK39 = os.path.exists(os.path.join(ZK39_DIR, "zookeeper-3.9.5.jar"))
ZK39_CLASSPATH = ":".join(
    [os.path.join(ZK39_DIR, j) for j in sorted(os.listdir(ZK39_DIR)) if j.endswith(".jar") and (
        j.startswith(("zookeeper-", "slf4j-api", "audience-", "commons-io", "snappy-", "metrics-core", "jackson-"))
        or any(j.startswith("netty-%s-4" % n) for n in (
            "buffer", "codec", "codec-base", "common", "handler", "resolver", "transport",
            "transport-native-unix-common", "transport-classes-epoll")))]
    + ["/usr/share/java/%s.jar" % j for j in (
        "jetty9-server", "jetty9-servlet", "jetty9-util", "jetty9-http", "jetty9-io", "jetty9-security",
        "servlet-api", "jetty9-util-ajax")]) if HAVE_ZK39 else None


def _port_range():
    """Ports below the kernel's ephemeral range: outgoing connections
    (peers dialing each other, clients) never take those, so a port found
    free stays free until the server binds it."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 32768
    return max(1024, low - 12000), low


_given = set()


def free_port():
    """A port no other server of this test run was given, free right now."""
    lo, hi = _port_range()
    rnd = random.Random()
    for _ in range(10000):
        p = rnd.randrange(lo, hi)
        if p in _given:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", p))
            except OSError:
                continue
        _given.add(p)
        return p
    raise RuntimeError("no free port in %d-%d" % (lo, hi))


def four_letter(port, cmd, timeout=5.0):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(cmd.encode())
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            b = s.recv(4096)
            if not b:
                return out.decode()
            out += b


def tmpfs(test, size):
    """A tmpfs of `size` (e.g. "8m") mounted for `test` and unmounted after
    it; skips the test where mounting is not allowed (not root)."""
    mnt = tempfile.mkdtemp(prefix="fk-tmpfs-")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=" + size, "tmpfs", mnt]).returncode != 0:
        test.skipTest("cannot mount a tmpfs here (needs root)")
    test.addCleanup(lambda: subprocess.run(["umount", "-l", mnt]))
    return mnt


def wait_until(cond, timeout=20.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return
        except OSError:
            pass
        time.sleep(0.05)
    raise TimeoutError("timed out waiting for " + what)


class Server:
    """One server process on a free client port."""

    def __init__(self, kind="ferrokeeper", extra=None, container_check_ms=60000, env=None, jvm_flags=(),
                 zookeeper="3.8"):
        self.kind = kind
        # For kind "zookeeper": Debian's 3.8, or the reference 3.9.5.
        self.zookeeper = zookeeper
        if zookeeper == "3.9" and not HAVE_ZK39:
            raise RuntimeError("ZooKeeper 3.9.5 is not in %s: run scripts/get_zookeeper_3.9.sh" % ZK39_DIR)
        # Added to the process's environment.
        self.env = env
        # -D flags as an operator gives them: ZooKeeper's java command line
        # has them; ferrokeeper gets them in SERVER_JVMFLAGS, as
        # zkServer.sh passes them.
        self.jvm_flags = list(jvm_flags)
        self.container_check_ms = container_check_ms
        self.dir = tempfile.mkdtemp(prefix=kind + "-")
        self.port = free_port()
        lines = {
            "tickTime": "2000",
            "dataDir": os.path.join(self.dir, "data"),
            "dataLogDir": os.path.join(self.dir, "datalog"),
            "clientPort": str(self.port),
            "clientPortAddress": "127.0.0.1",
            "4lw.commands.whitelist": "*",
            "extendedTypesEnabled": "true",
            "admin.enableServer": "false",
        }
        if kind == "ferrokeeper":
            lines["znode.container.checkIntervalMs"] = str(container_check_ms)
        if kind == "zookeeper":
            # The oracle only answers what ZooKeeper would say; its own
            # durability is not under test, so its fsyncs are skipped to keep CI short.
            lines["forceSync"] = "no"
        lines.update(extra or {})
        self.lines = lines
        self.cfg = os.path.join(self.dir, "zoo.cfg")
        self.write_cfg()
        self.log_path = os.path.join(self.dir, "server.log")
        self.proc = None

    def write_cfg(self):
        with open(self.cfg, "w") as f:
            for k, v in self.lines.items():
                f.write("%s=%s\n" % (k, v))

    def start(self, probe="ruok"):
        """Starts the process and waits until it answers `probe` (ruok, or
        srvr when ruok is not whitelisted, or a function true once it is up)."""
        log = open(self.log_path, "ab")
        quorum_member = any(k.startswith("server.") for k in self.lines)
        if self.kind == "ferrokeeper":
            cmd = [BINARY, "start-foreground", self.cfg]
        else:
            quorum = any(k.startswith("server.") for k in self.lines)
            main = "org.apache.zookeeper.server.quorum.QuorumPeerMain" if quorum else \
                "org.apache.zookeeper.server.ZooKeeperServerMain"
            classpath = ZK39_CLASSPATH if self.zookeeper == "3.9" else ZK_CLASSPATH
            cmd = ["java", "-cp", classpath, "-Dzookeeper.extendedTypesEnabled=true",
                   "-Dznode.container.checkIntervalMs=%d" % self.container_check_ms] + self.jvm_flags + [main, self.cfg]
        env = dict(os.environ, **self.env) if self.env else None
        if self.kind == "ferrokeeper" and self.jvm_flags:
            env = dict(env or os.environ, SERVER_JVMFLAGS=" ".join(self.jvm_flags))
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=self.dir, env=env)
        try:
            if callable(probe):
                ready = probe
            elif probe == "ruok":
                ready = lambda: four_letter(self.port, "ruok") == "imok"
            else:
                ready = lambda: "Mode: " in four_letter(self.port, "srvr")
            if self.kind == "zookeeper" and not quorum_member:
                # ZooKeeper answers ruok before it serves sessions: wait
                # until srvr shows a mode too.
                first = ready
                ready = lambda: first() and "Mode: " in four_letter(self.port, "srvr")
            wait_until(lambda: self.proc.poll() is None and ready(),
                       what="%s on port %d" % (self.kind, self.port))
        except TimeoutError as e:
            # The directory goes with cleanup: say here why it did not start.
            tail = "\n".join(self.log().splitlines()[-15:])
            raise TimeoutError("%s (exit code %s); its log ends:\n%s" % (e, self.proc.poll(), tail)) from None
        return self

    def kill(self):
        """SIGKILL: a crash, nothing flushed or closed."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def log(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def close(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def hosts(self):
        return "127.0.0.1:%d" % self.port


class Raw:
    """A request kazoo 2.8 has no API for, sent through kazoo's connection:
    `op` is the op code, `body` the request record bytes, `parse` turns the
    response bytes (and offset) into a value."""

    def __init__(self, op, body, parse=None):
        self.type = op
        self.body = body
        self.parse = parse

    def serialize(self):
        return bytearray(self.body)

    def deserialize(self, buf, offset):
        return self.parse(buf, offset) if self.parse else None


def jute_str(s):
    b = s.encode()
    return struct.pack(">i", len(b)) + b


def jute_buf(b):
    return struct.pack(">i", -1) if b is None else struct.pack(">i", len(b)) + b


def jute_acl_world_all():
    return struct.pack(">i", 1) + struct.pack(">i", 31) + jute_str("world") + jute_str("anyone")


def read_str(buf, off):
    (n,) = struct.unpack_from(">i", buf, off)
    off += 4
    if n < 0:
        return None, off
    return bytes(buf[off:off + n]).decode(), off + n


def read_stat(buf, off):
    from kazoo.protocol.states import ZnodeStat
    from kazoo.protocol.serialization import stat_struct
    return ZnodeStat._make(stat_struct.unpack_from(buf, off)), off + stat_struct.size


def call(client, req, timeout=10):
    async_result = client.handler.async_result()
    client._call(req, async_result)
    return async_result.get(timeout=timeout)


STAT_FIELDS = ("czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion", "ephemeralOwner",
               "dataLength", "numChildren", "pzxid")


def stat_dict(s):
    """A kazoo ZnodeStat as a dict of ZooKeeper's Stat field names."""
    return {k: getattr(s, k) for k in STAT_FIELDS}


def znodes(client, path="/"):
    """Every node from `path` down: {path: (data, stat_dict, sorted ACL
    as (perms, scheme, id))} as the client reads them."""
    data, st = client.get(path)
    acl, _ = client.get_acls(path)
    out = {path: (data, stat_dict(st), sorted((a.perms, a.id.scheme, a.id.id) for a in acl))}
    for child in client.get_children(path):
        out.update(znodes(client, path.rstrip("/") + "/" + child))
    return out


def create_every_kind(client, many=300, sets=5):
    """Under /app, every kind of node a migration must carry: persistent,
    sequential, binary and null data, a container with a child, a TTL
    node, digest and ip ACLs (for user:pw and 127.0.0.1), a value near
    1 MB, `many` children with every third deleted, and /app
    set `sets` times."""
    from kazoo.security import make_acl, make_digest_acl
    client.create("/app", b"persistent")
    for i in range(5):
        client.create("/app/seq-", b"%d" % i, sequence=True)
    client.create("/app/bin", bytes(range(256)))
    create_raw(client, 15, "/app/null", None, 0)
    create_raw(client, 19, "/app/container", b"", 4)
    client.create("/app/container/child", b"c")
    create_raw(client, 21, "/app/ttl", b"t", 5, ttl=3_600_000)
    client.create("/app/digest", b"d", acl=[make_digest_acl("user", "pw", all=True)])
    client.create("/app/ip", b"i", acl=[make_acl("ip", "127.0.0.1", all=True)])
    client.create("/app/big", os.urandom(1024 * 1024 - 4096))
    client.create("/app/many")
    for i in range(many):
        client.create("/app/many/n%04d" % i, b"v")
    for i in range(0, many, 3):
        client.delete("/app/many/n%04d" % i)
    for i in range(sets):
        client.set("/app", b"v%d" % i)


def create_raw(client, op, path, data, flags, ttl=None):
    """create2-style ops (createContainer 19, createTTL 21, create2 15)."""
    body = jute_str(path) + jute_buf(data) + jute_acl_world_all() + struct.pack(">i", flags)
    if ttl is not None:
        body += struct.pack(">q", ttl)

    def parse(buf, off):
        p, off = read_str(buf, off)
        return p, read_stat(buf, off)[0]

    return call(client, Raw(op, body, parse))


def read_strings(buf, off):
    (n,) = struct.unpack_from(">i", buf, off)
    off += 4
    out = []
    for _ in range(max(n, 0)):
        s, off = read_str(buf, off)
        out.append(s)
    return out


def get_all_children_number(client, path):
    return call(client, Raw(104, jute_str(path), lambda b, o: struct.unpack_from(">i", b, o)[0]))


def get_ephemerals(client, prefix):
    return call(client, Raw(103, jute_str(prefix), read_strings))


def who_am_i(client):
    def parse(buf, off):
        (n,) = struct.unpack_from(">i", buf, off)
        off += 4
        out = []
        for _ in range(n):
            a, off = read_str(buf, off)
            b, off = read_str(buf, off)
            out.append((a, b))
        return out
    return call(client, Raw(107, b"", parse))


def add_watch(client, path, mode):
    return call(client, Raw(106, jute_str(path) + struct.pack(">i", mode), lambda b, o: struct.unpack_from(">i", b, o)[0]))


class RawConn:
    """A bare client-protocol connection, for wire-level tests."""

    def __init__(self, port, session_id=0, passwd=b"\0" * 16, timeout_ms=10000, last_zxid=0):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        body = struct.pack(">iqiq", 0, last_zxid, timeout_ms, session_id) + jute_buf(passwd) + b"\0"
        self.send_frame(body)
        resp = self.read_frame()
        if resp is None:
            self.session_id = None
            return
        self.protocol_version, self.timeout_ms, self.session_id = struct.unpack_from(">iiq", resp, 0)
        (n,) = struct.unpack_from(">i", resp, 16)
        self.passwd = bytes(resp[20:20 + n])

    def send_frame(self, body):
        self.s.sendall(struct.pack(">i", len(body)) + body)

    def read_exact(self, n):
        out = b""
        while len(out) < n:
            b = self.s.recv(n - len(out))
            if not b:
                return None
            out += b
        return out

    def read_frame(self):
        h = self.read_exact(4)
        if h is None:
            return None
        (n,) = struct.unpack(">i", h)
        return self.read_exact(n)

    def request(self, xid, op, body=b""):
        self.send_frame(struct.pack(">ii", xid, op) + body)

    def reply(self):
        """(xid, zxid, err, body) of the next frame, or None at EOF."""
        f = self.read_frame()
        if f is None:
            return None
        xid, zxid, err = struct.unpack_from(">iqi", f, 0)
        return xid, zxid, err, f[16:]

    def closed(self):
        """True when the server has closed this connection."""
        try:
            return self.s.recv(1) == b""
        except (ConnectionResetError, socket.timeout):
            return False

    def close(self):
        self.s.close()


def multi_read(client, ops):
    """multiRead (op 22): ops are ("data"|"children", path); results are
    values or error codes (ints), per op."""
    body = b""
    for kind, path in ops:
        body += struct.pack(">i?i", 4 if kind == "data" else 8, False, -1) + jute_str(path) + b"\0"
    body += struct.pack(">i?i", -1, True, -1)

    def parse(buf, off):
        out = []
        while True:
            typ, done, err = struct.unpack_from(">i?i", buf, off)
            off += 9
            if done:
                return out
            if typ == -1:
                out.append(("error", struct.unpack_from(">i", buf, off)[0]))
                off += 4
            elif typ == 4:
                (n,) = struct.unpack_from(">i", buf, off)
                off += 4
                data = None if n < 0 else bytes(buf[off:off + n])
                off += max(n, 0)
                stat, off = read_stat(buf, off)
                out.append((data, stat))
            else:
                (n,) = struct.unpack_from(">i", buf, off)
                off += 4
                kids = []
                for _ in range(n):
                    k, off = read_str(buf, off)
                    kids.append(k)
                out.append(sorted(kids))

    return call(client, Raw(22, body, parse))


class Ensemble:
    """n servers (ferrokeeper, or ZooKeeper for comparisons) on free ports,
    each with its own directory, myid file and zoo.cfg listing every
    member, like the walkthrough."""

    def __init__(self, n=3, extra=None, kind="ferrokeeper", client_port_in_server_lines=False):
        ports = [(free_port(), free_port(), free_port()) for _ in range(n)]
        self.servers = []
        for i in range(1, n + 1):
            lines = {"initLimit": "10", "syncLimit": "5"}
            lines.update(extra or {})
            for j, (q, e, c) in enumerate(ports, start=1):
                lines["server.%d" % j] = "localhost:%d:%d" % (q, e)
                if client_port_in_server_lines:
                    # ZooKeeper 3.5+ style: no clientPort key, each line says it.
                    lines["server.%d" % j] += ";127.0.0.1:%d" % c
            s = Server(kind, extra=lines)
            if client_port_in_server_lines:
                s.port = ports[i - 1][2]
                del s.lines["clientPort"]
                del s.lines["clientPortAddress"]
                s.write_cfg()
            os.makedirs(os.path.join(s.dir, "data"), exist_ok=True)
            with open(os.path.join(s.dir, "data", "myid"), "w") as f:
                f.write("%d\n" % i)
            self.servers.append(s)

    @classmethod
    def of(cls, servers):
        """The ensemble of servers made elsewhere (each on its own zoo.cfg
        listing them all), for its waits and four-letter-word views."""
        ens = cls.__new__(cls)
        ens.servers = list(servers)
        return ens

    def start(self, *which):
        for i in which or range(1, len(self.servers) + 1):
            self.servers[i - 1].start()
        return self

    def server(self, i):
        return self.servers[i - 1]

    def mode(self, i):
        out = four_letter(self.server(i).port, "srvr")
        for line in out.splitlines():
            if line.startswith("Mode: "):
                return line[6:]
        return None

    def mntr(self, i):
        out = four_letter(self.server(i).port, "mntr")
        return dict(line.split("\t", 1) for line in out.splitlines() if "\t" in line)

    def leader(self, timeout=30):
        found = []
        wait_until(lambda: found.append([i for i in range(1, len(self.servers) + 1)
                                         if self.alive(i) and self.mode(i) == "leader"]) or len(found[-1]) == 1,
                   timeout=timeout, what="one leader")
        return found[-1][0]

    def serving_follower(self):
        """Waits until every server serves (one leader, the rest
        followers) and returns a follower: the place where writes are
        forwarded and reads are local."""
        leader = self.leader()
        ids = range(1, len(self.servers) + 1)
        wait_until(lambda: all(self.mode(i) in ("leader", "follower") for i in ids), what="every server serving")
        return self.server(next(i for i in ids if i != leader))

    def alive(self, i):
        s = self.server(i)
        return s.proc is not None and s.proc.poll() is None

    @property
    def hosts(self):
        return ",".join(s.hosts for s in self.servers)

    def close(self):
        for s in self.servers:
            s.close()


def ensemble_recording_hops(test, n=3):
    """A started ensemble of `n` whose servers record their write path's
    hops (FERROKEEPER_HOPS) into one fresh directory, a follower serving,
    closed after `test`: (the ensemble, the directory, the leader's id)."""
    hops = tempfile.mkdtemp(prefix="hops-")
    ens = Ensemble(n)
    test.addCleanup(ens.close)
    for s in ens.servers:
        s.env = {"FERROKEEPER_HOPS": hops}
    ens.start()
    ens.serving_follower()
    return ens, hops, ens.leader()
