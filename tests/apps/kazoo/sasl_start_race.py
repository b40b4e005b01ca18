"""Measures the race in kazoo 2.8's KazooClient.start() that makes kazoo's
own test_sasl.py::TestSASLDigestAuthentication::test_invalid_sasl_auth
flaky, against ZooKeeper 3.8 or ferrokeeper: the same steps as the test
(a chrooted client with a wrong DIGEST-MD5 password calls start()), N times.

kazoo reports CONNECTED before its SASL exchange, and start() then checks
`connected`: if the connection thread has already failed SASL by then,
start() raises KazooTimeoutError instead of AuthFailedError (at once, or
after 15 s when the failure came before start() began to wait).

    PYTHONPATH=~/.cache/ferrokeeper/pylib /usr/bin/python3 tests/apps/kazoo/sasl_start_race.py zookeeper 200
    PYTHONPATH=~/.cache/ferrokeeper/pylib /usr/bin/python3 tests/apps/kazoo/sasl_start_race.py ferrokeeper 200

Prints one line: the server kind and how each start() ended.
"""
import logging
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "python"))
import harness  # noqa: E402

from kazoo.client import KazooClient  # noqa: E402
from kazoo.exceptions import AuthFailedError  # noqa: E402

JAAS = 'Server {\n  org.apache.zookeeper.server.auth.DigestLoginModule required\n  user_app="app_password";\n};\n'


def main():
    kind, n = sys.argv[1], int(sys.argv[2])
    logging.getLogger("kazoo").setLevel(logging.CRITICAL)
    work = tempfile.mkdtemp(prefix="sasl-race-")
    jaas = os.path.join(work, "jaas.conf")
    with open(jaas, "w") as f:
        f.write(JAAS)
    server = harness.Server(kind, extra={"authProvider.1": "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"},
                            jvm_flags=["-Djava.security.auth.login.config=" + jaas]).start()
    try:
        setup = KazooClient(hosts=server.hosts)
        setup.start()
        setup.ensure_path("/chroot")
        setup.stop()
        ends = {}
        started = time.monotonic()
        for _ in range(n):
            c = KazooClient(hosts=server.hosts + "/chroot", timeout=15,
                            sasl_options={"mechanism": "DIGEST-MD5", "username": "baduser", "password": "badpassword"})
            try:
                c.start()
                end = "started"
            except AuthFailedError:
                end = "AuthFailedError"
            except c.handler.timeout_exception:
                end = "KazooTimeoutError"
            finally:
                c.stop()
                c.close()
            ends[end] = ends.get(end, 0) + 1
        print("%s: %d start() calls in %.0f s: %s" % (kind, n, time.monotonic() - started,
                                                     ", ".join("%s %d" % kv for kv in sorted(ends.items()))))
    finally:
        server.close()
        shutil.rmtree(work, True)


if __name__ == "__main__":
    main()
