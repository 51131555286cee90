"""Widening any statement of any role fails the least-privilege check: each Allow statement of each role policy of
both shipped stacks is widened in turn on the synthesized records (its resources replaced by ``*``, an S3 prefix by
the whole bucket, or another resource's ARN added) and the check must find something it did not find before.
The survivors a review found are killed by name below.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest

from offline.model import ResourceRecord
from offline.synth import Synthesis
from tests.least_privilege.checks import Finding
from tests.least_privilege.roles import Role, stack_roles
from tests.least_privilege.test_least_privilege import findings, stack
from tests.support.iam_eval import Authorization, allowed, as_list, covers
from tests.support.stacks import SHIPPED_STACKS

pytestmark = pytest.mark.after_handler_tests

ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
_S3_OBJECTS = re.compile(r"(arn:[^:]+:s3:::[^/]+)/.+")


def _resources(statement: dict[str, Any]) -> list[str]:
    return [str(r) for r in as_list(statement.get("Resource"))]


def _another(statement: dict[str, Any], known: list[str], granted: Sequence[Mapping[str, Any]]) -> str:
    """An ARN of another resource of the same kind that the role may not yet act on this way: one the stack names
    elsewhere, else this one in another account (S3: another bucket)."""
    resources = _resources(statement)
    head = re.match(r"arn:[^:]+:[^:]+:[^:]*:[^:]*:[A-Za-z-]*", resources[0])
    same_kind = [k for k in known if head and k.startswith(head.group(0)) and k != "*"]
    for candidate in same_kind:
        if not any(covers(r, candidate) or covers(candidate, r) for r in resources) and not any(
                allowed(granted, Authorization(str(a), candidate)) for a in as_list(statement.get("Action"))):
            return candidate
    parts = resources[0].split(":", 5)
    if parts[2] == "s3":
        return re.sub(r":::([^/]+)", r":::\1-other", resources[0], count=1)
    parts[4] = "999999999999"
    return ":".join(parts)


def widened(statement: dict[str, Any], kind: str, known: list[str],
            granted: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """`statement` with its resources widened one way, or None when that widening does not apply."""
    resources = _resources(statement)
    if statement.get("Effect") != "Allow" or resources in ([], ["*"]):
        return None
    if kind == "everything":
        return {**statement, "Resource": ["*"]}
    if kind == "whole bucket":
        wider = [f"{m.group(1)}/*" if (m := _S3_OBJECTS.fullmatch(r)) else r for r in resources]
        return {**statement, "Resource": wider} if wider != resources else None
    return {**statement, "Resource": [*resources, _another(statement, known, granted)]}


def replaced(synthesis: Synthesis, policy: ResourceRecord, statements: list[dict[str, Any]]) -> Synthesis:
    document = {**json.loads(policy.inputs["policy"]), "Statement": statements}
    mutant = dataclasses.replace(policy, inputs={**policy.inputs, "policy": json.dumps(document)})
    return dataclasses.replace(synthesis, resources=[mutant if r is policy else r for r in synthesis.resources])


def role_in(synthesis: Synthesis, role_name: str) -> Role:
    return next(r for r in stack_roles(synthesis) if r.name == role_name)


def mutants() -> Iterator[Any]:
    for name in SHIPPED_STACKS:
        synthesis = stack(name)
        known = sorted({r for p in synthesis.of_type(ROLE_POLICY) for s in json.loads(p.inputs["policy"])["Statement"]
                        for r in _resources(s)})
        for policy in synthesis.of_type(ROLE_POLICY):
            statements = json.loads(policy.inputs["policy"])["Statement"]
            granted = list(role_in(synthesis, policy.inputs["role"]).statements)
            for index, statement in enumerate(statements):
                for kind in ("everything", "whole bucket", "another resource"):
                    wider = widened(statement, kind, known, granted)
                    if wider is not None:
                        yield pytest.param(name, policy.name, index, wider,
                                           id=f"{name}-{policy.name}-{statement.get('Sid')}-{kind}")


@functools.cache
def shipped_findings(name: str, role_name: str) -> set[Finding]:
    return set(findings(name, role_in(stack(name), role_name)))


def mutant_findings(name: str, policy_name: str, index: int,
                    statement: dict[str, Any]) -> tuple[set[Finding], set[Finding]]:
    """(the role's findings as shipped, its findings with statement `index` of `policy_name` replaced)."""
    synthesis = stack(name)
    policy = synthesis.named(policy_name)
    statements = json.loads(policy.inputs["policy"])["Statement"]
    statements[index] = statement
    role_name = policy.inputs["role"]
    before = shipped_findings(name, role_name)
    after = set(findings(name, role_in(replaced(synthesis, policy, statements), role_name)))
    return before, after


@pytest.mark.parametrize(("name", "policy_name", "index", "statement"), list(mutants()))
def test_widening_a_statement_fails_the_check(name: str, policy_name: str, index: int,
                                              statement: dict[str, Any]) -> None:
    before, after = mutant_findings(name, policy_name, index, statement)
    assert after - before, f"{statement} passes the least-privilege check"


def _statement(name: str, policy_name: str, sid: str) -> tuple[int, dict[str, Any]]:
    statements = json.loads(stack(name).named(policy_name).inputs["policy"])["Statement"]
    return next((i, s) for i, s in enumerate(statements) if s.get("Sid") == sid)


@pytest.mark.parametrize("name", SHIPPED_STACKS)
def test_listing_the_executions_of_another_state_machine_is_denied(name: str) -> None:
    index, statement = _statement(name, "batchinf-reconciler-policy", "ListRuns")
    other = [re.sub(r"stateMachine:(.+)$", r"stateMachine:\1-other", r) for r in _resources(statement)]
    before, after = mutant_findings(name, "batchinf-reconciler-policy", index, {**statement, "Resource": other})
    assert {f.kind for f in after - before} >= {"denied", "unexercised"}
    assert any("states:ListExecutions" in f.detail for f in after - before if f.kind == "denied")


def test_removing_the_prod_inference_profile_grant_is_denied() -> None:
    synthesis = stack("prod")
    for policy in synthesis.of_type(ROLE_POLICY):
        statements = json.loads(policy.inputs["policy"])["Statement"]
        for index, statement in enumerate(statements):
            resources = _resources(statement)
            if any(":inference-profile/" in r for r in resources):
                narrower = {**statement, "Resource": [r for r in resources if ":inference-profile/" not in r]}
                before, after = mutant_findings("prod", policy.name, index, narrower)
                assert any(f.kind == "denied" and ":inference-profile/" in f.detail for f in after - before), (
                    policy.name)


@pytest.mark.parametrize(("policy_name", "sid"), [("batchinf-sharder-policy", "ReadCorpora"),
                                                  ("fileingest-worker-policy", "ReadDatasetPrefixes")])
@pytest.mark.parametrize("name", SHIPPED_STACKS)
def test_reading_the_whole_bucket_is_too_wide(name: str, policy_name: str, sid: str) -> None:
    index, statement = _statement(name, policy_name, sid)
    wider = widened(statement, "whole bucket", [], [])
    assert wider is not None
    before, after = mutant_findings(name, policy_name, index, wider)
    assert any(f.kind == "too wide" for f in after - before)
