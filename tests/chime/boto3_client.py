"""Another Chime client for the integration tests: boto3 against the emulator.

usage: boto3_client.py ENDPOINT ACCESS BEARER send CHANNEL_ARN TEXT
       boto3_client.py ENDPOINT ACCESS BEARER list CHANNEL_ARN
       boto3_client.py ENDPOINT ACCESS BEARER describe CHANNEL_ARN
       boto3_client.py ENDPOINT ACCESS BEARER update CHANNEL_ARN MESSAGE_ID TEXT [METADATA]
       boto3_client.py ENDPOINT ACCESS BEARER redact CHANNEL_ARN MESSAGE_ID
       boto3_client.py ENDPOINT ACCESS BEARER event CHANNEL_ARN MESSAGE_ID
         (the message as a messaging-session event's Payload carries it)
       boto3_client.py ENDPOINT ACCESS BEARER create CHANNEL_ID METADATA MEMBER_ARN...
The secret comes from BOTO3_CLIENT_SECRET (not argv, which `ps` shows).
Prints JSON (the SendChannelMessage or CreateChannel response, all messages
ascending, or the channel's Name, Metadata and CreatedBy).
"""
import datetime
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


def iso(t):
    """A timestamp as the messaging session writes it: ISO 8601 UTC with ms."""
    t = t.astimezone(datetime.timezone.utc)
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (t.microsecond // 1000)


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
                        "Metadata": m.get("Metadata", ""), "ContentType": m.get("ContentType", ""),
                        "Sender": m["Sender"]["Arn"], "Redacted": m.get("Redacted", False),
                        "Edited": "LastEditedTimestamp" in m})
        if not r.get("NextToken"):
            break
        kwargs = {"NextToken": r["NextToken"]}
    print(json.dumps(out))
elif command == "describe":
    c = client.describe_channel(ChannelArn=channel, ChimeBearer=bearer)["Channel"]
    print(json.dumps({"Name": c["Name"], "Metadata": c.get("Metadata", ""),
                      "CreatedBy": c["CreatedBy"]["Arn"]}))
elif command == "create":
    # A channel made by hand (a squatter's), with the deterministic id.
    app = bearer.rsplit("/user/", 1)[0]
    r = client.create_channel(
        AppInstanceArn=app, Name="squat", Mode="UNRESTRICTED", Privacy="PRIVATE",
        Metadata=sys.argv[6], ClientRequestToken=channel, ChannelId=channel,
        MemberArns=sys.argv[7:], ChimeBearer=bearer)
    print(json.dumps({"ChannelArn": r["ChannelArn"]}))
elif command == "update":
    extra = {"Metadata": sys.argv[8]} if len(sys.argv) > 8 else {}
    client.update_channel_message(ChannelArn=channel, MessageId=sys.argv[6], Content=sys.argv[7],
                                  ChimeBearer=bearer, **extra)
    print("{}")
elif command == "redact":
    client.redact_channel_message(ChannelArn=channel, MessageId=sys.argv[6], ChimeBearer=bearer)
    print("{}")
elif command == "event":
    m = client.get_channel_message(ChannelArn=channel, MessageId=sys.argv[6],
                                   ChimeBearer=bearer)["ChannelMessage"]
    m.pop("ResponseMetadata", None)
    for k in ("CreatedTimestamp", "LastUpdatedTimestamp", "LastEditedTimestamp"):
        if k in m:
            m[k] = iso(m[k])
    print(json.dumps(m))
