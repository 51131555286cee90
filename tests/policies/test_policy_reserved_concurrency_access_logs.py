"""lambda-concurrency-reserved and s3-access-logging through the analyzer protocol: each verdict, the exemption tag,
the per-stack settings."""

from __future__ import annotations

from typing import Any

import pytest

from offline.analyzer import PolicyPackProcess
from tests.policies.builders import (
    DROP,
    Stack,
    access_log_bucket,
    alarm_topic,
    allow,
    bucket_logging,
    data_bucket,
    log_delivery,
    queue_with_dlq,
    scheduled_function,
    worker,
)
from tests.policies.reports import findings, only

RESERVED = "lambda-concurrency-reserved"
LOGGING = "s3-access-logging"
EXEMPTION_TAG = "ai-pipelines:concurrency-exemption"
FUNCTION = "aws:lambda/function:Function"


# --- lambda-concurrency-reserved --------------------------------------------------------------------------------

def functions(**function: Any) -> Stack:
    """A queue worker (reserved 2) and a scheduled function with `function` overrides."""
    stack = Stack()
    topic = alarm_topic(stack)
    jobs = queue_with_dlq(stack, "jobs", topic)
    worker(stack, "worker", jobs, topic)
    scheduled_function(stack, "reconciler", jobs, function=function)
    return stack


def test_functions_that_reserve_concurrency_pass(pack: PolicyPackProcess) -> None:
    assert not findings(pack.analyze(functions().records), RESERVED)


@pytest.mark.parametrize("reserved", [DROP, -1])
def test_an_unreserved_function_is_a_violation(pack: PolicyPackProcess, reserved: object) -> None:
    stack = functions(reservedConcurrentExecutions=reserved)
    violation = only(pack.analyze(stack.records), RESERVED)
    assert violation.urn == stack.find(FUNCTION, "reconciler").urn
    assert violation.message.startswith("function 'reconciler' reserves no concurrency (reservedConcurrentExecutions "
                                        "unset or -1), so it shares the account's pool")
    assert f"tag it {EXEMPTION_TAG} with the reason" in violation.message


def test_a_reservation_of_zero_throttles_everything(pack: PolicyPackProcess) -> None:
    message = only(pack.analyze(functions(reservedConcurrentExecutions=0).records), RESERVED).message
    assert message == ("function 'reconciler' reservedConcurrentExecutions 0 is below the minimum 1 (0 throttles "
                       "every invocation)")


def test_the_minimum_comes_from_config(pack: PolicyPackProcess) -> None:
    report = pack.analyze(functions().records, policy_config={RESERVED: {"minimumReservedConcurrency": 2}})
    assert only(report, RESERVED).message == ("function 'reconciler' reservedConcurrentExecutions 1 is below the "
                                              "minimum 2")


def test_the_exemption_tag_with_a_reason_exempts_an_unreserved_function(pack: PolicyPackProcess) -> None:
    stack = Stack()
    tags = {**stack.tags(), EXEMPTION_TAG: "interactive API: scales with its callers, who are rate-limited upstream"}
    stack = functions(reservedConcurrentExecutions=DROP, tags=tags)
    assert not findings(pack.analyze(stack.records), RESERVED)


def test_an_exemption_tag_without_a_reason_is_a_violation(pack: PolicyPackProcess) -> None:
    stack = functions(reservedConcurrentExecutions=DROP, tags={**Stack().tags(), EXEMPTION_TAG: " "})
    assert only(pack.analyze(stack.records), RESERVED).message == (
        f"function 'reconciler' carries the exemption tag {EXEMPTION_TAG} with no reason: its value must say why "
        f"the function may not reserve concurrency")


def test_the_exemption_tag_key_comes_from_config(pack: PolicyPackProcess) -> None:
    stack = functions(reservedConcurrentExecutions=DROP, tags={**Stack().tags(), "concurrency": "bursty by design"})
    assert only(pack.analyze(stack.records), RESERVED)
    report = pack.analyze(stack.records, policy_config={RESERVED: {"exemptionTag": "concurrency"}})
    assert not findings(report, RESERVED)


# --- s3-access-logging ------------------------------------------------------------------------------------------

def test_buckets_logging_into_a_locked_down_log_bucket_pass(pack: PolicyPackProcess) -> None:
    stack = Stack()
    access_log_bucket(stack, "access-logs", [data_bucket(stack, "docs"), data_bucket(stack, "runs")])
    assert not findings(pack.analyze(stack.records), LOGGING)


def test_a_bucket_without_access_logging_is_a_violation_when_the_stack_requires_it(pack: PolicyPackProcess) -> None:
    stack = Stack()
    access_log_bucket(stack, "access-logs", [data_bucket(stack, "docs")])
    unlogged = data_bucket(stack, "runs")
    violation = only(pack.analyze(stack.records), LOGGING)
    assert violation.urn == unlogged.urn
    assert violation.message == ("bucket 'runs' has no server access logging (a BucketLogging to the stack's log "
                                 "bucket), so nobody can tell who read or changed its objects")
    assert not findings(pack.analyze(stack.records, policy_config={LOGGING: {"required": False}}), LOGGING)


def test_the_deprecated_inline_logging_counts(pack: PolicyPackProcess) -> None:
    stack = Stack()
    logs = access_log_bucket(stack, "access-logs", [data_bucket(stack, "docs")])
    data_bucket(stack, "runs", bucket={"logging": {"targetBucket": logs.inputs["bucket"], "targetPrefix": "runs/"}})
    assert not findings(pack.analyze(stack.records), LOGGING)


def test_a_bucket_logging_into_itself_is_a_violation_even_when_logging_is_not_required(
        pack: PolicyPackProcess) -> None:
    stack = Stack()
    docs = data_bucket(stack, "docs")
    bucket_logging(stack, docs, docs)
    messages = [v.message for v in findings(pack.analyze(stack.records, policy_config={LOGGING: {"required": False}}),
                                            LOGGING)]
    assert "bucket 'docs' delivers its access logs into itself: every delivery is a request that is logged and " \
           "delivered again" in messages


def test_a_log_bucket_whose_policy_does_not_admit_log_delivery(pack: PolicyPackProcess) -> None:
    stack = Stack()
    logs = access_log_bucket(stack, "access-logs", [data_bucket(stack, "docs")],
                             grants=[allow("SomethingElse", ["s3:GetObject"], ["*"])])
    violation = only(pack.analyze(stack.records), LOGGING)
    assert violation.urn == logs.urn
    assert violation.message.startswith("bucket 'access-logs' receives access logs but no bucket policy allows "
                                        "logging.s3.amazonaws.com s3:PutObject")


def test_a_log_delivery_grant_without_its_source_is_a_violation(pack: PolicyPackProcess) -> None:
    stack = Stack()
    docs = data_bucket(stack, "docs")
    grant = {**log_delivery(stack.physical("access-logs"), docs, conditions={}), "Sid": "AnyoneMayLog"}
    access_log_bucket(stack, "access-logs", [docs], grants=[grant])
    assert only(pack.analyze(stack.records), LOGGING).message == (
        "bucket 'access-logs' receives access logs but its bucket policy's statement 'AnyoneMayLog' allows "
        "logging.s3.amazonaws.com without aws:SourceArn or aws:SourceAccount, so any account's bucket could deliver "
        "its logs here")
