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
import time
import unittest

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, here)
suite = unittest.defaultTestLoader.discover(here, pattern="test_*.py", top_level_dir=here)
started = time.monotonic()
result = unittest.TextTestRunner(verbosity=2).run(suite)
failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
skipped = len(result.skipped)
passed = result.testsRun - failed - skipped
print("(%.0f s)" % (time.monotonic() - started))
print("apps: %d passed, %d failed, %d skipped" % (passed, failed, skipped))
required = os.environ.get("FK_APPS_REQUIRED") == "1"
sys.exit(0 if failed == 0 and passed > 0 and not (required and skipped) else 1)
