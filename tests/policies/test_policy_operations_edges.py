"""Operational rules on the shapes the shipped stacks never take: a backup retention of 0, an asymmetric key for
encryption, a key recorded without the provider's defaults or without a rotation period, alarms that tell nobody
listed before the ones that page, a bucket's own (deprecated) lifecycle rules, a lifecycle filter that selects
every object, an unversioned bucket before a versioned one, and each setting's lowest and highest schema value."""

from __future__ import annotations

from typing import Any

import pytest

from offline.analyzer import PolicyPackProcess
from offline.policy_config import PolicyConfigError
from tests.policies.builders import (
    DROP,
    EXECUTION_METRICS,
    WHOLE_BUCKET_LIFECYCLE,
    Stack,
    alarm_topic,
    aurora,
    data_bucket,
    execution_alarms,
    kms_key,
    metric_alarm,
    state_machine,
)
from tests.policies.reports import findings, only

KMS, RDS = "kms-key-rotation", "rds-encrypted-backed-up-private"
LIFECYCLE, SFN_ALARMS = "s3-versioned-bucket-lifecycle", "sfn-execution-alarms"


# --- rds-encrypted-backed-up-private: the retention message ------------------------------------------------------

@pytest.mark.parametrize(("retention", "expected"), [
    (0, "database cluster 'db' backupRetentionPeriod 0 is below 7 days (0 turns automated backups off)"),
    (1, "database cluster 'db' backupRetentionPeriod 1 is below 7 days"),
    (DROP, "database cluster 'db' backupRetentionPeriod 1 is below 7 days"),  # RDS's default
])
def test_only_a_retention_of_0_is_said_to_turn_backups_off(pack: PolicyPackProcess, retention: Any,
                                                          expected: str) -> None:
    stack = Stack()
    aurora(stack, "db", cluster={"backupRetentionPeriod": retention})
    assert only(pack.analyze(stack.records), RDS).message == expected


# --- kms-key-rotation: which keys can rotate, and the period KMS applies when none is set -----------------------

def test_an_asymmetric_encryption_key_needs_no_rotation(pack: PolicyPackProcess) -> None:
    """KMS rotates only symmetric encryption keys: an RSA key for ENCRYPT_DECRYPT cannot rotate, so it passes."""
    stack = Stack()
    kms_key(stack, "wrapping-key", enableKeyRotation=False, customerMasterKeySpec="RSA_2048",
            keyUsage="ENCRYPT_DECRYPT")
    assert not findings(pack.analyze(stack.records), KMS)


def test_a_key_recorded_without_spec_and_usage_is_a_symmetric_encryption_key(pack: PolicyPackProcess) -> None:
    """A record without the provider's defaults filled in (an exported stack) gets KMS's defaults:
    SYMMETRIC_DEFAULT for ENCRYPT_DECRYPT, a key that must rotate."""
    stack = Stack()
    key = kms_key(stack, "data-key", enableKeyRotation=False)
    for prop in ("customerMasterKeySpec", "keyUsage"):
        key.inputs.pop(prop)
        key.outputs.pop(prop)
    violation = only(pack.analyze(stack.records), KMS)
    assert violation.urn == key.urn and "is a symmetric encryption key without enableKeyRotation" in violation.message


def test_a_key_without_a_rotation_period_rotates_every_365_days(pack: PolicyPackProcess) -> None:
    """EnableKeyRotation without RotationPeriodInDays rotates every 365 days: accepted up to a maximum of 365,
    reported below it, naming KMS's default as the period."""
    stack = Stack()
    key = kms_key(stack, "data-key")
    assert "rotationPeriodInDays" not in key.inputs
    assert not findings(pack.analyze(stack.records, policy_config={KMS: {"maxRotationPeriodDays": 365}}), KMS)
    message = only(pack.analyze(stack.records, policy_config={KMS: {"maxRotationPeriodDays": 364}}), KMS).message
    assert message == "KMS key 'data-key' rotationPeriodInDays 365 (unset: KMS's default) exceeds 364"


# --- sfn-execution-alarms: alarms without an action do not hide the ones with one -----------------------------

def test_silent_alarms_listed_first_do_not_hide_the_ones_that_page(pack: PolicyPackProcess) -> None:
    stack = Stack()
    topic = alarm_topic(stack)
    machine = state_machine(stack, "batch")
    for metric in EXECUTION_METRICS:  # tell nobody; recorded before the alarms with an action
        metric_alarm(stack, f"batch-silent-{metric.lower()}", machine, metric, None, namespace="AWS/States",
                     dimension="StateMachineArn")
    execution_alarms(stack, machine, topic)
    assert not findings(pack.analyze(stack.records), SFN_ALARMS)


# --- s3-versioned-bucket-lifecycle ------------------------------------------------------------------------------

def test_noncurrent_expiry_equal_to_the_maximum_is_accepted(pack: PolicyPackProcess) -> None:
    stack = Stack()
    data_bucket(stack, "data", versioned=True)  # noncurrent versions expire after 30 days
    assert not findings(pack.analyze(stack.records, policy_config={LIFECYCLE: {"maxNoncurrentVersionDays": 30}}),
                        LIFECYCLE)
    message = only(pack.analyze(stack.records, policy_config={LIFECYCLE: {"maxNoncurrentVersionDays": 29}}),
                   LIFECYCLE).message
    assert "expires noncurrent versions within 29 days (shortest 30 days)" in message


@pytest.mark.parametrize("rule", [{"filter": DROP}, {"filter": {"prefix": ""}}, {"filter": {"prefix": None}}])
def test_a_rule_without_a_filter_or_with_an_empty_one_covers_the_bucket(pack: PolicyPackProcess,
                                                                        rule: dict[str, Any]) -> None:
    stack = Stack()
    changed = {k: v for k, v in {**WHOLE_BUCKET_LIFECYCLE, **rule}.items() if v is not DROP}
    data_bucket(stack, "data", versioned=True, lifecycle=[changed])
    assert not findings(pack.analyze(stack.records), LIFECYCLE)


def test_a_rule_with_the_deprecated_top_level_prefix_does_not_cover_the_bucket(pack: PolicyPackProcess) -> None:
    stack = Stack()
    data_bucket(stack, "data", versioned=True, lifecycle=[{**WHOLE_BUCKET_LIFECYCLE, "prefix": "tmp/"}])
    assert "no enabled whole-bucket lifecycle rule aborts" in only(pack.analyze(stack.records), LIFECYCLE).message


def _own_rules_bucket(stack: Stack, rules: list[dict[str, Any]]) -> Any:
    """A bucket versioned and expired by its own deprecated `versioning` and `lifecycleRules` inputs."""
    return data_bucket(stack, "data", bucket={"versioning": {"enabled": True}, "lifecycleRules": rules})


ABORT = {"enabled": True, "abortIncompleteMultipartUploadDays": 7}
NONCURRENT = {"enabled": True, "noncurrentVersionExpiration": {"days": 30}}


@pytest.mark.parametrize("rules", [
    [{**ABORT, **NONCURRENT}],
    [ABORT, NONCURRENT],  # each rule leaves the other setting out
    [NONCURRENT, ABORT],
])
def test_a_bucket_s_own_lifecycle_rules_are_read(pack: PolicyPackProcess, rules: list[dict[str, Any]]) -> None:
    stack = Stack()
    _own_rules_bucket(stack, rules)
    assert not findings(pack.analyze(stack.records), LIFECYCLE)


@pytest.mark.parametrize(("changed", "expected"), [
    ({"enabled": False}, "aborts incomplete multipart uploads within 7 days; and no enabled whole-bucket lifecycle "
                         "rule expires noncurrent versions within 365 days,"),
    ({"prefix": "tmp/"}, "aborts incomplete multipart uploads within 7 days; and no enabled whole-bucket lifecycle "
                         "rule expires noncurrent versions within 365 days,"),
    ({"tags": {"kind": "scratch"}}, "aborts incomplete multipart uploads within 7 days; and no enabled whole-bucket "
                                    "lifecycle rule expires noncurrent versions within 365 days,"),
    ({"abortIncompleteMultipartUploadDays": 8}, "aborts incomplete multipart uploads within 7 days (shortest 8 "
                                                "days), so"),
    ({"noncurrentVersionExpiration": {"days": 366}}, "expires noncurrent versions within 365 days (shortest 366 "
                                                     "days), so"),
])
def test_a_bucket_s_own_rule_that_is_disabled_filtered_or_too_long_is_reported(
        pack: PolicyPackProcess, changed: dict[str, Any], expected: str) -> None:
    stack = Stack()
    bucket = _own_rules_bucket(stack, [{**ABORT, **NONCURRENT, **changed}])
    violation = only(pack.analyze(stack.records), LIFECYCLE)
    assert violation.urn == bucket.urn and expected in violation.message


def test_a_lifecycle_configuration_replaces_the_bucket_s_own_rules(pack: PolicyPackProcess) -> None:
    """S3 keeps one lifecycle configuration per bucket: the separate resource's rules are the ones that apply."""
    stack = Stack()
    data_bucket(stack, "data", versioned=True, bucket={"lifecycleRules": [{**ABORT, **NONCURRENT}]},
                lifecycle=[{**WHOLE_BUCKET_LIFECYCLE, "status": "Disabled"}])
    assert "no enabled whole-bucket lifecycle rule aborts" in only(pack.analyze(stack.records), LIFECYCLE).message


def test_an_unversioned_bucket_does_not_stop_the_check_of_the_next(pack: PolicyPackProcess) -> None:
    stack = Stack()
    data_bucket(stack, "scratch")
    bucket = data_bucket(stack, "data", versioned=True, lifecycle=[])
    assert only(pack.analyze(stack.records), LIFECYCLE).urn == bucket.urn


# --- the lowest and highest settings the config schemas accept ----------------------------------------------------

def _bounds_stack() -> Stack:
    """A stack that passes the three rules at each setting's extreme: a key rotating every 90 days, a cluster
    keeping backups 35 days, a bucket aborting uploads and expiring noncurrent versions after 1 day."""
    stack = Stack()
    kms_key(stack, "data-key", rotationPeriodInDays=90)
    aurora(stack, "db", cluster={"backupRetentionPeriod": 35})
    data_bucket(stack, "data", versioned=True, lifecycle=[{
        **WHOLE_BUCKET_LIFECYCLE, "abortIncompleteMultipartUpload": {"daysAfterInitiation": 1},
        "noncurrentVersionExpiration": {"noncurrentDays": 1}}])
    return stack


@pytest.mark.parametrize(("policy", "setting", "bound", "beyond"), [
    (KMS, "maxRotationPeriodDays", 90, 89),  # KMS's shortest rotation period
    (KMS, "maxRotationPeriodDays", 2560, 2561),  # and its longest
    (RDS, "minBackupRetentionDays", 1, 0),  # 0 turns automated backups off
    (RDS, "minBackupRetentionDays", 35, 36),  # RDS keeps automated backups at most 35 days
    (LIFECYCLE, "maxAbortIncompleteUploadDays", 1, 0),
    (LIFECYCLE, "maxNoncurrentVersionDays", 1, 0),
])
def test_each_setting_accepts_its_bounds_and_refuses_beyond(pack: PolicyPackProcess, policy: str, setting: str,
                                                             bound: int, beyond: int) -> None:
    stack = _bounds_stack()
    assert not findings(pack.analyze(stack.records, policy_config={policy: {setting: bound}}), policy)
    refused = f"{setting} must be {'>=' if beyond < bound else '<='} {bound}"
    with pytest.raises(PolicyConfigError, match=refused):
        pack.analyze(stack.records, policy_config={policy: {setting: beyond}})
