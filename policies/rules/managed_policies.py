"""Managed policies attached to roles: no broad AWS managed policy, and no policy of the stack that grants as much.

A stack rule, because what an attachment attaches is known from the property dependency: a `policyArn` (or an entry
of a role's `managedPolicyArns`) built from a Policy of this stack is unknown at preview, but it is that Policy, not
an AWS managed one, so its document is judged instead of its ARN.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from fnmatch import fnmatchcase
from typing import Any, Final

from pulumi_policy import PolicyResource
from pulumi_policy.proxy import UnknownValueError

from .core import documents, types
from .core.rule import Rule, StackContext, describe
from .core.values import unless_computed

_AWS_MANAGED: Final = re.compile(r"^arn:[^:]+:iam::aws:policy/(?:.*/)?(?P<name>[^/]+)$")
_HOLDERS: Final = {types.ROLE: "managedPolicyArns", types.ROLE_POLICY_ATTACHMENT: "policyArn",
                   types.POLICY_ATTACHMENT: "policyArn"}


def _known_arns(holder: PolicyResource, prop: str, built_from_stack: bool) -> Iterator[str]:
    """The ARNs the property names that are known at preview. An unknown one is passed over only when the property
    was built from Policies of this stack (their documents are judged instead); otherwise it ends the judgement."""
    if holder.resource_type != types.ROLE:
        try:
            value = holder.props.get(prop)
        except UnknownValueError:
            if built_from_stack:
                return  # an attachment's one ARN, built from this stack's Policy: that Policy is judged instead
            raise
    else:  # a role's managedPolicyArns is computed when left unset; a wholly unknown list set by the program raises
        value = holder.props.get(prop) if built_from_stack else unless_computed(holder.props, prop)
    if value is None or isinstance(value, str):
        yield from [value] if value else []
        return
    for position in range(len(value)):
        try:
            arn = str(value[position])
        except UnknownValueError:
            if not built_from_stack:
                raise
            continue
        yield arn


def _full_access(document: Any) -> list[str]:
    """'<statement> allows <action>' for each Allow of '*' or 'service:*' on Resource '*' (what AdministratorAccess
    and *FullAccess grant)."""
    found = []
    for position, statement in enumerate(documents.statements(document)):
        if not documents.is_allow(statement) or "*" not in documents.resources(statement):
            continue
        broad = [a for a in documents.actions(statement) if a == "*" or a.endswith(":*")]
        if broad:
            found.append(f"{documents.sid(statement, position)} allows {', '.join(broad)} on Resource '*'")
    return found


def _judge(ctx: StackContext, holder: PolicyResource) -> None:
    prop = _HOLDERS[holder.resource_type]
    denied = list(ctx.settings["deniedPolicies"])
    allowed = {str(a) for a in ctx.settings["allowedPolicies"]}
    own = ctx.index.deps(holder, prop, types.MANAGED_POLICY)
    for policy in own:
        for grant in _full_access(policy.props.get("policy")):
            ctx.violation(holder, f"{describe(holder)} {prop} attaches {describe(policy)} of this stack, whose "
                                  f"{grant}: as broad as an AWS full-access policy; grant the actions the code calls "
                                  f"instead")
    for arn in _known_arns(holder, prop, bool(own)):
        match = _AWS_MANAGED.match(arn)
        if match is None or arn in allowed or match["name"] in allowed:
            continue
        pattern = next((p for p in denied if fnmatchcase(match["name"], p)), None)
        if pattern is not None:
            ctx.violation(holder, f"{describe(holder)} {prop} attaches AWS managed policy '{match['name']}' ({arn}), "
                                  f"which matches denied pattern '{pattern}'; grant the actions the code calls instead")


def _no_broad_managed_policies(ctx: StackContext) -> None:
    for holder in ctx.index.of_type(*_HOLDERS):
        with ctx.about(holder):
            _judge(ctx, holder)


_STRINGS = {"type": "array", "items": {"type": "string"}}

RULE = Rule(
    name="iam-no-broad-managed-policies",
    what="Roles and attachments use no broad AWS managed policy (AdministratorAccess, PowerUserAccess, "
         "IAMFullAccess, *FullAccess), and no managed policy of the stack that allows '*' or 'service:*' on "
         "Resource '*'.",
    why="Broad managed policies grant whole services; a pipeline's function needs a handful of actions.",
    scope="stack",
    check=_no_broad_managed_policies,
    settings={
        "deniedPolicies": {**_STRINGS,
                           "default": ["AdministratorAccess", "PowerUserAccess", "IAMFullAccess", "*FullAccess"],
                           "description": "Name patterns of AWS managed policies that may not be attached."},
        "allowedPolicies": {**_STRINGS, "default": [],
                            "description": "AWS managed policy names or ARNs accepted despite a denied pattern."},
    },
    relations=("RolePolicyAttachment.policyArn -> Policy", "PolicyAttachment.policyArn -> Policy",
               "Role.managedPolicyArns -> Policy"),
)
