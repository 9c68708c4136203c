"""Chime pull benchmark: Tidings (tidings_chime_bench) vs a boto3 paging loop.

usage: python3 bench/chime/run.py build/bench/chime/tidings_chime_bench [messages] [runs]
Starts the C++ driver (which starts tidings-chime-local and seeds it), then
times boto3's ListChannelMessages loop (SortOrder ASCENDING, MaxResults 50,
NextToken) over the same channel, and prints both.
"""
import os
import subprocess
import sys
import time

import boto3

binary = sys.argv[1]
messages = sys.argv[2] if len(sys.argv) > 2 else "5000"
runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
proc = subprocess.Popen([binary, messages, str(runs)], stdout=subprocess.PIPE, stdin=subprocess.PIPE,
                        text=True, env=dict(os.environ, TIDINGS_BENCH_WAIT="1"))
endpoint = None
for line in proc.stdout:
    print(line, end="")
    if line.startswith("BOTO3 "):
        endpoint, access, secret, bearer, arn = line.split()[1:6]
        break
if endpoint is None:
    sys.exit("the driver did not start")
client = boto3.client("chime-sdk-messaging", endpoint_url=endpoint, region_name="us-east-1",
                      aws_access_key_id=access, aws_secret_access_key=secret)
for run in range(runs):
    start, cpu, count, kwargs, requests = time.perf_counter(), time.process_time(), 0, {}, 0
    while True:
        r = client.list_channel_messages(ChannelArn=arn, ChimeBearer=bearer, SortOrder="ASCENDING",
                                         MaxResults=50, **kwargs)
        requests += 1
        count += len(r.get("ChannelMessages", []))
        if not r.get("NextToken"):
            break
        kwargs = {"NextToken": r["NextToken"]}
    s = time.perf_counter() - start
    cpu_ms = (time.process_time() - cpu) * 1000
    print(f"run {run}: boto3 pull {count} msgs in {s:.3f} s = {count / s:.0f} msg/s, "
          f"client CPU {cpu_ms:.0f} ms ({requests} requests, {requests / s:.0f} req/s)")
proc.stdin.write("done\n")
proc.stdin.close()
proc.wait()
sys.exit(proc.returncode)
