"""Bucket and workflow rules on the shapes the compliant stack never takes: a notification straight to a function,
one with two queues, a write grant on another bucket or mixed with other services' resources; a throttling Retry
of zero attempts, logging without a destination, and the bounds of MaxConcurrency."""

from __future__ import annotations

from typing import Any

import pytest

from offline.analyzer import PolicyPackProcess
from offline.policy_config import PolicyConfigError
from tests.policies.builders import (
    DROP,
    Queue,
    Stack,
    alarm_topic,
    allow,
    arn,
    data_bucket,
    distributed_map,
    queue_with_dlq,
    state_machine,
    task,
    worker,
)
from tests.policies.reports import findings, only

S3, SFN = "s3-bucket-guardrails", "sfn-workflow-guardrails"


def writes(bucket: str, prefix: str, *extra: str, actions: tuple[str, ...] = ("s3:PutObject",)) -> dict[str, Any]:
    return allow("WriteResults", list(actions), [f"arn:aws:s3:::{bucket}/{prefix}*", *extra])


def queue_notification(stack: Stack, bucket: Any, entries: list[tuple[Queue, str, str]],
                       events: tuple[str, ...] = ("s3:ObjectCreated:*",)) -> Any:
    """A notification with one queue entry per (queue, the queueArn it names, filterPrefix); the first entry's
    events are `events`, the others' ObjectCreated."""
    return stack.add("aws:s3/bucketNotification:BucketNotification", "uploads", {
        "bucket": bucket.inputs["bucket"],
        "queues": [{"queueArn": queue_arn, "events": list(events if i == 0 else ("s3:ObjectCreated:*",)),
                    "filterPrefix": prefix} for i, (_, queue_arn, prefix) in enumerate(entries)]},
        deps={"bucket": [bucket], "queues": [q.queue for q, _, _ in entries]})


# --- notification loops ---------------------------------------------------------------------------------------

def test_a_notification_straight_to_a_function_that_writes_under_its_prefix_loops(pack: PolicyPackProcess) -> None:
    stack = Stack()
    topic = alarm_topic(stack)
    bucket = data_bucket(stack, "data")
    fn = worker(stack, "worker", queue_with_dlq(stack, "jobs", topic), topic,
                statements=[writes(bucket.inputs["bucket"], "incoming/processed/")])
    notification = stack.add("aws:s3/bucketNotification:BucketNotification", "uploads", {
        "bucket": bucket.inputs["bucket"],
        "lambdaFunctions": [{"lambdaFunctionArn": arn("lambda", f"function:{fn.physical}"),
                             "events": ["s3:ObjectCreated:*"], "filterPrefix": "incoming/"}]},
        deps={"bucket": [bucket], "lambdaFunctions": [fn.function]})
    violation = only(pack.analyze(stack.records), S3)
    assert violation.urn == notification.urn
    assert "to function 'worker', whose role policy 'worker-policy' writes" in violation.message


def loop_through(stack: Stack, *, statement_extra: tuple[str, ...] = (), actions: tuple[str, ...] = ("s3:PutObject",),
                 write_bucket: str | None = None) -> Any:
    """A bucket notifying queue 'jobs' on incoming/, whose worker writes under incoming/processed/."""
    topic = alarm_topic(stack)
    bucket = data_bucket(stack, "data")
    jobs = queue_with_dlq(stack, "jobs", topic)
    worker(stack, "worker", jobs, topic, statements=[
        writes(write_bucket or bucket.inputs["bucket"], "incoming/processed/", *statement_extra, actions=actions)])
    return queue_notification(stack, bucket, [(jobs, jobs.arn, "incoming/")])


def test_a_write_grant_mixed_with_other_services_resources_still_loops(pack: PolicyPackProcess) -> None:
    """A statement granting s3:PutObject with sqs:SendMessage names a queue ARN too: it is no key pattern."""
    stack = Stack()
    notification = loop_through(stack, statement_extra=(arn("sqs", "elsewhere"),),
                                actions=("s3:PutObject", "sqs:SendMessage"))
    assert only(pack.analyze(stack.records), S3).urn == notification.urn


def test_writes_under_the_same_prefix_of_another_bucket_do_not_loop(pack: PolicyPackProcess) -> None:
    stack = Stack()
    loop_through(stack, write_bucket="ai-pipelines-test-archive")
    assert not findings(pack.analyze(stack.records), S3)


def two_queue_stack(events: tuple[str, ...] = ("s3:ObjectCreated:*",)) -> Stack:
    """Queue 'quiet' (notified on archive/) and queue 'looping' (notified on incoming/, its worker writing under
    incoming/processed/), in that order, behind one notification."""
    stack = Stack()
    topic = alarm_topic(stack)
    bucket = data_bucket(stack, "data")
    quiet, looping = queue_with_dlq(stack, "quiet", topic), queue_with_dlq(stack, "looping", topic)
    worker(stack, "quiet-worker", quiet, topic)
    worker(stack, "looping-worker", looping, topic,
           statements=[writes(bucket.inputs["bucket"], "incoming/processed/")])
    queue_notification(stack, bucket, [(quiet, quiet.arn, "archive/"), (looping, looping.arn, "incoming/")], events)
    return stack


def test_of_two_queues_the_entry_follows_the_one_its_arn_names(pack: PolicyPackProcess) -> None:
    violation = only(pack.analyze(two_queue_stack().records), S3)
    assert "sends s3:ObjectCreated:* for 'ai-pipelines-test-data/incoming/*' to queue 'looping', consumed by " \
           "function 'looping-worker'" in violation.message


def test_an_entry_on_other_events_does_not_stop_the_check_of_the_next(pack: PolicyPackProcess) -> None:
    stack = two_queue_stack(events=("s3:ObjectRemoved:*",))
    assert "to queue 'looping'" in only(pack.analyze(stack.records), S3).message


def test_a_suffix_the_writes_cannot_end_in_breaks_the_loop(pack: PolicyPackProcess) -> None:
    stack = Stack()
    topic = alarm_topic(stack)
    bucket = data_bucket(stack, "data")
    jobs = queue_with_dlq(stack, "jobs", topic)
    worker(stack, "worker", jobs, topic, statements=[
        allow("WriteResults", ["s3:PutObject"], [f"arn:aws:s3:::{bucket.inputs['bucket']}/incoming/out-*.json"])])
    notification = queue_notification(stack, bucket, [(jobs, jobs.arn, "incoming/")])
    notification.inputs["queues"][0]["filterSuffix"] = notification.outputs["queues"][0]["filterSuffix"] = ".pdf"
    assert not findings(pack.analyze(stack.records), S3)


def test_a_key_pattern_holding_colons_is_read_whole(pack: PolicyPackProcess) -> None:
    """Only the first ':::' of an S3 ARN ends its prefix; a key may hold another."""
    stack = Stack()
    topic = alarm_topic(stack)
    bucket = data_bucket(stack, "data")
    jobs = queue_with_dlq(stack, "jobs", topic)
    worker(stack, "worker", jobs, topic, statements=[writes(bucket.inputs["bucket"], "incoming/a:::b")])
    notification = queue_notification(stack, bucket, [(jobs, jobs.arn, "incoming/")])
    assert only(pack.analyze(stack.records), S3).urn == notification.urn


def test_a_notification_to_a_queue_outside_the_stack_has_nothing_to_follow(pack: PolicyPackProcess) -> None:
    stack = Stack()
    bucket = data_bucket(stack, "data")
    stack.add("aws:s3/bucketNotification:BucketNotification", "uploads", {
        "bucket": bucket.inputs["bucket"], "queues": [{"queueArn": arn("sqs", "another-stacks-queue"),
                                                       "events": ["s3:ObjectCreated:*"], "filterPrefix": "in/"}]},
        deps={"bucket": [bucket]})
    assert not findings(pack.analyze(stack.records), S3)


def test_a_notification_on_a_bucket_outside_the_stack_names_it_itself(pack: PolicyPackProcess) -> None:
    stack = Stack()
    stack.add("aws:s3/bucketNotification:BucketNotification", "uploads", {
        "bucket": "another-stacks-bucket", "queues": [{"queueArn": arn("sqs", "another-stacks-queue"),
                                                       "events": ["s3:ObjectCreated:*"], "filterPrefix": "in/"}]})
    assert not findings(pack.analyze(stack.records), S3)


def test_a_deny_before_the_write_grant_does_not_hide_it(pack: PolicyPackProcess) -> None:
    stack = Stack()
    topic = alarm_topic(stack)
    bucket = data_bucket(stack, "data")
    jobs = queue_with_dlq(stack, "jobs", topic)
    deny = {"Sid": "NoDeletes", "Effect": "Deny", "Action": ["s3:DeleteObject"],
            "Resource": [f"arn:aws:s3:::{bucket.inputs['bucket']}/*"]}
    worker(stack, "worker", jobs, topic, statements=[deny, writes(bucket.inputs["bucket"], "incoming/processed/")])
    notification = queue_notification(stack, bucket, [(jobs, jobs.arn, "incoming/")])
    assert only(pack.analyze(stack.records), S3).urn == notification.urn


def test_without_require_explicit_encryption_s3s_default_encryption_is_enough(pack: PolicyPackProcess) -> None:
    stack = Stack()
    data_bucket(stack, "data", encryption=False)
    assert findings(pack.analyze(stack.records), S3)
    config = {S3: {"requireExplicitEncryption": False}}
    assert not findings(pack.analyze(stack.records, policy_config=config), S3)


# --- Step Functions -------------------------------------------------------------------------------------------

def test_a_throttling_retry_of_zero_attempts_is_no_retry(pack: PolicyPackProcess) -> None:
    stack = Stack()
    state_machine(stack, "batch", {"Call": task("arn:aws:states:::lambda:invoke", Retry=[
        {"ErrorEquals": ["Lambda.TooManyRequestsException"], "MaxAttempts": 0}])})
    assert "Task 'Call' has no Retry for throttling" in only(pack.analyze(stack.records), SFN).message


def test_a_throttling_retry_of_one_attempt_counts(pack: PolicyPackProcess) -> None:
    stack = Stack()
    state_machine(stack, "batch", {"Call": task("arn:aws:states:::lambda:invoke", Retry=[
        {"ErrorEquals": ["Lambda.TooManyRequestsException"], "MaxAttempts": 1}])})
    assert not findings(pack.analyze(stack.records), SFN)


def test_a_log_level_without_a_destination_is_no_logging(pack: PolicyPackProcess) -> None:
    stack = Stack()
    state_machine(stack, "batch", loggingConfiguration={"level": "ERROR", "includeExecutionData": False})
    assert "loggingConfiguration level ERROR (needs ALL/ERROR/FATAL and a logDestination)" in only(
        pack.analyze(stack.records), SFN).message


def test_a_map_of_concurrency_one_is_bounded(pack: PolicyPackProcess) -> None:
    stack = Stack()
    state_machine(stack, "batch", {"Shards": distributed_map(MaxConcurrency=1)})
    assert not findings(pack.analyze(stack.records), SFN)


def test_max_map_concurrency_accepts_one_and_refuses_zero(pack: PolicyPackProcess) -> None:
    stack = Stack()
    state_machine(stack, "batch", {"Shards": distributed_map(MaxConcurrency=1)})
    assert not findings(pack.analyze(stack.records, policy_config={SFN: {"maxMapConcurrency": 1}}), SFN)
    with pytest.raises(PolicyConfigError, match="maxMapConcurrency must be >= 1"):
        pack.analyze(stack.records, policy_config={SFN: {"maxMapConcurrency": 0}})


def test_max_concurrency_zero_is_unbounded(pack: PolicyPackProcess) -> None:
    stack = Stack()
    state_machine(stack, "batch", {"Shards": distributed_map(MaxConcurrency=0)})
    assert "MaxConcurrency 0; it must be 1..1000" in only(pack.analyze(stack.records), SFN).message


def test_an_inline_map_is_not_judged_as_a_distributed_one(pack: PolicyPackProcess) -> None:
    stack = Stack()
    state_machine(stack, "batch", {"Each": distributed_map(
        MaxConcurrency=DROP, ToleratedFailurePercentage=DROP,
        ItemProcessor={"ProcessorConfig": {"Mode": "INLINE"}, "StartAt": "Invoke",
                       "States": {"Invoke": task("arn:aws:states:::lambda:invoke")}})})
    assert not findings(pack.analyze(stack.records), SFN)


def test_a_malformed_state_does_not_stop_the_walk(pack: PolicyPackProcess) -> None:
    stack = Stack()
    state_machine(stack, "batch", {"Odd": "not a state",
                                   "Call": task("arn:aws:states:::lambda:invoke", TimeoutSeconds=DROP)})
    assert "Task 'Call' has no TimeoutSeconds" in only(pack.analyze(stack.records), SFN).message
