"""kms-stores-use-stack-key through the analyzer protocol: with requireCustomerManagedKey, every store names a
rotating key of the stack (directly or through its alias), related by property dependencies as the program records
them; without it, the rule gives no finding."""

from __future__ import annotations

from typing import Any

import pytest

from offline.analyzer import PolicyPackProcess
from offline.model import ResourceRecord
from tests.policies.builders import Stack, arn, kms_key, table
from tests.policies.reports import findings, only

RULE = "kms-stores-use-stack-key"
REQUIRED = {RULE: {"requireCustomerManagedKey": True}}
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # a key ARN at preview: the rule must not need its value


def _key(stack: Stack, **overrides: Any) -> tuple[ResourceRecord, ResourceRecord]:
    key = kms_key(stack, "data-key", **overrides)
    alias = stack.add("aws:kms/alias:Alias", "data-key-alias", {"name": "alias/test-data", "targetKeyId": UNKNOWN},
                      deps={"targetKeyId": [key]})
    return key, alias


def _stores(stack: Stack, key: ResourceRecord | None, alias: ResourceRecord | None, *,
            skip: str = "", bucket_rule: dict[str, Any] | None = None) -> dict[str, ResourceRecord]:
    """One store of each kind, each naming the key (by alias where the service takes one), except `skip`."""
    def by(target: ResourceRecord | None, prop: str, name: str) -> dict[str, list[ResourceRecord]]:
        return {prop: [target]} if target is not None and name != skip else {}

    stores = {
        "queue": stack.add("aws:sqs/queue:Queue", "queue", {"name": stack.physical("queue"), **(
            {"kmsMasterKeyId": "alias/test-data"} if skip != "queue" else {"sqsManagedSseEnabled": True})},
            deps=by(alias, "kmsMasterKeyId", "queue")),
        "topic": stack.add("aws:sns/topic:Topic", "topic", {"name": stack.physical("topic"), "kmsMasterKeyId": (
            "alias/test-data" if skip != "topic" else "alias/aws/sns")}, deps=by(alias, "kmsMasterKeyId", "topic")),
        "table": table(stack, "results", "results", serverSideEncryption={"enabled": True, "kmsKeyArn": UNKNOWN})
        if skip != "table" else table(stack, "results", "results", serverSideEncryption={"enabled": True}),
        "logs": stack.add("aws:cloudwatch/logGroup:LogGroup", "logs", {
            "name": "/aws/lambda/test", "retentionInDays": 30, **({"kmsKeyId": UNKNOWN} if skip != "logs" else {})},
            deps=by(key, "kmsKeyId", "logs")),
        "secret": stack.add("aws:secretsmanager/secret:Secret", "secret", {
            "name": "test/db", **({"kmsKeyId": UNKNOWN} if skip != "secret" else {})},
            deps=by(key, "kmsKeyId", "secret")),
    }
    if skip != "table" and key is not None:  # the table's dependency, recorded as the engine records it
        stores["table"].property_dependencies["serverSideEncryption"] = [key.urn]
    bucket = stack.add("aws:s3/bucket:Bucket", "bucket", {"bucket": stack.physical("bucket")})
    rule = bucket_rule or {"applyServerSideEncryptionByDefault": {
        "sseAlgorithm": "aws:kms", "kmsMasterKeyId": arn("kms", "alias/test-data")}, "bucketKeyEnabled": True}
    stack.add("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
              "bucket-encryption", {"bucket": stack.physical("bucket"), "rules": [rule]},
              deps={"bucket": [bucket], **by(alias, "rules", "bucket")})
    stores["bucket"] = bucket
    return stores


def test_every_store_on_the_rotating_stack_key_passes(pack: PolicyPackProcess) -> None:
    stack = Stack()
    key, alias = _key(stack)
    _stores(stack, key, alias)
    assert not findings(pack.analyze(stack.records, policy_config=REQUIRED), RULE)


@pytest.mark.parametrize("store", ["queue", "topic", "table", "logs", "secret", "bucket"])
def test_a_store_without_the_stack_key_is_a_violation(pack: PolicyPackProcess, store: str) -> None:
    stack = Stack()
    key, alias = _key(stack)
    stores = _stores(stack, key, alias, skip=store)
    violation = only(pack.analyze(stack.records, policy_config=REQUIRED), RULE)
    assert violation.enforcement == "mandatory"
    if store == "bucket":
        assert "names no customer-managed key of this stack" in violation.message
    else:
        assert violation.urn == stores[store].urn and "names no customer-managed key" in violation.message


@pytest.mark.parametrize(("rule", "expected"), [
    ({"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}, "bucketKeyEnabled": True},
     "does not encrypt with aws:kms"),
    ({"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": "alias/test-data"}},
     "has no bucket key"),
])
def test_a_bucket_on_sse_s3_or_without_a_bucket_key_is_a_violation(pack: PolicyPackProcess, rule: dict[str, Any],
                                                                   expected: str) -> None:
    stack = Stack()
    key, alias = _key(stack)
    _stores(stack, key, alias, bucket_rule=rule)
    assert expected in only(pack.analyze(stack.records, policy_config=REQUIRED), RULE).message


def test_stores_on_a_key_that_does_not_rotate_are_violations(pack: PolicyPackProcess) -> None:
    stack = Stack()
    key, alias = _key(stack, enableKeyRotation=False)
    _stores(stack, key, alias)
    found = findings(pack.analyze(stack.records, policy_config=REQUIRED), RULE)
    assert len(found) == 6 and all("does not rotate" in v.message for v in found)


def test_a_stack_without_any_key_is_a_violation(pack: PolicyPackProcess) -> None:
    stack = Stack()
    stack.add("aws:sqs/queue:Queue", "queue", {"name": stack.physical("queue"), "sqsManagedSseEnabled": True})
    violation = only(pack.analyze(stack.records, policy_config=REQUIRED), RULE)
    assert "set to customer-managed keys but creates no KMS key" in violation.message


def test_without_the_setting_aws_managed_keys_pass(pack: PolicyPackProcess) -> None:
    stack = Stack()
    _stores(stack, None, None, skip="all")
    assert not findings(pack.analyze(stack.records), RULE)
    assert findings(pack.analyze(stack.records, policy_config=REQUIRED), RULE)


SSE_S3 = {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}, "bucketKeyEnabled": True}


def _access_log_bucket(stack: Stack, source: ResourceRecord, rule: dict[str, Any] | None) -> ResourceRecord:
    """A log bucket (encrypted by `rule`, none when None) receiving `source`'s server access logs."""
    logs = stack.add("aws:s3/bucket:Bucket", "access-logs", {"bucket": stack.physical("access-logs")})
    if rule is not None:
        stack.add("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                  "access-logs-encryption", {"bucket": stack.physical("access-logs"), "rules": [rule]},
                  deps={"bucket": [logs]})
    stack.add("aws:s3/bucketLogging:BucketLogging", "bucket-access-logging",
              {"bucket": stack.physical("bucket"), "targetBucket": stack.physical("access-logs"),
               "targetPrefix": "bucket/"}, deps={"bucket": [source], "targetBucket": [logs]})
    return logs


def test_the_access_log_destination_on_sse_s3_passes(pack: PolicyPackProcess) -> None:
    stack = Stack()
    key, alias = _key(stack)
    stores = _stores(stack, key, alias)
    _access_log_bucket(stack, stores["bucket"], SSE_S3)
    assert not findings(pack.analyze(stack.records, policy_config=REQUIRED), RULE)


@pytest.mark.parametrize(("rule", "expected"), [
    (None, "has no encryption configuration"),
    ({"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": "alias/aws/s3"},
      "bucketKeyEnabled": True}, "names no customer-managed key of this stack"),
])
def test_the_access_log_destination_otherwise_is_still_checked(pack: PolicyPackProcess, rule: dict[str, Any] | None,
                                                               expected: str) -> None:
    stack = Stack()
    key, alias = _key(stack)
    stores = _stores(stack, key, alias)
    logs = _access_log_bucket(stack, stores["bucket"], rule)
    violation = only(pack.analyze(stack.records, policy_config=REQUIRED), RULE)
    assert violation.urn == logs.urn and expected in violation.message


def test_a_logged_source_bucket_on_sse_s3_is_still_a_violation(pack: PolicyPackProcess) -> None:
    stack = Stack()
    key, alias = _key(stack)
    stores = _stores(stack, key, alias, bucket_rule=SSE_S3)
    _access_log_bucket(stack, stores["bucket"], SSE_S3)
    violation = only(pack.analyze(stack.records, policy_config=REQUIRED), RULE)
    assert violation.urn == stores["bucket"].urn and "does not encrypt with aws:kms" in violation.message


@pytest.mark.parametrize(("built_from", "expected"), [
    (("data-key", "data-key-alias"), "KMS key 'data-key'"),  # one key, directly and by its alias: named once
    (("data-key", "other-key"), "KMS key 'data-key', KMS key 'other-key'"),
    (("other-key", "data-key-alias"), "KMS key 'other-key', KMS key 'data-key'"),
])
def test_a_store_built_from_keys_none_of_which_rotates_names_each(pack: PolicyPackProcess,
                                                                 built_from: tuple[str, ...], expected: str) -> None:
    """Which of the keys its input was built from the store names is unknown at preview: every one is named."""
    stack = Stack()
    _key(stack, enableKeyRotation=False)
    kms_key(stack, "other-key", enableKeyRotation=False)
    sources = [next(r for r in stack.records if r.name == name) for name in built_from]
    queue = stack.add("aws:sqs/queue:Queue", "queue", {"name": stack.physical("queue"), "kmsMasterKeyId": UNKNOWN},
                      deps={"kmsMasterKeyId": sources})
    violation = only(pack.analyze(stack.records, policy_config=REQUIRED), RULE)
    assert violation.urn == queue.urn
    assert violation.message == f"queue 'queue': its key does not rotate (built from {expected})"
