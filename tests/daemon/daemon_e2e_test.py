#!/usr/bin/env python3
"""`tidings daemon` end to end, as an operator runs it: the real binary, a
real moto_server with signatures and IAM on (started here), a config file.

Usage: daemon_e2e_test.py /path/to/tidings /path/to/moto_setup.py [unittest arguments]

Checks: config errors exit 2 with file:line and key and start nothing;
--check-config; a write from another process goes through the socket and
reaches the server; read-only commands work meanwhile; a client without the
key is refused; /healthz and /metrics; SIGHUP reload (good and bad file);
JSON logs; no body marker, key or AWS secret in any log; bad credentials
give 503 with the reason; non-loopback metrics refused; SIGTERM is prompt and
exits 0."""
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

from daemon_util import (Daemon, Moto, clean_env, free_port, healthz, metrics, server_ops,
                         wait_port)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
import tidings_unittest  # noqa: E402

TIDINGS, MOTO_SETUP = sys.argv[1], sys.argv[2]
MARKER = "BODY-MARKER-5f2e9a"
c = None  # the running case (tidings_unittest.TestCase): checks are recorded on it


def run(args, env, expect=None, stdin=None):
    p = subprocess.run([TIDINGS, *args], env=env, capture_output=True, text=True, timeout=60,
                       input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL)
    if expect is not None:
        c.check(p.returncode == expect,
                f"{args}: exit {p.returncode}, expected {expect}; stderr: {p.stderr.strip()}")
    return p


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def frame(fields):
    payload = b""
    for k, v in fields:
        k, v = k.encode(), v if isinstance(v, bytes) else v.encode()
        payload += struct.pack(">H", len(k)) + k + struct.pack(">I", len(v)) + v
    return struct.pack(">I", len(payload)) + payload


def read_frame(s):
    def exact(n):
        b = b""
        while len(b) < n:
            chunk = s.recv(n - len(b))
            if not chunk:
                raise EOFError
            b += chunk
        return b
    (n,) = struct.unpack(">I", exact(4))
    payload, out, i = exact(n), {}, 0
    while i < len(payload):
        (kl,) = struct.unpack(">H", payload[i:i + 2]); i += 2
        k = payload[i:i + kl].decode(); i += kl
        (vl,) = struct.unpack(">I", payload[i:i + 4]); i += 4
        out[k] = payload[i:i + vl]; i += vl
    return out


class DaemonEndToEnd(tidings_unittest.TestCase):
    def test_end_to_end(self):
        global c
        c = self
        with tempfile.TemporaryDirectory() as d:
            moto = Moto(d, MOTO_SETUP)
            try:
                # alice signs as an IAM identity of her own: she publishes her
                # device record under her own partition (docs/dynamodb.md).
                alice = moto.creds_for("alice")
                env = clean_env({**moto.env(), "HOME": d, "AWS_ACCESS_KEY_ID": alice["access_key"],
                                 "AWS_SECRET_ACCESS_KEY": alice["secret"]})
                # The test reads the whole table back as the admin (Scan).
                admin = {"access_key": moto.creds["admin_access_key"],
                         "secret": moto.creds["admin_secret"]}
                store, key = os.path.join(d, "a"), os.path.join(d, "a.key")
                g = ["--store", store, "--key-file", key]
                run(["--store", store, "init", "--user", "alice"], env, expect=0)
                key_hex = open(key).read().strip()
                cfg = os.path.join(d, "daemon.toml")
                good = f"""
[store]
path = "{store}"
key_file = "{key}"

[sync]
backends = ["dynamodb"]
active_poll_ms = 200
idle_poll_ms = 1000

[dynamodb]
table = "tidings"

[metrics]
listen = "127.0.0.1:0"
"""
                write(cfg, good)

                # ---- configuration errors: exit 2, a clear message, nothing started
                def bad(text, env_extra, must, what):
                    write(cfg, text)
                    t0 = time.time()
                    p = run(["daemon", "--config", cfg], {**env, **env_extra})
                    c.check(p.returncode == 2, f"{what}: exit {p.returncode}, expected 2: {p.stderr}")
                    for m in must:
                        c.check(m in p.stderr, f"{what}: stderr lacks {m!r}: {p.stderr.strip()}")
                    c.check(p.stderr.startswith("tidings: "), f"{what}: message form: {p.stderr!r}")
                    c.check(not os.path.exists(os.path.join(store, "daemon.sock")),
                            f"{what}: a socket was created")
                    c.check(time.time() - t0 < 5, f"{what}: took {time.time() - t0:.1f}s")

                bad(good + "\n[sync2]\nx = 1\n", {}, [f"{cfg}:", "unknown section [sync2]"],
                    "unknown section")
                bad(good.replace("idle_poll_ms = 1000", "idle_poll_ms = 1000\npoll_ms = 5"), {},
                    [f"{cfg}:10:", "unknown key sync.poll_ms", "active_poll_ms"], "unknown key")
                bad(good.replace("active_poll_ms = 200", 'active_poll_ms = "fast"'), {},
                    [f"{cfg}:8:", "sync.active_poll_ms must be an integer"], "bad type")
                bad(good.replace("active_poll_ms = 200", "active_poll_ms = -5"), {},
                    [f"{cfg}:8:", "sync.active_poll_ms must be between"], "bad value")
                bad(good.replace('["dynamodb"]', '["dynamo"]'), {},
                    [f"{cfg}:7:", "sync.backends", '"dynamodb" and "chime"'], "unknown backend")
                bad(good.replace("[dynamodb]", "[dynamodb\n"), {}, [f"{cfg}:"], "TOML syntax")
                bad(good, {"TIDINGS_DAEMON_SYNC_IDLE_POLL_MS": "soon"},
                    ["TIDINGS_DAEMON_SYNC_IDLE_POLL_MS", "integer"], "bad env override")
                bad(good.replace('listen = "127.0.0.1:0"', 'listen = "0.0.0.0:0"'), {},
                    ["not a loopback address", "allow_non_loopback"], "non-loopback metrics")
                no_creds = {k: v for k, v in env.items() if not k.startswith("AWS_ACCESS")
                            and not k.startswith("AWS_SECRET")}
                write(cfg, good)
                p = run(["daemon", "--config", cfg], no_creds, expect=2)
                c.check("AWS_ACCESS_KEY_ID" in p.stderr, f"missing credentials message: {p.stderr}")
                p = run(["daemon", "--config", os.path.join(d, "missing.toml")], env, expect=2)
                c.check("missing.toml" in p.stderr and "--config" in p.stderr, f"missing file: {p.stderr}")
                c.check(not os.path.exists(os.path.join(store, "daemon.sock")), "socket after errors")

                # ---- --check-config
                write(cfg, good)
                p = run(["daemon", "--config", cfg, "--check-config"], env, expect=0)
                c.check("configuration OK" in p.stdout, f"--check-config output: {p.stdout}")
                wrong_key = os.path.join(d, "wrong.key")
                write(wrong_key, "11" * 32 + "\n")
                os.chmod(wrong_key, 0o600)
                run(["--key-file", wrong_key, "daemon", "--config", cfg, "--check-config"], env, expect=4)

                # ---- start, JSON logs, a write through the socket
                log_path = os.path.join(d, "daemon.log")
                dmn = Daemon.start(TIDINGS, [], ["--config", cfg, "--log-format", "json"], env, log_path)
                port = dmn.metrics_port()
                c.check(port is not None, "metrics port logged")
                c.check(dmn.wait_log(r"daemon\.started") is not None, "daemon.started logged")
                sock = os.path.join(store, "daemon.sock")
                c.check(os.path.exists(sock) and os.stat(sock).st_mode & 0o777 == 0o600, "socket is 0600")
                c.check(os.stat(store).st_mode & 0o777 == 0o700, "store dir is 0700")
                code, body = healthz(port)
                c.check(code == 200 and body.startswith("ok"), f"/healthz {code} {body}")

                ids = []
                for i in range(5):
                    p = run([*g, "send", "-c", f"conv-{i % 2}", f"{MARKER} {i}"], env, expect=0)
                    ids.append(p.stdout.strip())
                p = run([*g, "--json", "send", "-c", "conv-0", "-"], env, expect=0, stdin=f"{MARKER} json")
                msg = json.loads(p.stdout or "{}")
                c.check(msg.get("body") == f"{MARKER} json" and msg.get("conversation") == "conv-0",
                        f"send --json through the daemon: {p.stdout}")
                ids.append(msg.get("id", ""))
                run([*g, "edit", ids[0], f"{MARKER} edited"], env, expect=0)
                run([*g, "react", ids[1], "+1"], env, expect=0)
                run([*g, "mark-read", "-c", "conv-0"], env, expect=0)
                run([*g, "delete", ids[2]], env, expect=0)
                run([*g, "conversation", "conv-1", "--title", "T", "--member", "bob"], env, expect=0)
                run([*g, "edit", "no-such-id", "x"], env, expect=3)
                run([*g, "send", "-c", "conv-0", "x" * (70 * 1024)], env, expect=2)
                p = run([*g, "daemon", "--poke"], env, expect=0)
                # Read-only commands while the daemon holds the store.
                for cmd in (["status"], ["log", "-c", "conv-0"], ["conversations"], ["outbox"], ["stats"],
                            ["verify"]):
                    run([*g, *cmd], env, expect=0)
                p = run([*g, "--json", "log", "-c", "conv-0"], env, expect=0)
                bodies = [json.loads(l)["body"] for l in p.stdout.splitlines()]
                c.check(f"{MARKER} edited" in bodies, f"edit through the daemon visible: {bodies}")

                # Everything reaches the server, once.
                deadline = time.time() + 20
                while time.time() < deadline:
                    m, _ = metrics(port)
                    if m.get('tidings_outbox_entries{state="pending"}', 1) == 0:
                        break
                    time.sleep(0.2)
                sends = [op for op in server_ops(moto.endpoint, admin) if op[1] in (1, None)]
                got = [op[2] for op in sends]
                for i in ids:
                    c.check(got.count(i) == 1, f"message {i} on the server {got.count(i)} times")

                # A process without the key cannot write through the socket.
                s = socket.socket(socket.AF_UNIX)
                s.connect(sock)
                hello = read_frame(s)
                c.check(hello.get("op") == b"hello" and len(hello.get("nonce", b"")) == 32, "hello frame")
                s.sendall(frame([("op", "auth"), ("nonce", os.urandom(32)), ("mac", os.urandom(32))]))
                ans = read_frame(s)
                c.check(ans.get("op") == b"error" and ans.get("code") == b"UNAUTHENTICATED",
                        f"forged auth refused: {ans}")
                try:
                    s.sendall(frame([("op", "send"), ("conversation", "conv-0"), ("body", "INJECTED")]))
                    extra = read_frame(s)
                except (EOFError, ConnectionError):
                    extra = None
                c.check(extra is None, f"connection closed after a refused auth: {extra}")
                s.close()
                p = run([*g, "--json", "log", "-c", "conv-0"], env, expect=0)
                c.check("INJECTED" not in p.stdout, "an unauthenticated client wrote a message")
                # A client with the wrong key is refused too (it cannot open the store).
                run(["--store", store, "--key-file", wrong_key, "send", "-c", "conv-0", "x"], env, expect=4)

                # /metrics
                m, text = metrics(port)
                for name in ["tidings_outbox_entries", "tidings_outbox_depth{backend=\"dynamodb\"}",
                             "tidings_pull_lag_seconds{backend=\"dynamodb\"}",
                             "tidings_backend_requests_total{backend=\"dynamodb\"}",
                             "tidings_backend_retries_total{backend=\"dynamodb\"}",
                             "tidings_last_success_timestamp_seconds{backend=\"dynamodb\"}",
                             "tidings_sync_up{backend=\"dynamodb\"} 1",
                             'tidings_socket_requests_total{op="send",result="ok"}',
                             'tidings_socket_requests_total{op="poke",result="ok"} 1',
                             'tidings_socket_requests_total{op="auth",result="UNAUTHENTICATED"} 1']:
                    c.check(name in text, f"/metrics lacks {name}")
                c.check(m.get('tidings_backend_requests_total{backend="dynamodb"}', 0) > 0, "requests > 0")
                c.check(m.get('tidings_pull_lag_seconds{backend="dynamodb"}', 99) < 10, "pull lag small")
                c.check(abs(m.get('tidings_last_success_timestamp_seconds{backend="dynamodb"}', 0)
                            - time.time()) < 30, "last success recent")

                # SIGHUP: a good change applies, a bad file is refused and the old one kept.
                write(cfg, good.replace("idle_poll_ms = 1000", "idle_poll_ms = 1500") +
                      '\n[log]\nlevel = "debug"\nformat = "json"\n')
                dmn.signal(signal.SIGHUP)
                c.check(dmn.wait_log(r'"event":"config.reloaded"') is not None, "reload logged")
                write(cfg, good + "\n[bogus]\n")
                dmn.signal(signal.SIGHUP)
                c.check(dmn.wait_log(r'"event":"config.reload_failed".*unknown section') is not None,
                        "bad reload logged with the reason")
                time.sleep(0.3)
                c.check(dmn.proc.poll() is None, "daemon kept running after a bad reload")
                code, _ = healthz(port)
                c.check(code == 200, f"healthy after a bad reload: {code}")
                m, _ = metrics(port)
                c.check(m.get('tidings_config_reloads_total{result="ok"}') == 1 and
                        m.get('tidings_config_reloads_total{result="failed"}') == 1, "reload counters")
                run([*g, "send", "-c", "conv-1", f"{MARKER} after reload"], env, expect=0)

                # SIGTERM: prompt, exit 0, socket gone.
                t0 = time.time()
                rc = dmn.stop()
                took = time.time() - t0
                c.check(rc == 0, f"SIGTERM exit code {rc}")
                c.check(took < 3, f"SIGTERM took {took:.2f}s")
                c.check(not os.path.exists(sock), "socket removed at exit")
                log = dmn.log()
                for line in log.splitlines():
                    try:
                        json.loads(line)
                    except ValueError:
                        c.check(False, f"log line not JSON: {line[:120]}")
                c.check('"level":"debug"' in log, "log level reloaded to debug")
                # Writes work directly again once the daemon is gone; a poke says none runs.
                run([*g, "send", "-c", "conv-1", "direct"], env, expect=0)
                run([*g, "daemon", "--poke"], env, expect=3)

                # ---- both backends: deliver through Chime, persist through DynamoDB.
                # Chime is unreachable here (a closed port: the emulator is not part
                # of this test), so each operation must stay in the outbox for Chime
                # after DynamoDB took it (SyncLog::SetOutboxBackends).
                dead = free_port()
                cfg_both = os.path.join(d, "both.toml")
                write(cfg_both, good.replace('backends = ["dynamodb"]', 'backends = ["chime", "dynamodb"]') +
                      '\n[chime]\napp_instance_arn = "arn:aws:chime:us-east-1:123456789012:app-instance/t"\n'
                      'user_arn = "arn:aws:chime:us-east-1:123456789012:app-instance/t/user/alice"\n'
                      f'endpoint = "http://127.0.0.1:{dead}"\n')
                if "no Chime backend" in run(["daemon", "--config", cfg_both, "--check-config"], env).stderr:
                    print("this build has no Chime backend: the two-backend case is skipped")
                else:
                    dmn = Daemon.start(TIDINGS, [], ["--config", cfg_both], env, os.path.join(d, "both.log"))
                    port = dmn.metrics_port()
                    both_id = run([*g, "send", "-c", "conv-1", "to both"], env, expect=0).stdout.strip()
                    deadline, m = time.time() + 20, {}
                    while time.time() < deadline:
                        m, _ = metrics(port)
                        if (m.get('tidings_outbox_depth{backend="dynamodb"}') == 0 and
                                m.get('tidings_backend_errors_total{backend="chime",kind="unavailable"}', 0) > 0):
                            break
                        time.sleep(0.2)
                    c.check(m.get('tidings_outbox_depth{backend="dynamodb"}') == 0, f"dynamodb took it: {m}")
                    c.check(m.get('tidings_outbox_depth{backend="chime"}', 0) >= 1, "still waiting for chime")
                    c.check(m.get('tidings_outbox_entries{state="pending"}', 0) >= 1,
                            "the outbox keeps the entry until chime accepted it too")
                    on_server = [op[2] for op in server_ops(moto.endpoint, admin)]
                    c.check(on_server.count(both_id) == 1, "the message is on DynamoDB once")
                    c.check(dmn.stop() == 0, "two-backend daemon stops cleanly")
                    print("two backends: DynamoDB has the message once, the outbox keeps it for Chime")

                # ---- credentials the server refuses: 503 with the reason
                store_b, key_b = os.path.join(d, "b"), os.path.join(d, "b.key")
                run(["--store", store_b, "init", "--user", "bob"], env, expect=0)
                run(["--store", store_b, "--key-file", key_b, "send", "-c", "conv-0", "hi"], env, expect=0)
                cfg_b = os.path.join(d, "b.toml")
                write(cfg_b, good.replace(store, store_b).replace(key, key_b))
                bad_env = {**env, "AWS_ACCESS_KEY_ID": "AKIAWRONG", "AWS_SECRET_ACCESS_KEY": "wrong-7"}
                log_b = os.path.join(d, "b.log")
                dmn_b = Daemon.start(TIDINGS, [], ["--config", cfg_b], bad_env, log_b)
                port_b = dmn_b.metrics_port()
                deadline, code, body = time.time() + 20, 0, ""
                while time.time() < deadline:
                    code, body = healthz(port_b)
                    if "UNAUTHENTICATED" in body:
                        break
                    time.sleep(0.2)
                c.check(code == 503 and "UNAUTHENTICATED" in body, f"/healthz with bad credentials: {code} {body}")
                c.check(dmn_b.wait_log(r"sync\.waiting_to_restart.*fix the AWS credentials") is not None,
                        "auth stop logged with what to do")
                dmn_b.signal(signal.SIGHUP)  # "credentials fixed": the stopped engine restarts now
                c.check(dmn_b.wait_log(r"sync\.restarting backend=dynamodb why=SIGHUP") is not None,
                        "SIGHUP restarts a backend stopped by refused credentials")
                c.check(dmn_b.stop() == 0, "daemon with bad credentials stops cleanly")

                # ---- no secret or body in any log
                logs = open(log_path).read() + open(log_b).read()
                for secret, what in [(MARKER, "message body"), (key_hex, "store key"),
                                     (moto.creds["secret"], "AWS secret"), (alice["secret"], "AWS secret"), ("wrong-7", "AWS secret")]:
                    c.check(secret not in logs, f"the daemon log contains the {what}")
            finally:
                moto.stop()


if __name__ == "__main__":
    del sys.argv[1:3]  # the paths read above; the rest is unittest's
    tidings_unittest.main()
