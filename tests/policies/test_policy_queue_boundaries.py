"""Queue rules at their bounds: a DLQ alarm pages on the first message with either operator (> 0 or >= 1) and
with no other threshold or operator, and maxReceiveCount is accepted up to its upper bound inclusive."""

from __future__ import annotations

from typing import Any

import pytest

from offline.analyzer import PolicyPackProcess
from tests.policies.reports import findings, only
from tests.policies.test_policy_queues import worker_stack

ALARMS, REDRIVE = "sqs-dlq-and-age-alarms", "sqs-redrive-to-dlq"


@pytest.mark.parametrize("override", [
    {"comparisonOperator": "GreaterThanThreshold", "threshold": 0},
    {"comparisonOperator": "GreaterThanOrEqualToThreshold", "threshold": 1},
])
def test_a_dlq_alarm_on_the_first_message_pages(pack: PolicyPackProcess, override: dict[str, Any]) -> None:
    stack, _, _ = worker_stack(dlq_alarm=override)
    assert not findings(pack.analyze(stack.records), ALARMS)


@pytest.mark.parametrize(("override", "expected"), [
    ({"comparisonOperator": "GreaterThanOrEqualToThreshold", "threshold": 2},
     "fires on GreaterThanOrEqualToThreshold 2 with 1 alarm action(s)"),
    ({"comparisonOperator": "GreaterThanOrEqualToThreshold", "threshold": 0},
     "fires on GreaterThanOrEqualToThreshold 0 with 1 alarm action(s)"),
    ({"comparisonOperator": "GreaterThanThreshold", "threshold": 1},
     "fires on GreaterThanThreshold 1 with 1 alarm action(s)"),
    ({"comparisonOperator": "LessThanThreshold", "threshold": 1},
     "fires on LessThanThreshold 1 with 1 alarm action(s)"),
])
def test_a_dlq_alarm_on_anything_else_does_not_page(pack: PolicyPackProcess, override: dict[str, Any],
                                                      expected: str) -> None:
    stack, _, _ = worker_stack(dlq_alarm=override)
    assert expected in only(pack.analyze(stack.records), ALARMS).message


def test_max_receive_count_is_accepted_up_to_its_upper_bound(pack: PolicyPackProcess) -> None:
    at, _, _ = worker_stack(max_receive_count=100)
    assert not findings(pack.analyze(at.records), REDRIVE)
    above, _, _ = worker_stack(max_receive_count=101)
    assert "maxReceiveCount 101 is outside 5..100" in only(pack.analyze(above.records), REDRIVE).message
