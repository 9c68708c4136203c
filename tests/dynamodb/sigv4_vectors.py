#!/usr/bin/env python3
"""Signs a fixed set of requests with botocore's own SigV4 signer at a fixed
time and prints one Authorization header per line (the C++ test compares)."""
import datetime
import sys
from unittest import mock

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

REQUESTS = [
    # method, url, headers, body, service, token
    ("POST", "https://dynamodb.us-east-1.amazonaws.com/",
     {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.PutItem"},
     '{"TableName":"t"}', "dynamodb", None),
    ("POST", "http://127.0.0.1:4567/",
     {"Content-Type": "application/x-amz-json-1.0", "X-Amz-Target": "DynamoDB_20120810.Query"},
     '{"a":1}', "dynamodb", "SESSIONTOKEN/with+chars="),
    ("GET", "https://messaging-chime.us-east-1.amazonaws.com/channels/arn%3Aaws%3Achime%3Aus-east-1%3A1%3Aapp-instance%2Fa%2Fchannel%2Fb/messages?sort-order=ASCENDING&max-results=50&not-before=2026-11-24T10%3A00%3A00Z",
     {"x-amz-chime-bearer": "arn:aws:chime:us-east-1:1:app-instance/a/user/u"}, "", "chime", None),
    ("POST", "https://messaging-chime.us-east-1.amazonaws.com/channels/arn%3Aaws%3Achime%3Ax%2Fc/messages",
     {"Content-Type": "application/json"}, '{"Content":"hi"}', "chime", None),
]

fixed = datetime.datetime(2026, 11, 24, 12, 34, 56)
with mock.patch("botocore.auth.get_current_datetime", return_value=fixed):
    for method, url, headers, body, service, token in REQUESTS:
        req = AWSRequest(method=method, url=url, headers=dict(headers), data=body.encode())
        SigV4Auth(Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", token),
                  service, "us-east-1").add_auth(req)
        print(req.headers["Authorization"])

from botocore.auth import SigV4QueryAuth
with mock.patch("botocore.auth.get_current_datetime", return_value=fixed):
    req = AWSRequest(method="GET", url="https://node001.ue1.ws-messaging.chime.aws/connect?arn=arn%3Aaws%3Achime%3Aus-east-1%3A1%3Aapp-instance%2Fa%2Fuser%2Fu&sessionId=abc", data=b"")
    SigV4QueryAuth(Credentials("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", None),
                   "chime", "us-east-1", expires=10).add_auth(req)
    print(req.url)
