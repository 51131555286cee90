"""Function rules at their bounds: each threshold accepts its own value and refuses the one beyond it, each
setting's lowest schema value is accepted and anything lower refused, and a log group recorded without
retentionInDays (an exported stack: no provider default filled in) reads as never expiring."""

from __future__ import annotations

import pytest

from offline.analyzer import PolicyPackProcess
from offline.policy_config import PolicyConfigError
from tests.policies.builders import DROP
from tests.policies.reports import findings, only
from tests.policies.test_policy_functions_storage import function_stack
from tests.policies.test_policy_queues import worker_stack

CONCURRENCY, BATCHING = "lambda-sqs-concurrency-bounded", "lambda-sqs-batch-reporting"
LOGS = "lambda-logs-runtime-secrets"


# --- reserved concurrency: the worker reserves 2 ---------------------------------------------------------------

def test_a_reservation_equal_to_the_minimum_is_accepted(pack: PolicyPackProcess) -> None:
    stack, _, _ = worker_stack()
    at = {CONCURRENCY: {"minimumReservedConcurrency": 2}}
    assert not findings(pack.analyze(stack.records, policy_config=at), CONCURRENCY)
    above = {CONCURRENCY: {"minimumReservedConcurrency": 3}}
    assert "reservedConcurrentExecutions 2 is below the minimum 3" in only(
        pack.analyze(stack.records, policy_config=above), CONCURRENCY).message


# --- batch size and batching window ---------------------------------------------------------------------------

def test_a_batch_of_two_needs_partial_failure_reporting(pack: PolicyPackProcess) -> None:
    stack, _, _ = worker_stack(mapping={"batchSize": 2, "functionResponseTypes": DROP})
    assert "batchSize 2 without functionResponseTypes" in only(pack.analyze(stack.records), BATCHING).message


def test_a_batch_of_eleven_needs_a_window_and_one_of_ten_does_not(pack: PolicyPackProcess) -> None:
    eleven, _, _ = worker_stack(mapping={"batchSize": 11})
    assert "batchSize 11 > 10 needs maximumBatchingWindowInSeconds >= 1 (got 0)" in only(
        pack.analyze(eleven.records), BATCHING).message
    ten, _, _ = worker_stack(mapping={"batchSize": 10})
    assert not findings(pack.analyze(ten.records), BATCHING)


def test_a_window_equal_to_the_minimum_is_accepted(pack: PolicyPackProcess) -> None:
    stack, _, _ = worker_stack(mapping={"batchSize": 100, "maximumBatchingWindowInSeconds": 1})
    assert not findings(pack.analyze(stack.records), BATCHING)


# --- log retention: the worker's group keeps 14 days ----------------------------------------------------------

def test_retention_equal_to_the_minimum_is_accepted(pack: PolicyPackProcess) -> None:
    stack = function_stack()
    assert not findings(pack.analyze(stack.records, policy_config={LOGS: {"minRetentionDays": 14}}), LOGS)
    assert "retentionInDays 14; at least 15 required" in only(
        pack.analyze(stack.records, policy_config={LOGS: {"minRetentionDays": 15}}), LOGS).message


def test_one_day_of_retention_meets_the_default_minimum(pack: PolicyPackProcess) -> None:
    stack = function_stack(log_group={"retentionInDays": 1})
    assert not findings(pack.analyze(stack.records), LOGS)


def test_a_log_group_recorded_without_retention_never_expires(pack: PolicyPackProcess) -> None:
    """A record without the property at all (the engine would have filled in the provider's default of 0): the
    rule falls back to that same 0, never expiring."""
    stack = function_stack()
    group = stack.find("aws:cloudwatch/logGroup:LogGroup", "worker-logs")
    group.inputs.pop("retentionInDays")
    group.outputs.pop("retentionInDays")
    message = only(pack.analyze(stack.records), LOGS).message
    assert "with retentionInDays unset (never expires); at least 1 required" in message


# --- the lowest settings the config schemas accept -------------------------------------------------------------

@pytest.mark.parametrize(("policy", "setting", "lowest", "below"), [
    (CONCURRENCY, "minimumReservedConcurrency", 1, 0),
    (BATCHING, "minBatchingWindowSeconds", 0, -0.5),  # 0: any window, even none, is enough
    (LOGS, "minRetentionDays", 1, 0),
])
def test_each_setting_accepts_its_lowest_value_and_refuses_below(pack: PolicyPackProcess, policy: str, setting: str,
                                                                  lowest: float, below: float) -> None:
    stack, _, _ = worker_stack(function={"reservedConcurrentExecutions": 1},
                               mapping={"batchSize": 100, "maximumBatchingWindowInSeconds": 0,
                                        "scalingConfig": {"maximumConcurrency": 1}},
                               log_group={"retentionInDays": 1})
    assert not findings(pack.analyze(stack.records, policy_config={policy: {setting: lowest}}), policy)
    with pytest.raises(PolicyConfigError, match=f"{setting} must be >= {lowest}"):
        pack.analyze(stack.records, policy_config={policy: {setting: below}})
