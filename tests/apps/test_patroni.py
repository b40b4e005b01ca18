"""Patroni + PostgreSQL on a 3-server ferrokeeper ensemble (issue 17).

Three PostgreSQL instances, each managed by Debian's Patroni with
`zookeeper: hosts:` listing the ensemble, on loopback and free ports, with
synchronous replication on. The test drives the cluster as its operators
do and injects the failures they fear: a switchover, SIGKILL of the
primary's Patroni and PostgreSQL, SIGKILL of the ferrokeeper leader, and
the whole ensemble gone for longer than Patroni's ttl. All the while a
sampler asks every PostgreSQL `pg_is_in_recovery()` and the test fails if
two ever answer false in one round (split brain).

PostgreSQL will not run as root: Patroni runs as the `postgres` user
(Debian's postgresql package creates it) when the test runs as root.
On failure the test prints the last lines of every Patroni's log and
every ferrokeeper server's log.
"""
import glob
import json
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest
import urllib.request

from common import AppTest, give_to, harness

import psycopg2  # noqa: E402  (python3-psycopg2, a dependency of Debian's patroni)

TTL = 10
LOOP_WAIT = 2
RETRY_TIMEOUT = 4
SUPERUSER_PASSWORD = "fk-postgres"


def pg_bin():
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda d: int(d.split("/")[-2]))
    return dirs[-1] if dirs else None


class Member:
    """One PostgreSQL instance and the Patroni that manages it."""

    def __init__(self, name, work, zk_hosts):
        self.name = name
        self.dir = os.path.join(work, name)
        os.makedirs(self.dir)
        self.rest_port = harness.free_port()
        self.pg_port = harness.free_port()
        self.data_dir = os.path.join(self.dir, "data")
        self.cfg = os.path.join(self.dir, "patroni.yml")
        self.log_path = os.path.join(self.dir, "patroni.log")
        self.proc = None
        cfg = {
            "scope": "fk",
            "namespace": "/service/",
            "name": name,
            "restapi": {"listen": "127.0.0.1:%d" % self.rest_port,
                        "connect_address": "127.0.0.1:%d" % self.rest_port},
            "zookeeper": {"hosts": zk_hosts},
            "bootstrap": {
                "dcs": {
                    "ttl": TTL, "loop_wait": LOOP_WAIT, "retry_timeout": RETRY_TIMEOUT,
                    "maximum_lag_on_failover": 1048576,
                    "synchronous_mode": True,
                    "postgresql": {"use_pg_rewind": True, "use_slots": True,
                                   "parameters": {"wal_log_hints": "on", "max_wal_senders": 10,
                                                  "max_replication_slots": 10}},
                },
                "initdb": [{"encoding": "UTF8"}, {"auth": "md5"}],
                "pg_hba": ["host replication replicator 127.0.0.1/32 md5",
                           "host all all 127.0.0.1/32 md5"],
            },
            "postgresql": {
                "listen": "127.0.0.1:%d" % self.pg_port,
                "connect_address": "127.0.0.1:%d" % self.pg_port,
                "data_dir": self.data_dir,
                "bin_dir": pg_bin(),
                "pgpass": os.path.join(self.dir, "pgpass"),
                "authentication": {
                    "superuser": {"username": "postgres", "password": SUPERUSER_PASSWORD},
                    "replication": {"username": "replicator", "password": "fk-replicator"},
                    "rewind": {"username": "postgres", "password": SUPERUSER_PASSWORD},
                },
                "parameters": {"unix_socket_directories": self.dir, "shared_buffers": "16MB",
                               "max_connections": 20},
            },
        }
        # JSON is YAML: Patroni reads this file with yaml.safe_load.
        with open(self.cfg, "w") as f:
            json.dump(cfg, f, indent=1)

    def start(self):
        log = open(self.log_path, "ab")
        user = "postgres" if os.getuid() == 0 else None
        self.proc = subprocess.Popen(["patroni", self.cfg], stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, user=user, cwd=self.dir)
        log.close()

    def postmaster_pid(self):
        try:
            with open(os.path.join(self.data_dir, "postmaster.pid")) as f:
                return int(f.readline())
        except (OSError, ValueError):
            return None

    def kill(self):
        """SIGKILL of Patroni and of PostgreSQL's postmaster (its backends
        then exit on their own, as after a crash)."""
        pm = self.postmaster_pid()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        if pm is not None:
            try:
                os.kill(pm, signal.SIGKILL)
            except ProcessLookupError:
                pass
        harness.wait_until(lambda: not self.pg_alive(), timeout=30, what=self.name + "'s PostgreSQL to end")

    def pg_alive(self):
        pm = self.postmaster_pid()
        if pm is None:
            return False
        try:
            with open("/proc/%d/stat" % pm) as f:
                return f.read().split(")")[-1].split()[0] != "Z"
        except OSError:
            return False

    def stop(self):
        """Patroni stops PostgreSQL on SIGTERM; anything left is killed."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                pass
        self.kill()

    def connect(self, timeout=2):
        c = psycopg2.connect(host="127.0.0.1", port=self.pg_port, user="postgres",
                             password=SUPERUSER_PASSWORD, dbname="postgres", connect_timeout=timeout)
        c.autocommit = True
        return c

    def in_recovery(self):
        """True (replica), False (primary) or None (not answering)."""
        try:
            with self.connect(1) as c:
                cur = c.cursor()
                cur.execute("SET statement_timeout = 1000")
                cur.execute("SELECT pg_is_in_recovery()")
                r = cur.fetchone()[0]
            c.close()
            return r
        except psycopg2.Error:
            return None

    def rest(self, path):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.rest_port, path), timeout=2) as r:
            return json.loads(r.read())


class Sampler(threading.Thread):
    """Asks every member pg_is_in_recovery() in rounds; remembers every
    round in which more than one answered false."""

    def __init__(self, members):
        super().__init__(daemon=True)
        self.members = members
        self.running = True
        self.rounds = 0
        self.split = []

    def run(self):
        while self.running:
            started = time.monotonic()
            answers = {m.name: m.in_recovery() for m in self.members}
            primaries = [n for n, r in answers.items() if r is False]
            if len(primaries) > 1:
                self.split.append((time.strftime("%H:%M:%S"), time.monotonic() - started, answers))
            self.rounds += 1
            time.sleep(0.1)

    def finish(self):
        self.running = False
        self.join(10)


class PatroniTest(AppTest):
    def setUp(self):
        if shutil.which("patroni") is None or pg_bin() is None:
            self.skipTest("Debian's patroni and postgresql are not installed (scripts/test.sh installs them)")
        self.work = tempfile.mkdtemp(prefix="fk-patroni-")
        os.chmod(self.work, 0o755)
        zk_hosts = self.start_ensemble()
        self.members = [Member("pg%d" % i, self.work, zk_hosts) for i in (1, 2, 3)]
        give_to("postgres", self.work)
        self.sampler = None

    def tearDown(self):
        if self.sampler is not None:
            self.sampler.finish()
        for m in self.members:
            m.stop()
        shutil.rmtree(self.work, True)

    def app_logs(self):
        return [("patroni " + m.name, m.log_path) for m in self.members]

    def cluster(self):
        for m in self.members:
            if m.proc is not None and m.proc.poll() is None:
                try:
                    return m.rest("/cluster")["members"]
                except OSError:
                    continue
        return []

    def primary(self):
        """The member whose PostgreSQL answers as primary, when exactly
        one does; else None."""
        found = [m for m in self.members if m.in_recovery() is False]
        return found[0] if len(found) == 1 else None

    def healthy(self, expect_replicas=2):
        """One leader in Patroni's view, it is the one PostgreSQL primary,
        and `expect_replicas` replicas stream from it, one synchronous."""
        members = self.cluster()
        leaders = [m["name"] for m in members if m["role"] == "leader" and m["state"] == "running"]
        p = self.primary()
        if len(leaders) != 1 or p is None or p.name != leaders[0]:
            return False
        if sum(1 for m in members if m["role"] == "sync_standby") != 1:
            return False
        with p.connect() as c:
            cur = c.cursor()
            cur.execute("SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'")
            streaming = cur.fetchone()[0]
        c.close()
        return streaming == expect_replicas

    def write_row(self, member, value):
        """An acknowledged INSERT on `member`: with synchronous_mode its
        commit returns only once the synchronous standby has it."""
        c = member.connect()
        cur = c.cursor()
        cur.execute("CREATE TABLE IF NOT EXISTS fk_rows (v text PRIMARY KEY)")
        cur.execute("SHOW synchronous_standby_names")
        sync = cur.fetchone()[0]
        self.assertNotEqual(sync, "", "synchronous replication is not on")
        cur.execute("INSERT INTO fk_rows VALUES (%s)", (value,))
        c.close()

    def rows(self, member):
        with member.connect() as c:
            cur = c.cursor()
            cur.execute("SELECT v FROM fk_rows ORDER BY v")
            out = [r[0] for r in cur.fetchall()]
        c.close()
        return out

    def test_failover_switchover_and_ferrokeeper_faults(self):
        self.run_scenario(self.scenario)

    def scenario(self):
        for m in self.members:
            m.start()
        # 1. A primary is elected and both replicas stream from it.
        self.wait(self.healthy, 120, "a primary with two streaming replicas")
        listing = subprocess.run(["patronictl", "-c", self.members[0].cfg, "list", "-f", "json"],
                                 capture_output=True, text=True, timeout=60)
        self.assertEqual(listing.returncode, 0, listing.stderr)
        roles = sorted(m["Role"] for m in json.loads(listing.stdout))
        self.assertEqual(roles, ["Leader", "Replica", "Sync Standby"], listing.stdout)
        self.sampler = Sampler(self.members)
        self.sampler.start()
        first = self.primary()
        self.write_row(first, "a-before-switchover")

        # 2. patronictl switchover moves the primary.
        # With synchronous_mode on, Patroni switches over only to the
        # synchronous standby (it ignores a request for another member).
        sync = [m["name"] for m in self.cluster() if m["role"] == "sync_standby"]
        self.assertEqual(len(sync), 1, self.cluster())
        candidate = next(m for m in self.members if m.name == sync[0])
        out = subprocess.run(["patronictl", "-c", first.cfg, "switchover", "--leader", first.name,
                              "--candidate", candidate.name, "--force"],
                             capture_output=True, text=True, timeout=120)
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        # patronictl exits 0 when Patroni refuses, too; it says so instead.
        self.assertNotIn("failed", out.stdout, out.stdout)
        self.wait(lambda: self.primary() is candidate and self.healthy(), 90, "the switchover to " + candidate.name)
        self.assertIn("a-before-switchover", self.rows(candidate))

        # 3. SIGKILL of the primary's Patroni and PostgreSQL, just after an
        # acknowledged synchronous write: a replica takes over within the
        # ttl (plus Patroni's loop) and has the row.
        old = self.primary()
        self.write_row(old, "b-acknowledged-before-kill")
        killed_at = time.monotonic()
        old.kill()
        self.wait(lambda: self.primary() not in (None, old), TTL + 4 * LOOP_WAIT + 20,
                  "a replica promoted after the primary was killed")
        took = time.monotonic() - killed_at
        new = self.primary()
        self.assertIn("b-acknowledged-before-kill", self.rows(new),
                      "an acknowledged synchronous write was lost in the failover")
        print("\npatroni: promoted %s %.1f s after SIGKILL of %s (ttl %d s)" % (new.name, took, old.name, TTL))
        old.start()
        self.wait(self.healthy, 120, old.name + " back as a replica")

        # 4. SIGKILL of the ferrokeeper leader: Patroni goes on, the same
        # primary stays (its session survives), writes go on.
        primary = self.primary()
        zk_leader = self.ens.leader()
        self.ens.server(zk_leader).kill()
        self.write_row(primary, "c-during-ferrokeeper-failover")
        self.ens.leader()
        time.sleep(TTL + 2 * LOOP_WAIT)
        self.assertIs(self.primary(), primary, "the primary changed when only ferrokeeper's leader died")
        self.ens.server(zk_leader).start()
        self.wait(self.healthy, 60, "a healthy cluster after the ferrokeeper leader came back")
        self.write_row(self.primary(), "d-after-ferrokeeper-failover")

        # 5. The whole ensemble gone for longer than the ttl: Patroni must
        # demote the primary (it cannot hold its lock without its DCS).
        for s in self.ens.servers:
            s.kill()
        gone_at = time.monotonic()
        self.wait(lambda: all(m.in_recovery() is not False for m in self.members), TTL + 4 * LOOP_WAIT + 20,
                  "the primary demoted without its DCS")
        print("patroni: without its DCS, no primary %.1f s after the whole ensemble was killed; "
              "pg_is_in_recovery: %s" % (time.monotonic() - gone_at,
                                         {m.name: m.in_recovery() for m in self.members}))
        time.sleep(2 * LOOP_WAIT)
        self.assertTrue(all(m.in_recovery() is not False for m in self.members),
                        "a primary came back while the DCS was down")
        # ...and when ferrokeeper comes back, a single primary again.
        self.ens.start()
        self.wait(self.healthy, 120, "one primary again after ferrokeeper came back")
        final = self.primary()
        self.assertEqual(self.rows(final), ["a-before-switchover", "b-acknowledged-before-kill",
                                            "c-during-ferrokeeper-failover", "d-after-ferrokeeper-failover"])

        self.sampler.finish()
        self.assertGreater(self.sampler.rounds, 50)
        self.assertEqual(self.sampler.split, [], "two primaries at once")
        print("patroni: %d sampling rounds, never two primaries" % self.sampler.rounds)


if __name__ == "__main__":
    unittest.main(verbosity=2)
