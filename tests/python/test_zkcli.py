"""The Java client, through Debian's zkCli.sh: one command script run
against a real ZooKeeper 3.8 and against ferrokeeper; the outputs must be
identical once times, zxids and session ids are masked."""
import re
import subprocess
import unittest

import harness

SCRIPT = """
ls /
ls /zookeeper
create /cli hello
create /cli/child
create -s /cli/seq- x
create -s /cli/seq- y
create -e /cli/eph e
create -c /cont
create -t 100000 /ttl t
create /cli
get /cli
get -s /cli
stat /cli
ls -s /cli
set /cli world
set -v 99 /cli again
set -s /cli again
get /nope
delete /cli
delete /cli/child
delete -v 7 /cli/seq-0000000001
getAllChildrenNumber /cli
getEphemerals /cli
setAcl /cli world:anyone:r
getAcl /cli
set /cli denied
addauth digest user:pw
create /secret s digest:user:cGcaT3vjAF6CyyeXB7G7XGsLdno=:cdrwa
getAcl /secret
get /secret
whoami
create /bad x world:nobody:r
sync /cli
deleteall /cont
ls /
quit
"""

MASKS = [
    (re.compile(r"0x[0-9a-fA-F]+"), "0xN"),
    (re.compile(r"^(ctime|mtime) = .*$", re.M), r"\1 = T"),
    (re.compile(r"^ZooKeeper CLI version.*$", re.M), "ZooKeeper CLI version V"),
]


# zkCli 3.9.5: ZooKeeperMain from the reference jars (scripts/get_zookeeper_3.9.sh).
ZKCLI_39 = ["java", "-cp", harness.ZK39_CLASSPATH + ":/usr/share/java/commons-cli.jar",
            "org.apache.zookeeper.ZooKeeperMain"] if harness.HAVE_ZK39 else None


def run_cli(port, cli=None):
    # zkCli prints results on stdout and errors on stderr: read both, in order.
    r = subprocess.run((cli or [harness.ZKCLI]) + ["-server", "127.0.0.1:%d" % port], input=SCRIPT,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    out = r.stdout
    for rx, repl in MASKS:
        out = rx.sub(repl, out)
    # Connection banners and watcher lines for the connect itself vary in timing.
    keep = [l for l in out.splitlines()
            if l.strip() and not l.startswith(("SLF4J:", "Connecting to", "Welcome to", "JLine", "WATCHER::",
                                               "WatchedEvent state:SyncConnected type:None",
                                               "WatchedEvent state:Closed"))]
    return keep


class ZkCliTest(unittest.TestCase):
    maxDiff = None

    def test_same_output_as_zookeeper(self):
        zk = harness.Server("zookeeper").start()
        fk = harness.Server("ferrokeeper").start()
        try:
            expected = run_cli(zk.port)
            got = run_cli(fk.port)
        finally:
            zk.close()
            fk.close()
        self.assertGreater(len(expected), 40, "the script ran against ZooKeeper")
        self.assertEqual("\n".join(got), "\n".join(expected))


class ZkCliEnsembleTest(unittest.TestCase):
    """The same script through a follower of a 3-server ensemble."""
    maxDiff = None

    def test_same_output_as_zookeeper(self):
        zk = harness.Server("zookeeper").start()
        ens = harness.Ensemble(3).start()
        try:
            follower = ens.serving_follower()
            expected = run_cli(zk.port)
            got = run_cli(follower.port)
        finally:
            zk.close()
            ens.close()
        self.assertGreater(len(expected), 40, "the script ran against ZooKeeper")
        self.assertEqual("\n".join(got), "\n".join(expected))


@unittest.skipUnless(harness.HAVE_ZK39, "ZooKeeper 3.9.5 is not here (scripts/get_zookeeper_3.9.sh)")
class ZkCli39Test(unittest.TestCase):
    """zkCli 3.9.5 with the same script against ZooKeeper 3.9.5 and
    ferrokeeper (issue 20): the same output."""
    maxDiff = None

    def test_same_output_as_zookeeper_3_9(self):
        zk = harness.Server("zookeeper", zookeeper="3.9").start()
        fk = harness.Server("ferrokeeper").start()
        try:
            expected = run_cli(zk.port, ZKCLI_39)
            got = run_cli(fk.port, ZKCLI_39)
        finally:
            zk.close()
            fk.close()
        self.assertGreater(len(expected), 40, "the script ran against ZooKeeper 3.9.5")
        self.assertEqual("\n".join(got), "\n".join(expected))


if __name__ == "__main__":
    unittest.main()
