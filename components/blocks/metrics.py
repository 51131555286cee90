"""Metric definitions shared by alarms and dashboards, so a graph and the alarm on it never disagree.

A `Metric` names one CloudWatch metric with the statistic and period it is read with. An alarm is built from a
`Signal` (one metric, or a metric-math expression over several) and its dashboard widget from the very same
`Signal`: namespace, name, dimensions, statistic and period come from one object, never typed twice.

>>> errors = Metric("AWS/Lambda", "Errors", {"FunctionName": "ai-pipelines-dev-kbsync-worker"})
>>> errors.graph()
['AWS/Lambda', 'Errors', 'FunctionName', 'ai-pipelines-dev-kbsync-worker', {'stat': 'Sum', 'period': 60}]
>>> Signal.of(errors).expression is None
True
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components import defaults


@dataclass(frozen=True, eq=False)
class Metric:
    """One CloudWatch metric, read with one statistic over one period (seconds)."""

    namespace: str
    name: str
    dimensions: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    stat: str = "Sum"
    period: int = defaults.ALARM_PERIOD_SECONDS
    label: str = ""

    def alarm_query(self, query_id: str) -> aws.cloudwatch.MetricAlarmMetricQueryArgs:
        """This metric as one input of a metric-math alarm (not itself the alarm's value)."""
        return aws.cloudwatch.MetricAlarmMetricQueryArgs(
            id=query_id, return_data=False,
            metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                namespace=self.namespace, metric_name=self.name, dimensions=dict(self.dimensions),
                period=self.period, stat=self.stat))

    def graph(self, **options: Any) -> list[Any]:
        """The dashboard's metric row: namespace, name, each dimension's name and value, then the rendering
        options, which always state the statistic and the period (a widget's own defaults never apply)."""
        row: list[Any] = [self.namespace, self.name]
        for key, value in self.dimensions.items():
            row += [key, value]
        row.append({"stat": self.stat, "period": self.period, **({"label": self.label} if self.label else {}),
                    **options})
        return row


@dataclass(frozen=True, eq=False)
class Signal:
    """What an alarm evaluates: a single metric, or ``expression`` over ``metrics`` (keyed by their query ids)."""

    metrics: Mapping[str, Metric]
    expression: str | None = None
    label: str = ""

    @classmethod
    def of(cls, metric: Metric) -> Signal:
        return cls({"m0": metric}, label=metric.label or metric.name)

    @property
    def single(self) -> Metric | None:
        return next(iter(self.metrics.values())) if self.expression is None else None

    def alarm_queries(self) -> list[aws.cloudwatch.MetricAlarmMetricQueryArgs]:
        """The metric queries of a metric-math alarm: each input, then the expression as the alarm's value."""
        if self.expression is None:
            raise ValueError("a single-metric signal is alarmed on directly, not through metric queries")
        return [*(metric.alarm_query(query_id) for query_id, metric in self.metrics.items()),
                aws.cloudwatch.MetricAlarmMetricQueryArgs(id="value", return_data=True, label=self.label,
                                                          expression=self.expression)]

    def graph(self) -> list[list[Any]]:
        """The dashboard rows drawing exactly this signal: the metric; or the expression, with its inputs hidden
        (their ids are the ones the expression names)."""
        if self.expression is None:
            return [metric.graph() for metric in self.metrics.values()]
        inputs = [metric.graph(id=query_id, visible=False) for query_id, metric in self.metrics.items()]
        return [*inputs, [{"expression": self.expression, "label": self.label, "id": "value"}]]
