"""The pieces the least-privilege check stands on: IAM's decision (conditions, Deny, NotAction/NotResource, patterns
compared as patterns), a request re-resolved for another stack, and the judgement of a statement's width."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.least_privilege.checks import check_role, width
from tests.support.aws_calls import AwsCall, CallRegistry, Request, recording
from tests.support.call_resources import Placement
from tests.support.iam_eval import Authorization, allowed, context_of, covers

ACCOUNT, QUEUE = "123456789012", "arn:aws:sqs:eu-west-1:123456789012:q"


def allow(action: str, resource: Any, condition: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {"Sid": "S", "Effect": "Allow", "Action": action, "Resource": resource,
            **({"Condition": condition} if condition else {}), **extra}


def test_a_deny_overrides_an_allow_and_not_resource_excludes() -> None:
    send = Authorization("sqs:SendMessage", QUEUE)
    assert allowed([allow("sqs:*", "*")], send)
    assert not allowed([allow("sqs:*", "*"), {"Effect": "Deny", "Action": "sqs:SendMessage", "Resource": QUEUE}], send)
    assert not allowed([{"Effect": "Allow", "Action": "sqs:*", "NotResource": QUEUE}], send)
    assert not allowed([{"Effect": "Allow", "NotAction": "sqs:SendMessage", "Resource": "*"}], send)
    assert allowed([{"Effect": "Allow", "NotAction": "sqs:DeleteMessage", "Resource": "*"}], send)


@pytest.mark.parametrize(("condition", "context", "holds"), [
    ({"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}},
     {"iam:PassedToService": "bedrock.amazonaws.com"}, True),
    ({"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}}, {}, False),
    ({"StringLike": {"s3:prefix": ["in/*"]}}, {"s3:prefix": "out/x"}, False),
    ({"StringNotEquals": {"aws:ResourceTag/o": "me"}}, {}, True),
    ({"ArnLike": {"aws:SourceArn": "arn:aws:events:*:1:rule/r"}}, {"aws:SourceArn": "arn:aws:events:x:1:rule/r"}, True),
    ({"ArnEquals": {"aws:SourceArn": "arn:aws:events:x:1:rule/r"}}, {"aws:SourceArn": "arn:aws:events:x:1:rule/s"},
     False),
    ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": False}, True),
    ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}, {"aws:TagKeys": ["a"]}, True),
    ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}}, {"aws:TagKeys": ["a", "c"]}, False),
    ({"ForAnyValue:StringLike": {"aws:TagKeys": ["c*"]}}, {"aws:TagKeys": ["a", "cx"]}, True),
    ({"ForAnyValue:StringLike": {"aws:TagKeys": ["c*"]}}, {}, False),
    ({"StringEqualsIfExists": {"events:source": "s"}}, {}, True),
])
def test_conditions(condition: dict[str, Any], context: dict[str, Any], holds: bool) -> None:
    request = Authorization("sqs:SendMessage", QUEUE, context_of(context))
    assert allowed([allow("sqs:SendMessage", QUEUE, condition)], request) is holds


def test_a_pattern_is_covered_only_by_a_grant_of_every_name_it_stands_for() -> None:
    secret = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:db-??????"
    assert covers(secret, secret) and covers(secret.replace("??????", "*"), secret)
    assert not covers(secret.replace("??????", "AbCdEf"), secret)
    assert covers("*", "*") and not covers("arn:aws:s3:::b/*", "*")
    assert not covers("arn:aws:states:r:1:execution:m:*", "arn:aws:states:r:1:execution:m/*:*")


def test_a_request_is_resolved_again_for_another_stack() -> None:
    registry = CallRegistry()
    dev = {"MODEL_ID": "anthropic.claude-v1:0", "QUEUE_URL": f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/dev-q",
           "SECRET": "proj/dev/db", "STATE_MACHINE_ARN": f"arn:aws:states:us-east-1:{ACCOUNT}:stateMachine:dev-runs"}
    with recording("fn", environment=dev, registry=registry):
        pass
    prod = {"MODEL_ID": "eu.anthropic.claude-v1:0", "QUEUE_URL": f"https://sqs.eu-west-1.amazonaws.com/{ACCOUNT}/p-q",
            "SECRET": "proj/prod/db", "STATE_MACHINE_ARN": f"arn:aws:states:eu-west-1:{ACCOUNT}:stateMachine:p-runs"}
    where = Placement("eu-west-1", ACCOUNT, {"fn": prod}, recorded=registry.environments,
                      profile_regions={"eu.anthropic.claude-v1:0": ("eu-west-1", "eu-west-3")})

    def resolved(service: str, operation: str, **params: Any) -> list[str]:
        request = Request(service, operation, json.dumps(params), "us-east-1", ACCOUNT)
        return [a.resource for a in where.authorizations(request)]

    assert resolved("bedrock-runtime", "Converse", modelId=dev["MODEL_ID"]) == [
        f"arn:aws:bedrock:eu-west-1:{ACCOUNT}:inference-profile/eu.anthropic.claude-v1:0",
        "arn:aws:bedrock:eu-west-1::foundation-model/anthropic.claude-v1:0",
        "arn:aws:bedrock:eu-west-3::foundation-model/anthropic.claude-v1:0"]
    assert resolved("sqs", "SendMessage", QueueUrl=dev["QUEUE_URL"]) == [f"arn:aws:sqs:eu-west-1:{ACCOUNT}:p-q"]
    assert resolved("secretsmanager", "GetSecretValue", SecretId=dev["SECRET"]) == [
        f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:proj/prod/db-??????"]
    assert resolved("stepfunctions", "DescribeExecution",
                    executionArn=f"arn:aws:states:us-east-1:{ACCOUNT}:execution:dev-runs:run-1") == [
        f"arn:aws:states:eu-west-1:{ACCOUNT}:execution:p-runs:run-1"]
    assert resolved("stepfunctions", "SendTaskSuccess") == ["*"]
    complete = f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:other-AbCdEf"
    assert resolved("secretsmanager", "GetSecretValue", SecretId=complete) == [complete]


def test_a_listing_implied_by_a_missing_key_lists_that_key() -> None:
    registry = CallRegistry()
    registry.record("fn", AwsCall("s3", "GetObject", "arn:aws:s3:::b/out/k"),
                    Request("s3", "GetObject", json.dumps({"Bucket": "b", "Key": "out/k"}), "us-east-1", ACCOUNT))
    registry.record("fn", AwsCall("s3", "ListObjectsV2", "arn:aws:s3:::b"))
    listing = max(registry.requests["fn"], key=lambda r: r.operation == "ListObjectsV2")
    assert listing.parameters == {"Bucket": "b", "Prefix": "out/k"}


def test_width_of_s3_and_other_grants() -> None:
    prefixes = frozenset({"in/", "in/a/"})
    read = Authorization("s3:GetObject", "arn:aws:s3:::b/in/a/x")
    assert width(allow("s3:GetObject", "arn:aws:s3:::b/in/a/*"), [read], prefixes) == []
    assert width(allow("s3:GetObject", "arn:aws:s3:::b/*"), [read], prefixes)  # the whole bucket
    assert width(allow("s3:GetObject", "arn:aws:s3:::b/in/*"), [read], prefixes)  # in/a/ serves every read
    assert width(allow("s3:ListBucket", "arn:aws:s3:::b"), [], prefixes)  # no s3:prefix limit
    assert width(allow("s3:ListBucket", "arn:aws:s3:::b", {"StringLike": {"s3:prefix": ["in/*"]}}), [], prefixes) == []
    assert width(allow("sqs:SendMessage", "*"), [], prefixes)
    assert width(allow("states:SendTaskSuccess", "*"), [], prefixes) == []
    assert width(allow("sqs:SendMessage", "arn:aws:sqs:eu-west-1:1:q-*"), [], prefixes)
    assert width({"Effect": "Allow", "NotAction": "s3:GetObject", "Resource": "*"}, [], prefixes)


def test_check_role_finds_each_kind() -> None:
    other = "arn:aws:sqs:eu-west-1:123456789012:other"
    findings = check_role("r", [allow("sqs:SendMessage", [other])], [Authorization("sqs:SendMessage", QUEUE)],
                          prefixes=frozenset(), unexercised={})
    assert {f.kind for f in findings} == {"denied", "unexercised"}
