"""lambda-concurrency-reserved and secretsmanager-secret-rotation at the edges of their settings (each schema's
lowest and highest value accepted, one beyond refused), and every unrotated secret named, not only the first."""

from __future__ import annotations

import pytest

from offline.analyzer import PolicyPackProcess
from offline.policy_config import PolicyConfigError
from tests.policies.builders import Stack
from tests.policies.reports import findings
from tests.policies.test_policy_operations import ROTATION, _secret
from tests.policies.test_policy_reserved_concurrency_access_logs import RESERVED, functions


def test_the_lowest_minimum_reservation_is_one(pack: PolicyPackProcess) -> None:
    stack = functions()  # the scheduled function reserves 1
    assert not findings(pack.analyze(stack.records, policy_config={RESERVED: {"minimumReservedConcurrency": 1}}),
                        RESERVED)
    with pytest.raises(PolicyConfigError, match="minimumReservedConcurrency must be >= 1"):
        pack.analyze(stack.records, policy_config={RESERVED: {"minimumReservedConcurrency": 0}})


def test_an_exemption_tag_of_one_character_is_accepted_and_an_empty_one_refused(pack: PolicyPackProcess) -> None:
    stack = functions(reservedConcurrentExecutions=-1, tags={**Stack().tags(), "x": "bursty by design"})
    assert not findings(pack.analyze(stack.records, policy_config={RESERVED: {"exemptionTag": "x"}}), RESERVED)
    with pytest.raises(PolicyConfigError, match="exemptionTag"):
        pack.analyze(stack.records, policy_config={RESERVED: {"exemptionTag": ""}})


@pytest.mark.parametrize(("days", "accepted"), [(1, True), (0, False), (1000, True), (1001, False)])
def test_the_maximum_rotation_period_is_one_to_a_thousand_days(pack: PolicyPackProcess, days: int,
                                                               accepted: bool) -> None:
    stack = Stack()
    _secret(stack, "loader", rotation={"rotationRules": {"automaticallyAfterDays": 1}})
    config = {ROTATION: {"maxRotationDays": days}}
    if accepted:
        assert not findings(pack.analyze(stack.records, policy_config=config), ROTATION)
    else:
        with pytest.raises(PolicyConfigError, match="maxRotationDays must be"):
            pack.analyze(stack.records, policy_config=config)


def test_every_secret_without_a_rotation_is_named(pack: PolicyPackProcess) -> None:
    stack = Stack()
    unrotated = [_secret(stack, name, rotation=False) for name in ("loader", "reader")]
    _secret(stack, "rotated")
    violations = findings(pack.analyze(stack.records), ROTATION)
    assert sorted(v.urn for v in violations) == sorted(s.urn for s in unrotated)
