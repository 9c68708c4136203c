#!/usr/bin/env python3
"""Prepares a fresh moto server (tests/common/moto_server.py, which enforces
the policy's dynamodb:LeadingKeys conditions) for the DynamoDB tests.

    moto_setup.py ENDPOINT TABLE
        Uses the first five unauthenticated actions (INITIAL_NO_AUTH_ACTION_COUNT=5)
        to make an admin IAM user and the table, then, as that admin, the device
        policy from docs/dynamodb-policy.json (the documented least-privilege
        policy, verbatim) and an IAM user holding only it. Prints JSON: that
        user's keys ("access_key", "secret") and the admin's ("admin_access_key",
        "admin_secret"). Every later request must be signed.

    moto_setup.py --add-user ENDPOINT USER
        With the admin's keys in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (never
        in argv): an IAM user for the Tidings user USER, tagged tidings-user-tag =
        T(USER), holding the device policy. Prints its keys as JSON.

T(user) = hex of BLAKE2b-128("tidings-user-v1" || user), as
DynamoBackend::UserTag computes it.
"""
import hashlib
import json
import os
import sys

import boto3

POLICY_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs",
                           "dynamodb-policy.json")
POLICY_NAME = "tidings-device"


def user_tag(user):
    return hashlib.blake2b(b"tidings-user-v1" + user.encode(), digest_size=16).hexdigest()


def clients(endpoint, key, secret):
    session = boto3.session.Session(aws_access_key_id=key, aws_secret_access_key=secret,
                                    region_name="us-east-1")
    return session.client("iam", endpoint_url=endpoint), session.client("dynamodb",
                                                                        endpoint_url=endpoint)


def add_user(iam, user):
    """An IAM user for Tidings user `user` with the device policy; its keys."""
    name = "tidings-" + user_tag(user)
    try:
        iam.create_user(UserName=name,
                        Tags=[{"Key": "tidings-user-tag", "Value": user_tag(user)}])
    except iam.exceptions.EntityAlreadyExistsException:
        pass
    arn = next(p["Arn"] for p in iam.list_policies(Scope="Local")["Policies"]
               if p["PolicyName"] == POLICY_NAME)
    iam.attach_user_policy(UserName=name, PolicyArn=arn)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"access_key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}


def setup(endpoint, table):
    with open(POLICY_FILE) as f:
        policy = f.read()
    if f":table/{table}\"" not in policy:
        sys.exit(f"the device policy ({POLICY_FILE}) does not name table {table!r}: "
                 "use the table it names")
    iam, ddb = clients(endpoint, "bootstrap", "bootstrap")
    admin_policy = {"Version": "2012-10-17",
                    "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    # The five unauthenticated actions.
    iam.create_user(UserName="tidings-admin")
    arn = iam.create_policy(PolicyName="tidings-admin",
                            PolicyDocument=json.dumps(admin_policy))["Policy"]["Arn"]
    iam.attach_user_policy(UserName="tidings-admin", PolicyArn=arn)
    admin = iam.create_access_key(UserName="tidings-admin")["AccessKey"]
    ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                     AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                           {"AttributeName": "sk", "AttributeType": "N"}],
                     KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                {"AttributeName": "sk", "KeyType": "RANGE"}])
    # From here on every request is signed, by the admin.
    iam, _ = clients(endpoint, admin["AccessKeyId"], admin["SecretAccessKey"])
    iam.create_policy(PolicyName=POLICY_NAME, PolicyDocument=policy)
    device = add_user(iam, "tidings-device")
    print(json.dumps({**device, "admin_access_key": admin["AccessKeyId"],
                      "admin_secret": admin["SecretAccessKey"]}))


def main():
    if sys.argv[1] == "--add-user":
        endpoint, user = sys.argv[2], sys.argv[3]
        iam, _ = clients(endpoint, os.environ["AWS_ACCESS_KEY_ID"],
                         os.environ["AWS_SECRET_ACCESS_KEY"])
        print(json.dumps(add_user(iam, user)))
    else:
        setup(sys.argv[1], sys.argv[2])


if __name__ == "__main__":
    main()
