"""Function, bucket, event, workflow, table and alarm rules through the analyzer protocol."""

from __future__ import annotations

from typing import Any

import pytest

from offline.analyzer import PolicyPackProcess
from tests.policies.builders import (
    DROP,
    Stack,
    alarm_topic,
    allow,
    bucket_to_queue,
    compliant_stack,
    data_bucket,
    distributed_map,
    metric_alarm,
    queue_with_dlq,
    rule_to_queue,
    schedule,
    state_machine,
    table,
    task,
    worker,
)
from tests.policies.reports import findings, only


def test_compliant_stack_passes_every_rule(pack: PolicyPackProcess) -> None:
    report = pack.analyze(compliant_stack().records)
    assert report.violations == []
    assert report.skipped == []


# --- functions: logs, runtime, secrets --------------------------------------------------------------------------

def function_stack(*, function: dict[str, Any] | None = None, log_group: dict[str, Any] | None = None) -> Stack:
    stack = Stack()
    topic = alarm_topic(stack)
    worker(stack, "worker", queue_with_dlq(stack, "jobs", topic), topic, function=function, log_group=log_group)
    return stack


def test_log_group_without_retention(pack: PolicyPackProcess) -> None:
    stack = function_stack(log_group={"retentionInDays": DROP})
    violation = only(pack.analyze(stack.records), "lambda-logs-runtime-secrets")
    assert violation.urn == stack.find("aws:lambda/function:Function", "worker").urn
    assert ("function 'worker' logs to log group 'worker-logs' with retentionInDays unset (never expires)"
            in violation.message)


def test_log_group_found_by_lambdas_default_name(pack: PolicyPackProcess) -> None:
    stack = Stack()
    stack.add("aws:cloudwatch/logGroup:LogGroup", "fn-logs", {"name": "/aws/lambda/fn", "retentionInDays": 7})
    stack.add("aws:lambda/function:Function", "fn", {"name": "fn", "runtime": "python3.12", "role": "r"})
    assert not findings(pack.analyze(stack.records), "lambda-logs-runtime-secrets")


def test_function_without_any_log_group(pack: PolicyPackProcess) -> None:
    stack = Stack()
    fn = stack.add("aws:lambda/function:Function", "fn", {"name": "fn", "runtime": "python3.12", "role": "r"})
    violation = only(pack.analyze(stack.records), "lambda-logs-runtime-secrets")
    assert violation.urn == fn.urn and "function 'fn' has no log group in the stack" in violation.message


def test_retention_minimum_from_config(pack: PolicyPackProcess) -> None:
    stack = function_stack()
    report = pack.analyze(stack.records, policy_config={"lambda-logs-runtime-secrets": {"minRetentionDays": 30}})
    assert "retentionInDays 14; at least 30 required" in only(report, "lambda-logs-runtime-secrets").message


@pytest.mark.parametrize("runtime", ["python3.8", "nodejs16.x", DROP])
def test_unsupported_runtime(pack: PolicyPackProcess, runtime: object) -> None:
    stack = function_stack(function={"runtime": runtime})
    message = only(pack.analyze(stack.records), "lambda-logs-runtime-secrets").message
    assert "is not a supported runtime" in message


def test_container_image_function_has_no_runtime_to_check(pack: PolicyPackProcess) -> None:
    stack = function_stack(function={"runtime": DROP, "packageType": "Image"})
    assert not findings(pack.analyze(stack.records), "lambda-logs-runtime-secrets")


def test_secret_named_variable_with_literal_value(pack: PolicyPackProcess) -> None:
    stack = function_stack(function={"environment": {"variables": {
        "DB_PASSWORD": "hunter2", "DB_SECRET": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db-AbCdEf",
        "TOKEN_TABLE": "tokens", "API_KEY": ""}}})
    violation = only(pack.analyze(stack.records), "lambda-logs-runtime-secrets")
    assert "function 'worker' environment variable DB_PASSWORD holds a literal value" in violation.message


def test_wider_secret_names_are_caught_and_references_are_not(pack: PolicyPackProcess) -> None:
    stack = function_stack(function={"environment": {"variables": {
        "EMAIL_VERIFICATION_CODE": "123456", "JWT_SIGNING_KEY": "k3y", "PASSWORD_SALT": "s4lt",
        "ADMIN_PIN": "0000",
        "MFA_CODE": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:mfa-AbCdEf",
        "DB_PASSWORD": "{{resolve:secretsmanager:db:SecretString:password}}",
        "DSN": "postgres://app:{{resolve:secretsmanager:db:SecretString:password}}@db:5432/app",
        "COUNTRY_CODE": "IE", "PARTITION_KEY": "id", "SHIPPING_PIN_CODE_TABLE": "codes"}}})
    flagged = {m.split(" environment variable ")[1].split(" ")[0]
               for m in (v.message for v in findings(pack.analyze(stack.records), "lambda-logs-runtime-secrets"))}
    assert flagged == {"EMAIL_VERIFICATION_CODE", "JWT_SIGNING_KEY", "PASSWORD_SALT", "ADMIN_PIN"}


# --- buckets --------------------------------------------------------------------------------------------------

def test_bucket_with_public_access_flag_off(pack: PolicyPackProcess) -> None:
    stack = Stack()
    bucket = data_bucket(stack, "data", public_access={"restrictPublicBuckets": False, "ignorePublicAcls": DROP})
    violation = only(pack.analyze(stack.records), "s3-bucket-guardrails")
    assert violation.urn == bucket.urn
    assert violation.message.startswith("bucket 'data': public access block 'data-public-access' turns "
                                        "ignorePublicAcls, restrictPublicBuckets off")


def test_new_bucket_without_a_public_access_block_keeps_s3s_default(pack: PolicyPackProcess) -> None:
    """Since April 2023 S3 turns on all four Block Public Access settings for every new bucket."""
    stack = Stack()
    data_bucket(stack, "data", public_access=False)
    assert not findings(pack.analyze(stack.records), "s3-bucket-guardrails")


def test_bucket_without_encryption_or_tls_policy(pack: PolicyPackProcess) -> None:
    stack = Stack()
    bucket = data_bucket(stack, "data", encryption=False, tls_policy=False)
    messages = [v.message for v in findings(pack.analyze(stack.records), "s3-bucket-guardrails")
                if v.urn == bucket.urn]
    assert any("has no server-side encryption configuration" in m for m in messages)
    assert any("has no bucket policy denying s3:* when aws:SecureTransport is false" in m for m in messages)


def test_bucket_with_inline_encryption_passes(pack: PolicyPackProcess) -> None:
    stack = Stack()
    data_bucket(stack, "data", encryption=False, bucket={"serverSideEncryptionConfiguration": {
        "rule": {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}}})
    assert not findings(pack.analyze(stack.records), "s3-bucket-guardrails")


def test_bucket_notification_to_a_queue_without_prefix(pack: PolicyPackProcess) -> None:
    stack = Stack()
    jobs = queue_with_dlq(stack, "jobs", alarm_topic(stack))
    notification = bucket_to_queue(stack, "uploads", data_bucket(stack, "data"), jobs, prefix="")
    violation = only(pack.analyze(stack.records), "s3-bucket-guardrails")
    assert violation.urn == notification.urn
    assert "without a filterPrefix" in violation.message and jobs.arn in violation.message


def loop_stack(write_prefix: str, trigger_prefix: str, suffix: str = "") -> tuple[Stack, Any]:
    stack = Stack()
    topic = alarm_topic(stack)
    jobs = queue_with_dlq(stack, "jobs", topic)
    bucket = data_bucket(stack, "data")
    writes = allow("WriteResults", ["s3:PutObject"], [f"arn:aws:s3:::{bucket.inputs['bucket']}/{write_prefix}*"])
    worker(stack, "worker", jobs, topic, statements=[writes])
    return stack, bucket_to_queue(stack, "uploads", bucket, jobs, prefix=trigger_prefix, suffix=suffix)


def test_function_triggered_by_the_prefix_it_writes_under(pack: PolicyPackProcess) -> None:
    stack, notification = loop_stack("incoming/processed/", "incoming/")
    violation = only(pack.analyze(stack.records), "s3-bucket-guardrails")
    assert violation.urn == notification.urn
    assert ("to queue 'jobs', consumed by function 'worker', whose role policy 'worker-policy' writes "
            "'ai-pipelines-test-data/incoming/processed/*': the objects it writes trigger it again"
            ) in violation.message


@pytest.mark.parametrize(("write_prefix", "trigger_prefix", "suffix"), [
    ("results/", "incoming/", ""),
    ("incoming/manifest-", "incoming/", ".pdf"),  # overlapping prefixes, but "manifest-*" can end in .pdf: a loop
])
def test_notification_loop_decided_by_key_patterns(pack: PolicyPackProcess, write_prefix: str, trigger_prefix: str,
                                                   suffix: str) -> None:
    stack, _ = loop_stack(write_prefix, trigger_prefix, suffix)
    looped = bool(findings(pack.analyze(stack.records), "s3-bucket-guardrails"))
    assert looped == write_prefix.startswith(trigger_prefix)


# --- EventBridge targets and schedules ------------------------------------------------------------------------

def events_stack(*, target: dict[str, Any] | None = None, schedule_target: dict[str, Any] | None = None) -> Stack:
    stack = Stack()
    requests = queue_with_dlq(stack, "requests", alarm_topic(stack), age_alarm=False)
    rule_to_queue(stack, "requests-rule", requests, requests.dlq, target_props=target)
    schedule(stack, "sync", requests, requests.dlq, target_props=schedule_target)
    return stack


def test_targets_with_dlq_and_retry_pass(pack: PolicyPackProcess) -> None:
    assert not findings(pack.analyze(events_stack().records), "eventbridge-target-dlq-retry")


def test_rule_target_without_dlq_or_explicit_retry(pack: PolicyPackProcess) -> None:
    stack = events_stack(target={"deadLetterConfig": DROP, "retryPolicy": {"maximumRetryAttempts": 3}})
    violations = findings(pack.analyze(stack.records), "eventbridge-target-dlq-retry")
    target = stack.find("aws:cloudwatch/eventTarget:EventTarget", "requests-rule-target")
    assert {v.urn for v in violations} == {target.urn}
    messages = " ".join(v.message for v in violations)
    assert "rule target 'requests-rule-target' has no deadLetterConfig.arn" in messages
    assert "has no explicit retryPolicy maximumEventAgeInSeconds" in messages


def test_schedule_target_without_dlq(pack: PolicyPackProcess) -> None:
    stack = events_stack(schedule_target={"deadLetterConfig": DROP})
    violation = only(pack.analyze(stack.records), "eventbridge-target-dlq-retry")
    assert violation.urn == stack.find("aws:scheduler/schedule:Schedule", "sync").urn
    assert "schedule 'sync' target has no deadLetterConfig.arn" in violation.message


# --- Step Functions -------------------------------------------------------------------------------------------

def test_well_built_workflow_passes(pack: PolicyPackProcess) -> None:
    stack = Stack()
    state_machine(stack, "batch", {"Prepare": task("arn:aws:states:::lambda:invoke", Next="Wait", End=DROP),
                                   "Wait": task("arn:aws:states:::lambda:invoke.waitForTaskToken", Next="Shards",
                                                End=DROP, HeartbeatSeconds=1800),
                                   "Shards": distributed_map()})
    assert not findings(pack.analyze(stack.records), "sfn-workflow-guardrails")


@pytest.mark.parametrize(("states", "machine", "expected"), [
    ({"Shards": distributed_map(MaxConcurrency=DROP)}, {}, "MaxConcurrency unset (0 = up to 10,000)"),
    ({"Shards": distributed_map(MaxConcurrency=5000)}, {}, "MaxConcurrency 5000; it must be 1..1000"),
    ({"Shards": distributed_map(ToleratedFailurePercentage=DROP)}, {}, "sets no ToleratedFailurePercentage/Count"),
    ({"Shards": distributed_map()}, {"type": "EXPRESS"}, "runs in a state machine of type EXPRESS; it needs STANDARD"),
    ({"Call": task("arn:aws:states:::lambda:invoke", Retry=DROP)}, {}, "Task 'Call' has no Retry for throttling"),
    ({"Call": task("arn:aws:states:::lambda:invoke", Retry=[{"ErrorEquals": ["States.Timeout"]}])}, {},
     "Task 'Call' has no Retry for throttling"),
    ({"Call": task("arn:aws:states:::lambda:invoke", TimeoutSeconds=DROP)}, {}, "Task 'Call' has no TimeoutSeconds"),
    ({"Wait": task("arn:aws:states:::lambda:invoke.waitForTaskToken")}, {},
     "Task 'Wait' waits for a task token without HeartbeatSeconds"),
    ({"Shards": distributed_map(ItemProcessor={
        "ProcessorConfig": {"Mode": "DISTRIBUTED"}, "StartAt": "Invoke",
        "States": {"Invoke": task("arn:aws:states:::bedrock:invokeModel", TimeoutSeconds=DROP)}})}, {},
     "Map 'Shards' > Task 'Invoke' has no TimeoutSeconds"),
    ({"Shards": distributed_map()}, {"loggingConfiguration": DROP}, "loggingConfiguration level OFF"),
    ({"Shards": distributed_map()}, {"tracingConfiguration": {"enabled": False}}, "tracingConfiguration.enabled"),
])
def test_workflow_violations(pack: PolicyPackProcess, states: dict[str, Any], machine: dict[str, Any],
                             expected: str) -> None:
    stack = Stack()
    record = state_machine(stack, "batch", states, **machine)
    violation = only(pack.analyze(stack.records), "sfn-workflow-guardrails")
    assert violation.urn == record.urn
    assert "state machine 'batch'" in violation.message and expected in violation.message


def test_map_concurrency_limit_from_config(pack: PolicyPackProcess) -> None:
    stack = Stack()
    state_machine(stack, "batch")
    config = {"sfn-workflow-guardrails": {"maxMapConcurrency": 4}}
    assert "MaxConcurrency 10; it must be 1..4" in only(pack.analyze(stack.records, policy_config=config),
                                                        "sfn-workflow-guardrails").message


# --- DynamoDB -------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("purpose", "override", "expected"), [
    ("idempotency", {"ttl": {"attributeName": "expiration", "enabled": False}}, "has no ttl with enabled true"),
    ("results", {"pointInTimeRecovery": DROP}, "has no pointInTimeRecovery enabled"),
    ("ledger", {"pointInTimeRecovery": {"enabled": False}}, "has no pointInTimeRecovery enabled"),
    ("scratch", {"pointInTimeRecovery": DROP}, "has no pointInTimeRecovery enabled, so a bad write or deletion "
                                                "cannot be undone; a table of disposable records says so with the tag "
                                                "purpose=<one of idempotency> and a ttl"),
])
def test_table_protection_by_purpose(pack: PolicyPackProcess, purpose: str, override: dict[str, Any],
                                     expected: str) -> None:
    stack = Stack()
    record = table(stack, "records", purpose, **override)
    violation = only(pack.analyze(stack.records), "dynamodb-table-protection")
    assert violation.urn == record.urn and "table 'records'" in violation.message and expected in violation.message


def test_protected_tables_pass(pack: PolicyPackProcess) -> None:
    stack = Stack()
    for purpose in ("idempotency", "results", "ledger"):
        table(stack, purpose, purpose)
    assert not findings(pack.analyze(stack.records), "dynamodb-table-protection")


def foreign_table(stack: Stack, **overrides: Any) -> Any:
    """A table of another team's stack: none of this project's tags."""
    return stack.add("aws:dynamodb/table:Table", "orders", {
        "name": "orders", "billingMode": "PAY_PER_REQUEST", "hashKey": "id",
        "attributes": [{"name": "id", "type": "S"}], **overrides})


def test_table_without_a_purpose_is_judged_by_itself(pack: PolicyPackProcess) -> None:
    stack = Stack()
    foreign_table(stack, pointInTimeRecovery={"enabled": True})
    assert not findings(pack.analyze(stack.records), "dynamodb-table-protection")
    stack = Stack()
    record = foreign_table(stack)
    violation = only(pack.analyze(stack.records), "dynamodb-table-protection")
    assert violation.urn == record.urn
    assert violation.message.startswith("table 'orders' has no pointInTimeRecovery enabled")


def test_purpose_tag_is_required_only_when_configured(pack: PolicyPackProcess) -> None:
    stack = Stack()
    foreign_table(stack, pointInTimeRecovery={"enabled": True}, tags={"purpose": "scratch"})
    config = {"dynamodb-table-protection": {"requirePurpose": True}}
    assert "has tag purpose=scratch; expected one of idempotency, ledger, results" in only(
        pack.analyze(stack.records, policy_config=config), "dynamodb-table-protection").message
    # With no tag read at all, a TTL-only idempotency table is judged by itself: it needs point-in-time recovery.
    stack = Stack()
    table(stack, "keys", "idempotency")
    config = {"dynamodb-table-protection": {"purposeTag": ""}}
    assert "has no pointInTimeRecovery" in only(pack.analyze(stack.records, policy_config=config),
                                                 "dynamodb-table-protection").message


# --- alarms ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("override", "expected"), [
    ({"alarmActions": []}, "has no alarmActions"),
    ({"actionsEnabled": False}, "sets actionsEnabled false"),
])
def test_alarm_without_action(pack: PolicyPackProcess, override: dict[str, Any], expected: str) -> None:
    stack = Stack()
    watched = stack.add("aws:sqs/queue:Queue", "q", {"name": "q"})
    alarm = metric_alarm(stack, "q-age", watched, "ApproximateAgeOfOldestMessage", alarm_topic(stack), **override)
    violation = only(pack.analyze(stack.records), "cloudwatch-alarm-has-action")
    assert violation.urn == alarm.urn and f"alarm 'q-age' {expected}" in violation.message
