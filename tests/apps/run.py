"""Runs the application tests, tests/apps/test_*.py (Patroni + PostgreSQL,
ClickHouse), and ends with one summary line, 'apps: N passed, N failed,
N skipped'; exits non-zero on any failure or when none ran. kazoo's own
suite has its own runner, tests/apps/kazoo/run.py.

FK_APPS_AGAINST=zookeeper runs them on ZooKeeper 3.8 instead (the oracle).
FK_APPS_REQUIRED=1 (scripts/test.sh sets it) counts a test skipped for a
missing application as a failure, so a missing install cannot pass CI.
"""
import os
import sys

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(here), "python"))
from run import run_suite  # noqa: E402  (tests/python/run.py)

sys.exit(run_suite(here, "apps", fail_on_skip=os.environ.get("FK_APPS_REQUIRED") == "1"))
