"""What TLS between servers (sslQuorum) costs ferrokeeper's writes: two
3-server ensembles on this host in one run, the same but for sslQuorum
(certificates from tests/python/test_tls.py's maker), both fsyncing
every write, and `ferrokeeper bench` writing through every server.

    /usr/bin/python3 scripts/bench_quorum_tls.py [SECONDS]

Prints a Markdown table: ops/s and p99 per workload for each, and the
ratio sslQuorum / plaintext. (ZooKeeper's quorum TLS is not measured
here: Debian's ZooKeeper 3.8 ensemble would need its own certificate
setup per server; scripts/bench_tls.py compares the client port.)
"""
import os
import shutil
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "python"))
import harness  # noqa: E402
import test_tls  # noqa: E402
from bench_tls import bench  # noqa: E402

WORKLOADS = [("set", 32, 8), ("create", 32, 8)]


def ensemble(extra):
    ens = harness.Ensemble(3, extra=dict(extra, forceSync="yes"))
    ens.start()
    ens.serving_follower()
    return ens


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10
    certs = tempfile.mkdtemp(prefix="bench-quorum-tls-")
    test_tls.make_certs(certs)
    tls = {
        "sslQuorum": "true",
        "ssl.quorum.keyStore.location": os.path.join(certs, "quorum.p12"),
        "ssl.quorum.keyStore.password": test_tls.PASSWORD,
        "ssl.quorum.trustStore.location": os.path.join(certs, "trust.p12"),
        "ssl.quorum.trustStore.password": test_tls.PASSWORD,
    }
    results = {}
    try:
        for name, extra in (("plaintext", {}), ("sslQuorum", tls)):
            ens = ensemble(extra)
            try:
                for w, c, i in WORKLOADS:
                    # One connection string of all three: connections spread.
                    results[(name, w)] = bench(None, w, c, i, seconds, hosts=ens.hosts)
            finally:
                ens.close()
        print("| workload | plaintext ops/s (p99 ms) | sslQuorum ops/s (p99 ms) | sslQuorum / plaintext |")
        print("|---|---|---|---|")
        for w, c, i in WORKLOADS:
            p, t = results[("plaintext", w)], results[("sslQuorum", w)]
            print("| %s, %d × %d | %.0f (%.2f) | %.0f (%.2f) | %.2f |" % (w, c, i, p[0], p[1], t[0], t[1], t[0] / p[0]))
    finally:
        shutil.rmtree(certs, True)


if __name__ == "__main__":
    main()
