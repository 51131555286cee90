"""Queue rules through the analyzer protocol: each relates resources through property dependencies, so every
violating message must name both sides of the relation."""

from __future__ import annotations

from typing import Any

import pytest

from offline.analyzer import PolicyPackProcess
from tests.policies.builders import (
    DROP,
    Queue,
    Stack,
    Worker,
    alarm_topic,
    bucket_to_queue,
    data_bucket,
    queue_with_dlq,
    rule_to_queue,
    worker,
)
from tests.policies.reports import findings, only


def worker_stack(*, queue: dict[str, Any] | None = None, dlq: dict[str, Any] | None = None,
                 function: dict[str, Any] | None = None, mapping: dict[str, Any] | None = None,
                 dlq_alarm: dict[str, Any] | None = None, max_receive_count: int = 5, age_alarm: bool = True,
                 log_group: dict[str, Any] | None = None) -> tuple[Stack, Queue, Worker]:
    stack = Stack()
    topic = alarm_topic(stack)
    jobs = queue_with_dlq(stack, "jobs", topic, queue=queue, dlq=dlq, dlq_alarm=dlq_alarm,
                          max_receive_count=max_receive_count, age_alarm=age_alarm)
    return stack, jobs, worker(stack, "worker", jobs, topic, function=function, mapping=mapping, log_group=log_group)


POLICIES = ("sqs-visibility-timeout-covers-consumer", "lambda-sqs-concurrency-bounded", "sqs-redrive-to-dlq",
            "sqs-dlq-and-age-alarms", "sqs-dlq-retention-exceeds-source", "lambda-sqs-batch-reporting",
            "messaging-encrypted-tls-only")


def test_well_built_worker_passes_every_queue_rule(pack: PolicyPackProcess) -> None:
    stack, _, _ = worker_stack()
    report = pack.analyze(stack.records)
    for policy in POLICIES:
        assert not findings(report, policy), policy


# --- visibility timeout vs consumer ---------------------------------------------------------------------------

def test_visibility_below_six_times_timeout_plus_window(pack: PolicyPackProcess) -> None:
    stack, jobs, _ = worker_stack(queue={"visibilityTimeoutSeconds": 30},
                                  mapping={"maximumBatchingWindowInSeconds": 20})
    violation = only(pack.analyze(stack.records), "sqs-visibility-timeout-covers-consumer")
    assert violation.urn == jobs.queue.urn
    assert ("queue 'jobs' visibilityTimeoutSeconds 30 s < 6 x function 'worker' timeout 60 s + mapping "
            "'worker-source' maximumBatchingWindowInSeconds 20 s = 380 s") in violation.message


def test_visibility_uses_aws_defaults_when_absent(pack: PolicyPackProcess) -> None:
    stack, _, _ = worker_stack(queue={"visibilityTimeoutSeconds": DROP}, function={"timeout": DROP})
    assert not findings(pack.analyze(stack.records), "sqs-visibility-timeout-covers-consumer")  # 30 >= 6 x 3
    stack, _, _ = worker_stack(queue={"visibilityTimeoutSeconds": DROP}, function={"timeout": 10})
    message = only(pack.analyze(stack.records), "sqs-visibility-timeout-covers-consumer").message
    assert "visibilityTimeoutSeconds 30 s < 6 x function 'worker' timeout 10 s" in message


def test_visibility_ratio_from_config(pack: PolicyPackProcess) -> None:
    stack, _, _ = worker_stack()
    report = pack.analyze(stack.records, policy_config={"sqs-visibility-timeout-covers-consumer": {"ratio": 7}})
    assert "< 7 x function 'worker' timeout 60 s" in only(report, "sqs-visibility-timeout-covers-consumer").message


# --- concurrency ----------------------------------------------------------------------------------------------

def test_unreserved_function_with_uncapped_mapping(pack: PolicyPackProcess) -> None:
    stack, _, consumer = worker_stack(function={"reservedConcurrentExecutions": -1}, mapping={"scalingConfig": DROP})
    violation = only(pack.analyze(stack.records), "lambda-sqs-concurrency-bounded")
    assert violation.urn == consumer.function.urn
    assert ("function 'worker' has no reserved concurrency and mapping 'worker-source' (from queue 'jobs') sets no "
            "scalingConfig.maximumConcurrency") in violation.message


@pytest.mark.parametrize("reserved", [-1, DROP])
def test_unreserved_function_bounded_by_its_mapping_passes(pack: PolicyPackProcess, reserved: object) -> None:
    stack, _, _ = worker_stack(function={"reservedConcurrentExecutions": reserved})
    assert not findings(pack.analyze(stack.records), "lambda-sqs-concurrency-bounded")


def test_mapping_caps_summing_above_the_reservation(pack: PolicyPackProcess) -> None:
    stack, jobs, consumer = worker_stack(mapping={"scalingConfig": {"maximumConcurrency": 2}})
    stack.add("aws:lambda/eventSourceMapping:EventSourceMapping", "worker-second-source", {
        "eventSourceArn": jobs.arn, "functionName": consumer.physical, "batchSize": 1,
        "scalingConfig": {"maximumConcurrency": 3}},
        deps={"eventSourceArn": [jobs.queue], "functionName": [consumer.function]})
    violation = only(pack.analyze(stack.records), "lambda-sqs-concurrency-bounded")
    assert violation.urn == consumer.function.urn
    assert ("scalingConfig.maximumConcurrency mapping 'worker-source' 2 + mapping 'worker-second-source' 3 = 5 > "
            "function 'worker' reservedConcurrentExecutions 2") in violation.message


def test_reservation_below_the_configured_minimum(pack: PolicyPackProcess) -> None:
    stack, _, _ = worker_stack(function={"reservedConcurrentExecutions": 0})
    messages = [v.message for v in findings(pack.analyze(stack.records), "lambda-sqs-concurrency-bounded")]
    assert any("reservedConcurrentExecutions 0 is below the minimum 1 (0 throttles every invocation)" in m
               for m in messages)
    stack, _, _ = worker_stack()
    config = {"lambda-sqs-concurrency-bounded": {"minimumReservedConcurrency": 5}}
    message = only(pack.analyze(stack.records, policy_config=config), "lambda-sqs-concurrency-bounded").message
    assert "reservedConcurrentExecutions 2 is below the minimum 5" in message


# --- redrive --------------------------------------------------------------------------------------------------

def test_consumed_queue_without_redrive(pack: PolicyPackProcess) -> None:
    stack, jobs, _ = worker_stack(queue={"redrivePolicy": DROP})
    violation = only(pack.analyze(stack.records), "sqs-redrive-to-dlq")
    assert violation.urn == jobs.queue.urn
    assert ("queue 'jobs' (consumed by function 'worker' through mapping 'worker-source') has no redrivePolicy"
            in violation.message)


def test_max_receive_count_outside_range(pack: PolicyPackProcess) -> None:
    stack, _, _ = worker_stack(max_receive_count=2)
    assert "maxReceiveCount 2 is outside 5..100" in only(pack.analyze(stack.records), "sqs-redrive-to-dlq").message
    config = {"sqs-redrive-to-dlq": {"minMaxReceiveCount": 2}}
    assert not findings(pack.analyze(stack.records, policy_config=config), "sqs-redrive-to-dlq")


def test_queues_fed_by_s3_and_eventbridge_need_a_redrive(pack: PolicyPackProcess) -> None:
    stack = Stack()
    topic = alarm_topic(stack)
    uploads = queue_with_dlq(stack, "uploads", topic, queue={"redrivePolicy": DROP}, age_alarm=False)
    requests = queue_with_dlq(stack, "requests", topic, queue={"redrivePolicy": DROP}, age_alarm=False)
    notification = bucket_to_queue(stack, "uploads-notification", data_bucket(stack, "data"), uploads)
    target = rule_to_queue(stack, "requests-rule", requests, requests.dlq)
    violations = {v.urn: v.message for v in findings(pack.analyze(stack.records), "sqs-redrive-to-dlq")}
    assert f"delivered to by bucket notification '{notification.name}'" in violations[uploads.queue.urn]
    assert f"delivered to by rule target '{target.name}'" in violations[requests.queue.urn]


# --- alarms ---------------------------------------------------------------------------------------------------

def test_dlq_without_depth_alarm(pack: PolicyPackProcess) -> None:
    stack, jobs, _ = worker_stack(dlq_alarm={"metricName": "NumberOfMessagesSent"})
    violation = only(pack.analyze(stack.records), "sqs-dlq-and-age-alarms")
    assert violation.urn == jobs.dlq.urn
    assert ("queue 'jobs-dlq' (dead-letter queue of queue 'jobs') has no alarm on "
            "ApproximateNumberOfMessagesVisible") in violation.message


@pytest.mark.parametrize(("override", "expected"), [
    ({"threshold": 5}, "fires on GreaterThanThreshold 5 with 1 alarm action(s)"),
    ({"alarmActions": []}, "fires on GreaterThanThreshold 0 with 0 alarm action(s)"),
])
def test_dlq_alarm_that_would_not_page(pack: PolicyPackProcess, override: dict[str, Any], expected: str) -> None:
    stack, _, _ = worker_stack(dlq_alarm=override)
    assert expected in only(pack.analyze(stack.records), "sqs-dlq-and-age-alarms").message


def test_source_queue_without_age_alarm(pack: PolicyPackProcess) -> None:
    stack, jobs, _ = worker_stack(age_alarm=False)
    violation = only(pack.analyze(stack.records), "sqs-dlq-and-age-alarms")
    assert violation.urn == jobs.queue.urn
    assert "queue 'jobs' (consumed by function 'worker' through mapping 'worker-source') has no " \
           "ApproximateAgeOfOldestMessage alarm" in violation.message


# --- DLQ retention --------------------------------------------------------------------------------------------

def test_dlq_retention_not_longer_than_source(pack: PolicyPackProcess) -> None:
    stack, jobs, _ = worker_stack(dlq={"messageRetentionSeconds": DROP})
    violation = only(pack.analyze(stack.records), "sqs-dlq-retention-exceeds-source")
    assert violation.urn == jobs.dlq.urn
    assert ("queue 'jobs-dlq' messageRetentionSeconds 345600 s <= source queue 'jobs' messageRetentionSeconds "
            "345600 s") in violation.message


def test_fifo_source_needs_no_longer_dlq_retention(pack: PolicyPackProcess) -> None:
    stack, _, _ = worker_stack(queue={"fifoQueue": True}, dlq={"messageRetentionSeconds": DROP, "fifoQueue": True})
    assert not findings(pack.analyze(stack.records), "sqs-dlq-retention-exceeds-source")


# --- batching -------------------------------------------------------------------------------------------------

def test_batch_without_partial_failure_reporting(pack: PolicyPackProcess) -> None:
    stack, _, consumer = worker_stack(mapping={"functionResponseTypes": DROP})
    violation = only(pack.analyze(stack.records), "lambda-sqs-batch-reporting")
    assert violation.urn == consumer.mapping.urn
    assert "mapping 'worker-source' (queue 'jobs') batchSize 10 without functionResponseTypes" in violation.message


def test_large_batch_without_window(pack: PolicyPackProcess) -> None:
    stack, _, _ = worker_stack(mapping={"batchSize": 100})
    message = only(pack.analyze(stack.records), "lambda-sqs-batch-reporting").message
    assert "batchSize 100 > 10 needs maximumBatchingWindowInSeconds >= 1 (got 0)" in message


def test_single_message_batches_need_no_reporting(pack: PolicyPackProcess) -> None:
    stack, _, _ = worker_stack(mapping={"batchSize": 1, "functionResponseTypes": DROP})
    assert not findings(pack.analyze(stack.records), "lambda-sqs-batch-reporting")


# --- encryption and TLS ---------------------------------------------------------------------------------------

def test_queue_with_encryption_off(pack: PolicyPackProcess) -> None:
    stack, jobs, _ = worker_stack(queue={"sqsManagedSseEnabled": False})
    violation = only(pack.analyze(stack.records), "messaging-encrypted-tls-only")
    assert violation.urn == jobs.queue.urn
    assert "queue 'jobs' sets sqsManagedSseEnabled false and no kmsMasterKeyId" in violation.message


def test_queue_relying_on_the_account_default(pack: PolicyPackProcess) -> None:
    stack, _, _ = worker_stack(queue={"sqsManagedSseEnabled": DROP})
    assert "relying on the account default" in only(pack.analyze(stack.records), "messaging-encrypted-tls-only").message
    config = {"messaging-encrypted-tls-only": {"requireExplicitEncryption": False}}
    assert not findings(pack.analyze(stack.records, policy_config=config), "messaging-encrypted-tls-only")
    stack, _, _ = worker_stack(queue={"sqsManagedSseEnabled": DROP, "kmsMasterKeyId": "alias/pipeline"})
    assert not findings(pack.analyze(stack.records), "messaging-encrypted-tls-only")


def test_queue_and_topic_without_tls_policy_or_topic_key(pack: PolicyPackProcess) -> None:
    stack = Stack()
    queue = stack.add("aws:sqs/queue:Queue", "bare", {"name": "bare", "sqsManagedSseEnabled": True})
    topic = stack.add("aws:sns/topic:Topic", "bare-topic", {"name": "bare-topic"})
    violations = findings(pack.analyze(stack.records), "messaging-encrypted-tls-only")
    messages = {(v.urn, v.message) for v in violations}
    assert (queue.urn, "queue 'bare' has no resource policy denying sqs:* when aws:SecureTransport is false, so "
                       "clients may use plain HTTP") in messages
    assert any(urn == topic.urn and "denying sns:Publish when" in m for urn, m in messages)
    assert any(urn == topic.urn and "topic 'bare-topic' sets no kmsMasterKeyId" in m for urn, m in messages)
