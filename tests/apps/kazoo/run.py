"""Runs kazoo's own test suite (kazoo/tests of Debian's python3-kazoo 2.8)
against a 3-server ferrokeeper ensemble started by kazoo's own harness.

kazoo's harness (kazoo/testing/common.py) writes each server's zoo.cfg and
runs `java ... QuorumPeerMain zoo.cfg`; the `java` in this folder, first on
PATH, starts ferrokeeper on that zoo.cfg instead. Nothing of kazoo is
changed. Tests that need features ferrokeeper does not have yet are listed
in expected_failures.txt with the reason and run as strict expected
failures: one that starts passing fails the run until its line is removed.
Tests that race in kazoo itself, against ZooKeeper too, are listed in
races.txt with the evidence; one of those that fails is run again, up to
RACE_RERUNS more times (pytest-rerunfailures), and every rerun is counted
in the summary line.
A test that hangs fails after --timeout seconds (pytest-timeout); one
still running 30 s later has every thread's stack printed (pytest's
faulthandler_timeout), and a run past --run-timeout prints them all and
exits 1 (kazoo's teardown can wait forever on a connection thread, where
pytest-timeout's signal cannot reach it: a CI run sat in test_lock.py
that way, with the servers idle).

    /usr/bin/python3 tests/apps/kazoo/run.py              # against ferrokeeper
    /usr/bin/python3 tests/apps/kazoo/run.py --zookeeper  # the same suite against ZooKeeper 3.8 (the oracle)
    /usr/bin/python3 tests/apps/kazoo/run.py -- -k TestLock   # extra pytest arguments

A failing test's report ends with the lines each ferrokeeper server logged
while it ran. Ends with one line: 'kazoo suite: N passed, N failed, ...'.
"""
import argparse
import faulthandler
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(HERE)))
sys.path.insert(0, os.path.join(ROOT, "tests", "python"))
import harness  # noqa: E402  (free ports, the binary)

EXPECTED = os.path.join(HERE, "expected_failures.txt")
RACES = os.path.join(HERE, "races.txt")
RACE_RERUNS = 2
ZK_CLASSPATH = "/usr/share/java/zookeeper.jar"
EXPECTED_FAILURE_TIMEOUT = 30


def port_block():
    """An offset whose 3 servers' ports (offset+10*i+0..3, as kazoo's
    harness lays them out) are all free now and below the ephemeral range."""
    for _ in range(200):
        base = harness.free_port()
        ports = [base + 10 * i + k for i in range(3) for k in range(4)]
        lo, hi = harness._port_range()
        if ports[-1] >= hi:
            continue
        ok = True
        for p in ports:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free block of 24 ports")


def load_list(path):
    """'file.py::Class::test: reason' lines; # comments and blanks skipped."""
    out = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            key, sep, reason = line.partition(": ")
            if not sep or not reason.strip():
                sys.exit("%s:%d: expected 'file.py::Class::test: reason'" % (path, n))
            out[key.strip()] = reason.strip()
    return out


def item_key(item):
    return os.path.basename(str(item.fspath)) + "::" + item.nodeid.split("::", 1)[1]


class Servers:
    """The ferrokeeper servers the shim started: pid and log file each."""

    def __init__(self, pids_file):
        self.pids_file = pids_file

    def started(self):
        """(pid, log) per server, the latest start of each folder."""
        out = {}
        try:
            with open(self.pids_file) as f:
                for line in f:
                    pid, _, log = line.strip().partition(" ")
                    if pid.isdigit():
                        out[log] = int(pid)
        except FileNotFoundError:
            pass
        return [(pid, log) for log, pid in out.items()]

    def stop_all(self):
        for pid, _ in self.started():
            try:
                with open("/proc/%d/cmdline" % pid, "rb") as f:
                    if b"ferrokeeper" not in f.read():
                        continue
                os.kill(pid, signal.SIGKILL)
            except (FileNotFoundError, ProcessLookupError):
                pass


class Plugin:
    """Marks the listed tests as strict expected failures or as kazoo's own
    races (rerun when they fail) and attaches the servers' log lines to a
    failing test's report."""

    def __init__(self, expected, races, servers):
        self.expected = expected
        self.races = races
        self.servers = servers
        self.seen = set()
        self.offsets = {}
        self.counts = {}

    def pytest_collection_modifyitems(self, items):
        for item in items:
            key = item_key(item)
            if key in self.expected:
                self.seen.add(key)
                item.add_marker(pytest.mark.xfail(reason=self.expected[key], strict=True))
                # Some of these hang (kazoo 2.8's connection loop dies on an
                # error code it does not know); they need not wait the full
                # timeout to show that they still fail.
                item.add_marker(pytest.mark.timeout(EXPECTED_FAILURE_TIMEOUT))
            if key in self.races:
                self.seen.add(key)
                item.add_marker(pytest.mark.flaky(reruns=RACE_RERUNS))
        stale = sorted((set(self.expected) | set(self.races)) - self.seen)
        if stale:
            raise pytest.UsageError("expected_failures.txt or races.txt names tests that do not exist: %s" % stale)

    def pytest_runtest_setup(self, item):
        self.offsets = {}
        for _, log in self.servers.started():
            try:
                self.offsets[log] = os.path.getsize(log)
            except OSError:
                pass

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_makereport(self, item, call):
        outcome = yield
        report = outcome.get_result()
        if report.failed and not hasattr(report, "wasxfail"):
            for _, log in self.servers.started():
                try:
                    with open(log, "rb") as f:
                        f.seek(self.offsets.get(log, 0))
                        lines = f.read().decode("utf-8", "replace").splitlines()
                except OSError:
                    continue
                if lines:
                    report.sections.append(("ferrokeeper " + log, "\n".join(lines[-60:])))

    def pytest_runtest_logreport(self, report):
        if report.outcome == "rerun":
            if report.when == "call":
                self.counts["rerun"] = self.counts.get("rerun", 0) + 1
                print("\n%s failed and runs again (races.txt)" % report.nodeid)
            return
        if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
            if hasattr(report, "wasxfail"):
                kind = "xpassed" if report.passed else "xfailed"
            else:
                kind = report.outcome
            self.counts[kind] = self.counts.get(kind, 0) + 1
        elif report.when == "teardown" and report.failed:
            self.counts["failed"] = self.counts.get("failed", 0) + 1


def watchdog(seconds, servers):
    """After `seconds`, prints every thread's stack, stops the servers this
    run started and exits 1: a hang must end the run, not the CI's time."""
    # The terminal as it is now: pytest captures stdout and stderr later.
    out = os.fdopen(os.dup(2), "w")

    def bark():
        time.sleep(seconds)
        out.write("\nkazoo suite: still running after %d s; every thread's stack:\n" % seconds)
        out.flush()
        faulthandler.dump_traceback(file=out, all_threads=True)
        servers.stop_all()
        os._exit(1)
    threading.Thread(target=bark, daemon=True).start()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--zookeeper", action="store_true", help="run against ZooKeeper 3.8 instead")
    ap.add_argument("--timeout", type=int, default=120, help="seconds before a test counts as hung")
    ap.add_argument("--run-timeout", type=int, default=1200, help="seconds before the whole run counts as hung")
    ap.add_argument("pytest_args", nargs="*")
    args = ap.parse_args()

    work = tempfile.mkdtemp(prefix="kazoo-suite-")
    pids = os.path.join(work, "servers.pids")
    env = {
        "ZOOKEEPER_CLASSPATH": ZK_CLASSPATH,
        "ZOOKEEPER_VERSION": "3.8.0",
        "ZOOKEEPER_PORT_OFFSET": str(port_block()),
        "ZOOKEEPER_CLUSTER_SIZE": "3",
        "TMPDIR": work,  # the harness's server folders go here
        "KAZOO_SHIM_PIDS": pids,
        "FERROKEEPER_BIN": harness.BINARY,
    }
    os.environ.update(env)
    tempfile.tempdir = work
    if not args.zookeeper:
        os.environ["PATH"] = HERE + os.pathsep + os.environ["PATH"]
    expected = {} if args.zookeeper else load_list(EXPECTED)
    servers = Servers(pids)
    plugin = Plugin(expected, load_list(RACES), servers)
    started = time.monotonic()
    try:
        watchdog(args.run_timeout, servers)
        code = pytest.main(["-p", "no:cacheprovider", "--timeout", str(args.timeout), "-rfE",
                            "-o", "faulthandler_timeout=%d" % (args.timeout + 30),
                            "--pyargs", "kazoo.tests"] + args.pytest_args, plugins=[plugin])
    finally:
        # Clients some tests leave open would log every failed reconnect
        # after the servers are gone, below the summary.
        logging.getLogger("kazoo").setLevel(logging.CRITICAL)
        try:
            from kazoo.testing import harness as kh
            if kh.CLUSTER is not None:
                kh.CLUSTER.terminate()
                kh.CLUSTER = None
        except Exception as e:  # the servers are killed below in any case
            print("stopping kazoo's cluster: %s" % e)
        servers.stop_all()
        shutil.rmtree(work, True)
    c = plugin.counts
    print("(%.0f s)" % (time.monotonic() - started))
    print("kazoo suite against %s: %d passed, %d failed, %d expected failures, %d unexpected passes, %d skipped,"
          " %d reruns of kazoo's races"
          % ("ZooKeeper 3.8" if args.zookeeper else "ferrokeeper", c.get("passed", 0), c.get("failed", 0),
             c.get("xfailed", 0), c.get("xpassed", 0), c.get("skipped", 0), c.get("rerun", 0)))
    sys.exit(int(code))


if __name__ == "__main__":
    main()
