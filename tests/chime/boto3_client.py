"""Another Chime client for the integration tests: boto3 against the emulator.

usage: boto3_client.py ENDPOINT ACCESS BEARER send CHANNEL_ARN TEXT
       boto3_client.py ENDPOINT ACCESS BEARER list CHANNEL_ARN
The secret comes from BOTO3_CLIENT_SECRET (not argv, which `ps` shows).
Prints JSON (the SendChannelMessage response, or all messages ascending).
"""
import json
import os
import sys
import uuid

import boto3
from botocore.config import Config

endpoint, access, bearer, command, channel = sys.argv[1:6]
secret = os.environ["BOTO3_CLIENT_SECRET"]
client = boto3.client(
    "chime-sdk-messaging", endpoint_url=endpoint, region_name="us-east-1",
    aws_access_key_id=access, aws_secret_access_key=secret,
    config=Config(retries={"mode": "standard", "max_attempts": 5}))
if command == "send":
    r = client.send_channel_message(
        ChannelArn=channel, Content=sys.argv[6], Type="STANDARD", Persistence="PERSISTENT",
        ClientRequestToken=str(uuid.uuid4()), ChimeBearer=bearer)
    print(json.dumps({"MessageId": r["MessageId"]}))
elif command == "list":
    out, kwargs = [], {}
    while True:
        r = client.list_channel_messages(ChannelArn=channel, ChimeBearer=bearer,
                                         SortOrder="ASCENDING", MaxResults=50, **kwargs)
        for m in r.get("ChannelMessages", []):
            out.append({"MessageId": m["MessageId"], "Content": m.get("Content", ""),
                        "Metadata": m.get("Metadata", ""), "ContentType": m.get("ContentType", "")})
        if not r.get("NextToken"):
            break
        kwargs = {"NextToken": r["NextToken"]}
    print(json.dumps(out))
