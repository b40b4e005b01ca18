"""Every four-letter word against ZooKeeper 3.8 with the same clients,
nodes and watches: the same lines, the same numbers where they are
deterministic (counts, modes, packet counters), masked where they cannot
agree (ports, session ids, times, zxids, versions, paths)."""
import re
import unittest

from kazoo.client import KazooClient

import harness

COMMANDS = ["conf", "cons", "crst", "dump", "envi", "ruok", "srst", "srvr", "stat",
            "wchs", "wchc", "wchp", "mntr", "isro", "hash", "dirs"]


def scenario(kind, extra=None):
    """Two sessions, an ephemeral, data/exist/child watches; then every
    command once, in a fixed order. Returns {cmd: [answers]} and the two
    session ids."""
    s = harness.Server(kind=kind, extra=extra)
    s.start()
    # Counters start from the same point on both (the start-up probes
    # differ in number).
    harness.four_letter(s.port, "srst")
    c1 = KazooClient(hosts=s.hosts)
    c2 = KazooClient(hosts=s.hosts)
    try:
        c1.start(15)
        c2.start(15)
        c1.create("/w/x", b"abc", makepath=True)
        c1.create("/e", b"12345", ephemeral=True)
        c1.get("/w/x", watch=lambda e: None)
        c1.get_children("/w", watch=lambda e: None)
        c1.exists("/nope", watch=lambda e: None)
        c2.get("/w/x", watch=lambda e: None)
        out = {}
        order = ["srvr", "stat", "cons", "wchs", "wchc", "wchp", "dump", "mntr", "conf", "envi",
                 "ruok", "isro", "dirs", "hash", "crst", "cons", "srst", "srvr"]
        for cmd in order:
            out.setdefault(cmd, []).append(harness.four_letter(s.port, cmd))
        return out, (c1.client_id[0], c2.client_id[0])
    finally:
        c1.stop()
        c2.stop()
        s.close()


def sessions_masked(text, sids):
    for i, sid in enumerate(sids):
        text = text.replace("0x%x" % sid, "SESSION%d" % (i + 1))
    return text


def cons_lines(text, sids):
    text = sessions_masked(text, sids)
    text = re.sub(r"/127\.0\.0\.1:\d+", "ADDR", text)
    text = re.sub(r"est=\d+", "est=T", text)
    text = re.sub(r"lresp=\d+", "lresp=T", text)
    text = re.sub(r"lzxid=0x[0-9a-f]+", "lzxid=Z", text)
    text = re.sub(r"(llat|minlat|avglat|maxlat)=\d+", r"\1=L", text)
    return sorted(text.split("\n"))


def srvr_fields(text):
    d = dict(l.split(": ", 1) for l in text.splitlines() if ": " in l)
    d.pop("Zookeeper version", None)
    d.pop("Latency min/avg/max", None)
    d.pop("Zxid", None)
    return d


class FourLetterWordsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.zk, cls.zk_sids = scenario("zookeeper")
        cls.fk, cls.fk_sids = scenario("ferrokeeper")

    def both(self, cmd, i=0):
        return self.zk[cmd][i], self.fk[cmd][i]

    def test_fixed_answers(self):
        for cmd in ("ruok", "isro", "crst", "srst", "wchs"):
            zk, fk = self.both(cmd)
            self.assertEqual(fk, zk, cmd)

    def test_srvr_and_stat(self):
        for i in (0, 1):  # before and after srst
            zk, fk = self.both("srvr", i)
            self.assertEqual(srvr_fields(fk), srvr_fields(zk))
            self.assertRegex(fk, r"Latency min/avg/max: \d+/\d+\.\d+/\d+\n")
            self.assertEqual([l.split(":")[0] for l in fk.splitlines()],
                             [l.split(":")[0] for l in zk.splitlines()])
        zk, fk = self.both("stat")
        self.assertEqual(srvr_fields(fk), srvr_fields(zk))
        clients = lambda t, sids: cons_lines(t.split("Clients:\n", 1)[1].split("\n\n", 1)[0], sids)
        self.assertEqual(clients(fk, self.fk_sids), clients(zk, self.zk_sids))

    def test_cons_and_crst(self):
        for i in (0, 1):  # the second after crst
            zk, fk = self.both("cons", i)
            self.assertEqual(cons_lines(fk, self.fk_sids), cons_lines(zk, self.zk_sids), "cons #%d" % i)

    def test_watch_reports(self):
        for cmd in ("wchc", "wchp"):
            zk, fk = self.both(cmd)
            # Groups in any order (ZooKeeper's are hash-ordered), same content.
            group = lambda t, sids: sorted(
                tuple(sorted(g.split("\n"))) for g in re.split(r"\n(?=[^\t])", sessions_masked(t, sids).strip()))
            self.assertEqual(group(fk, self.fk_sids), group(zk, self.zk_sids), cmd)
            self.assertTrue(fk.endswith("\n\n"))

    def test_dump(self):
        zk, fk = self.both("dump")
        mask = lambda t, sids: re.sub(r"expire at [A-Za-z]{3} [A-Za-z]{3} \d\d \d\d:\d\d:\d\d \w+ \d{4}", "expire at DATE",
                                      sessions_masked(t, sids))
        zk_m, fk_m = mask(zk, self.zk_sids), mask(fk, self.fk_sids)
        # Sessions and ephemerals: identical up to order within a set.
        # ZooKeeper's expiry buckets depend on when each session was last
        # touched (it may show a left-over empty one, or split two sessions
        # created a few ms apart): the buckets are not compared, the
        # sessions in them are.
        part = lambda t: sorted(re.sub(r"Session Sets \(\d+\)", "Session Sets (N)", l)
                                for l in t.split("Connections dump:")[0].splitlines()
                                if not re.match(r"\d+ expire at", l))
        self.assertEqual(part(fk_m), part(zk_m))
        self.assertIn("Connections dump:\nConnections Sets (", fk)
        self.assertEqual(len(re.findall(r"\tip: /127\.0\.0\.1:\d+ sessionId: ", fk)),
                         len(re.findall(r"\tip: /127\.0\.0\.1:\d+ sessionId: ", zk)))

    def test_mntr(self):
        zk, fk = self.both("mntr")
        parse = lambda t: dict(l.split("\t", 1) for l in t.splitlines() if "\t" in l)
        z, f = parse(zk), parse(fk)
        for key in ("zk_server_state", "zk_znode_count", "zk_watch_count", "zk_ephemerals_count",
                    "zk_approximate_data_size", "zk_outstanding_requests", "zk_num_alive_connections",
                    "zk_global_sessions", "zk_packets_received", "zk_packets_sent"):
            self.assertEqual(f.get(key), z.get(key), key)
        for key in ("zk_version", "zk_avg_latency", "zk_max_latency", "zk_min_latency",
                    "zk_open_file_descriptor_count", "zk_max_file_descriptor_count", "zk_uptime"):
            self.assertIn(key, f)
            self.assertIn(key, z)

    def test_conf_envi_dirs_hash(self):
        keys = lambda t: [l.split("=", 1)[0] for l in t.splitlines()]
        zk, fk = self.both("conf")
        self.assertEqual(keys(fk), keys(zk))
        zk, fk = self.both("envi")
        self.assertTrue(fk.startswith("Environment:\nzookeeper.version="))
        for k in ("host.name", "os.name", "os.arch", "os.version", "user.name", "user.home", "user.dir"):
            self.assertIn(k, keys(fk))
            self.assertIn(k, keys(zk))
        self.assertEqual([l.split("=")[1] for l in fk.splitlines() if l.split("=")[0] in ("os.name", "os.arch", "user.name", "os.version")],
                         [l.split("=")[1] for l in zk.splitlines() if l.split("=")[0] in ("os.name", "os.arch", "user.name", "os.version")])
        zk, fk = self.both("dirs")
        self.assertEqual(keys(fk.replace(": ", "=")), keys(zk.replace(": ", "=")))
        # ZooKeeper's digest log is empty until it takes a snapshot; ours
        # is the digest of the tree at the last zxid.
        self.assertRegex(self.fk["hash"][0], r"^[0-9a-f]+: \d+\n$")

    def test_default_whitelist_allows_srvr_only(self):
        answers = {}
        for kind in ("zookeeper", "ferrokeeper"):
            s = harness.Server(kind=kind)
            del s.lines["4lw.commands.whitelist"]  # ZooKeeper's default
            s.write_cfg()
            s.start(probe="srvr")
            try:
                answers[kind] = {cmd: harness.four_letter(s.port, cmd) for cmd in COMMANDS if cmd != "srvr"}
            finally:
                s.close()
        self.assertEqual(answers["ferrokeeper"], answers["zookeeper"])
        for cmd, text in answers["ferrokeeper"].items():
            self.assertEqual(text, "%s is not executed because it is not in the whitelist.\n" % cmd)


class EnsembleFourLetterWordsTest(unittest.TestCase):
    def test_leader_reports_followers(self):
        ens = harness.Ensemble(3)
        self.addCleanup(ens.close)
        ens.start()
        leader = ens.leader()
        harness.wait_until(lambda: ens.mntr(leader).get("zk_synced_followers") == "2", what="two synced followers")
        m = ens.mntr(leader)
        self.assertEqual((m["zk_server_state"], m["zk_followers"]), ("leader", "2"))
        follower = next(i for i in (1, 2, 3) if i != leader)
        self.assertEqual(ens.mntr(follower)["zk_server_state"], "follower")
        self.assertNotIn("zk_followers", ens.mntr(follower))
        conf = harness.four_letter(ens.server(follower).port, "conf")
        self.assertIn("serverId=%d\n" % follower, conf)
        self.assertIn("membership: \n", conf)
        self.assertEqual(len(re.findall(r"^server\.\d=localhost:\d+:\d+:participant$", conf, re.M)), 3)
        ens.server(next(i for i in (1, 2, 3) if i not in (leader, follower))).kill()
        harness.wait_until(lambda: ens.mntr(leader).get("zk_followers") == "1", what="one follower left")


if __name__ == "__main__":
    unittest.main()
