"""What local sessions (`localSessionsEnabled`, issue 20) save: session
churn — one client opening a session and closing it, over and over,
through a follower of a 3-server ensemble on this host — with global and
with local sessions, ZooKeeper 3.8 and ferrokeeper in one run.

    cargo build --release && /usr/bin/python3 scripts/measure_session_churn.py [SESSIONS] [ROUNDS]

Prints a Markdown table: sessions a second, the median of the rounds and
their spread.
"""
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "tests", "python"))
import harness  # noqa: E402


def churn(kind, local, n):
    """Sessions opened and closed a second through one follower."""
    # fsync on for both (the harness turns ZooKeeper's off for the tests).
    ens = harness.Ensemble(3, kind=kind, extra={"localSessionsEnabled": "true" if local else "false",
                                                "forceSync": "yes"})
    try:
        ens.start()
        leader = ens.leader()
        harness.wait_until(lambda: all(ens.mode(i) in ("leader", "follower") for i in (1, 2, 3)), timeout=60,
                           what="every server serving")
        follower = next(i for i in (1, 2, 3) if i != leader)
        start = time.monotonic()
        for _ in range(n):
            raw = harness.RawConn(ens.server(follower).port)
            raw.request(1, -11)  # closeSession
            raw.reply()
            raw.close()
        return n / (time.monotonic() - start)
    finally:
        ens.close()


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 300
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    print("| sessions a second (%d per round, %d rounds) | global | local | local / global |" % (n, rounds))
    print("|---|---|---|---|")
    for name, kind in (("ZooKeeper 3.8", "zookeeper"), ("ferrokeeper", "ferrokeeper")):
        med = {}
        cells = []
        for local in (False, True):
            rates = [churn(kind, local, n) for _ in range(rounds)]
            med[local] = statistics.median(rates)
            cells.append("%.0f (%.0f–%.0f)" % (med[local], min(rates), max(rates)))
        print("| %s | %s | %s | %.1f |" % (name, cells[0], cells[1], med[True] / med[False]))


if __name__ == "__main__":
    main()
