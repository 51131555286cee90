"""Every IAM role of a synthesized stack, with all its statements and what it is used for.

A role's statements are its inline policies (``RolePolicy`` resources and ``inlinePolicies``) and its managed
policies (``RolePolicyAttachment``, ``managedPolicyArns``): a customer managed policy of the stack contributes its
document; any other managed policy cannot be read offline and counts as granting everything on everything, so the
least-privilege check refuses it. A role is used by the functions, state machines, schedules and event targets
that name it, or, trusted by Bedrock, by the jobs its ARN is passed to; a role nothing uses is reported unused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from offline.model import ResourceRecord
from offline.synth import Synthesis
from tests.support.stacks import handler_identity

FUNCTION = "aws:lambda/function:Function"
STATE_MACHINE = "aws:sfn/stateMachine:StateMachine"
SCHEDULE = "aws:scheduler/schedule:Schedule"
EVENT_TARGET = "aws:cloudwatch/eventTarget:EventTarget"


@dataclass(frozen=True)
class Role:
    """One role: its resource, every statement that applies to it, and the resources that use it."""

    record: ResourceRecord
    statements: tuple[Mapping[str, Any], ...]
    kind: str  # "function", "state machine", "schedule", "event target", "bedrock jobs" or "unused"
    users: tuple[ResourceRecord, ...]

    @property
    def name(self) -> str:
        return str(self.record.inputs["name"])

    @property
    def arn(self) -> str:
        return str(self.record.outputs["arn"])

    @property
    def package(self) -> str | None:
        """The handler package a function role's recorded calls are filed under."""
        return handler_identity(self.users[0].inputs["handler"]) if self.kind == "function" else None


def _document(policy: Any) -> list[dict[str, Any]]:
    document = json.loads(policy) if isinstance(policy, str) else policy
    statements = document.get("Statement", [])
    return [dict(s) for s in ([statements] if isinstance(statements, dict) else statements)]


def _named(statements: list[dict[str, Any]], policy: str) -> list[dict[str, Any]]:
    return [{**s, "Sid": s.get("Sid") or f"{policy}#{i}"} for i, s in enumerate(statements)]


def _managed(arn: str, documents: Mapping[str, Any]) -> list[dict[str, Any]]:
    if arn in documents:
        return _named(_document(documents[arn]), arn.rsplit("/", 1)[-1])
    return [{"Sid": f"Managed:{arn}", "Effect": "Allow", "Action": "*", "Resource": "*"}]


def statements_of(synthesis: Synthesis, role: ResourceRecord) -> list[dict[str, Any]]:
    name = role.inputs["name"]
    documents = {str(p.outputs.get("arn")): p.inputs["policy"] for p in synthesis.of_type("aws:iam/policy:Policy")}
    statements: list[dict[str, Any]] = []
    for policy in synthesis.of_type("aws:iam/rolePolicy:RolePolicy"):
        if policy.inputs["role"] == name:
            statements += _named(_document(policy.inputs["policy"]), str(policy.inputs.get("name", policy.name)))
    for inline in role.inputs.get("inlinePolicies") or []:
        if inline.get("policy"):
            statements += _named(_document(inline["policy"]), str(inline.get("name", "inline")))
    attached = [a.inputs["policyArn"] for a in synthesis.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
                if a.inputs["role"] == name]
    for arn in [*attached, *(role.inputs.get("managedPolicyArns") or [])]:
        statements += _managed(arn, documents)
    return statements


def _users(synthesis: Synthesis, arn: str) -> tuple[str, list[ResourceRecord]]:
    uses = [
        ("function", [f for f in synthesis.of_type(FUNCTION) if f.inputs.get("role") == arn]),
        ("state machine", [m for m in synthesis.of_type(STATE_MACHINE) if m.inputs.get("roleArn") == arn]),
        ("schedule", [s for s in synthesis.of_type(SCHEDULE) if s.inputs["target"].get("roleArn") == arn]),
        ("event target", [t for t in synthesis.of_type(EVENT_TARGET) if t.inputs.get("roleArn") == arn]),
        ("bedrock jobs", [f for f in synthesis.of_type(FUNCTION)
                          if arn in (f.inputs.get("environment") or {}).get("variables", {}).values()
                          and f.inputs.get("role") != arn]),
    ]
    found = [(kind, users) for kind, users in uses if users]
    if len(found) > 1:
        raise ValueError(f"role {arn} is used as a {' and a '.join(k for k, _ in found)}: check it once per use")
    return found[0] if found else ("unused", [])


def stack_roles(synthesis: Synthesis) -> list[Role]:
    roles = []
    for record in synthesis.of_type("aws:iam/role:Role"):
        kind, users = _users(synthesis, record.outputs["arn"])
        roles.append(Role(record, tuple(statements_of(synthesis, record)), kind, tuple(users)))
    return roles


def trusted_service(role: Role) -> str:
    """The service principal the role's trust policy names."""
    principals = {str(s.get("Principal", {}).get("Service")) for s in _document(role.record.inputs["assumeRolePolicy"])}
    return ",".join(sorted(principals))
