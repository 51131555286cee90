"""Who a policy lets in: a role's trust policy, a resource's own policy, a Lambda function's permissions.

One rule, because all three answer the same question (which callers may act, and through which source) and share
the same per-service knowledge of which services send source context (`trust_guidance`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pulumi_policy import Severity

from . import trust_guidance
from .core import documents, types
from .core.frameworks import serverless_lens, well_architected
from .core.rule import ResourceContext, Rule
from .core.values import as_list, is_present

# Resource policies, by the resource type that carries one and its property.
_RESOURCE_POLICIES: Final = {
    types.QUEUE: "policy", types.QUEUE_POLICY: "policy", types.TOPIC: "policy", types.TOPIC_POLICY: "policy",
    types.BUCKET_POLICY: "policy", types.EVENT_BUS_POLICY: "policy", **{t: "policy" for t in types.BUCKETS},
}
# Condition keys that narrow which callers an Allow to '*' admits; any other condition (aws:SecureTransport, a tag)
# leaves every account's callers in.
_CALLER_KEYS: Final = frozenset({
    "aws:sourcearn", "aws:sourceaccount", "aws:sourceowner", "aws:sourceorgid", "aws:sourceorgpaths",
    "aws:principalarn", "aws:principalaccount", "aws:principalorgid", "aws:principalorgpaths", "aws:userid",
    "aws:sourcevpce", "aws:sourcevpc", "aws:sourceip",
})
_SOURCE_KEYS: Final = frozenset({"aws:sourceaccount", "aws:sourcearn"})
_LAMBDA_PERMISSIONS_GUIDE: Final = "https://docs.aws.amazon.com/lambda/latest/dg/access-control-resource-based.html"


def _open_to_everyone(ctx: ResourceContext, where: str, document: Any) -> None:
    for position, statement in enumerate(documents.statements(document)):
        if (documents.is_allow(statement) and documents.everyone(statement.get("Principal"))
                and not documents.condition_keys(statement) & _CALLER_KEYS):
            ctx.violation(f"{where} {documents.sid(statement, position)} allows "
                          f"{', '.join(documents.actions(statement)) or 'its actions'} to Principal '*' with no "
                          f"condition on the caller (aws:SourceArn, aws:SourceAccount, aws:PrincipalOrgID, ...), so "
                          f"anyone in any account may call it")


def _role_trust(ctx: ResourceContext) -> None:
    exempt = {str(s) for s in ctx.settings["servicesWithoutSourceConditions"]}
    document = ctx.props.get("assumeRolePolicy")
    _open_to_everyone(ctx, f"{ctx.subject} assumeRolePolicy", document)
    for position, statement in enumerate(documents.statements(document)):
        principal = statement.get("Principal")
        if not documents.is_allow(statement) or not isinstance(principal, Mapping) or "Service" not in principal:
            continue
        where = f"{ctx.subject} assumeRolePolicy {documents.sid(statement, position)}"
        services = [str(s) for s in as_list(principal["Service"])]
        if len(services) != 1:
            ctx.violation(f"{where} trusts {len(services)} service principals ({', '.join(services)}); a role "
                          f"should be assumable by exactly one service")
            continue
        service = services[0]
        if service not in exempt and not documents.condition_keys(statement) & _SOURCE_KEYS:
            ctx.violation(f"{where} trusts {service} without an aws:SourceAccount or aws:SourceArn condition, so "
                          f"another account's resource could make the service assume it (AWS's guidance: "
                          f"{trust_guidance.guidance_for(service)})")


def _lambda_permission(ctx: ResourceContext) -> None:
    principal = str(ctx.props.get("principal") or "")
    # Presence only: a sourceArn built from another resource's ARN is unknown at preview, and set all the same.
    scoped = [key for key in ("sourceArn", "sourceAccount", "principalOrgId") if is_present(ctx.props, key)]
    if scoped:
        return
    if principal == "*":
        ctx.violation(f"{ctx.subject} lets principal '*' invoke {ctx.props.get('function')} with no sourceArn, "
                      f"sourceAccount or principalOrgId, so anyone in any account may invoke it")
    elif principal.endswith((".amazonaws.com", ".amazonaws.com.cn")):
        ctx.violation(f"{ctx.subject} lets {principal} invoke {ctx.props.get('function')} without sourceArn or "
                      f"sourceAccount, so another account's {principal.split('.')[0]} resource could invoke it "
                      f"(AWS's guidance: {_LAMBDA_PERMISSIONS_GUIDE})")


def _trust_scoped(ctx: ResourceContext) -> None:
    resource_type = ctx.args.resource_type
    if resource_type == types.ROLE:
        _role_trust(ctx)
    elif resource_type == types.LAMBDA_PERMISSION:
        _lambda_permission(ctx)
    else:
        prop = _RESOURCE_POLICIES[resource_type]
        _open_to_everyone(ctx, f"{ctx.subject} {prop}", ctx.props.get(prop))


RULE = Rule(
    name="iam-service-trust-scoped",
    what="A role's trust policy names one service principal, with an aws:SourceAccount or aws:SourceArn condition "
         "where AWS's guidance for that service puts one; no role trust or resource policy (queue, topic, bucket, "
         "event bus) allows Principal '*' without a condition on the caller; a Lambda permission for a service or "
         "for '*' names its source.",
    why="Without a source condition any account's resource can make the service act with the role or invoke the "
        "function (the confused deputy), and an Allow to '*' opens the resource to every AWS account; one service "
        "per role keeps each role's purpose single.",
    scope="resource",
    resource_types=(types.ROLE, types.LAMBDA_PERMISSION, *_RESOURCE_POLICIES),
    check=_trust_scoped,
    severity=Severity.HIGH,
    frameworks=(
        well_architected("SEC03-BP02", "SEC03-BP09",
            spec="Grant least privilege access; share resources securely with a third party"),
        serverless_lens("SEC 2", spec="Managing the security boundaries of a serverless application"),
    ),
    remediation=(
        "Trust one service per role with an aws:SourceArn or aws:SourceAccount condition; give a resource "
        "policy that allows '*' a condition on the caller (aws:SourceArn, aws:PrincipalOrgID...); give a "
        "Lambda permission its sourceArn (and sourceAccount for S3)."
    ),
    url="https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html",
    settings={"servicesWithoutSourceConditions": {
        "type": "array", "items": {"type": "string"}, "default": trust_guidance.without_source_conditions(),
        "description": "Service principals whose role trust policy need not carry aws:SourceAccount or "
                       "aws:SourceArn (they do not send source context when assuming a role)."}},
    notes=trust_guidance.catalogue_table() + "\n\nCaller conditions that satisfy an Allow to '*': "
          + ", ".join(f"`{k}`" for k in sorted(_CALLER_KEYS)) + ".",
)
