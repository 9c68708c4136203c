"""One moto_server on 127.0.0.1 (an ephemeral port) with an empty table
"bench" (pk S, sk N), for the DynamoDB benchmarks:

    with moto_table() as (endpoint, ddb):   # ddb: a boto3 DynamoDB client
        ...
"""
import contextlib
import os
import socket
import subprocess
import sys
import time

import boto3

MOTO_SERVER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests",
                           "common", "moto_server.py")  # DynamoDB requests serialised


@contextlib.contextmanager
def moto_table():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    moto = subprocess.Popen([sys.executable, MOTO_SERVER, "-H", "127.0.0.1", "-p", str(port)],
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
        yield endpoint, ddb
    finally:
        moto.terminate(); moto.wait()
