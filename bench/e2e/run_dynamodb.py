#!/usr/bin/env python3
"""End-to-end vs plaintext sync throughput through moto (DynamoDB).

  python3 bench/e2e/run_dynamodb.py build/bench/e2e/tidings_e2e_sync_bench [messages] [runs]

Starts moto through tests/common/moto_server.py (the launcher the tests use)
on 127.0.0.1, makes the table, and runs the driver against it. Then reads
the table back and prints the bytes per message on the server: the `o`
attributes of plaintext log items (c#) against the `f` attributes of sealed
log items (l#, control frames included), over every message both modes
pushed (runs x (messages + 1 warm-up)).
"""
import os
import socket
import subprocess
import sys
import time

import boto3

binary = sys.argv[1]
messages = sys.argv[2] if len(sys.argv) > 2 else "2000"
runs = sys.argv[3] if len(sys.argv) > 3 else "3"
launcher = os.path.join(os.path.dirname(__file__), "..", "..", "tests", "common", "moto_server.py")
s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
moto = subprocess.Popen([sys.executable, launcher, "-H", "127.0.0.1", "-p", str(port)],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
endpoint = f"http://127.0.0.1:{port}"
try:
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close(); break
        except OSError:
            time.sleep(0.1)
    ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="bench", aws_secret_access_key="bench")
    ddb.create_table(TableName="bench", BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                           {"AttributeName": "sk", "AttributeType": "N"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                {"AttributeName": "sk", "KeyType": "RANGE"}])
    rc = subprocess.run([binary, "dynamodb", endpoint, "bench", messages, runs]).returncode
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
finally:
    moto.terminate()
    moto.wait()
sys.exit(rc)
