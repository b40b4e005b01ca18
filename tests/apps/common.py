"""What the application tests (tests/apps/test_*.py) share: the 3-server
ensemble they run on, and a failure report with the logs of everything
involved.

FK_APPS_AGAINST=zookeeper runs the same test on ZooKeeper 3.8 (Debian's
package) instead of ferrokeeper: the oracle, for telling a ferrokeeper bug
from a test or application quirk.
"""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "python"))
import harness  # noqa: E402,F401  (re-exported: free ports, wait_until)

AGAINST = os.environ.get("FK_APPS_AGAINST", "ferrokeeper")


def give_to(user, top):
    """Makes `user` (who runs the application) own everything under `top`
    when the test runs as root; does nothing otherwise."""
    if os.getuid() != 0:
        return
    import pwd
    pw = pwd.getpwnam(user)
    for root, dirs, files in os.walk(top):
        for p in [root] + [os.path.join(root, f) for f in files]:
            os.chown(p, pw.pw_uid, pw.pw_gid)


def tail(path, n):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").splitlines()[-n:]
    except OSError:
        return []


class AppTest(unittest.TestCase):
    """A test that starts an ensemble and some application processes.
    Subclasses list their processes' logs in app_logs(); a failure prints
    their last lines and each server's."""

    def start_ensemble(self):
        self.ens = harness.Ensemble(3, kind=AGAINST, extra={"maxClientCnxns": "0"}).start()
        self.addCleanup(self.ens.close)
        self.ens.leader()
        return ["127.0.0.1:%d" % s.port for s in self.ens.servers]

    def app_logs(self):
        """(title, path) of each application log."""
        return []

    def logs(self):
        out = []
        for title, path in self.app_logs():
            out.append("---- %s (%s)" % (title, path))
            out.extend(tail(path, 40))
        for i, s in enumerate(getattr(self, "ens", None) and self.ens.servers or [], 1):
            out.append("---- %s server %d (%s)" % (AGAINST, i, s.log_path))
            out.extend(tail(s.log_path, 30))
        return "\n".join(out)

    def run_scenario(self, scenario):
        try:
            scenario()
        except BaseException:
            print("\n" + self.logs())
            raise

    def wait(self, cond, timeout, what):
        try:
            harness.wait_until(cond, timeout=timeout, what=what)
        except TimeoutError as e:
            self.fail(str(e))
