"""CloudWatch alarms that always notify: every alarm the blocks build has an alarm and an OK action."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from components import defaults
from components.blocks.naming import Naming


def notifying_alarm(naming: Naming, purpose: str, *, namespace: str, metric: str,
                    dimensions: Mapping[str, pulumi.Input[str]], topic_arn: pulumi.Input[str], threshold: float,
                    statistic: str = "Maximum", comparison: str = "GreaterThanThreshold", description: str,
                    parent: pulumi.Resource) -> aws.cloudwatch.MetricAlarm:
    """A metric alarm that pages through `topic_arn` when it fires and again when it clears.

    Missing data is "not breaching": an idle queue or function reports nothing, which is healthy.
    """
    return aws.cloudwatch.MetricAlarm(
        naming.logical(f"{purpose}-alarm"),
        name=naming.name(purpose, max_length=255),
        alarm_description=description,
        namespace=namespace,
        metric_name=metric,
        dimensions=dict(dimensions),
        statistic=statistic,
        period=defaults.ALARM_PERIOD_SECONDS,
        evaluation_periods=defaults.ALARM_EVALUATION_PERIODS,
        threshold=threshold,
        comparison_operator=comparison,
        treat_missing_data="notBreaching",
        alarm_actions=[topic_arn],
        ok_actions=[topic_arn],
        tags=naming.tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def notifying_sum_alarm(naming: Naming, purpose: str, *, namespace: str, metrics: Sequence[str],
                        dimensions: Mapping[str, pulumi.Input[str]], topic_arn: pulumi.Input[str], threshold: float,
                        description: str, parent: pulumi.Resource) -> aws.cloudwatch.MetricAlarm:
    """One alarm on the sum of several metrics of the same dimensions (each its per-period Sum, a period without data
    counting as 0), paging through `topic_arn` when the sum exceeds `threshold` and again when it clears."""
    ids = [f"m{index}" for index in range(len(metrics))]
    queries = [aws.cloudwatch.MetricAlarmMetricQueryArgs(
        id=query_id, return_data=False,
        metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
            namespace=namespace, metric_name=metric, dimensions=dict(dimensions),
            period=defaults.ALARM_PERIOD_SECONDS, stat="Sum"))
        for query_id, metric in zip(ids, metrics, strict=True)]
    queries.append(aws.cloudwatch.MetricAlarmMetricQueryArgs(
        id="total", return_data=True, label=" + ".join(metrics),
        expression=" + ".join(f"FILL({query_id}, 0)" for query_id in ids)))
    return aws.cloudwatch.MetricAlarm(
        naming.logical(f"{purpose}-alarm"),
        name=naming.name(purpose, max_length=255),
        alarm_description=description,
        metric_queries=queries,
        evaluation_periods=defaults.ALARM_EVALUATION_PERIODS,
        threshold=threshold,
        comparison_operator="GreaterThanThreshold",
        treat_missing_data="notBreaching",
        alarm_actions=[topic_arn],
        ok_actions=[topic_arn],
        tags=naming.tags,
        opts=pulumi.ResourceOptions(parent=parent),
    )


def function_alarms(naming: Naming, purpose: str, *, function_name: pulumi.Input[str], display_name: str,
                    topic_arn: pulumi.Input[str], parent: pulumi.Resource) -> None:
    """Page on any error or throttle of the function ``purpose`` (``display_name`` in the description)."""
    for metric in ("Errors", "Throttles"):
        notifying_alarm(naming, f"{purpose}-{metric.lower()}", namespace="AWS/Lambda", metric=metric,
                        dimensions={"FunctionName": function_name}, topic_arn=topic_arn, threshold=0, statistic="Sum",
                        description=f"{display_name} reported {metric}", parent=parent)
