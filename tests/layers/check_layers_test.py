#!/usr/bin/env python3
"""The layer check (scripts/check_layers.py) catches what it is for: each case
injects one wrong-way include into a copy of the source tree and expects the
check to fail on exactly that line; the untouched copy passes. Run it alone
with `python3 tests/layers/check_layers_test.py CheckLayersTest.test_...`."""
import importlib.util
import io
import os
import shutil
import sys
import tempfile
import unittest
from contextlib import redirect_stdout

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SPEC = importlib.util.spec_from_file_location(
    "check_layers", os.path.join(ROOT, "scripts", "check_layers.py"))
check_layers = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(check_layers)


def copy_sources(dest):
    def ignore(directory, names):
        top = os.path.relpath(directory, ROOT) == "."
        return [n for n in names if top and (n == ".git" or n.startswith("build"))]
    shutil.copytree(ROOT, dest, ignore=ignore)


class CheckLayersTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory()
        cls.root = os.path.join(cls._tmp.name, "tree")
        copy_sources(cls.root)

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def setUp(self):
        self.saved = {}  # path -> content before the test (None: did not exist)

    def tearDown(self):
        for path, content in self.saved.items():
            full = os.path.join(self.root, path)
            if content is None:
                os.remove(full)
            else:
                with open(full, "w") as f:
                    f.write(content)

    def run_check(self):
        out = io.StringIO()
        with redirect_stdout(out):
            argv, sys.argv = sys.argv, ["check_layers.py", "--root", self.root]
            try:
                code = check_layers.main()
            finally:
                sys.argv = argv
        return code, out.getvalue()

    def inject(self, path, line):
        full = os.path.join(self.root, path)
        existing = open(full).read()
        self.saved.setdefault(path, existing)
        with open(full, "w") as f:
            f.write(line + "\n" + existing)

    def expect_caught(self, path, line, included):
        self.inject(path, line)
        code, out = self.run_check()
        self.assertEqual(code, 1, out)
        self.assertIn(f"{path}:1: includes {included}", out)

    def test_untouched_tree_passes(self):
        code, out = self.run_check()
        self.assertEqual(code, 0, out)

    def test_backend_including_the_reconciler(self):
        self.expect_caught("sync/dynamodb/dynamodb_backend.cc", '#include "sync/core/reconciler.h"',
                           "sync/core/reconciler.h")

    def test_backend_including_the_store(self):
        self.expect_caught("sync/chime/chime_backend.cc", '#include "engine/store.h"',
                           "engine/store.h")

    def test_crypto_including_the_engine(self):
        self.expect_caught("crypto/hash.cc", '#include "engine/types.h"', "engine/types.h")

    def test_engine_including_sync(self):
        self.expect_caught("engine/hlc.cc", '#include "sync/backend.h"', "sync/backend.h")

    def test_wire_including_the_store(self):
        self.expect_caught("sync/wire/bytes.cc", '#include "engine/store.h"', "engine/store.h")

    def test_emulator_including_the_curl_transport(self):
        self.expect_caught("emulator/chime/auth.cc", '#include "sync/http/http_client.h"',
                           "sync/http/http_client.h")

    def test_cli_including_the_engine(self):
        self.expect_caught("cli/main.cc", '#include "engine/store.h"', "engine/store.h")

    def test_daemon_reaching_past_the_public_api(self):
        self.expect_caught("daemon/daemon.cc", '#include "sync/core/sync_engine.h"',
                           "sync/core/sync_engine.h")
        self.expect_caught("daemon/client.cc", '#include "crypto/hash.h"', "crypto/hash.h")

    def test_a_public_header_including_an_internal_one(self):
        self.expect_caught("include/tidings/tidings.hpp", '#include "common/status.h"',
                           "common/status.h")

    def test_libsodium_outside_crypto(self):
        self.expect_caught("engine/hlc.cc", "#include <sodium.h>", "sodium.h")

    def test_rocksdb_outside_engine(self):
        self.expect_caught("sync/core/reconciler.cc", "#include <rocksdb/db.h>", "rocksdb/db.h")

    def test_curl_outside_the_transport(self):
        self.expect_caught("emulator/chime/routes.cc", "#include <curl/curl.h>", "curl/curl.h")

    def test_allowed_includes_pass(self):
        self.inject("emulator/chime/auth.cc", '#include "sync/http/message.h"')
        self.inject("sync/dynamodb/dynamodb_backend.cc", '#include "sync/wire/bytes.h"')
        self.inject("tests/sync/wire_test.cc", '#include "engine/store.h"')
        code, out = self.run_check()
        self.assertEqual(code, 0, out)


if __name__ == "__main__":
    unittest.main()
