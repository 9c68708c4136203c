#!/usr/bin/env python3
"""Writes one item with raw boto3, as a device holding valid keys but not
running Tidings would: PutItem of ITEM_JSON (DynamoDB JSON) into TABLE.

    forge_item.py ENDPOINT TABLE ITEM_JSON   (keys in AWS_ACCESS_KEY_ID /
                                              AWS_SECRET_ACCESS_KEY, never argv)

Prints "ok", or the error code the server answered (e.g. AccessDenied)."""
import base64
import json
import os
import sys

import boto3
import botocore.exceptions

endpoint, table, item = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
# DynamoDB JSON carries binary as base64; boto3 wants the bytes.
item = {k: {"B": base64.b64decode(v["B"])} if "B" in v else v for k, v in item.items()}
ddb = boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                   aws_access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
                   aws_secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"])
try:
    ddb.put_item(TableName=table, Item=item)
    print("ok")
except botocore.exceptions.ClientError as e:
    error = e.response.get("Error", {})
    print(error.get("Code", "?"), error.get("Message", ""))
