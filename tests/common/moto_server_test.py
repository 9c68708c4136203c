#!/usr/bin/env python3
"""The IAM evaluation tests/common/moto_server.py adds to moto: which
partition keys a DynamoDB request touches, and how the documented policy's
conditions judge them (no server needed; the moto tests run the rest)."""
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import moto_server  # noqa: E402

POLICY = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "docs",
                      "dynamodb-policy.json")
TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/tidings"


def query(pk_value, names=None, expression="pk = :p AND sk > :s"):
    body = {"KeyConditionExpression": expression,
            "ExpressionAttributeValues": {":p": {"S": pk_value}, ":s": {"N": "1"}}}
    if names:
        body["ExpressionAttributeNames"] = names
    return body


class LeadingKeys(unittest.TestCase):
    def test_put_get_and_query(self):
        self.assertEqual(moto_server.leading_keys("PutItem", {"Item": {"pk": {"S": "l#e1"}}}),
                         ["l#e1"])
        self.assertEqual(moto_server.leading_keys("DeleteItem", {"Key": {"pk": {"S": "d#x"}}}),
                         ["d#x"])
        self.assertEqual(moto_server.leading_keys("Query", query("i#t")), ["i#t"])
        self.assertEqual(moto_server.leading_keys(
            "Query", query("i#t", {"#k": "pk"}, "#k = :p")), ["i#t"])
        self.assertEqual(moto_server.leading_keys(
            "Query", {"KeyConditions": {"pk": {"AttributeValueList": [{"S": "c#a"}]}}}),
            ["c#a"])
        self.assertEqual(moto_server.leading_keys("BatchWriteItem", {"RequestItems": {"t": [
            {"PutRequest": {"Item": {"pk": {"S": "a"}}}},
            {"DeleteRequest": {"Key": {"pk": {"S": "b"}}}}]}}), ["a", "b"])
        self.assertEqual(moto_server.leading_keys("DescribeTable", {"TableName": "t"}), [])


class DocumentedPolicy(unittest.TestCase):
    def setUp(self):
        with open(POLICY) as f:
            self.statements = json.load(f)["Statement"]
        self.alice = {"aws:username": "u-a", "aws:userid": "AIDA1",
                      "aws:PrincipalTag/tidings-user-tag": "aaaa"}

    def decide(self, action, pk, variables=None, resource=TABLE):
        context = {"dynamodb:leadingkeys": [pk] if pk is not None else []}
        return moto_server._evaluate(self.statements, "dynamodb:" + action, resource, context,
                                     self.alice if variables is None else variables)

    def test_writes(self):
        for pk in ("c#conv", "m#bob", "l#e00", "i#bbbb", "d#aaaa"):
            self.assertEqual(self.decide("PutItem", pk), "allow", pk)
        for pk in ("d#bbbb", "d#aaaa-more", "x#1", "", "D#aaaa"):
            self.assertIsNone(self.decide("PutItem", pk), pk)

    def test_reads(self):
        for pk in ("c#conv", "m#bob", "l#e00", "d#bbbb", "i#aaaa"):
            self.assertEqual(self.decide("Query", pk), "allow", pk)
        for pk in ("i#bbbb", "i#aaaa?", "x#1"):
            self.assertIsNone(self.decide("Query", pk), pk)

    def test_an_untagged_identity_has_no_own_partition(self):
        untagged = {"aws:username": "u", "aws:userid": "AIDA2"}
        self.assertIsNone(self.decide("PutItem", "d#", untagged))
        self.assertIsNone(self.decide("Query", "i#", untagged))
        self.assertEqual(self.decide("PutItem", "l#e00", untagged), "allow")

    def test_actions_and_tables_outside_the_policy(self):
        self.assertEqual(self.decide("DescribeTable", None), "allow")
        self.assertIsNone(self.decide("Scan", None))
        self.assertIsNone(self.decide("DeleteItem", "c#conv"))
        self.assertIsNone(self.decide("PutItem", "c#conv",
                                      resource=TABLE.replace("tidings", "other")))


class Conditions(unittest.TestCase):
    def test_operators(self):
        holds = moto_server.condition_holds
        ctx = {"k": ["ab", "ac"]}
        self.assertTrue(holds({"ForAllValues:StringLike": {"k": "a?"}}, ctx, {}))
        self.assertFalse(holds({"ForAllValues:StringEquals": {"k": "ab"}}, ctx, {}))
        self.assertTrue(holds({"ForAnyValue:StringEquals": {"k": "ab"}}, ctx, {}))
        self.assertTrue(holds({"ForAllValues:StringLike": {"k": "x"}}, {"k": []}, {}),
                        "ForAllValues over no values holds, as on AWS")
        self.assertFalse(holds({"StringLike": {"k": "*"}}, {}, {}), "an absent key fails")
        self.assertTrue(holds({"StringNotEquals": {"k": ["x", "y"]}}, ctx, {}))
        self.assertTrue(holds({"StringEquals": {"K": "${aws:username}"}}, {"k": ["me"]},
                              {"aws:username": "me"}), "keys are case-insensitive")
        self.assertTrue(holds({"StringLike": {"k": "a${*}"}}, {"k": ["a*"]}, {}))
        self.assertFalse(holds({"StringLike": {"k": "a${*}"}}, {"k": ["ab"]}, {}))
        self.assertFalse(holds({"NumericEquals": {"k": "1"}}, {"k": ["1"]}, {}),
                         "an operator it does not know denies")


if __name__ == "__main__":
    unittest.main()
