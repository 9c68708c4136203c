#!/usr/bin/env python3
"""DynamoDB throughput, side by side in one run against one moto_server:
Tidings (C++, bench/dynamodb/dynamodb_bench) vs boto3 loops.

  python3 bench/dynamodb/run.py build/bench/dynamodb/tidings_dynamodb_bench [N]
"""
import json
import subprocess
import sys
import time

from moto_table import moto_table

binary = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
with moto_table() as (endpoint, ddb):
    body = "x" * 300

    def tidings(*args):
        out = subprocess.run([binary, args[0], endpoint, "bench", *args[1:]], capture_output=True,
                             text=True, check=True).stdout
        return json.loads(out)

    results = []
    r = tidings("push", "t-push", str(n))
    results.append(("push backlog", "tidings", r["messages"], r["seconds"], r["requests"]))
    t0 = time.perf_counter()
    for i in range(n):
        ddb.put_item(TableName="bench", Item={"pk": {"S": "c#boto"}, "sk": {"N": str(i + 1)},
                                               "b": {"S": body}},
                     ConditionExpression="attribute_not_exists(sk)")
    results.append(("push backlog", "boto3 PutItem loop", n, time.perf_counter() - t0, n))

    tidings("push-plain", "t-pull", str(n))  # a new device reads a plaintext log whole
    r = tidings("pull", "t-pull")
    results.append(("pull", "tidings (pull + merge into the encrypted store)", r["messages"], r["seconds"], r["requests"]))
    r = tidings("raw", "t-pull")
    results.append(("pull", "raw signed Query pages, same items (ceiling)", n, r["seconds"], r["requests"]))

    def boto_query(pk):
        t0 = time.perf_counter(); items = 0; requests = 0; key = None
        while True:
            kw = dict(TableName="bench", KeyConditionExpression="pk = :p",
                      ExpressionAttributeValues={":p": {"S": pk}}, ConsistentRead=True, Limit=100)
            if key:
                kw["ExclusiveStartKey"] = key
            page = ddb.query(**kw); requests += 1
            items += len(page["Items"])
            key = page.get("LastEvaluatedKey")
            if not key:
                return items, time.perf_counter() - t0, requests
    items, secs, reqs = boto_query("c#boto")
    results.append(("pull", "boto3 Query loop, one item per message", items, secs, reqs))

    print(f"{'case':14} {'client':50} {'messages':>8} {'seconds':>8} {'msg/s':>9} {'requests':>8}")
    for case, who, msgs, secs, reqs in results:
        print(f"{case:14} {who:50} {msgs:8d} {secs:8.2f} {msgs / secs:9.0f} {reqs:8d}")
