"""Every role of both shipped stacks is exactly what it is used for, by action and by resource, in each stack's own
region, account and configuration: no request denied, no grant unexercised or unexplained, no grant wider than
what is touched.

What a role is used for (`uses.py`): the handler tests' requests (recorded with their parameters by
tests/support/aws_calls.py, re-resolved for each stack's environment), what the Lambda service, the state machine's
definition, Bedrock's batch jobs, the schedules and the event targets do with the role. The judgement is
`checks.py`. Run with the handler tests (`make test` does): `pytest tests/handlers tests/least_privilege`.
"""

from __future__ import annotations

import functools
import json

import pytest

from offline.synth import Synthesis, load_stack_files, synthesize
from tests.least_privilege.checks import Finding, check_role
from tests.least_privilege.platform_grants import UNEXERCISED
from tests.least_privilege.roles import Role, stack_roles
from tests.least_privilege.uses import StackUses, configured_prefixes
from tests.support import aws_calls
from tests.support.iam_actions import action_exists, fits_resource_type
from tests.support.iam_eval import as_list
from tests.support.stacks import SHIPPED_STACKS

pytestmark = pytest.mark.after_handler_tests


@functools.cache
def stack(name: str) -> Synthesis:
    """The shipped stack after a `pulumi up`, in its own region (no override)."""
    return synthesize(name, "update")


@functools.cache
def uses(name: str) -> StackUses:
    return StackUses.of(stack(name), aws_calls.REGISTRY)


def findings(name: str, role: Role, statements: tuple[dict[str, object], ...] | None = None) -> list[Finding]:
    """Every least-privilege finding of `role` in stack `name` (with `statements` in place of its own)."""
    return check_role(role.record.name, role.statements if statements is None else statements,
                      uses(name).authorizations(role), prefixes=configured_prefixes(stack(name)),
                      unexercised=UNEXERCISED)


def all_findings(name: str, kind: str) -> list[str]:
    found = [str(f) for role in stack_roles(stack(name)) for f in findings(name, role) if f.kind == kind]
    return found


@pytest.mark.parametrize("name", SHIPPED_STACKS)
def test_each_stack_is_checked_in_its_own_region(name: str) -> None:
    assert stack(name).account.region == load_stack_files(name).region
    assert uses(name).placement.region == stack(name).account.region


@pytest.mark.parametrize("name", SHIPPED_STACKS)
def test_every_role_is_used_and_its_requests_known(name: str) -> None:
    unused, silent = [], []
    for role in stack_roles(stack(name)):
        if role.kind == "unused":
            unused.append(role.name)
        elif not uses(name).authorizations(role):
            silent.append(f"{role.name} ({role.kind})")
        if role.kind == "function" and not uses(name).requests(role.package or ""):
            silent.append(f"{role.name}: no request recorded for {role.package}: run with tests/handlers")
    assert (unused, silent) == ([], [])


@pytest.mark.parametrize("name", SHIPPED_STACKS)
def test_every_request_is_allowed(name: str) -> None:
    assert all_findings(name, "denied") == [], "under-privileged (AccessDenied in production)"


@pytest.mark.parametrize("name", SHIPPED_STACKS)
def test_every_grant_is_exercised_or_explained(name: str) -> None:
    assert all_findings(name, "unexercised") == [], "over-privileged (granted, never used, no reviewed reason)"


@pytest.mark.parametrize("name", SHIPPED_STACKS)
def test_no_grant_is_wider_than_what_is_touched(name: str) -> None:
    assert all_findings(name, "too wide") == []


def test_every_reviewed_grant_is_granted_in_every_stack() -> None:
    for name in SHIPPED_STACKS:
        granted = [(role.record.name, str(s.get("Sid")), str(a), str(r)) for role in stack_roles(stack(name))
                   for s in role.statements for a in as_list(s.get("Action")) for r in as_list(s.get("Resource"))]
        assert [key for key in UNEXERCISED if not any(
            key[:3] == grant[:3] and grant[3].endswith(key[3]) for grant in granted)] == [], name


@pytest.mark.parametrize("name", SHIPPED_STACKS)
def test_every_action_in_every_policy_exists_and_fits_its_resources(name: str) -> None:
    problems = []
    for role in stack_roles(stack(name)):
        for statement in role.statements:
            for action in as_list(statement.get("Action")):
                if not action_exists(action):
                    problems.append(f"{role.name}: {action} is not an IAM action")
                    continue
                problems += [f"{role.name}: {resource} is not a resource type {action} accepts"
                             for resource in as_list(statement.get("Resource"))
                             if not fits_resource_type(action, resource)]
    assert problems == []


@pytest.mark.parametrize("name", SHIPPED_STACKS)
def test_model_requests_name_the_stacks_own_model(name: str) -> None:
    """Prod's Converse calls name prod's inference profile in prod's region, dev's its foundation model."""
    where = uses(name).placement
    model = where.environments["event_processor"]["MODEL_ID"]
    resources = {a.resource for a in uses(name).recorded_authorizations("event_processor")
                 if a.action == "bedrock:InvokeModel"}
    profile = f"arn:aws:bedrock:{where.region}:{where.account}:inference-profile/{model}"
    assert (profile in resources) == model.startswith("eu.")
    assert all(f":bedrock:{where.region}:" in r for r in resources if "inference-profile" in r)
    assert json.dumps(sorted(resources)).count("us-east-1") == 0
