"""Operational rules through the analyzer protocol: failure destinations of asynchronously invoked functions, KMS
key rotation, lifecycle of versioned buckets, state machine execution alarms, event source mapping metrics."""

from __future__ import annotations

from typing import Any

import pytest

from offline.analyzer import PolicyPackProcess
from tests.policies.builders import (
    DROP,
    EXECUTION_METRICS,
    WHOLE_BUCKET_LIFECYCLE,
    Queue,
    Stack,
    alarm_topic,
    arn,
    aurora,
    data_bucket,
    execution_alarms,
    kms_key,
    merged,
    queue_with_dlq,
    scheduled_function,
    state_machine,
    worker,
)
from tests.policies.reports import findings, only, skipped

UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's marker for a value unknown at preview
ASYNC = "lambda-async-failure-destination"
KMS = "kms-key-rotation"
LIFECYCLE = "s3-versioned-bucket-lifecycle"
SFN_ALARMS = "sfn-execution-alarms"
MAPPING_METRICS = "lambda-mapping-metrics"
RDS = "rds-encrypted-backed-up-private"


def _dead_letter(stack: Stack) -> Queue:
    return queue_with_dlq(stack, "failures", alarm_topic(stack))


# --- lambda-async-failure-destination ---------------------------------------------------------------------------

def test_scheduled_function_with_an_on_failure_destination_passes(pack: PolicyPackProcess) -> None:
    stack = Stack()
    scheduled_function(stack, "reconciler", _dead_letter(stack))
    report = pack.analyze(stack.records, policy_config={ASYNC: {"unknownValues": "violation"}})
    assert not findings(report, ASYNC) and not skipped(report, ASYNC)


def test_scheduled_function_without_a_failure_destination_is_a_violation(pack: PolicyPackProcess) -> None:
    stack = Stack()
    function = scheduled_function(stack, "reconciler", _dead_letter(stack), invoke_config=False)
    violation = only(pack.analyze(stack.records), ASYNC)
    assert violation.urn == function.urn and violation.enforcement == "mandatory"
    assert violation.message.startswith("function 'reconciler' is invoked asynchronously by schedule "
                                        "'reconciler-schedule' but has no on-failure destination")


def test_invoke_config_without_on_failure_is_a_violation(pack: PolicyPackProcess) -> None:
    stack = Stack()
    scheduled_function(stack, "reconciler", _dead_letter(stack), invoke_config={"destinationConfig": DROP})
    assert only(pack.analyze(stack.records), ASYNC)


def test_function_dead_letter_queue_is_a_failure_destination(pack: PolicyPackProcess) -> None:
    stack = Stack()
    dead_letter = _dead_letter(stack)
    scheduled_function(stack, "reconciler", dead_letter, invoke_config=False,
                       function={"deadLetterConfig": {"targetArn": dead_letter.arn}})
    assert not findings(pack.analyze(stack.records), ASYNC)


def test_event_rule_target_invoking_a_function_needs_a_failure_destination(pack: PolicyPackProcess) -> None:
    stack = Stack()
    dead_letter = _dead_letter(stack)
    function = scheduled_function(stack, "handler", dead_letter)
    stack.records = [r for r in stack.records if r.type != "aws:scheduler/schedule:Schedule"]
    stack.add("aws:cloudwatch/eventTarget:EventTarget", "handler-target", {
        "rule": "ai-pipelines-test-handler", "arn": arn("lambda", "function:ai-pipelines-test-handler"),
        "deadLetterConfig": {"arn": dead_letter.arn},
        "retryPolicy": {"maximumRetryAttempts": 3, "maximumEventAgeInSeconds": 3600}},
        deps={"arn": [function], "deadLetterConfig": [dead_letter.queue]})
    assert not findings(pack.analyze(stack.records), ASYNC)
    invoke_config = "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"
    stack.records = [r for r in stack.records if r.type != invoke_config]
    violation = only(pack.analyze(stack.records), ASYNC)
    assert "invoked asynchronously by rule target 'handler-target'" in violation.message


def test_function_invoked_synchronously_only_needs_no_failure_destination(pack: PolicyPackProcess) -> None:
    stack = Stack()
    topic = alarm_topic(stack)
    worker(stack, "worker", queue_with_dlq(stack, "jobs", topic), topic)  # polled by a mapping, not invoked async
    assert not findings(pack.analyze(stack.records), ASYNC)


@pytest.mark.parametrize("strict", [False, True])
def test_unknown_failure_destination_gives_no_verdict(pack: PolicyPackProcess, strict: bool) -> None:
    stack = Stack()
    scheduled_function(stack, "reconciler", _dead_letter(stack), invoke_config={
        "destinationConfig": {"onFailure": {"destination": UNKNOWN}}})
    report = pack.analyze(stack.records, policy_config={ASYNC: {"unknownValues": "violation"}} if strict else None)
    if strict:
        assert "cannot give a verdict" in only(report, ASYNC).message
    else:
        assert not findings(report, ASYNC) and skipped(report, ASYNC)


# --- kms-key-rotation --------------------------------------------------------------------------------------------

def test_rotating_key_and_asymmetric_key_pass(pack: PolicyPackProcess) -> None:
    stack = Stack()
    kms_key(stack, "data-key")
    kms_key(stack, "signing-key", enableKeyRotation=False, customerMasterKeySpec="RSA_2048", keyUsage="SIGN_VERIFY")
    assert not findings(pack.analyze(stack.records), KMS)


@pytest.mark.parametrize("overrides", [{"enableKeyRotation": False}, {"enableKeyRotation": DROP}])
def test_key_without_rotation_is_a_violation(pack: PolicyPackProcess, overrides: dict[str, Any]) -> None:
    stack = Stack()
    key = kms_key(stack, "data-key", **overrides)
    violation = only(pack.analyze(stack.records), KMS)
    assert violation.urn == key.urn and violation.enforcement == "mandatory"
    assert "KMS key 'data-key' is a symmetric encryption key without enableKeyRotation" in violation.message


def test_rotation_period_above_the_maximum_is_a_violation(pack: PolicyPackProcess) -> None:
    stack = Stack()
    kms_key(stack, "data-key", rotationPeriodInDays=730)
    assert "rotationPeriodInDays 730 exceeds 365" in only(pack.analyze(stack.records), KMS).message
    report = pack.analyze(stack.records, policy_config={KMS: {"maxRotationPeriodDays": 730}})
    assert not findings(report, KMS)


# --- rds-encrypted-backed-up-private ---------------------------------------------------------------------------

def test_encrypted_backed_up_private_cluster_passes(pack: PolicyPackProcess) -> None:
    stack = Stack()
    aurora(stack, "db")
    report = pack.analyze(stack.records, policy_config={RDS: {"unknownValues": "violation"}})
    assert not findings(report, RDS) and not skipped(report, RDS)


@pytest.mark.parametrize(("cluster", "instance", "expected"), [
    ({"storageEncrypted": DROP}, None, "database cluster 'db' does not set storageEncrypted"),
    ({"backupRetentionPeriod": DROP}, None, "database cluster 'db' backupRetentionPeriod 1 is below 7 days"),
    ({"backupRetentionPeriod": 3}, None, "database cluster 'db' backupRetentionPeriod 3 is below 7 days"),
    (None, {"publiclyAccessible": True}, "database instance 'db-writer' sets publiclyAccessible"),
])
def test_unencrypted_short_backup_or_public_database_is_a_violation(
        pack: PolicyPackProcess, cluster: dict[str, Any] | None, instance: dict[str, Any] | None,
        expected: str) -> None:
    stack = Stack()
    aurora(stack, "db", cluster=cluster, instance=instance)
    violation = only(pack.analyze(stack.records), RDS)
    assert violation.message.startswith(expected) and violation.enforcement == "mandatory"
    assert violation.urn.endswith("::db-writer" if instance else "::db")


def test_standalone_instance_is_judged_too(pack: PolicyPackProcess) -> None:
    stack = Stack()
    stack.add("aws:rds/instance:Instance", "legacy", {
        "identifier": "ai-pipelines-test-legacy", "engine": "postgres", "instanceClass": "db.t4g.micro",
        "allocatedStorage": 20, "username": "app", "manageMasterUserPassword": True, "publiclyAccessible": True})
    messages = [v.message for v in findings(pack.analyze(stack.records), RDS)]
    assert len(messages) == 3, messages
    report = pack.analyze(stack.records, policy_config={RDS: {"minBackupRetentionDays": 1}})
    assert len(findings(report, RDS)) == 2


# --- s3-versioned-bucket-lifecycle -------------------------------------------------------------------------------

def test_versioned_bucket_with_a_whole_bucket_rule_and_unversioned_bucket_pass(pack: PolicyPackProcess) -> None:
    stack = Stack()
    data_bucket(stack, "data", versioned=True)
    data_bucket(stack, "scratch")
    assert not findings(pack.analyze(stack.records), LIFECYCLE)


def test_versioned_bucket_without_lifecycle_is_reported_mandatory(pack: PolicyPackProcess) -> None:
    stack = Stack()
    bucket = data_bucket(stack, "data", versioned=True, lifecycle=[])
    violation = only(pack.analyze(stack.records), LIFECYCLE)
    assert violation.urn == bucket.urn and violation.enforcement == "mandatory"
    assert violation.message == (
        "bucket 'data' is versioned but no enabled whole-bucket lifecycle rule aborts incomplete multipart uploads "
        "within 7 days; and no enabled whole-bucket lifecycle rule expires noncurrent versions within 365 days, so "
        "what it keeps grows without bound")
    report = pack.analyze(stack.records, policy_config={LIFECYCLE: {"enforcementLevel": "advisory"}})
    assert only(report, LIFECYCLE).enforcement == "advisory"


@pytest.mark.parametrize(("rule", "expected"), [
    ({"status": "Disabled"}, "aborts incomplete multipart uploads within 7 days;"),
    ({"filter": {"prefix": "tmp/"}}, "expires noncurrent versions within 365 days"),
    ({"abortIncompleteMultipartUpload": {"daysAfterInitiation": 30}}, "within 7 days (shortest 30 days)"),
    ({"noncurrentVersionExpiration": DROP}, "expires noncurrent versions within 365 days"),
])
def test_lifecycle_rule_that_does_not_cover_the_bucket_is_reported(pack: PolicyPackProcess, rule: dict[str, Any],
                                                                   expected: str) -> None:
    stack = Stack()
    changed = {k: v for k, v in {**WHOLE_BUCKET_LIFECYCLE, **rule}.items() if v is not DROP}
    data_bucket(stack, "data", versioned=True, lifecycle=[changed])
    assert expected in only(pack.analyze(stack.records), LIFECYCLE).message


# --- sfn-execution-alarms ----------------------------------------------------------------------------------------

def test_state_machine_with_the_three_alarms_passes(pack: PolicyPackProcess) -> None:
    stack = Stack()
    state_machine(stack, "batch", alarms=alarm_topic(stack))
    assert not findings(pack.analyze(stack.records, policy_config={SFN_ALARMS: {"unknownValues": "violation"}}),
                        SFN_ALARMS)


def test_state_machine_alarming_on_failures_only_is_reported(pack: PolicyPackProcess) -> None:
    stack = Stack()
    topic = alarm_topic(stack)
    machine = state_machine(stack, "batch")
    execution_alarms(stack, machine, topic, ["ExecutionsFailed"])
    execution_alarms(stack, machine, None, ["ExecutionsAborted"])  # no action: tells nobody
    violation = only(pack.analyze(stack.records), SFN_ALARMS)
    assert violation.urn == machine.urn and violation.enforcement == "mandatory"
    assert violation.message.startswith("state machine 'batch' has no alarm with an action on ExecutionsTimedOut, "
                                        "ExecutionsAborted (AWS/States")


def test_one_metric_math_alarm_over_the_three_metrics_passes(pack: PolicyPackProcess) -> None:
    stack = Stack()
    topic = alarm_topic(stack)
    machine = state_machine(stack, "batch")
    machine_arn = arn("states", f"stateMachine:{machine.inputs['name']}")
    queries = [{"id": f"m{i}", "metric": {"namespace": "AWS/States", "metricName": metric, "period": 300,
                                          "stat": "Sum", "dimensions": {"StateMachineArn": machine_arn}}}
               for i, metric in enumerate(EXECUTION_METRICS)]
    queries.append({"id": "ended", "expression": "m0 + m1 + m2", "returnData": True})
    stack.add("aws:cloudwatch/metricAlarm:MetricAlarm", "batch-ended-badly", {
        "name": "ai-pipelines-test-batch-ended-badly", "metricQueries": queries, "evaluationPeriods": 1,
        "threshold": 0, "comparisonOperator": "GreaterThanThreshold",
        "alarmActions": [arn("sns", topic.inputs["name"])]},
        deps={"metricQueries": [machine], "alarmActions": [topic]})
    assert not findings(pack.analyze(stack.records), SFN_ALARMS)


# --- lambda-mapping-metrics --------------------------------------------------------------------------------------

def test_mapping_metrics(pack: PolicyPackProcess) -> None:
    stack = Stack()
    topic = alarm_topic(stack)
    worker(stack, "published", queue_with_dlq(stack, "jobs", topic), topic)
    silent = worker(stack, "silent", queue_with_dlq(stack, "other", topic), topic, mapping={"metricsConfig": DROP})
    violation = only(pack.analyze(stack.records), MAPPING_METRICS)
    assert violation.urn == silent.mapping.urn and violation.enforcement == "mandatory"
    assert violation.message.startswith("mapping 'silent-source' has no metricsConfig.metrics ['EventCount']")


def test_new_rules_honour_exemptions(pack: PolicyPackProcess) -> None:
    stack = Stack()
    scheduled_function(stack, "reconciler", _dead_letter(stack), invoke_config=False)
    kms_key(stack, "data-key", enableKeyRotation=False)
    exemption = [{"resource": "*", "reason": "migration, PLAT-1", "expires": "2999-12-31"}]
    report = pack.analyze(stack.records, policy_config={ASYNC: {"exemptions": exemption},
                                                        KMS: {"exemptions": exemption}})
    assert not findings(report, ASYNC) and not findings(report, KMS)
    applied = findings(report, "exemptions-applied")
    assert len(applied) == 2 and all("migration, PLAT-1" in v.message for v in applied)


# --- secretsmanager-secret-rotation ------------------------------------------------------------------------------

ROTATION = "secretsmanager-secret-rotation"


def _secret(stack: Stack, name: str, *, rotation: dict[str, Any] | bool | None = None) -> Any:
    secret = stack.add("aws:secretsmanager/secret:Secret", name, {"name": f"app/{name}", "tags": stack.tags()})
    if rotation is not False:
        stack.add("aws:secretsmanager/secretRotation:SecretRotation", f"{name}-rotation", merged({
            "secretId": UNKNOWN, "rotationLambdaArn": arn("lambda", f"function:{name}-rotation"),
            "rotationRules": {"automaticallyAfterDays": 30}, "rotateImmediately": False}, rotation or {}),
            deps={"secretId": [secret]})
    return secret


@pytest.mark.parametrize("rules", [{"automaticallyAfterDays": 30}, {"scheduleExpression": "rate(7 days)"},
                                   {"scheduleExpression": "cron(0 4 ? * SUN *)"}])
def test_a_secret_rotated_within_the_maximum_passes(pack: PolicyPackProcess, rules: dict[str, Any]) -> None:
    stack = Stack()
    _secret(stack, "loader", rotation={"rotationRules": rules})
    report = pack.analyze(stack.records, policy_config={ROTATION: {"unknownValues": "violation"}})
    assert not findings(report, ROTATION) and not skipped(report, ROTATION)


def test_a_secret_without_rotation_is_a_violation(pack: PolicyPackProcess) -> None:
    stack = Stack()
    secret = _secret(stack, "loader", rotation=False)
    _secret(stack, "rotated")
    violation = only(pack.analyze(stack.records), ROTATION)
    assert violation.urn == secret.urn and violation.enforcement == "mandatory"
    assert violation.message.startswith("secret 'loader' has no aws.secretsmanager.SecretRotation")


@pytest.mark.parametrize(("rotation", "expected"), [
    ({"rotationRules": {"automaticallyAfterDays": 120}}, "secret 'loader' rotates every 120 days (secret rotation "
                                                         "'loader-rotation'), beyond the maximum of 90 days"),
    ({"rotationRules": {"scheduleExpression": "rate(100 days)"}}, "rotates every 100 days"),
    ({"rotationRules": {}}, "secret 'loader' rotates no schedule"),
    ({"rotationLambdaArn": DROP}, "secret rotation 'loader-rotation' names no rotationLambdaArn"),
])
def test_a_rotation_too_rare_or_without_a_function_is_a_violation(pack: PolicyPackProcess, rotation: dict[str, Any],
                                                                  expected: str) -> None:
    stack = Stack()
    _secret(stack, "loader", rotation=rotation)
    assert expected in only(pack.analyze(stack.records), ROTATION).message
    if rotation.get("rotationRules"):
        report = pack.analyze(stack.records, policy_config={ROTATION: {"maxRotationDays": 120}})
        assert not findings(report, ROTATION)
