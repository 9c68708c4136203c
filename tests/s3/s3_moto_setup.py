#!/usr/bin/env python3
"""Prepares a fresh moto server (tests/common/moto_server.py) for the S3
client's tests.

    s3_moto_setup.py ENDPOINT BUCKET

Uses the five unauthenticated actions (INITIAL_NO_AUTH_ACTION_COUNT=5) to
make an admin IAM user (every action) and a second bucket, BUCKET-other,
that the device policy does not name. Then, signed by the admin, it makes
the device policy (the S3 actions an attachment uploader needs, on BUCKET
and its objects only) and an IAM user holding only it. BUCKET itself is
left for the test to create with S3Client::CreateBucket as the admin.
Prints JSON: the device user's keys ("access_key", "secret") and the
admin's ("admin_access_key", "admin_secret"). Every later request must be
signed.
"""
import json
import sys

import boto3
from botocore.config import Config


def device_policy(bucket):
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow",
             "Action": ["s3:PutObject", "s3:GetObject", "s3:DeleteObject",
                        "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"],
             "Resource": f"arn:aws:s3:::{bucket}/*"},
            {"Effect": "Allow",
             "Action": ["s3:ListBucketMultipartUploads"],
             "Resource": f"arn:aws:s3:::{bucket}"},
        ],
    }


def main():
    endpoint, bucket = sys.argv[1], sys.argv[2]

    def session(key, secret):
        return boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret,
                                     region_name="us-east-1")

    boot = session("bootstrap", "bootstrap")
    iam = boot.client("iam", endpoint_url=endpoint)
    s3 = boot.client("s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"}))
    admin_policy = {"Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    # The five unauthenticated actions.
    iam.create_user(UserName="tidings-admin")
    arn = iam.create_policy(PolicyName="tidings-admin",
                            PolicyDocument=json.dumps(admin_policy))["Policy"]["Arn"]
    iam.attach_user_policy(UserName="tidings-admin", PolicyArn=arn)
    admin = iam.create_access_key(UserName="tidings-admin")["AccessKey"]
    s3.create_bucket(Bucket=bucket + "-other")
    # From here on every request is signed, by the admin.
    iam = session(admin["AccessKeyId"], admin["SecretAccessKey"]).client("iam",
                                                                         endpoint_url=endpoint)
    arn = iam.create_policy(PolicyName="tidings-s3-device",
                            PolicyDocument=json.dumps(device_policy(bucket)))["Policy"]["Arn"]
    iam.create_user(UserName="tidings-s3-device")
    iam.attach_user_policy(UserName="tidings-s3-device", PolicyArn=arn)
    key = iam.create_access_key(UserName="tidings-s3-device")["AccessKey"]
    print(json.dumps({"access_key": key["AccessKeyId"], "secret": key["SecretAccessKey"],
                      "admin_access_key": admin["AccessKeyId"],
                      "admin_secret": admin["SecretAccessKey"]}))


if __name__ == "__main__":
    main()
