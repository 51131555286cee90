"""CloudWatch alarms that always notify: every alarm the blocks build has an alarm and an OK action.

Each alarm is built from a `Signal` (``components.blocks.metrics``) and returned as an `Alarm` that keeps it, so the
pipeline's dashboard draws the alarm from the same definition (``components.blocks.dashboard``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components import defaults
from components.blocks.metrics import Metric, Signal
from components.blocks.naming import Naming


@dataclass(frozen=True, eq=False)
class Alarm:
    """An alarm the stack created, with the signal it evaluates and where it fires."""

    purpose: str
    title: str
    signal: Signal
    threshold: float
    comparison: str
    resource: aws.cloudwatch.MetricAlarm

    @property
    def annotation(self) -> dict[str, object]:
        """The alarm's threshold as a dashboard's horizontal annotation."""
        sign = {"GreaterThanThreshold": ">", "GreaterThanOrEqualToThreshold": ">=", "LessThanThreshold": "<",
                "LessThanOrEqualToThreshold": "<="}.get(self.comparison, self.comparison)
        return {"label": f"alarm {self.purpose}: {sign} {self.threshold:g}", "value": self.threshold}


@dataclass(frozen=True)
class ErrorRate:
    """Page on the share of invocations that failed instead of on any failure: ``percent`` of the invocations of
    one ``period_seconds``, judged only when there were at least ``min_invocations`` (fewer say nothing)."""

    percent: float
    min_invocations: int
    period_seconds: int = defaults.ERROR_RATE_PERIOD_SECONDS


def notifying_alarm(naming: Naming, purpose: str, *, watch: Metric | Signal, topic_arn: pulumi.Input[str],
                    threshold: float, description: str, parent: pulumi.Resource, title: str = "",
                    comparison: str = "GreaterThanThreshold",
                    evaluation_periods: int = defaults.ALARM_EVALUATION_PERIODS) -> Alarm:
    """An alarm on ``watch`` that pages through ``topic_arn`` when it fires and again when it clears.

    Missing data is "not breaching": an idle queue or function reports nothing, which is healthy.
    """
    signal = watch if isinstance(watch, Signal) else Signal.of(watch)
    single = signal.single
    shape: dict[str, Any] = (
        {"namespace": single.namespace, "metric_name": single.name, "dimensions": dict(single.dimensions),
         "statistic": single.stat, "period": single.period} if single is not None
        else {"metric_queries": signal.alarm_queries()})
    resource = aws.cloudwatch.MetricAlarm(
        naming.logical(f"{purpose}-alarm"),
        name=naming.name(purpose, max_length=255),
        alarm_description=description,
        **shape,
        evaluation_periods=evaluation_periods,
        threshold=threshold,
        comparison_operator=comparison,
        treat_missing_data="notBreaching",
        alarm_actions=[topic_arn],
        ok_actions=[topic_arn],
        tags=naming.tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )
    return Alarm(purpose, title or purpose, signal, threshold, comparison, resource)


def sum_signal(metrics: Sequence[Metric], label: str) -> Signal:
    """The sum of several metrics, each read as its per-period Sum, a period without data counting as 0."""
    ids = {f"m{index}": metric for index, metric in enumerate(metrics)}
    return Signal(ids, expression=" + ".join(f"FILL({query_id}, 0)" for query_id in ids), label=label)


def lambda_metric(function_name: pulumi.Input[str], metric: str, *, stat: str = "Sum",
                  period: int = defaults.ALARM_PERIOD_SECONDS) -> Metric:
    return Metric("AWS/Lambda", metric, {"FunctionName": function_name}, stat=stat, period=period)


def error_rate_signal(function_name: pulumi.Input[str], rate: ErrorRate) -> Signal:
    """Errors as a percentage of invocations over the period; 0 below the minimum (CloudWatch's metric-math IF)."""
    metrics = {"errors": lambda_metric(function_name, "Errors", period=rate.period_seconds),
               "invocations": lambda_metric(function_name, "Invocations", period=rate.period_seconds)}
    return Signal(metrics, label="error rate (%)",
                  expression=f"IF(invocations >= {rate.min_invocations}, 100 * FILL(errors, 0) / invocations, 0)")


def function_alarms(naming: Naming, purpose: str, *, function_name: pulumi.Input[str], display_name: str,
                    topic_arn: pulumi.Input[str], parent: pulumi.Resource,
                    error_rate: ErrorRate | None = None) -> list[Alarm]:
    """Page on the function ``purpose``'s errors (any error, or with ``error_rate`` its share of invocations) and on
    any throttle (``display_name`` in the descriptions)."""
    if error_rate is None:
        errors = notifying_alarm(naming, f"{purpose}-errors", watch=lambda_metric(function_name, "Errors"),
                                 topic_arn=topic_arn, threshold=0, title=f"{purpose} errors",
                                 description=f"{display_name} reported Errors", parent=parent)
    else:
        errors = notifying_alarm(
            naming, f"{purpose}-error-rate", watch=error_rate_signal(function_name, error_rate), topic_arn=topic_arn,
            threshold=error_rate.percent, title=f"{purpose} error rate",
            description=f"More than {error_rate.percent:g} % of {display_name}'s invocations failed in "
                        f"{error_rate.period_seconds} s (judged from {error_rate.min_invocations} invocations)",
            parent=parent)
    throttles = notifying_alarm(naming, f"{purpose}-throttles", watch=lambda_metric(function_name, "Throttles"),
                                topic_arn=topic_arn, threshold=0, title=f"{purpose} throttles",
                                description=f"{display_name} reported Throttles", parent=parent)
    return [errors, throttles]


def queue_metric(queue_name: pulumi.Input[str], metric: str, *, stat: str = "Maximum") -> Metric:
    return Metric("AWS/SQS", metric, {"QueueName": queue_name}, stat=stat)


def custom_metric(naming: Naming, service: str, metric: str, *, stat: str = "Sum") -> Metric:
    """A metric a handler publishes through Powertools: namespace the project, dimension its service name."""
    return Metric(naming.project, metric, {"service": naming.name(service)}, stat=stat)
