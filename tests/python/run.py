"""Runs every tests/python/test_*.py and ends with one summary line,
'python: N passed, N failed, N skipped'; exits non-zero on any failure.
`run_suite` also runs tests/apps (tests/apps/run.py)."""
import os
import sys
import time
import unittest


def run_suite(directory, label, fail_on_skip=False):
    """Discovers and runs `directory`/test_*.py; returns the exit code:
    0 when something passed and nothing failed (nor was skipped, with
    `fail_on_skip`)."""
    sys.path.insert(0, directory)
    suite = unittest.defaultTestLoader.discover(directory, pattern="test_*.py", top_level_dir=directory)
    started = time.monotonic()
    result = unittest.TextTestRunner(verbosity=2).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    skipped = len(result.skipped)
    passed = result.testsRun - failed - skipped
    print("(%.0f s)" % (time.monotonic() - started))
    print("%s: %d passed, %d failed, %d skipped" % (label, passed, failed, skipped))
    return 0 if failed == 0 and passed > 0 and not (fail_on_skip and skipped) else 1


if __name__ == "__main__":
    sys.exit(run_suite(os.path.dirname(os.path.abspath(__file__)), "python"))
