#!/usr/bin/env python3
"""End-to-end vs plaintext sync throughput through moto (DynamoDB).

  python3 bench/e2e/run_dynamodb.py build/bench/e2e/tidings_e2e_sync_bench [messages] [runs] [join]

Starts moto through tests/common/moto_server.py (the launcher the tests use)
on 127.0.0.1 and makes the table (bench/dynamodb/moto_table.py), and runs the driver against it. Then reads
the table back and prints the bytes per message on the server: the `o`
attributes of plaintext log items (c#) against the `f` attributes of sealed
log items (l#, control frames included), over every message both modes
pushed (runs x (messages + 1 warm-up)). With `join`: the driver's
dynamodb-join mode (a new device's first screen), and no byte count.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "dynamodb"))
from moto_table import moto_table  # noqa: E402

binary = sys.argv[1]
messages = sys.argv[2] if len(sys.argv) > 2 else "2000"
runs = sys.argv[3] if len(sys.argv) > 3 else "3"
join = len(sys.argv) > 4 and sys.argv[4] == "join"
with moto_table() as (endpoint, ddb):
    mode = "dynamodb-join" if join else "dynamodb"
    rc = subprocess.run([binary, mode, endpoint, "bench", messages, runs]).returncode
    if join:
        sys.exit(rc)
    sizes = {"c#": [0, 0], "l#": [0, 0]}  # bytes, items
    for page in ddb.get_paginator("scan").paginate(TableName="bench"):
        for item in page["Items"]:
            kind = item["pk"]["S"][:2]
            attr = {"c#": "o", "l#": "f"}.get(kind)
            if attr and attr in item:
                sizes[kind][0] += len(item[attr]["B"])
                sizes[kind][1] += 1
    pushed = int(runs) * (int(messages) + 1)
    for kind, name in (("c#", "plaintext (c# items, o)"), ("l#", "end-to-end (l# items, f)")):
        print(f"dynamodb server bytes {name}: {sizes[kind][0]} bytes in {sizes[kind][1]} items, "
              f"{sizes[kind][0] / pushed:.0f} bytes per message")
sys.exit(rc)
