"""EventBridge rule targets and Scheduler schedules: failed deliveries retry explicitly, then dead-letter."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import Severity

from .core import types
from .core.frameworks import serverless_lens, well_architected
from .core.rule import ResourceContext, Rule
from .core.values import get_path

_RETRY_KEYS = ("maximumRetryAttempts", "maximumEventAgeInSeconds")


def _delivery_problems(target: Mapping[str, Any] | None) -> list[str]:
    problems = []
    if not get_path(target, "deadLetterConfig", "arn"):
        problems.append("has no deadLetterConfig.arn, so an event that cannot be delivered is dropped")
    retry = get_path(target, "retryPolicy")
    missing = [k for k in _RETRY_KEYS if get_path(retry, k) is None]
    if missing:
        problems.append(f"has no explicit retryPolicy {' and '.join(missing)} (the implicit default retries "
                        f"for 24 hours, hiding an outage)")
    return problems


def _target_dlq_retry(ctx: ResourceContext) -> None:
    if ctx.args.resource_type == types.SCHEDULE:
        target, where = ctx.props.get("target"), f"{ctx.subject} target"
    else:
        target, where = ctx.props, ctx.subject
    for problem in _delivery_problems(target):
        ctx.violation(f"{where} {problem}")


RULES = (
    Rule(
        name="eventbridge-target-dlq-retry",
        what="Every EventBridge rule target and Scheduler schedule target has a dead-letter queue and an "
             "explicit retry policy (maximumRetryAttempts and maximumEventAgeInSeconds).",
        why="EventBridge drops an event it cannot deliver once retries run out; a DLQ keeps it, and an explicit "
            "policy states how long a failing target may lag.",
        scope="resource",
        resource_types=(types.EVENT_TARGET, types.SCHEDULE),
        check=_target_dlq_retry,
        severity=Severity.MEDIUM,
        frameworks=(
            serverless_lens("REL 2", spec="Building resiliency into a serverless application"),
            well_architected("REL05-BP03", spec="Control and limit retry calls"),
        ),
        remediation=(
            "Give the target a deadLetterConfig.arn (an SQS queue) and a retryPolicy with "
            "maximumRetryAttempts and maximumEventAgeInSeconds."
        ),
        url="https://docs.aws.amazon.com/eventbridge/latest/userguide/eb-rule-dlq.html",
    ),
)
