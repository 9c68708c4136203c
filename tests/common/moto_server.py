#!/usr/bin/env python3
"""moto_server with the IAM conditions Tidings' DynamoDB policy relies on.

    python3 tests/common/moto_server.py -H 127.0.0.1 -p PORT

Same command line as moto_server. moto 5 evaluates the Action element of an
identity policy but not its Condition element (moto/iam/access_control.py:
IAMPolicyStatement._check_conditions only knows StringEquals on values passed
in, and nothing computes dynamodb:LeadingKeys). This launcher patches moto's
IAM check before starting the server so that, for DynamoDB actions only:

* dynamodb:LeadingKeys is computed from the request: the partition key of
  Key / Item, the partition key values of a BatchWriteItem / BatchGetItem, or
  for Query the value the KeyConditionExpression compares `pk` with;
* conditions StringEquals, StringNotEquals, StringLike, StringNotLike, each
  optionally ForAllValues: / ForAnyValue:, are evaluated with the policy
  variables ${aws:username}, ${aws:userid} and ${aws:PrincipalTag/<key>}
  taken from moto's IAM user (tags set with iam tag_user / create_user Tags);
* Resource is matched against the table's ARN (moto compares it with "*");
* an explicit Deny wins, then any Allow, else the request is AccessDenied.

Every other service keeps moto's own evaluation. DynamoDB requests are also
handled one at a time: moto's conditional PutItem checks and writes without a
lock, so two concurrent appenders could both win the same sk, a race
DynamoDB itself never loses.

S3 signatures are checked against the request line as sent (werkzeug's
RAW_URI), as S3 checks them. moto checks them against werkzeug's re-quoted
URL, which leaves ( ) + unescaped in a path and decodes %2F in a query, so
that even botocore's own requests fail there with SignatureDoesNotMatch (a
key "a+b" or "x (1)", ListMultipartUploads with Prefix "a/").
"""
import json
import os
import re
import sys
import threading

from moto.core.authorization import ActionAuthenticatorMixin
from moto.dynamodb.responses import DynamoHandler
from moto.iam import access_control
from moto.server import main

_TABLE_KEY = "pk"  # Tidings' partition key attribute


def _attribute_text(value):
    """The string form of a DynamoDB attribute value ({"S": ...}, {"N": ...})."""
    if isinstance(value, dict):
        for kind in ("S", "N", "B"):
            if kind in value:
                return str(value[kind])
    return None


def _query_leading_keys(body):
    expression = body.get("KeyConditionExpression")
    values = body.get("ExpressionAttributeValues") or {}
    names = body.get("ExpressionAttributeNames") or {}
    if expression:
        for left, right in re.findall(r"([#\w]+)\s*=\s*(:\w+)", expression):
            if names.get(left, left) == _TABLE_KEY and right in values:
                return [_attribute_text(values[right])]
        return []
    conditions = body.get("KeyConditions") or {}
    if _TABLE_KEY in conditions:
        return [_attribute_text(v) for v in conditions[_TABLE_KEY].get("AttributeValueList", [])]
    return []


def leading_keys(action, body):
    """dynamodb:LeadingKeys of one request, as a list (empty: the key is absent)."""
    if action in ("PutItem",):
        item = body.get("Item") or {}
        return [_attribute_text(item.get(_TABLE_KEY))] if _TABLE_KEY in item else []
    if action in ("GetItem", "UpdateItem", "DeleteItem"):
        key = body.get("Key") or {}
        return [_attribute_text(key.get(_TABLE_KEY))] if _TABLE_KEY in key else []
    if action == "Query":
        return _query_leading_keys(body)
    if action in ("BatchWriteItem", "BatchGetItem"):
        keys = []
        for requests in (body.get("RequestItems") or {}).values():
            if isinstance(requests, dict):  # BatchGetItem
                requests = [{"Key": k} for k in requests.get("Keys", [])]
            for request in requests:
                for part in (request.get("PutRequest", {}).get("Item"),
                             request.get("DeleteRequest", {}).get("Key"), request.get("Key")):
                    if part and _TABLE_KEY in part:
                        keys.append(_attribute_text(part[_TABLE_KEY]))
        return keys
    return []


class _Unresolved(Exception):
    """A policy variable with no value: the condition value matches nothing."""


def _substitute(pattern, variables):
    def one(match):
        name = match.group(1)
        if name in ("*", "?", "$"):
            return "\0" + name  # a literal, kept apart from wildcards below
        if name not in variables:
            raise _Unresolved(name)
        return variables[name]
    return re.sub(r"\$\{([^}]*)\}", one, pattern)


def _like(pattern, value):
    """IAM StringLike: * any run, ? one character, case-sensitive."""
    regex = ""
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\0":
            regex += re.escape(pattern[i + 1])
            i += 2
            continue
        regex += ".*" if c == "*" else "." if c == "?" else re.escape(c)
        i += 1
    return re.fullmatch(regex, value, re.DOTALL) is not None


def _matches(operator, expected, actual, variables):
    for pattern in expected if isinstance(expected, list) else [expected]:
        try:
            pattern = _substitute(str(pattern), variables)
        except _Unresolved:
            continue
        if operator == "StringEquals" and pattern.replace("\0", "") == actual:
            return True
        if operator == "StringLike" and _like(pattern, actual):
            return True
    return False


def condition_holds(condition_block, context, variables):
    """Every operator and key of a Condition element holds for `context`
    (key -> list of values)."""
    for full_operator, keys in condition_block.items():
        qualifier, _, operator = full_operator.rpartition(":")
        negated = operator in ("StringNotEquals", "StringNotLike")
        base = operator.replace("Not", "") if negated else operator
        if base not in ("StringEquals", "StringLike") or qualifier not in (
                "", "ForAllValues", "ForAnyValue"):
            print(f"moto_server.py: unsupported condition {full_operator}: denied",
                  file=sys.stderr)
            return False
        for key, expected in keys.items():
            values = context.get(key.lower(), [])

            def test(v):
                hit = _matches(base, expected, v, variables)
                return not hit if negated else hit
            if qualifier == "ForAllValues":
                ok = all(test(v) for v in values)
            elif qualifier == "ForAnyValue":
                ok = any(test(v) for v in values)
            else:  # a single-valued key: absent fails, several must all match
                ok = bool(values) and all(test(v) for v in values)
            if not ok:
                return False
    return True


def _user_variables(access_key):
    """Policy variables of the IAM user behind `access_key` (moto's model)."""
    backend = access_key.backend
    name = getattr(access_key, "_owner_user_name", None)
    if name is None:
        return {}
    user = backend.get_user(name)
    variables = {"aws:username": user.name, "aws:userid": user.id}
    for tag in backend.list_user_tags(name):
        variables["aws:PrincipalTag/" + tag["Key"]] = tag["Value"]
    return variables


def _evaluate(statements, action, resource, context, variables):
    """'deny', 'allow' or None for the statements of one user's policies."""
    allowed = False
    for statement in statements:
        checker = access_control.IAMPolicyStatement(statement)
        if "NotAction" in statement:
            concerned = not checker._check_element_matches("NotAction", action)
        else:
            concerned = checker._check_element_matches("Action", action)
        if not concerned or not checker._check_element_matches("Resource", resource):
            continue
        if not condition_holds(statement.get("Condition") or {}, context, variables):
            continue
        if statement.get("Effect") == "Deny":
            return "deny"
        allowed = True
    return "allow" if allowed else None


def _as_list(value):
    return value if isinstance(value, list) else [value]


def _statements(policy):
    document = access_control.IAMPolicy(policy)._policy_json
    return _as_list(document.get("Statement", []))


_original_check = access_control.IAMRequestBase.check_action_permitted


def _check_action_permitted(self, resource):
    if self._service != "dynamodb":
        return _original_check(self, resource)
    action = self._action.split(":", 1)[1]
    try:
        body = json.loads(self._body or b"{}")
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    # moto passes "*"; the policy names the table, as on AWS.
    table = body.get("TableName")
    if isinstance(table, str):
        resource = f"arn:aws:dynamodb:{self._region}:{self.account_id}:table/{table}"
    context = {"dynamodb:leadingkeys": [k for k in leading_keys(action, body) if k is not None]}
    variables = _user_variables(self._access_key)
    statements = [s for p in self._access_key.collect_policies() for s in _statements(p)]
    if _evaluate(statements, self._action, resource, context, variables) != "allow":
        self._raise_access_denied()


access_control.IAMRequestBase.check_action_permitted = _check_action_permitted

_original_s3_auth = ActionAuthenticatorMixin._authenticate_and_authorize_s3_action


def _s3_auth_on_raw_uri(self, bucket_name=None, key_name=None):
    environ = getattr(getattr(self, "request", None), "environ", None) or {}
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if not raw:
        return _original_s3_auth(self, bucket_name, key_name)
    seen = self.uri
    self.uri = raw  # moto reads only its path and query
    try:
        return _original_s3_auth(self, bucket_name, key_name)
    finally:
        self.uri = seen


ActionAuthenticatorMixin._authenticate_and_authorize_s3_action = _s3_auth_on_raw_uri

_dynamodb_lock = threading.Lock()
_original_call_action = DynamoHandler.call_action


def _serialised_call_action(self):
    with _dynamodb_lock:
        return _original_call_action(self)


if os.environ.get("TIDINGS_MOTO_UNLOCKED") != "1":  # "1": moto's own behaviour, to compare
    DynamoHandler.call_action = _serialised_call_action

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
