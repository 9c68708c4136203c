#!/usr/bin/env python3
"""kill -9 the daemon at random moments while it syncs and while an app keeps
writing (through the daemon's socket while it runs, directly into the store
while it is down). After a final clean run every acknowledged message is on
the server exactly once, no operation is stored twice, and a second store
that pulls converges with the first.

Usage: daemon_kill_test.py /path/to/tidings [--chime /path/to/tidings-chime-local] [unittest arguments]
Backends: DynamoDB (moto_server), or with --chime Chime SDK Messaging (the
project's emulator; exactly-once then rests on ClientRequestToken).
Env: TIDINGS_DAEMON_KILL_SEED=S replays the kill timings of a run (printed at
start); TIDINGS_DAEMON_KILL_ITERATIONS=N (default 200, 100 on Chime; 40 and 25
when TIDINGS_SANITIZED=1, where every process start is several times slower)."""
import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time

from daemon_util import ChimeLocal, Daemon, Moto, clean_env, server_ops
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))
import tidings_unittest  # noqa: E402

TIDINGS = sys.argv[1]
CHIME_LOCAL = sys.argv[3] if len(sys.argv) > 3 and sys.argv[2] == "--chime" else None
BACKEND = "chime" if CHIME_LOCAL else "dynamodb"
sanitized = os.environ.get("TIDINGS_SANITIZED") == "1"
# (normal, sanitized) kills per backend
default_iterations = {"dynamodb": (200, 40), "chime": (100, 25)}[BACKEND][sanitized]
iterations = int(os.environ.get("TIDINGS_DAEMON_KILL_ITERATIONS", default_iterations))
seed = int(os.environ.get("TIDINGS_DAEMON_KILL_SEED", random.randrange(1, 1 << 31)))
# Writes that must be acknowledged while the daemon is killed, so the test is
# not vacuous. A kill cycle lasts ~0.25 s; a send takes ~0.05 s, but ~0.2 s
# under the sanitizers (~0.12 s of it is process start), so there a cycle
# sees about one send: one acknowledged write per three kills shows that
# writes raced the kills without asserting a throughput.
min_acked = iterations // 3 if sanitized else iterations
print(f"daemon kill test ({BACKEND}): {iterations} kills, seed {seed} "
      f"(replay with TIDINGS_DAEMON_KILL_SEED={seed})", flush=True)
rng = random.Random(seed)
c = None  # the running case (tidings_unittest.TestCase): checks are recorded on it
CONVS = ["ward-1", "ward-2", "ward-3"]


class KillDuringSync(tidings_unittest.TestCase):
    def test_every_acknowledged_message_once_after_kills(self):
        global c
        c = self
        with tempfile.TemporaryDirectory() as d:
            server = ChimeLocal(CHIME_LOCAL, d) if CHIME_LOCAL else Moto(d)
            try:
                env = clean_env({**server.env(), "HOME": d})
                if not CHIME_LOCAL:
                    subprocess.run([TIDINGS, "dynamodb", "create-table"], env=env, check=True,
                                   capture_output=True)
                store, key = os.path.join(d, "a"), os.path.join(d, "a.key")
                g = ["--store", store, "--key-file", key]
                subprocess.run([TIDINGS, "--store", store, "init", "--user", "kiosk"], env=env, check=True,
                               capture_output=True)
                # Plaintext mode: the check below reads every operation on the
                # server with boto3. The sealed path's crashes are the
                # simulation's (sync.simulation.*) and e2e_sync_test's.
                for conv in CONVS:
                    subprocess.run([TIDINGS, *g, "conversation", "create", conv, "--plaintext"],
                                   env=env, check=True, capture_output=True)
                cfg = os.path.join(d, "daemon.toml")
                with open(cfg, "w") as f:
                    f.write(f"""[store]
path = "{store}"
key_file = "{key}"
[sync]
active_poll_ms = 100
idle_poll_ms = 500
base_backoff_ms = 20
max_backoff_ms = 300
""" + ('backends = ["chime"]\n' + server.config("kiosk") if CHIME_LOCAL else ""))

                acked, unacked, stop = [], [], threading.Event()
                write_rng = random.Random(seed + 1)

                def writer():
                    i = 0
                    while not stop.is_set():
                        conv = CONVS[write_rng.randrange(len(CONVS))]
                        p = subprocess.run([TIDINGS, *g, "send", "-c", conv, f"msg {i}"], env=env,
                                           capture_output=True, text=True, stdin=subprocess.DEVNULL)
                        if p.returncode == 0:
                            acked.append((conv, p.stdout.strip()))
                        else:
                            unacked.append(p.stderr.strip())
                        i += 1

                t = threading.Thread(target=writer)
                t.start()
                t0 = time.time()
                log_path = os.path.join(d, "daemon.log")
                busy_exits = 0
                for it in range(iterations):
                    dmn = Daemon.start(TIDINGS, [], ["--config", cfg], env, log_path)
                    time.sleep(rng.uniform(0.02, 0.35))
                    if dmn.proc.poll() is not None:
                        busy_exits += 1  # lost the race for the store to a direct write
                        c.check(dmn.proc.returncode == 6, f"daemon exited {dmn.proc.returncode} at kill {it}")
                        dmn.logf.close()
                    else:
                        dmn.kill()
                    time.sleep(rng.uniform(0, 0.05))  # down: the app writes directly
                kill_secs = time.time() - t0
                stop.set()
                t.join()

                # A final clean run pushes what is left.
                dmn = Daemon.start(TIDINGS, [], ["--config", cfg], env, log_path)
                deadline = time.time() + 60
                left = None
                while time.time() < deadline:
                    p = subprocess.run([TIDINGS, *g, "--json", "stats"], env=env, capture_output=True,
                                       text=True)
                    if p.returncode == 0:
                        left = json.loads(p.stdout)["outbox"]
                        if left == 0:
                            break
                    time.sleep(0.2)
                c.check(left == 0, f"outbox not drained after the final run: {left}")
                c.check(dmn.stop() == 0, "final daemon stops with exit 0")
                c.check(subprocess.run([TIDINGS, *g, "verify"], env=env, capture_output=True).returncode
                        == 0, "verify after the kills")

                ops = (server.server_ops("kiosk") if CHIME_LOCAL else
                       server_ops(server.endpoint, server.creds))
                # Every body is unique ("msg N"): a send applied twice under two ids
                # (a retry that lost its id) would show here.
                bodies = [body for _, kind, _, body in ops if kind == 1]
                twice = sorted({b for b in bodies if bodies.count(b) > 1})
                c.check(not twice, f"{len(twice)} bodies stored under two message ids, e.g. {twice[:3]}")
                c.check(len(bodies) == len(set(bodies)) and len(bodies) >= len(acked),
                        f"{len(bodies)} send bodies on the server for {len(acked)} acknowledged sends")
                counts = {}
                for conv, kind, op_id, _ in ops:
                    counts[op_id] = counts.get(op_id, 0) + 1
                dups = [i for i, n in counts.items() if n > 1]
                c.check(not dups, f"{len(dups)} operations stored twice on the server, e.g. {dups[:3]}")
                sends = {op_id: conv for conv, kind, op_id, _ in ops if kind == 1}
                missing = [i for conv, i in acked if sends.get(i) != conv]
                c.check(not missing, f"{len(missing)} acknowledged messages missing on the server, "
                                     f"e.g. {missing[:3]}")
                c.check(len(acked) > min_acked,
                        f"only {len(acked)} acknowledged writes (more than {min_acked} needed)")

                # A second device pulls and converges.
                store_b, key_b = os.path.join(d, "b"), os.path.join(d, "b.key")
                subprocess.run([TIDINGS, "--store", store_b, "init", "--user", "kiosk"], env=env,
                               check=True, capture_output=True)
                gb = ["--store", store_b, "--key-file", key_b]
                chime_flags = (["--backend", "chime", "--chime-app-instance", server.APP,
                                "--chime-endpoint", server.endpoint] if CHIME_LOCAL else [])
                p = subprocess.run([TIDINGS, *gb, "sync", "--rounds", "3", *chime_flags], env=env,
                                   capture_output=True, text=True)
                c.check(p.returncode == 0, f"second store sync: {p.stderr}")
                for conv in CONVS:
                    logs = []
                    for gg in (g, gb):
                        p = subprocess.run([TIDINGS, *gg, "--json", "log", "-c", conv, "--limit", "100000"],
                                           env=env, capture_output=True, text=True)
                        logs.append([(m["id"], m["body"], m["order"]) for m in
                                     map(json.loads, p.stdout.splitlines())])
                    c.check(logs[0] == logs[1] and logs[0],
                            f"{conv}: stores differ ({len(logs[0])} vs {len(logs[1])} messages)")
                print(f"{iterations} kills in {kill_secs:.1f}s ({busy_exits} starts lost the store to a "
                      f"direct write), {len(acked)} acknowledged sends, {len(unacked)} refused, "
                      f"{len(ops)} operations on the server", flush=True)
                for e in unacked[:5]:
                    print("  refused:", e)
            finally:
                server.stop()


if __name__ == "__main__":
    del sys.argv[1:4 if CHIME_LOCAL else 2]  # the paths read above; the rest is unittest's
    tidings_unittest.main()
