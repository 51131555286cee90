"""Secrets Manager: every secret the stack creates rotates on a schedule, by a rotation function.

A stack rule: a secret's rotation is a separate resource (an aws.secretsmanager.SecretRotation whose `secretId` was
built from the secret), so the secret's own inputs never say whether it rotates. The schedule is read from the
rotation's `rotationRules`: `automaticallyAfterDays` is judged against the maximum; a `scheduleExpression`
(rate or cron) is accepted when it is a `rate(N days)` within the maximum, and a cron expression is accepted as
written (its period is not derived here). A secret the stack only names (an existing one, or the master secret RDS
creates and rotates itself) is no resource of the stack and is not judged.
"""

from __future__ import annotations

import re

from pulumi_policy import EnforcementLevel, PolicyResource, Severity

from .core import types
from .core.frameworks import well_architected
from .core.rule import Rule, StackContext, describe
from .core.values import fmt, get_path

_RATE_DAYS = re.compile(r"^rate\((\d+) days?\)$")


def _period_days(rotation: PolicyResource) -> float | None:
    """Days between rotations, or None when a cron expression sets the schedule."""
    days = get_path(rotation.props, "rotationRules", "automaticallyAfterDays")
    if days is not None:
        return float(days)
    expression = str(get_path(rotation.props, "rotationRules", "scheduleExpression") or "")
    match = _RATE_DAYS.match(expression.strip())
    if match:
        return float(match.group(1))
    return None if expression.startswith("cron(") else float("inf")


def _secret_rotation(ctx: StackContext) -> None:
    most = float(ctx.settings["maxRotationDays"])
    for secret in ctx.index.of_type(types.SECRET):
        with ctx.about(secret):
            rotations = ctx.index.referrers(secret, types.SECRET_ROTATION, key="secretId")
            if not rotations:
                ctx.violation(secret, f"{describe(secret)} has no aws.secretsmanager.SecretRotation, so the "
                                      "credentials it holds never change")
                continue
            for rotation in rotations:
                if not rotation.props.get("rotationLambdaArn"):
                    ctx.violation(secret, f"{describe(rotation)} names no rotationLambdaArn: only secrets an AWS "
                                          "service manages rotate without a function")
                period = _period_days(rotation)
                if period is not None and period > most:
                    shown = "no schedule" if period == float("inf") else f"every {fmt(period)} days"
                    ctx.violation(secret, f"{describe(secret)} rotates {shown} ({describe(rotation)}), beyond the "
                                          f"maximum of {fmt(most)} days")


RULES = (
    Rule(
        name="secretsmanager-secret-rotation",
        what="Every Secrets Manager secret the stack creates has a rotation (aws.secretsmanager.SecretRotation) by "
             "a rotation function, at most the configured days apart.",
        why="The file-ingestion secrets hold database passwords; a password that never changes stays valid for "
            "whoever copied it once (a log, a laptop, a former operator), and rotation is also how a leaked one is "
            "replaced without a deploy.",
        scope="stack",
        check=_secret_rotation,
        notes="Mandatory: the file-ingestion pipeline rotates the loader's secret (alternating users) and the admin "
              "secret it creates (single user) with AWS's PostgreSQL rotation functions in the database's VPC "
              "(`database.rotation`). Aurora's managed master secret and existing secrets are not resources of the "
              "stack and are not judged: RDS rotates its managed secret itself.",
        level=EnforcementLevel.MANDATORY,
        severity=Severity.MEDIUM,
        frameworks=(
            well_architected("SEC02-BP03", spec="Store and use secrets securely (rotate them automatically)"),
        ),
        remediation="Add an aws.secretsmanager.SecretRotation for the secret with rotationLambdaArn (for PostgreSQL, "
                    "AWS's rotation function from the Serverless Application Repository, in the database's VPC) and "
                    "rotationRules.automaticallyAfterDays within the maximum.",
        url="https://docs.aws.amazon.com/secretsmanager/latest/userguide/rotating-secrets.html",
        settings={"maxRotationDays": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 90,
                                      "description": "Longest time between two rotations, in days."}},
        relations=("SecretRotation.secretId -> Secret",),
    ),
)
