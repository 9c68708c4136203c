#!/usr/bin/env python3
"""Signs a fixed set of S3 requests with botocore's own S3 signer
(S3SigV4Auth: payload hash in X-Amz-Content-SHA256, the path signed as sent)
at 2026-11-24T12:34:56Z and prints, per request, its URL and then its
Authorization header, one per line. URLs are built as botocore builds them:
the key with percent_encode(key, safe="/~"), query values with
percent_encode. tests/s3/s3_sigv4_test.cc makes the same requests through
S3Client and compares both lines."""
import datetime
from unittest import mock

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.utils import percent_encode

KEY_ID = "AKIDEXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"


def url(endpoint, bucket, key, query, virtual):
    path = "/" + percent_encode(key, safe="/~") if key else ""
    if virtual:
        scheme, host = endpoint.split("://")
        base = f"{scheme}://{bucket}.{host}" + (path or "/")
    else:
        base = f"{endpoint}/{bucket}{path}"
    if query:
        base += "?" + "&".join(k if v is None else f"{k}={percent_encode(v)}" for k, v in query)
    return base


COMPLETE = ('<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
            '<Part><PartNumber>1</PartNumber><ETag>&quot;e1&quot;</ETag></Part>'
            '<Part><PartNumber>2</PartNumber><ETag>&quot;e2&quot;</ETag></Part>'
            '</CompleteMultipartUpload>')

# method, endpoint, region, bucket, key, query [(name, value)], headers, body, virtual, token
REQUESTS = [
    # PutObject with a body, virtual-hosted on AWS.
    ("PUT", "https://s3.eu-west-1.amazonaws.com", "eu-west-1", "tidings-attachments",
     "a/b/c.bin", [], {"content-type": "application/octet-stream"}, b"hello, S3", True, None),
    # GetObject with a Range, path-style on a local server.
    ("GET", "http://127.0.0.1:9000", "us-east-1", "bucket", "obj", [],
     {"range": "bytes=5-1048580"}, b"", False, None),
    # A key with spaces, unicode and reserved characters.
    ("PUT", "http://127.0.0.1:9000", "us-east-1", "bucket",
     "photos/rash photo \u00e9\u00fc+(1)~=&?.jpg", [],
     {"content-type": "application/octet-stream"}, b"\x00\x01binary\xff", False, None),
    # UploadPart: partNumber and an upload id that needs encoding.
    ("PUT", "https://s3.eu-west-1.amazonaws.com", "eu-west-1", "tidings-attachments", "obj",
     [("partNumber", "3"), ("uploadId", "VXBsb2Fk+SUQ/x=y")], {}, b"part three", True, None),
    # CreateMultipartUpload: a query key without a value.
    ("POST", "http://127.0.0.1:9000", "us-east-1", "bucket", "obj", [("uploads", None)],
     {"content-type": "application/octet-stream"}, b"", False, None),
    # ListMultipartUploads with a prefix and markers, on the bucket itself.
    ("GET", "http://127.0.0.1:9000", "us-east-1", "bucket", "",
     [("key-marker", "att/k 1"), ("max-uploads", "2"), ("prefix", "att/"),
      ("upload-id-marker", "u+1"), ("uploads", None)], {}, b"", False, None),
    # CompleteMultipartUpload with its XML body and a session token.
    ("POST", "http://127.0.0.1:9000", "us-east-1", "bucket", "obj",
     [("uploadId", "VXBsb2Fk+SUQ/x=y")], {"content-type": "application/xml"},
     COMPLETE.encode(), False, "SESSIONTOKEN/with+chars="),
]

fixed = datetime.datetime(2026, 11, 24, 12, 34, 56)
with mock.patch("botocore.auth.get_current_datetime", return_value=fixed):
    for (method, endpoint, region, bucket, key, query, headers, body, virtual,
         token) in REQUESTS:
        u = url(endpoint, bucket, key, query, virtual)
        req = AWSRequest(method=method, url=u, headers=dict(headers), data=body)
        S3SigV4Auth(Credentials(KEY_ID, SECRET, token), "s3", region).add_auth(req)
        print(u)
        print(req.headers["Authorization"])
