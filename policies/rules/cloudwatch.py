"""CloudWatch alarms: an alarm that notifies nobody is decoration."""

from __future__ import annotations

from pulumi_policy import Severity

from .core import types
from .core.frameworks import serverless_lens, well_architected
from .core.rule import ResourceContext, Rule
from .core.values import as_list


def _alarm_has_action(ctx: ResourceContext) -> None:
    if ctx.props.get("actionsEnabled") is False:
        ctx.violation(f"{ctx.subject} sets actionsEnabled false, so it fires without telling anyone")
    elif not as_list(ctx.props.get("alarmActions")):
        ctx.violation(f"{ctx.subject} has no alarmActions, so it fires without telling anyone")


RULES = (
    Rule(
        name="cloudwatch-alarm-has-action",
        what="Every CloudWatch alarm has at least one alarm action and actions enabled.",
        why="An alarm without an action changes state on a dashboard nobody watches at 3 a.m.",
        scope="resource",
        resource_types=(types.METRIC_ALARM, types.COMPOSITE_ALARM),
        check=_alarm_has_action,
        severity=Severity.LOW,
        frameworks=(
            well_architected("REL06-BP03", spec="Send notifications (real-time processing and alarming)"),
            serverless_lens("OPS 1", spec="Evaluating a serverless application's health"),
        ),
        remediation=(
            "Give the alarm alarmActions (an SNS topic the on-call team reads) and leave actionsEnabled "
            "on."
        ),
        url="https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/AlarmThatSendsEmail.html",
    ),
)
