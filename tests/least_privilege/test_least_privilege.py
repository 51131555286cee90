"""Each function's role is exactly what its handler needs: no call denied, no grant unused or unexplained.

The calls come from the handler tests themselves (tests/support/aws_calls.py records them through botocore's
event hooks while they run); the roles come from the shipped stacks synthesized in update mode. Run with the
handler tests (`make test` does): `pytest tests/handlers tests/least_privilege`.
"""

from __future__ import annotations

import json

import pytest

from tests.least_privilege.platform_grants import PLATFORM_GRANTS
from tests.support import aws_calls
from tests.support.iam_actions import (
    action_exists,
    allowing_statements,
    fits_resource_type,
    granted_actions,
    iam_action,
)
from tests.support.stacks import SHIPPED_STACKS, FunctionRole, function_environment, function_roles, shipped_stack

pytestmark = pytest.mark.after_handler_tests


def roles(stack: str) -> list[FunctionRole]:
    return function_roles(shipped_stack(stack))


def recorded(role: FunctionRole, stack: str) -> list[aws_calls.AwsCall]:
    """The handler tests' calls, as the function makes them with `stack`'s environment (its resource names)."""
    calls = aws_calls.REGISTRY.calls_under(role.package, function_environment(role.package, stack))
    if not calls:
        pytest.fail(f"no AWS calls were recorded for {role.function.inputs['name']} (handler package "
                    f"{role.package}): run the least-privilege tests together with tests/handlers")
    return calls


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_every_call_a_handler_makes_is_allowed_by_its_role(stack: str) -> None:
    denied = []
    for role in roles(stack):
        for call in sorted(set(recorded(role, stack))):
            action = iam_action(call.service, call.operation)
            if not allowing_statements(role.statements, action, call.resource):
                denied.append(f"{role.function.inputs['name']}: {action} on {call.resource or '(no resource)'}")
    assert denied == [], "under-privileged (AccessDenied in production):\n" + "\n".join(denied)


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_every_granted_action_is_exercised_or_explained(stack: str) -> None:
    unused = []
    for role in roles(stack):
        exercised = {iam_action(c.service, c.operation).lower() for c in recorded(role, stack)}
        for action in sorted(granted_actions(role.statements)):
            if action.lower() not in exercised and action not in PLATFORM_GRANTS:
                unused.append(f"{role.function.inputs['name']}: {action}")
    assert unused == [], "over-privileged (granted, never called, no written reason):\n" + "\n".join(unused)


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_every_action_in_every_policy_exists_and_fits_its_resources(stack: str) -> None:
    synthesis = shipped_stack(stack)
    problems = []
    for record in synthesis.of_type("aws:iam/rolePolicy:RolePolicy") + synthesis.of_type("aws:iam/policy:Policy"):
        for statement in json.loads(record.inputs["policy"])["Statement"]:
            for action in statement["Action"]:
                if not action_exists(action):
                    problems.append(f"{record.name}: {action} is not an IAM action")
                    continue
                problems += [f"{record.name}: {resource} is not a resource type {action} accepts"
                             for resource in statement["Resource"] if not fits_resource_type(action, resource)]
    assert problems == []


def test_the_checks_catch_an_over_broad_and_an_under_granted_role() -> None:
    statements = [{"Sid": "Broad", "Effect": "Allow", "Action": ["sqs:SendMessage", "sqs:PurgeQueue"],
                   "Resource": ["arn:aws:sqs:us-east-1:123456789012:other-queue"]}]
    assert allowing_statements(statements, "sqs:SendMessage", "arn:aws:sqs:us-east-1:123456789012:q") == []
    assert "sqs:PurgeQueue" in granted_actions(statements) and "sqs:PurgeQueue" not in PLATFORM_GRANTS
    assert not fits_resource_type("bedrock:StartIngestionJob", "arn:aws:s3:::bucket")
