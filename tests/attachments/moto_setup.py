#!/usr/bin/env python3
"""Prepares a fresh moto server for tests that sync through DynamoDB and
keep attachments in S3 with the same keys (the CLI's `--s3-bucket`): the
DynamoDB setup of tests/dynamodb/moto_setup.py, then, as its admin, the
bucket BUCKET and the S3 device policy of tests/s3/s3_moto_setup.py, held
by every device user as well. Same command lines and output as
tests/dynamodb/moto_setup.py:

    moto_setup.py ENDPOINT TABLE
    moto_setup.py --add-user ENDPOINT USER   (admin keys in the environment)
"""
import contextlib
import io
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "dynamodb"))
sys.path.insert(0, os.path.join(HERE, "..", "s3"))
import moto_setup as dynamo  # noqa: E402
import s3_moto_setup  # noqa: E402

import boto3  # noqa: E402
from botocore.config import Config  # noqa: E402

BUCKET = "tidings-attachments-cli"
S3_POLICY = "tidings-s3-device"


def session(key, secret):
    return boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret,
                                 region_name="us-east-1")


def give_s3(iam, user):
    arn = next(p["Arn"] for p in iam.list_policies(Scope="Local")["Policies"]
               if p["PolicyName"] == S3_POLICY)
    iam.attach_user_policy(UserName="tidings-" + dynamo.user_tag(user), PolicyArn=arn)


def main():
    if sys.argv[1] == "--add-user":
        endpoint, user = sys.argv[2], sys.argv[3]
        iam = session(os.environ["AWS_ACCESS_KEY_ID"],
                      os.environ["AWS_SECRET_ACCESS_KEY"]).client("iam", endpoint_url=endpoint)
        keys = dynamo.add_user(iam, user)
        give_s3(iam, user)
        print(json.dumps(keys))
        return
    endpoint, table = sys.argv[1], sys.argv[2]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        dynamo.setup(endpoint, table)
    made = json.loads(out.getvalue())
    admin = session(made["admin_access_key"], made["admin_secret"])
    iam = admin.client("iam", endpoint_url=endpoint)
    iam.create_policy(PolicyName=S3_POLICY,
                      PolicyDocument=json.dumps(s3_moto_setup.device_policy(BUCKET)))
    give_s3(iam, "tidings-device")
    admin.client("s3", endpoint_url=endpoint,
                 config=Config(s3={"addressing_style": "path"})).create_bucket(Bucket=BUCKET)
    print(json.dumps(made))


if __name__ == "__main__":
    main()
