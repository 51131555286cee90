"""Queue rules on the shapes the well-built worker never takes: a property left out (AWS's own default applies), a
DLQ alarm written as a metric query, a mapping to a function outside the stack, several sources of one DLQ, and the
lowest settings each rule's config schema accepts."""

from __future__ import annotations

import json

import pytest

from offline.analyzer import PolicyPackProcess
from offline.policy_config import PolicyConfigError
from tests.policies.builders import DROP, Stack, alarm_topic, arn, queue_with_dlq, worker
from tests.policies.reports import findings, only
from tests.policies.test_policy_queues import worker_stack

VISIBILITY, REDRIVE, ALARMS, RETENTION = ("sqs-visibility-timeout-covers-consumer", "sqs-redrive-to-dlq",
                                          "sqs-dlq-and-age-alarms", "sqs-dlq-retention-exceeds-source")
DLQ_ARN = arn("sqs", Stack().physical("jobs-dlq"))  # the DLQ worker_stack builds


# --- a DLQ alarm without a static threshold -------------------------------------------------------------------

@pytest.mark.parametrize("operator", ["GreaterThanThreshold", "GreaterThanOrEqualToThreshold"])
def test_a_dlq_alarm_without_a_threshold_does_not_page(pack: PolicyPackProcess, operator: str) -> None:
    """With no threshold nothing says the alarm fires on the first message, whichever operator it names; the
    message says the threshold is missing rather than printing a number in its place."""
    stack, _, _ = worker_stack(dlq_alarm={"threshold": DROP, "comparisonOperator": operator})
    message = only(pack.analyze(stack.records), ALARMS).message
    assert f"fires on {operator} no threshold with 1 alarm action(s)" in message


# --- a redrive policy without maxReceiveCount -----------------------------------------------------------------

def test_a_redrive_policy_without_max_receive_count_gets_the_aws_default_of_10(pack: PolicyPackProcess) -> None:
    """SQS uses maxReceiveCount 10 when the redrive policy leaves it out (SetQueueAttributes, RedrivePolicy)."""
    stack, _, _ = worker_stack(queue={"redrivePolicy": json.dumps({"deadLetterTargetArn": DLQ_ARN})})
    assert not findings(pack.analyze(stack.records), REDRIVE)
    above = {REDRIVE: {"minMaxReceiveCount": 11}}
    assert "maxReceiveCount 10 is outside 11..100" in only(pack.analyze(stack.records, policy_config=above),
                                                          REDRIVE).message
    below = {REDRIVE: {"maxMaxReceiveCount": 9}}
    assert "maxReceiveCount 10 is outside 5..9" in only(pack.analyze(stack.records, policy_config=below),
                                                       REDRIVE).message


# --- a DLQ alarm written as a metric query --------------------------------------------------------------------

def test_a_dlq_alarm_on_a_metric_query_pages(pack: PolicyPackProcess) -> None:
    stack, _, _ = worker_stack(dlq_alarm={"as_query": True})
    assert not findings(pack.analyze(stack.records), ALARMS)


def test_a_metric_query_on_another_metric_is_no_dlq_alarm(pack: PolicyPackProcess) -> None:
    query = {"id": "m1", "returnData": True, "metric": {
        "namespace": "AWS/SQS", "metricName": "NumberOfMessagesSent", "period": 60, "stat": "Sum",
        "dimensions": {"QueueName": Stack().physical("jobs-dlq")}}}
    stack, jobs, _ = worker_stack(dlq_alarm={"as_query": True, "metricQueries": [query]})
    violation = only(pack.analyze(stack.records), ALARMS)
    assert violation.urn == jobs.dlq.urn
    assert "has no alarm on ApproximateNumberOfMessagesVisible" in violation.message


# --- a mapping whose function is outside the stack -----------------------------------------------------------

def test_a_mapping_to_an_outside_function_does_not_stop_the_check_of_the_next(pack: PolicyPackProcess) -> None:
    """The visibility rule skips a mapping it cannot size (no function in the stack) and goes on to the next."""
    stack = Stack()
    topic = alarm_topic(stack)
    outside = queue_with_dlq(stack, "outside", topic)
    stack.add("aws:lambda/eventSourceMapping:EventSourceMapping", "outside-source", {
        "eventSourceArn": outside.arn, "functionName": "a-function-of-another-stack", "batchSize": 10,
        "functionResponseTypes": ["ReportBatchItemFailures"], "scalingConfig": {"maximumConcurrency": 2}},
        deps={"eventSourceArn": [outside.queue]})
    jobs = queue_with_dlq(stack, "jobs", topic, queue={"visibilityTimeoutSeconds": 30})
    worker(stack, "worker", jobs, topic)
    violation = only(pack.analyze(stack.records), VISIBILITY)
    assert violation.urn == jobs.queue.urn
    assert "queue 'jobs' visibilityTimeoutSeconds 30 s < 6 x function 'worker' timeout 60 s" in violation.message


# --- several sources of one DLQ -------------------------------------------------------------------------------

def test_each_source_of_a_dlq_is_judged_on_its_own(pack: PolicyPackProcess) -> None:
    """A FIFO source needs no longer DLQ retention; a standard source of the same DLQ still does. (SQS refuses
    such a mix when it is deployed, but a preview can hold one: the FIFO source must not hide the other.)"""
    stack = Stack()
    topic = alarm_topic(stack)
    jobs = queue_with_dlq(stack, "jobs", topic, queue={"fifoQueue": True}, dlq={"messageRetentionSeconds": DROP})
    second = stack.add("aws:sqs/queue:Queue", "second", {
        "name": stack.physical("second"), "sqsManagedSseEnabled": True, "tags": stack.tags(),
        "redrivePolicy": json.dumps({"deadLetterTargetArn": arn("sqs", jobs.dlq.inputs["name"]),
                                     "maxReceiveCount": 5})}, deps={"redrivePolicy": [jobs.dlq]})
    violation = only(pack.analyze(stack.records), RETENTION)
    assert violation.urn == jobs.dlq.urn
    assert f"<= source queue '{second.name}' messageRetentionSeconds 345600 s" in violation.message


# --- the lowest settings the config schemas accept -------------------------------------------------------------

@pytest.mark.parametrize(("policy", "setting", "lowest", "below"), [
    (VISIBILITY, "ratio", 1, 0.5),  # a ratio below 1 would let a message reappear while its batch still runs
    (REDRIVE, "minMaxReceiveCount", 1, 0),
    (REDRIVE, "maxMaxReceiveCount", 1, 0),
])
def test_each_setting_accepts_its_lowest_value_and_refuses_below(pack: PolicyPackProcess, policy: str, setting: str,
                                                                  lowest: float, below: float) -> None:
    stack, _, _ = worker_stack(max_receive_count=1)
    both = {"minMaxReceiveCount": 1, "maxMaxReceiveCount": 1} if policy == REDRIVE else {}
    assert not findings(pack.analyze(stack.records, policy_config={policy: {**both, setting: lowest}}), policy)
    with pytest.raises(PolicyConfigError, match=f"{setting} must be >= 1"):
        pack.analyze(stack.records, policy_config={policy: {**both, setting: below}})
