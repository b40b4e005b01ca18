"""What TLS on the client port costs, ZooKeeper 3.8 and ferrokeeper side
by side in one run: one standalone server of each on this host (both
fsync every write; ZooKeeper with NettyServerCnxnFactory, which its TLS
needs, on both of its ports), the same certificates (tests/python/
test_tls.py's, clientAuth=need), and `ferrokeeper bench` on the
plaintext port and on the secure port for each workload.

    /usr/bin/python3 scripts/bench_tls.py [SECONDS]

Prints a Markdown table: ops/s and p99 per server, workload and port, and
the ratios (TLS / plaintext per server; ferrokeeper / ZooKeeper per port).
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "python"))
import harness  # noqa: E402
import test_tls  # noqa: E402

WORKLOADS = [("get", 32, 8), ("set", 32, 8), ("create", 32, 8)]


def bench(port, workload, conns, inflight, seconds, certs=None, hosts=None):
    """(ops/s, p99 ms) of one bench run on 127.0.0.1:`port` (or `hosts`)."""
    server = hosts or "127.0.0.1:%d" % port
    cmd = [harness.BINARY, "bench", "-server", server, "-w", workload, "-c", str(conns),
           "-i", str(inflight), "-d", str(seconds), "--output", "json", "--root", "/bench-%s" % workload]
    if certs:
        cmd += ["--tls-ca", os.path.join(certs, "ca.pem"), "--tls-cert", os.path.join(certs, "app1.pem"),
                "--tls-key", os.path.join(certs, "app1.key")]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True).stdout
    r = json.loads(out)
    if r["errors"]:
        raise RuntimeError("%s on %s: errors %s" % (workload, server, r["errors"]))
    return r["ops_per_s"], r["latency_us"]["p99"] / 1000.0


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10
    certs = tempfile.mkdtemp(prefix="bench-tls-")
    test_tls.make_certs(certs)
    rows = []
    servers = []
    try:
        results = {}
        for kind in ("zookeeper", "ferrokeeper"):
            secure = harness.free_port()
            s = harness.Server(kind, extra={
                "forceSync": "yes",
                "secureClientPort": str(secure),
                "serverCnxnFactory": "org.apache.zookeeper.server.NettyServerCnxnFactory",
                "authProvider.x509": test_tls.X509_PROVIDER,
                "ssl.keyStore.location": os.path.join(certs, "server.p12"),
                "ssl.keyStore.password": test_tls.PASSWORD,
                "ssl.trustStore.location": os.path.join(certs, "trust.p12"),
                "ssl.trustStore.password": test_tls.PASSWORD,
            })
            servers.append(s)
            s.start()
            for w, c, i in WORKLOADS:
                results[(kind, w, "plaintext")] = bench(s.port, w, c, i, seconds)
                results[(kind, w, "TLS")] = bench(secure, w, c, i, seconds, certs)
            s.close()
        print("| workload | port | ZooKeeper ops/s (p99 ms) | ferrokeeper ops/s (p99 ms) | ferrokeeper / ZooKeeper |")
        print("|---|---|---|---|---|")
        for w, c, i in WORKLOADS:
            for port in ("plaintext", "TLS"):
                zk, fk = results[("zookeeper", w, port)], results[("ferrokeeper", w, port)]
                rows.append((w, port))
                print("| %s, %d × %d | %s | %.0f (%.2f) | %.0f (%.2f) | %.2f |"
                      % (w, c, i, port, zk[0], zk[1], fk[0], fk[1], fk[0] / zk[0]))
        print()
        print("| workload | ZooKeeper TLS / plaintext | ferrokeeper TLS / plaintext |")
        print("|---|---|---|")
        for w, c, i in WORKLOADS:
            z = results[("zookeeper", w, "TLS")][0] / results[("zookeeper", w, "plaintext")][0]
            f = results[("ferrokeeper", w, "TLS")][0] / results[("ferrokeeper", w, "plaintext")][0]
            print("| %s | %.2f | %.2f |" % (w, z, f))
    finally:
        for s in servers:
            s.close()
        shutil.rmtree(certs, True)


if __name__ == "__main__":
    main()
