"""Relations the rules follow, in the forms the compliant stack does not use: a redrive policy set by its own
RedrivePolicy resource, a dead-letter queue named by an EventBridge target, and a function's grants held in its
role's inline policies or in an attached managed policy of the stack."""

from __future__ import annotations

import json

from offline.analyzer import PolicyPackProcess
from offline.model import ResourceRecord
from tests.policies.builders import (
    ACCOUNT,
    DROP,
    REGION,
    Queue,
    Stack,
    alarm_topic,
    allow,
    arn,
    data_bucket,
    document,
    queue_with_dlq,
    rule_to_queue,
    worker,
)
from tests.policies.reports import findings, only


def test_redrive_set_by_a_redrive_policy_resource_is_the_queues(pack: PolicyPackProcess) -> None:
    """The queue's own redrivePolicy is then computed; the RedrivePolicy resource's names the DLQ."""
    stack = Stack()
    topic = alarm_topic(stack)
    jobs = queue_with_dlq(stack, "jobs", topic, queue={"redrivePolicy": DROP}, dlq={"messageRetentionSeconds": DROP})
    worker(stack, "worker", jobs, topic)
    stack.add("aws:sqs/redrivePolicy:RedrivePolicy", "jobs-redrive", {
        "queueUrl": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{jobs.physical}",
        "redrivePolicy": json.dumps({"deadLetterTargetArn": queue_arn_of(jobs.dlq), "maxReceiveCount": 5})},
        deps={"queueUrl": [jobs.queue], "redrivePolicy": [jobs.dlq]})
    report = pack.analyze(stack.records)
    assert not findings(report, "sqs-redrive-to-dlq")
    violation = only(report, "sqs-dlq-retention-exceeds-source")  # the DLQ is known as jobs' through the resource
    assert violation.urn == jobs.dlq.urn and "source queue 'jobs'" in violation.message


def queue_arn_of(queue: ResourceRecord) -> str:
    return arn("sqs", queue.inputs["name"])


def test_dead_letter_queue_of_an_event_target_needs_its_depth_alarm(pack: PolicyPackProcess) -> None:
    stack = Stack()
    topic = alarm_topic(stack)
    requests = queue_with_dlq(stack, "requests", topic)
    dead_letter = stack.add("aws:sqs/queue:Queue", "events-dlq", {
        "name": stack.physical("events-dlq"), "messageRetentionSeconds": 1_209_600, "sqsManagedSseEnabled": True,
        "tags": stack.tags()})
    rule_to_queue(stack, "requests-rule", requests, dead_letter)
    violation = only(pack.analyze(stack.records), "sqs-dlq-and-age-alarms")
    assert violation.urn == dead_letter.urn
    assert "queue 'events-dlq' (dead-letter queue of rule target 'requests-rule-target')" in violation.message


def _writes(bucket: str) -> dict:
    return allow("WriteResults", ["s3:PutObject"], [f"arn:aws:s3:::{bucket}/incoming/processed/*"])


def _notify_function(stack: Stack, bucket: ResourceRecord, function: ResourceRecord, physical: str) -> ResourceRecord:
    return stack.add("aws:s3/bucketNotification:BucketNotification", "uploads", {
        "bucket": bucket.inputs["bucket"],
        "lambdaFunctions": [{"lambdaFunctionArn": arn("lambda", f"function:{physical}"),
                             "events": ["s3:ObjectCreated:*"], "filterPrefix": "incoming/"}]},
        deps={"bucket": [bucket], "lambdaFunctions": [function]})


def _loop_stack() -> tuple[Stack, ResourceRecord, Queue, ResourceRecord]:
    stack = Stack()
    topic = alarm_topic(stack)
    return stack, topic, queue_with_dlq(stack, "jobs", topic), data_bucket(stack, "data")


def test_write_grant_in_a_role_inline_policy_is_the_functions(pack: PolicyPackProcess) -> None:
    stack, topic, jobs, bucket = _loop_stack()
    fn = worker(stack, "worker", jobs, topic, role={"inlinePolicies": [
        {"name": "results", "policy": document(_writes(bucket.inputs["bucket"]))}]})
    _notify_function(stack, bucket, fn.function, fn.physical)
    message = only(pack.analyze(stack.records), "s3-bucket-guardrails").message
    assert "to function 'worker', whose role 'worker-role' inline policy 'results' writes" in message


def test_write_grant_in_an_attached_policy_of_the_stack_is_the_functions(pack: PolicyPackProcess) -> None:
    stack, topic, jobs, bucket = _loop_stack()
    fn = worker(stack, "worker", jobs, topic)
    policy = stack.add("aws:iam/policy:Policy", "worker-results", {
        "name": stack.physical("worker-results"), "policy": document(_writes(bucket.inputs["bucket"]))})
    stack.add("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "worker-results", {
        "role": fn.role.inputs["name"], "policyArn": arn("iam", f"policy/{stack.physical('worker-results')}",
                                                         region="")},
        deps={"role": [fn.role], "policyArn": [policy]})
    _notify_function(stack, bucket, fn.function, fn.physical)
    message = only(pack.analyze(stack.records), "s3-bucket-guardrails").message
    assert "to function 'worker', whose managed policy 'worker-results' writes" in message


def test_write_grant_in_a_role_policy_of_a_queues_consumer_is_followed(pack: PolicyPackProcess) -> None:
    """Bucket -> queue -> the function a mapping feeds from it -> that function's role policy."""
    stack, topic, jobs, bucket = _loop_stack()
    worker(stack, "worker", jobs, topic, statements=[_writes(bucket.inputs["bucket"])])
    stack.add("aws:s3/bucketNotification:BucketNotification", "uploads", {
        "bucket": bucket.inputs["bucket"],
        "queues": [{"queueArn": jobs.arn, "events": ["s3:ObjectCreated:*"], "filterPrefix": "incoming/"}]},
        deps={"bucket": [bucket], "queues": [jobs.queue]})
    message = only(pack.analyze(stack.records), "s3-bucket-guardrails").message
    assert ("to queue 'jobs', consumed by function 'worker', whose role policy 'worker-policy' writes "
            "'ai-pipelines-test-data/incoming/processed/*'") in message
