"""unittest for the Python end-to-end tests (tests/cli, tests/daemon).

An end-to-end case runs a scenario of many steps; stopping at the first wrong
output would hide the rest. TestCase.check is a check that does not stop the
case: every failed check of a case is reported together when it ends, and the
case fails. Checks may come from several threads.

The scripts take the paths of the binaries they test as their first
arguments; args() takes those and leaves the rest to unittest, so one case
runs alone with `python3 tests/cli/cli_e2e_test.py build/cli/tidings
Init.test_key_file_beside_the_store`.
"""
import sys
import threading
import unittest


class TestCase(unittest.TestCase):
    def setUp(self):
        super().setUp()
        self._failed_checks = []
        self._checks_lock = threading.Lock()
        self.addCleanup(self._report_checks)  # runs last: cleanups run in reverse

    def check(self, cond, what):
        """Records `what` as a failure of this case when cond is false; returns cond."""
        if not cond:
            with self._checks_lock:
                self._failed_checks.append(str(what))
        return cond

    def _report_checks(self):
        if self._failed_checks:
            self.fail(f"{len(self._failed_checks)} failed checks:\n  - " +
                      "\n  - ".join(self._failed_checks))


def args(count, usage):
    """Takes the first `count` command-line arguments (what the tests run) out
    of sys.argv, leaving unittest's own; exits with `usage` when they are missing."""
    if len(sys.argv) < 1 + count or sys.argv[1].startswith("-"):
        sys.exit(f"usage: {sys.argv[0]} {usage} [unittest arguments, e.g. Class.test_x]")
    taken = sys.argv[1:1 + count]
    del sys.argv[1:1 + count]
    return taken


def main():
    unittest.main(verbosity=2)
