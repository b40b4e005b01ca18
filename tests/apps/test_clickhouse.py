"""ClickHouse replicated tables on a 3-server ferrokeeper ensemble (issue 17).

Two servers of Debian's clickhouse-server (18.16, with its 2018 ZooKeeper
client), each with a <zookeeper> section listing the three servers of the
ensemble and its own {replica} macro, on loopback and free ports, run a
ReplicatedMergeTree table: inserts on either are read on the other, ALTER
and OPTIMIZE replicate, DROP removes the table's znodes. Inserts go on
while the ensemble's leader is SIGKILLed and restarted (every acknowledged
insert must be on both replicas afterwards); a ClickHouse frozen past its
session timeout, and the whole ensemble stopped and started, must both
recover without an operator.

On failure the test prints the last lines of both ClickHouse logs and
every ferrokeeper server's log.
"""
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

from common import AGAINST, AppTest, give_to, harness

from kazoo.client import KazooClient

SESSION_TIMEOUT_MS = 6000
TABLE_PATH = "/clickhouse/tables/t"

CONFIG = """<?xml version="1.0"?>
<yandex>
    <logger>
        <level>information</level>
        <log>{dir}/server.log</log>
        <errorlog>{dir}/server.err.log</errorlog>
        <size>100M</size>
        <count>1</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <http_port>{http}</http_port>
    <tcp_port>{tcp}</tcp_port>
    <interserver_http_port>{interserver}</interserver_http_port>
    <interserver_http_host>127.0.0.1</interserver_http_host>
    <path>{dir}/data/</path>
    <tmp_path>{dir}/tmp/</tmp_path>
    <user_files_path>{dir}/user_files/</user_files_path>
    <format_schema_path>{dir}/format_schemas/</format_schema_path>
    <users_config>/etc/clickhouse-server/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <mark_cache_size>67108864</mark_cache_size>
    <uncompressed_cache_size>67108864</uncompressed_cache_size>
    <max_concurrent_queries>20</max_concurrent_queries>
    <zookeeper>
{nodes}
        <session_timeout_ms>{session_timeout}</session_timeout_ms>
    </zookeeper>
    <macros>
        <replica>{name}</replica>
    </macros>
</yandex>
"""


class ClickHouse:
    """One clickhouse-server process with its own folder and ports."""

    def __init__(self, name, work, zk_hosts):
        self.name = name
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir)
        self.http = harness.free_port()
        self.cfg = os.path.join(self.dir, "config.xml")
        self.log_path = os.path.join(self.dir, "server.log")
        self.err_path = os.path.join(self.dir, "server.err.log")
        self.stdout_path = os.path.join(self.dir, "stdout.log")
        nodes = "\n".join(
            '        <node index="%d"><host>%s</host><port>%s</port></node>' % ((i,) + tuple(h.split(":")))
            for i, h in enumerate(zk_hosts, 1))
        with open(self.cfg, "w") as f:
            f.write(CONFIG.format(dir=self.dir, http=self.http, tcp=harness.free_port(),
                                  interserver=harness.free_port(), nodes=nodes,
                                  session_timeout=SESSION_TIMEOUT_MS, name=name))
        self.proc = None

    def start(self):
        out = open(self.stdout_path, "ab")
        # Run as the clickhouse user the package made, as its service does.
        user = "clickhouse" if os.getuid() == 0 else None
        self.proc = subprocess.Popen(["clickhouse-server", "--config-file=" + self.cfg], stdout=out,
                                     stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, user=user,
                                     cwd=self.dir)
        out.close()
        harness.wait_until(lambda: self.ping(), timeout=60, what=self.name + " to answer /ping")

    def ping(self):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/ping" % self.http, timeout=2) as r:
                return r.read().strip() == b"Ok."
        except (OSError, urllib.error.URLError):
            return False

    def query(self, sql, timeout=30):
        """Runs `sql` over the HTTP interface; returns its output, or
        raises QueryError with ClickHouse's message."""
        req = urllib.request.Request("http://127.0.0.1:%d/" % self.http, data=sql.encode(), method="POST")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.read().decode()
        except urllib.error.HTTPError as e:
            raise QueryError(e.read().decode(errors="replace").strip())

    def value(self, sql):
        return self.query(sql).strip()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            if self.proc.poll() is None:
                os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class QueryError(Exception):
    pass


class ClickHouseTest(AppTest):
    def setUp(self):
        if shutil.which("clickhouse-server") is None:
            self.skipTest("Debian's clickhouse-server is not installed (scripts/test.sh installs it)")
        self.work = tempfile.mkdtemp(prefix="fk-clickhouse-")
        os.chmod(self.work, 0o755)
        zk_hosts = self.start_ensemble()
        self.zk_hosts = ",".join(zk_hosts)
        self.chs = [ClickHouse("ch%d" % i, self.work, zk_hosts) for i in (1, 2)]
        give_to("clickhouse", self.work)
        self.zk = None

    def tearDown(self):
        if self.zk is not None:
            self.zk.stop()
            self.zk.close()
        for ch in self.chs:
            ch.stop()
        shutil.rmtree(self.work, True)

    def app_logs(self):
        out = []
        for ch in self.chs:
            out += [("clickhouse %s" % ch.name, ch.log_path), ("clickhouse %s errors" % ch.name, ch.err_path),
                    ("clickhouse %s stdout" % ch.name, ch.stdout_path)]
        return out

    def count(self, ch):
        return int(ch.value("SELECT count() FROM t"))

    def batches(self, ch):
        return set(int(x) for x in ch.value("SELECT DISTINCT batch FROM t").split())

    def insert_batch(self, ch, batch, rows=100):
        """One INSERT of `rows` rows tagged `batch`. True when ClickHouse
        acknowledged it (the part is committed in ZooKeeper by then)."""
        try:
            ch.query("INSERT INTO t (d, k, batch, v) SELECT today(), number + %d, %d, 'x' "
                     "FROM system.numbers LIMIT %d" % (batch * 1000, batch, rows), timeout=20)
            return True
        except (QueryError, OSError):
            return False

    def synced(self):
        """Both replicas hold the same rows (the counts agree and neither
        has entries left in its replication queue)."""
        counts = []
        for ch in self.chs:
            try:
                ch.query("SYSTEM SYNC REPLICA t", timeout=30)
                counts.append(self.count(ch))
                if int(ch.value("SELECT queue_size FROM system.replicas WHERE table = 't'")) != 0:
                    return False
            except (QueryError, OSError):
                return False
        return counts[0] == counts[1]

    def writable(self, ch):
        try:
            return ch.value("SELECT is_readonly FROM system.replicas WHERE table = 't'") == "0"
        except (QueryError, OSError):
            return False

    def test_replicated_merge_tree(self):
        self.run_scenario(self.scenario)

    def scenario(self):
        for ch in self.chs:
            ch.start()
        ch1, ch2 = self.chs
        ddl = ("CREATE TABLE t (d Date, k UInt64, batch UInt32, v String) "
               "ENGINE = ReplicatedMergeTree('%s', '{replica}') PARTITION BY toYYYYMM(d) ORDER BY k" % TABLE_PATH)
        for ch in self.chs:
            ch.query(ddl)
        self.zk = KazooClient(self.zk_hosts)
        self.zk.start()
        self.assertEqual(sorted(self.zk.get_children(TABLE_PATH + "/replicas")), ["ch1", "ch2"])

        # Inserts on either replica are read on the other.
        self.assertTrue(self.insert_batch(ch1, 1))
        self.assertTrue(self.insert_batch(ch2, 2))
        self.wait(self.synced, 60, "both replicas to hold batches 1 and 2")
        for ch in self.chs:
            self.assertEqual(self.batches(ch), {1, 2})
            self.assertEqual(self.count(ch), 200)

        # ALTER ... ADD COLUMN replicates.
        ch1.query("ALTER TABLE t ADD COLUMN extra UInt32 DEFAULT 7")
        self.wait(lambda: "extra" in ch2.value("SELECT name FROM system.columns WHERE table = 't'").split(),
                  60, "the new column on ch2")
        self.assertEqual(ch2.value("SELECT sum(extra) FROM t"), "1400")

        # OPTIMIZE ... FINAL merges on both: one active part each.
        self.assertTrue(self.insert_batch(ch1, 3))
        self.wait(self.synced, 60, "batch 3 on both")
        self.assertGreater(int(ch1.value("SELECT count() FROM system.parts WHERE table = 't' AND active")), 1)
        ch1.query("OPTIMIZE TABLE t FINAL")
        self.wait(lambda: all(ch.value("SELECT count() FROM system.parts WHERE table = 't' AND active") == "1"
                              for ch in self.chs), 60, "one merged part on both replicas")
        for ch in self.chs:
            self.assertEqual(self.count(ch), 300)

        # Inserts go on while the ensemble's leader is SIGKILLed and
        # restarted; every acknowledged one ends up on both replicas.
        acked, refused = set(), 0
        batch = 100
        leader = self.ens.leader()
        killed = False
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            batch += 1
            if self.insert_batch(self.chs[batch % 2], batch):
                acked.add(batch)
            else:
                refused += 1
            if batch == 110:
                self.ens.server(leader).kill()
                killed = True
            if killed and len([b for b in acked if b > 110]) >= 10:
                break
            time.sleep(0.05)
        after_kill = len([b for b in acked if b > 110])
        self.assertGreater(after_kill, 0, "no insert was acknowledged after the leader's SIGKILL")
        self.ens.server(leader).start()
        self.wait(lambda: all(self.writable(ch) for ch in self.chs), 120, "both replicas writable again")
        self.assertTrue(self.insert_batch(ch1, 999))
        acked.add(999)
        self.wait(self.synced, 120, "both replicas in sync after the leader's restart")
        for ch in self.chs:
            missing = acked - self.batches(ch)
            self.assertEqual(missing, set(), "%s lost acknowledged inserts" % ch.name)
        print("\nclickhouse: %d inserts acknowledged (%d while the %s leader was down), %d refused; "
              "both replicas hold %d rows" % (len(acked), after_kill, AGAINST, refused, self.count(ch1)))

        # A ClickHouse frozen past its session timeout: its session expires
        # (its is_active ephemeral goes), and after it thaws it makes a new
        # session and takes part again, without an operator.
        is_active = TABLE_PATH + "/replicas/ch2/is_active"
        self.assertIsNotNone(self.zk.exists(is_active))
        os.kill(ch2.proc.pid, signal.SIGSTOP)
        try:
            self.wait(lambda: self.zk.exists(is_active) is None, SESSION_TIMEOUT_MS / 1000 + 30,
                      "the frozen replica's session to expire")
            self.assertTrue(self.insert_batch(ch1, 1001))
        finally:
            os.kill(ch2.proc.pid, signal.SIGCONT)
        self.wait(lambda: self.zk.exists(is_active) is not None and self.writable(ch2), 120,
                  "ch2 active again after its session expired")
        self.assertTrue(self.insert_batch(ch2, 1002))
        self.wait(self.synced, 120, "both replicas in sync after ch2's session expired")
        for ch in self.chs:
            self.assertTrue({1001, 1002} <= self.batches(ch))

        # The whole ensemble stopped past the session timeout and started:
        # both replicas come back by themselves.
        self.zk.stop()
        self.zk.close()
        self.zk = None
        for s in self.ens.servers:
            s.kill()
        time.sleep(SESSION_TIMEOUT_MS / 1000 + 2)
        self.ens.start()
        self.ens.leader()
        self.wait(lambda: all(self.writable(ch) for ch in self.chs), 120,
                  "both replicas writable after the ensemble restarted")
        self.assertTrue(self.insert_batch(ch1, 2001))
        self.assertTrue(self.insert_batch(ch2, 2002))
        self.wait(self.synced, 120, "both replicas in sync after the ensemble restarted")
        for ch in self.chs:
            self.assertTrue(acked | {1001, 1002, 2001, 2002} <= self.batches(ch))

        # DROP removes the table's znodes: each replica its own, the last
        # one the table's.
        self.zk = KazooClient(self.zk_hosts)
        self.zk.start()
        ch1.query("DROP TABLE t")
        self.assertIsNone(self.zk.exists(TABLE_PATH + "/replicas/ch1"))
        self.assertEqual(self.zk.get_children(TABLE_PATH + "/replicas"), ["ch2"])
        ch2.query("DROP TABLE t")
        self.assertIsNone(self.zk.exists(TABLE_PATH))


if __name__ == "__main__":
    unittest.main(verbosity=2)
