#!/usr/bin/env python3
"""Prepares a fresh moto_server for the DynamoDB tests, using the first few
unauthenticated actions (INITIAL_NO_AUTH_ACTION_COUNT): creates the table and
an IAM user with the least-privilege policy from docs/dynamodb.md, and prints
that user's keys as JSON. Every later request must be signed by them."""
import json
import sys

import boto3

endpoint, table = sys.argv[1], sys.argv[2]
session = boto3.session.Session(aws_access_key_id="admin", aws_secret_access_key="admin",
                                region_name="us-east-1")
iam = session.client("iam", endpoint_url=endpoint)
ddb = session.client("dynamodb", endpoint_url=endpoint)

# 1
iam.create_user(UserName="tidings-device")
policy = {
    "Version": "2012-10-17",
    "Statement": [{
        "Effect": "Allow",
        "Action": ["dynamodb:PutItem", "dynamodb:Query", "dynamodb:DescribeTable"],
        # moto evaluates IAM actions but not Resource elements (it checks "*"),
        # so the test scopes by action only; docs/dynamodb.md has the ARN form.
        "Resource": "*",
    }],
}
# 2
arn = iam.create_policy(PolicyName="tidings-device", PolicyDocument=json.dumps(policy))["Policy"]["Arn"]
# 3
iam.attach_user_policy(UserName="tidings-device", PolicyArn=arn)
# 4
key = iam.create_access_key(UserName="tidings-device")["AccessKey"]
# 5
ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                 AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                       {"AttributeName": "sk", "AttributeType": "N"}],
                 KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                            {"AttributeName": "sk", "KeyType": "RANGE"}])
print(json.dumps({"access_key": key["AccessKeyId"], "secret": key["SecretAccessKey"]}))
