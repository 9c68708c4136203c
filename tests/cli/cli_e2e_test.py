#!/usr/bin/env python3
"""End-to-end test of the real `tidings` binary, run as a user runs it.

Usage: cli_e2e_test.py /path/to/tidings /path/to/hold_store [Class.test_x]

Every case runs its commands in a fresh temp dir with a clean environment;
output, --json parse-ability and exit codes are checked. All failed checks of
a case are reported together (tests/common/tidings_unittest.py).
"""
import base64
import json
import os
import pty
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
import tidings_unittest  # noqa: E402

TIDINGS = HOLDER = None  # set from argv in __main__

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_KEY, EXIT_CORRUPT, EXIT_BUSY, EXIT_UNAVAILABLE = range(8)


def mode(path):
    return os.stat(path).st_mode & 0o777


class CliTestCase(tidings_unittest.TestCase):
    """A fresh temp dir `d` with a store path (not made yet) and its key."""

    def setUp(self):
        super().setUp()
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.d = tmp.name
        self.store = os.path.join(self.d, "store")
        self.key = self.store + ".key"
        self.g = ["--store", self.store, "--key-file", self.key]

    def run_cli(self, *args, stdin=None, env=None, expect=0):
        e = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
        e.update(env or {})
        p = subprocess.run([TIDINGS, *args], input=stdin, capture_output=True, text=True, env=e,
                           timeout=60, stdin=None if stdin is not None else subprocess.DEVNULL)
        self.check(p.returncode == expect,
                   f"{args}: exit {p.returncode}, expected {expect}; stderr: {p.stderr.strip()}")
        if p.returncode != 0:
            self.check(p.stderr.startswith("tidings: "),
                       f"{args}: error not in the `tidings: ...` form: {p.stderr!r}")
        return p

    def jsonl(self, p, what):
        try:
            return [json.loads(line) for line in p.stdout.splitlines()]
        except ValueError as err:
            self.check(False, f"{what}: not JSON Lines ({err}): {p.stdout[:200]!r}")
            return []


    def run_raw(self, *args, stdin=b"", expect=0):
        """run_cli() with bytes in and out, for bodies and ids that are not UTF-8."""
        e = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_")}
        p = subprocess.run([TIDINGS, *args], input=stdin, capture_output=True, env=e, timeout=60)
        self.check(p.returncode == expect,
                   f"{args}: exit {p.returncode}, expected {expect}; stderr: {p.stderr!r}")
        return p

    def jsonl_raw(self, p, what):
        """JSON Lines from bytes: the output must be valid UTF-8 and valid JSON."""
        try:
            return [json.loads(line) for line in p.stdout.decode("utf-8").splitlines()]
        except ValueError as err:  # UnicodeDecodeError is a ValueError too
            self.check(False, f"{what}: not UTF-8 JSON Lines ({err}): {p.stdout[:200]!r}")
            return []

class Usage(CliTestCase):
    def test_help_lists_exit_codes_and_usage_errors_exit_2(self):
        run, g = self.run_cli, self.g
        # --help documents the exit codes; no subcommand is a usage error.
        h = run("--help")
        self.check("Exit codes" in h.stdout and "5 corrupt" in h.stdout, "--help lists the exit codes")
        run(expect=EXIT_USAGE)
        run("frobnicate", expect=EXIT_USAGE)
        run(*g, "send", "body-without-conversation", expect=EXIT_USAGE)


class Init(CliTestCase):
    def test_key_file_beside_the_store(self):
        run, check, d, store, key = self.run_cli, self.check, self.d, self.store, self.key
        # init: a key file 0600 beside the store, never inside it.
        p = run("--store", store, "init", "--user", "alice")
        check("created store" in p.stdout and key in p.stdout, f"init announces store and key: {p.stdout}")
        check(os.path.isfile(key) and mode(key) == 0o600, "key file is 0600 at <store>.key")
        check(not any(f.endswith(".key") for f in os.listdir(store)), "no key inside the store dir")
        run("--store", store, "init", "--user", "alice", expect=EXIT_USAGE)  # already exists
        # --json init, with the key in a place of our choosing.
        js = os.path.join(d, "js")
        p = run("--json", "--store", js, "--key-file", os.path.join(d, "keys-js"), "init", "--user", "x")
        info = (self.jsonl(p, "init --json") or [{}])[0]
        check(info.get("user") == "x" and info.get("key_file", "").endswith("keys-js"), f"init json {info}")
        check(mode(os.path.join(d, "keys-js")) == 0o600, "--key-file for init is created 0600")


class WithMessages(CliTestCase):
    """alice's store with 4 messages in general (one edited, one deleted, one
    with a reaction), 1 in random, general marked read: 9 operations queued.
    Made once by CLI commands (checked), then copied for each case."""

    _template = None  # (dir, message ids, failed checks of making it)

    def setUp(self):
        super().setUp()
        if WithMessages._template is None:
            made = tempfile.TemporaryDirectory()
            unittest.addModuleCleanup(made.cleanup)
            failed_before = len(self._failed_checks)
            ids = self.populate(os.path.join(made.name, "store"))
            WithMessages._template = (made.name, ids, self._failed_checks[failed_before:])
        else:
            made, ids, failed = WithMessages._template
            for what in failed:
                self.check(False, f"making the store: {what}")
            shutil.copytree(os.path.join(made, "store"), self.store)
            shutil.copy2(os.path.join(made, "store.key"), self.key)
        self.ids = list(ids)

    def populate(self, store):
        run, check = self.run_cli, self.check
        g = ["--store", store, "--key-file", store + ".key"]
        run("--store", store, "init", "--user", "alice")
        ids = []
        for i in range(3):
            ids.append(run(*g, "send", "-c", "general", f"hello {i}").stdout.strip())
        ids.append(run(*g, "send", "-c", "general", stdin="from stdin\n").stdout.strip())
        sent = self.jsonl(run(*g, "--json", "send", "-c", "random", "elsewhere"), "send --json")
        check(len(sent) == 1 and sent[0].get("body") == "elsewhere" and sent[0].get("state") == "pending",
              f"send --json: {sent}")
        run(*g, "edit", ids[1], "hello 1, edited")
        run(*g, "delete", ids[2])
        run(*g, "react", ids[0], "+1")
        run(*g, "edit", "no-such-id", "x", expect=EXIT_NOT_FOUND)
        run(*g, "mark-read", "-c", "general")
        run(*g, "mark-read", "-c", "nope", expect=EXIT_NOT_FOUND)
        if store != self.store:
            shutil.copytree(store, self.store)
            shutil.copy2(store + ".key", self.key)
        return ids


class Log(WithMessages):
    def test_log_shows_edits_deletes_reactions_and_pages(self):
        run, check, g, ids, jsonl = self.run_cli, self.check, self.g, self.ids, self.jsonl
        log = run(*g, "log", "-c", "general").stdout.splitlines()
        check(len(log) == 4, f"log shows 4 messages, got {log}")
        if len(log) == 4:
            check("hello 0" in log[0] and "[+1 alice]" in log[0], "first message with reaction")
            check("edited" in log[1], "edit shown")
            check("(deleted)" in log[2], "delete shown")
            check("from stdin" in log[3], "stdin body")

        rows = jsonl(run(*g, "--json", "log", "-c", "general"), "log --json")
        check([r["id"] for r in rows] == ids, "json log in send order")
        check(all(r["state"] == "pending" for r in rows), "unsynced messages are pending")
        if len(rows) == 4:
            check(rows[2]["deleted"] and rows[2]["body"] == "", "deleted body erased")
            page = jsonl(run(*g, "--json", "log", "-c", "general", "--limit", "2",
                             "--before", rows[2]["order"]), "log --before")
            check([r["id"] for r in page] == ids[:2], "paging with --before")
            page = jsonl(run(*g, "--json", "log", "-c", "general", "--limit", "1",
                             "--after", rows[0]["order"]), "log --after")
            check([r["id"] for r in page] == ids[1:2], "paging with --after")
            run(*g, "log", "-c", "general", "--before", rows[2]["order"], "--after", rows[0]["order"],
                expect=EXIT_USAGE)
        run(*g, "log", "-c", "general", "--before", "not-an-order", expect=EXIT_USAGE)
        newest = jsonl(run(*g, "--json", "log", "-c", "general", "--limit", "1"), "log --limit")
        check([r["id"] for r in newest] == ids[3:], "--limit keeps the newest")


class Conversations(WithMessages):
    def test_conversations_by_activity(self):
        run, check, g = self.run_cli, self.check, self.g
        convs = self.jsonl(run(*g, "--json", "conversations"), "conversations --json")
        check([c["id"] for c in convs] == ["random", "general"], f"conversations by activity: {convs}")
        if len(convs) == 2:
            check(convs[1]["messages"] == 3, "deleted message not counted")
        check("general" in run(*g, "conversations").stdout, "conversations human output")


class Outbox(WithMessages):
    def test_outbox_lists_operations_and_only_failed_ones_retry(self):
        run, check, g = self.run_cli, self.check, self.g
        outbox = self.jsonl(run(*g, "--json", "outbox"), "outbox --json")
        check(len(outbox) == 9, f"9 operations queued, got {len(outbox)}")
        check({o["kind"] for o in outbox} == {"send", "edit", "delete", "react", "read_marker"},
              f"operation kinds {[o['kind'] for o in outbox]}")
        if outbox:
            # Only failed entries can be retried or discarded.
            p = run(*g, "outbox", "discard", str(outbox[0]["seq"]), expect=EXIT_FAIL)
            check("has not failed" in p.stderr, f"discard explains: {p.stderr}")
            run(*g, "outbox", "retry", str(outbox[0]["seq"]), expect=EXIT_FAIL)
        run(*g, "outbox", "retry", "987654", expect=EXIT_NOT_FOUND)
        run(*g, "outbox", "retry", expect=EXIT_USAGE)


class StatsAndVerify(WithMessages):
    def test_stats_and_verify(self):
        run, check, g, jsonl = self.run_cli, self.check, self.g, self.jsonl
        stats = (jsonl(run(*g, "--json", "stats"), "stats --json") or [{}])[0]
        check(stats.get("messages") == 5 and stats.get("conversations") == 2, f"stats {stats}")
        check(stats.get("user") == "alice" and stats.get("outbox") == 9, f"stats {stats}")
        v = (jsonl(run(*g, "--json", "verify"), "verify --json") or [{}])[0]
        check(v.get("problems") == 0 and v.get("records", 0) > 0, f"verify clean: {v}")
        p = run(*g, "verify")
        check("0 problems" in p.stdout and p.stderr == "", "verify human output; no progress bar off a tty")


class Retention(WithMessages):
    def test_show_set_purge_and_clear(self):
        run, check, g, jsonl = self.run_cli, self.check, self.g, self.jsonl
        rows = jsonl(run(*g, "--json", "retention"), "retention --json")
        check(rows == [{"conversation": "", "keep_days": 0, "keep_last": 0}], f"no policy: {rows}")
        run(*g, "retention", "-c", "general", "--keep-last", "2")
        run(*g, "retention", "--keep-days", "90")
        p = run(*g, "retention")
        check(p.stdout == "store-wide: keep 90 days\ngeneral: keep the last 2 messages\n",
              f"retention: {p.stdout!r}")
        p = run(*g, "retention", "-c", "random")
        check(p.stdout == "random: keep 90 days\n", f"random follows the store: {p.stdout!r}")
        before = jsonl(run(*g, "--json", "log", "-c", "general"), "log --json")
        run(*g, "retention", "--purge-now")
        log = jsonl(run(*g, "--json", "log", "-c", "general"), "log --json")
        # Nothing here reached a backend, and keep-last counts only
        # acknowledged messages (docs/engine.md, "Retention"): all stay.
        check(len(log) > 2 and log == before, f"unsent messages are kept: {log}")
        run(*g, "retention", "--keep-days", "40000", expect=EXIT_USAGE)
        run(*g, "retention", "--clear", "--keep-days", "3", expect=EXIT_USAGE)
        run(*g, "retention", "-c", "general", "--clear")
        p = run(*g, "retention")
        check(p.stdout == "store-wide: keep 90 days\n", f"cleared: {p.stdout!r}")
        v = (jsonl(run(*g, "--json", "verify"), "verify --json") or [{}])[0]
        check(v.get("problems") == 0, f"verify after the purge: {v}")


class Export(WithMessages):
    def test_export_to_stdout_and_to_a_0600_file(self):
        run, check, g = self.run_cli, self.check, self.g
        exported = self.jsonl(run(*g, "export"), "export to stdout")
        check(len(exported) == 5, "export to stdout has every message")
        out = os.path.join(self.d, "export.jsonl")
        run(*g, "export", "--output", out)
        with open(out) as f:
            lines = [json.loads(line) for line in f]
        check(len(lines) == 5, "export file has every message")
        check({m["body"] for m in lines} >= {"hello 0", "elsewhere", "from stdin"}, "export bodies")
        check(mode(out) == 0o600, "export file is 0600")
        run(*g, "export", "--output", out, expect=EXIT_USAGE)  # never overwrites


class Search(WithMessages):
    def test_search_filters_pages_and_explains_bad_queries(self):
        run, check, g, ids, jsonl = self.run_cli, self.check, self.g, self.ids, self.jsonl
        hits = jsonl(run(*g, "search", "hello", "--json"), "search --json")
        # "hello 2" was deleted: its text left the index with it.
        check(sorted(h.get("message_id") for h in hits) == sorted(ids[:2]), f"hello: {hits}")
        for h in hits:
            check(set(h) >= {"message_id", "conversation", "sender", "order", "score", "snippet", "marks"},
                  f"hit fields: {h}")
            marked = [h["snippet"].encode()[b:e].decode() for b, e in h.get("marks", [])]
            check(marked == ["hello"] and h.get("conversation") == "general" and h.get("sender") == "alice",
                  f"marks and fields: {h}")
        newest = jsonl(run(*g, "--json", "search", "hel*", "--newest", "--limit", "1"), "--newest")
        check([h.get("message_id") for h in newest] == [ids[1]], f"newest first: {newest}")
        second = jsonl(run(*g, "--json", "search", "hel*", "--newest", "--offset", "1", "--limit", "1"),
                       "--offset")
        check([h.get("message_id") for h in second] == [ids[0]], f"second page: {second}")
        check(jsonl(run(*g, "--json", "search", "edited", "-c", "general"), "-c")[0].get("message_id") == ids[1],
              "the edited text is found")
        for empty in (["-c", "random"], ["--sender", "bob"], ["--from", "2999-01-01"],
                      ["--to", "2000-01-01T00:00:00Z"]):
            p = run(*g, "search", "hello", *empty)
            check(p.stdout == "" and "0 of 0 hits" in p.stderr, f"{empty} filters out every hit: {p.stdout!r}")
        p = run(*g, "search", "hello", "-c", "general")
        lines = p.stdout.splitlines()
        check(len(lines) == 2 and all("  general  alice: " in l and "[hello]" in l for l in lines),
              f"one line a hit, the match in [brackets] off a terminal: {lines}")
        check(p.stderr == "2 of 2 hits\n", f"the count on stderr: {p.stderr!r}")
        p = run(*g, "search", "h*", expect=EXIT_USAGE)
        check("letters before *" in p.stderr, f"the engine says what to type: {p.stderr}")
        run(*g, "search", expect=EXIT_USAGE)
        run(*g, "search", "hello", "--from", "yesterday", expect=EXIT_USAGE)
        run(*g, "search", "hello", "--limit", "1001", expect=EXIT_USAGE)
        run(*g, "search", "--rebuild", "hello", expect=EXIT_USAGE)
        check(run(*g, "search", "--rebuild").stdout == "rebuilt the search index\n", "rebuild")
        again = jsonl(run(*g, "search", "hello", "--json"), "after the rebuild")
        check(again == hits, f"the rebuild gives the same hits: {again}")

    def test_on_a_terminal_matches_are_bold_and_control_bytes_blank(self):
        run, check, g = self.run_cli, self.check, self.g
        run(*g, "send", "-c", "general", "alarm \x1b[2J wipes the screen")
        env = {k: v for k, v in os.environ.items() if not k.startswith("TIDINGS_") and k != "NO_COLOR"}
        primary, secondary = pty.openpty()
        try:
            p = subprocess.run([TIDINGS, *g, "search", "alarm"], stdout=secondary,
                               stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env, timeout=60)
            os.close(secondary)
            out = b""
            while True:
                try:
                    chunk = os.read(primary, 4096)
                except OSError:  # EIO: the terminal's other end closed
                    break
                if not chunk:
                    break
                out += chunk
        finally:
            os.close(primary)
        check(p.returncode == 0, f"search on a terminal: exit {p.returncode}")
        check(b"\x1b[1malarm\x1b[0m" in out, f"the match in bold: {out!r}")
        check(b"\x1b[2J" not in out and b"  [2J wipes" in out, f"the message's escape blanked: {out!r}")

    def test_search_works_beside_a_writer_and_a_rebuild_is_busy(self):
        if not HOLDER:
            self.skipTest("no hold_store binary given")
        run, check, g = self.run_cli, self.check, self.g
        holder = subprocess.Popen([HOLDER, self.store, self.key], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        try:
            check(holder.stdout.readline().strip() == "ready", "holder opened the store")
            hits = self.jsonl(run(*g, "--json", "search", "elsewhere"), "search beside a writer")
            check(len(hits) == 1 and hits[0].get("conversation") == "random", f"hits: {hits}")
            p = run(*g, "search", "--rebuild", expect=EXIT_BUSY)
            check("Stop it" in p.stderr, f"busy says what to do: {p.stderr}")
        finally:
            holder.stdin.close()
            holder.wait(timeout=30)
            holder.stdout.close()


class Backup(WithMessages):
    def test_backup_restores_the_same_store_and_refuses_a_wrong_key_or_damage(self):
        run, check, g, jsonl = self.run_cli, self.check, self.g, self.jsonl
        backup = os.path.join(self.d, "store.tidbak")
        run(*g, "backup", backup)
        check(mode(backup) == 0o600, "backup file is 0600")
        with open(backup, "rb") as f:
            data = f.read()
        check(b"hello 0" not in data and b"alice" not in data, "the backup holds no plaintext")
        run(*g, "backup", backup, expect=EXIT_USAGE)  # never overwrites
        restored = os.path.join(self.d, "restored")
        r = ["--store", restored, "--key-file", self.key]
        run(*r, "restore", backup)
        check(jsonl(run(*r, "--json", "export"), "restored export") == jsonl(run(*g, "--json", "export"), "export"),
              "the restored store has the same messages")
        stats = (jsonl(run(*r, "--json", "stats"), "stats") or [{}])[0]
        check(stats.get("outbox") == 9 and stats.get("user") == "alice", f"restored stats {stats}")
        run(*r, "verify")
        run(*r, "send", "-c", "general", "after restore")
        run(*r, "restore", backup, expect=EXIT_USAGE)  # never over a store

        other_key = os.path.join(self.d, "other.key")
        run("--store", os.path.join(self.d, "other"), "--key-file", other_key, "init", "--user", "x")
        p = run("--store", os.path.join(self.d, "r2"), "--key-file", other_key, "restore", backup,
                expect=EXIT_KEY)
        check(not os.path.exists(os.path.join(self.d, "r2")), f"a wrong key restores nothing: {p.stderr}")
        damaged = os.path.join(self.d, "damaged.tidbak")
        with open(damaged, "wb") as f:
            f.write(data[:len(data) // 2] + bytes([data[len(data) // 2] ^ 1]) + data[len(data) // 2 + 1:])
        run("--store", os.path.join(self.d, "r3"), "--key-file", self.key, "restore", damaged,
            expect=EXIT_CORRUPT)
        check(not os.path.exists(os.path.join(self.d, "r3")), "a damaged backup restores nothing")


class HeldStore(WithMessages):
    def test_reads_work_while_another_process_writes_and_a_write_is_busy(self):
        if not HOLDER:
            self.skipTest("no hold_store binary given")
        run, check, g = self.run_cli, self.check, self.g
        # Read-only commands work while another process holds the store for
        # writing; a write is refused with BUSY.
        holder = subprocess.Popen([HOLDER, self.store, self.key], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        try:
            check(holder.stdout.readline().strip() == "ready", "holder opened the store")
            for cmd in (["log", "-c", "general"], ["conversations"], ["outbox"], ["stats"],
                        ["verify"], ["export"]):
                run(*g, *cmd)
            p = run(*g, "send", "-c", "general", "while held", expect=EXIT_BUSY)
            check("read-only" in p.stderr or "another process" in p.stderr, f"busy explained: {p.stderr}")
        finally:
            holder.stdin.close()
            holder.wait(timeout=30)
            holder.stdout.close()
        check(holder.returncode == 0, "holder closed cleanly")
        run(*g, "send", "-c", "general", "after release")


class Errors(WithMessages):
    def test_each_error_has_its_exit_code_and_says_what_to_do(self):
        run, check, g, d, store, key = self.run_cli, self.check, self.g, self.d, self.store, self.key
        # Errors: each with its exit code and a message on stderr.
        p = run("--store", store, "--key-file", os.path.join(d, "missing.key"), "stats",
                expect=EXIT_NOT_FOUND)
        check("does not exist" in p.stderr, "missing key file message")
        other = os.path.join(d, "other.key")
        with open(other, "w") as f:
            f.write("ab" * 32 + "\n")
        os.chmod(other, 0o600)
        p = run("--store", store, "--key-file", other, "stats", expect=EXIT_KEY)
        check("key does not open" in p.stderr, f"wrong key message: {p.stderr}")
        os.chmod(key, 0o644)
        p = run(*g, "stats", expect=EXIT_KEY)
        check("chmod 600" in p.stderr, "loose key file refused")
        os.chmod(key, 0o600)
        p = run("--store", os.path.join(d, "nothing"), "--key-file", key, "stats", expect=EXIT_NOT_FOUND)
        check("tidings init" in p.stderr, f"missing store says what to do: {p.stderr}")
        p = run(*g, "log", "-c", "no-such-conversation", expect=EXIT_NOT_FOUND)
        check("tidings conversations" in p.stderr, f"unknown conversation says what to do: {p.stderr}")
        run(*g, "send", "-c", "general", "x" * 70000, expect=EXIT_USAGE)
        p = run("stats", expect=EXIT_USAGE)
        check("--store" in p.stderr, "no store: says to pass --store")
        # No key given, none beside the store, and no terminal.
        p = run("--store", os.path.join(d, "keyless"), "stats", expect=EXIT_USAGE)
        check("TIDINGS_PASSPHRASE" in p.stderr and "keyless.key" in p.stderr,
              f"no key: says where it looked and how to give one: {p.stderr}")
        # Environment variables stand in for the flags.
        env = {"TIDINGS_STORE": store, "TIDINGS_KEY_FILE": key}
        check(len(self.jsonl(run("--json", "log", "-c", "general", env=env), "env log")) == 4,
              "TIDINGS_STORE and TIDINGS_KEY_FILE work")


class Passphrase(CliTestCase):
    def test_the_passphrase_stays_in_the_environment(self):
        run, check, d = self.run_cli, self.check, self.d
        # Passphrase stores: the secret only ever in the environment.
        pstore = os.path.join(d, "pstore")
        penv = {"TIDINGS_PASSPHRASE": "correct horse"}
        run("--store", pstore, "init", "--user", "bob", env=penv)
        check(not os.path.exists(pstore + ".key"), "no key file for a passphrase store")
        run("--store", pstore, "send", "-c", "c", "hi", env=penv)
        p = run("--store", pstore, "stats", env={"TIDINGS_PASSPHRASE": "wrong horse"}, expect=EXIT_KEY)
        check("horse" not in p.stderr, "the passphrase never appears in an error")
        run("--store", os.path.join(d, "p2"), "init", "--user", "b", "--passphrase", expect=EXIT_USAGE)


class Sync(WithMessages):
    def test_a_dead_endpoint_keeps_the_outbox_and_status_shows_the_error(self):
        run, check, g, jsonl = self.run_cli, self.check, self.g, self.jsonl
        # Sync against a dead endpoint: exit 7, nothing lost, and `status` (read
        # only) records the error and the backoff.
        aws = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_REGION": "us-east-1"}
        before = len(jsonl(run(*g, "--json", "outbox"), "outbox before sync"))
        p = run(*g, "sync", "--endpoint", "http://127.0.0.1:1", "--rounds", "1", env=aws,
                expect=EXIT_UNAVAILABLE)
        check("tidings status" in p.stderr, f"sync failure says where to look: {p.stderr}")
        check(len(jsonl(run(*g, "--json", "outbox"), "outbox after sync")) == before,
              "a failed sync keeps the outbox")
        st = jsonl(run(*g, "--json", "status"), "status --json")
        check(len(st) == 2 and all(r["backend"] == "dynamodb" and r["last_error"] and r["next_attempt"]
                                   for r in st), f"status rows: {st}")
        check("outbox:" in run(*g, "status").stdout, "status human output")

    def test_conversation_title(self):
        run, check, g = self.run_cli, self.check, self.g
        run(*g, "conversation", "general", "--title", "General", "--member", "alice", "--member", "bob")
        convs = self.jsonl(run(*g, "--json", "conversations"), "conversations after title")
        check(any(c["id"] == "general" and c["title"] == "General" for c in convs), "conversation title")


class Corruption(WithMessages):
    def test_verify_reports_a_flipped_byte_with_exit_5(self):
        run, check, g = self.run_cli, self.check, self.g
        # Corrupt the store: verify must fail with exit 5.
        for root, _, files in os.walk(self.store):
            for name in files:
                if name.endswith(".log") or name.endswith(".sst"):
                    path = os.path.join(root, name)
                    size = os.path.getsize(path)
                    if size > 200:
                        with open(path, "r+b") as f:
                            f.seek(size // 2)
                            b = f.read(1)
                            f.seek(size // 2)
                            f.write(bytes([b[0] ^ 0x40]))
        p = run(*g, "verify", expect=EXIT_CORRUPT)
        check(p.stderr.startswith("tidings:") and "backup" in p.stderr, f"corruption explained: {p.stderr}")


class KeyLookup(CliTestCase):
    def test_key_is_found_where_init_put_it(self):
        """After `init`, commands find <store>.key without --key-file."""
        run, check, jsonl, d = self.run_cli, self.check, self.jsonl, self.d
        store = os.path.join(d, "found")
        run("--store", store, "init", "--user", "alice")
        sent = run("--store", store, "send", "-c", "c", "no key flag").stdout.strip()
        rows = jsonl(run("--store", store, "--json", "log", "-c", "c"), "log without --key-file")
        check([r["id"] for r in rows] == [sent], f"the key beside the store opens it: {rows}")
        check(len(jsonl(run("--json", "stats", env={"TIDINGS_STORE": store}), "stats via env")) == 1,
              "TIDINGS_STORE alone finds the key too")
        # So does `tidings daemon` (checked without starting it).
        aws = {"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y", "AWS_REGION": "us-east-1"}
        p = run("--store", store, "daemon", "--check-config", env=aws)
        check("configuration OK" in p.stdout, f"the daemon finds <store>.key: {p.stdout}")
        p = run("--store", os.path.join(d, "keyless-daemon"), "daemon", "--check-config", env=aws,
                expect=EXIT_USAGE)
        check("keyless-daemon.key" in p.stderr, f"the daemon says where it looked: {p.stderr}")
        # An explicit key still wins over the one beside the store.
        other = os.path.join(d, "found-other.key")
        run("--store", os.path.join(d, "found-other"), "--key-file", other, "init", "--user", "x")
        p = run("--store", store, "--key-file", other, "stats", expect=EXIT_KEY)
        check("key does not open" in p.stderr, f"--key-file is used, not <store>.key: {p.stderr}")
        # The key found beside the store is held to the same mode rule.
        os.chmod(store + ".key", 0o644)
        p = run("--store", store, "stats", expect=EXIT_KEY)
        check("chmod 600" in p.stderr, f"a loose <store>.key is refused: {p.stderr}")
        os.chmod(store + ".key", 0o600)


class ConversationsJson(CliTestCase):
    def test_conversations_json_has_members_and_read_markers(self):
        run, check, jsonl, d = self.run_cli, self.check, self.jsonl, self.d
        store = os.path.join(d, "members")
        run("--store", store, "init", "--user", "alice")
        g = ["--store", store, "--key-file", store + ".key"]
        run(*g, "send", "-c", "general", "hi")
        run(*g, "conversation", "general", "--title", "General", "--member", "alice", "--member", "bob")
        convs = jsonl(run(*g, "--json", "conversations"), "conversations --json")
        check(len(convs) == 1 and convs[0].get("members") == ["alice", "bob"], f"members: {convs}")
        check(convs and convs[0].get("read_markers") == {}, f"no read markers yet: {convs}")
        run(*g, "mark-read", "-c", "general")
        last = (jsonl(run(*g, "--json", "log", "-c", "general"), "log") or [{}])[-1]
        convs = jsonl(run(*g, "--json", "conversations"), "conversations --json after mark-read")
        marker = convs[0].get("read_markers", {}).get("alice", {}) if convs else {}
        check(marker.get("order") == last["order"] and marker.get("time") == last["time"],
              f"alice's read marker is at the last message: {marker} vs {last}")
        check(convs and convs[0].get("unread") == 0 and convs[0].get("remote_ids") == {},
              f"conversation json: {convs}")


class BodiesFromStdin(CliTestCase):
    def test_send_and_edit_read_the_text_from_stdin(self):
        """Message text need not be in argv, where `ps` shows it."""
        run, check, jsonl, g = self.run_cli, self.check, self.jsonl, self.g
        run("--store", self.store, "init", "--user", "alice")
        sent = run(*g, "send", "-c", "c", stdin="from stdin\n").stdout.strip()
        run(*g, "edit", sent, stdin="edited on stdin\n")
        run(*g, "edit", sent, "-", stdin="edited again\n")
        rows = jsonl(run(*g, "--json", "log", "-c", "c"), "log")
        check([r.get("body") for r in rows] == ["edited again"], f"bodies from stdin: {rows}")


class BinaryBodies(CliTestCase):
    def test_bodies_that_are_not_utf8(self):
        run, run_raw, check, jsonl_raw, d = self.run_cli, self.run_raw, self.check, self.jsonl_raw, self.d
        store = os.path.join(d, "bytes")
        run("--store", store, "init", "--user", "alice")
        g = ["--store", store, "--key-file", store + ".key"]
        run(*g, "send", "-c", "c", "a text message")
        # Text (the default type) that is not UTF-8 is refused, with what to do.
        bad = b"caf\xe9 latin-1\n"
        p = run_raw(*g, "send", "-c", "c", stdin=bad, expect=EXIT_USAGE)
        err = p.stderr.decode()
        check(err.startswith("tidings: ") and "not valid UTF-8" in err and "--content-type" in err,
              f"non-UTF-8 text explained: {err}")
        p = run_raw(*g, "send", "-c", "c", "--content-type", "text/markdown", stdin=bad,
                    expect=EXIT_USAGE)
        # With a binary type the bytes are kept exactly, trailing newline and all.
        blob = bytes(range(256)) + b"\n"
        run_raw(*g, "send", "-c", "c", "--content-type", "application/octet-stream", stdin=blob)
        rows = jsonl_raw(run_raw(*g, "--json", "log", "-c", "c"), "log --json with a binary body")
        check(len(rows) == 2, f"the refused sends stored nothing: {rows}")
        if len(rows) == 2:
            check(rows[0].get("body") == "a text message" and "body_base64" not in rows[0],
                  f"text stays text: {rows[0]}")
            check("body" not in rows[1] and base64.b64decode(rows[1].get("body_base64", "")) == blob,
                  f"bytes round-trip as body_base64: {rows[1]}")
            # The human log does not print the raw bytes.
            line = run(*g, "log", "-c", "c").stdout.splitlines()[1]
            check("(257 bytes of application/octet-stream)" in line, f"binary in log: {line}")
            # A text message cannot be edited into bytes that are not UTF-8.
            run_raw(*g, "edit", rows[0]["id"], b"\xff", expect=EXIT_USAGE)
            run_raw(*g, "edit", rows[1]["id"], b"\xff")
        # Names that are not UTF-8 (from argv) still give valid JSON.
        run_raw(*g, "send", "-c", b"room-\xff", "hello")
        convs = jsonl_raw(run_raw(*g, "--json", "conversations"), "conversations with a bad id")
        check(any(c["id"] == "room-\ufffd" for c in convs), f"invalid bytes become U+FFFD: {convs}")
        rows = jsonl_raw(run_raw(*g, "--json", "log", "-c", b"room-\xff"), "log of a bad id")
        check([r["body"] for r in rows] == ["hello"], f"log --json of a non-UTF-8 id: {rows}")
        check(len(jsonl_raw(run_raw(*g, "export"), "export")) == 3, "export is valid JSON Lines")


if __name__ == "__main__":
    TIDINGS, HOLDER = tidings_unittest.args(2, "/path/to/tidings /path/to/hold_store")
    tidings_unittest.main()
