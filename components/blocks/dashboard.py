"""A pipeline's CloudWatch dashboard, drawn from the same metric definitions as its alarms.

Every alarm a block creates is an `Alarm` holding the `Signal` it evaluates; its widget draws that signal (the same
namespace, name, dimensions, statistic and period) with the alarm's threshold as a horizontal line. Other widgets
draw what has no alarm but explains one: a function's duration against its timeout, its concurrency against its
reservation, a queue's messages in flight, the pipeline's own metrics.

>>> PipelineDashboard(naming, env, sections=[("Work queue", queue.widgets()), ("Worker", worker.widgets())])
...                                                                                   # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.blocks.alarms import Alarm, lambda_metric
from components.blocks.iam import AwsEnv
from components.blocks.metrics import Metric
from components.blocks.naming import Naming

# CloudWatch lays widgets out left to right on a 24-unit grid: three graphs a row.
WIDGET_WIDTH, WIDGET_HEIGHT = 8, 6


@dataclass(frozen=True, eq=False)
class Widget:
    """One graph: its rows (``Metric.graph`` / ``Signal.graph``) and horizontal lines (alarm thresholds, limits)."""

    title: str
    rows: Sequence[list[Any]]
    lines: Sequence[dict[str, object]] = field(default_factory=tuple)

    def body(self, region: str) -> dict[str, Any]:
        properties: dict[str, Any] = {"title": self.title, "region": region, "view": "timeSeries",
                                      "stacked": False, "metrics": list(self.rows)}
        if self.lines:
            properties["annotations"] = {"horizontal": list(self.lines)}
        return {"type": "metric", "width": WIDGET_WIDTH, "height": WIDGET_HEIGHT, "properties": properties}


def alarm_widget(alarm: Alarm, *, extra: Sequence[Metric] = ()) -> Widget:
    """The alarm's signal, exactly as the alarm reads it, its threshold, and ``extra`` metrics for context."""
    return Widget(alarm.title, [*alarm.signal.graph(), *(metric.graph() for metric in extra)], [alarm.annotation])


def metrics_widget(title: str, metrics: Sequence[Metric], lines: Sequence[dict[str, object]] = ()) -> Widget:
    return Widget(title, [metric.graph() for metric in metrics], lines)


def line(label: str, value: float) -> dict[str, object]:
    return {"label": label, "value": value}


def batch_size_widget(average: Metric, largest: Metric, batch_size: int) -> Widget:
    """Messages per invocation as the worker counts them (its ``MessagesReceived``) against the mapping's batch
    size: batches far below it mean the batching window, not the volume, closes them."""
    return metrics_widget("batch sizes (messages per invocation)", [average, largest],
                          [line("batch size", batch_size)])


def function_widgets(title: str, function_name: pulumi.Input[str], alarms: Sequence[Alarm], *,
                     timeout_seconds: int, reserved_concurrency: int | None) -> list[Widget]:
    """A function's alarms (errors or error rate, throttles), its duration against its timeout and its concurrency
    against its reservation."""
    widgets = [alarm_widget(alarm) for alarm in alarms]
    widgets.append(metrics_widget(
        f"{title} duration (ms) against its timeout",
        [lambda_metric(function_name, "Duration", stat="Maximum"), lambda_metric(function_name, "Duration",
                                                                                 stat="p50")],
        [line("timeout", timeout_seconds * 1000)]))
    widgets.append(metrics_widget(
        f"{title} concurrency against its reservation", [lambda_metric(function_name, "ConcurrentExecutions",
                                                                       stat="Maximum")],
        [line("reserved concurrency", reserved_concurrency)] if reserved_concurrency is not None else []))
    return widgets


class PipelineDashboard(pulumi.ComponentResource):
    """One dashboard, ``<project>-<stack>-<pipeline>-dashboard``: a text header per section, then its widgets.

    Its body is serialized by the engine-aware ``Output.json_dumps``; every name in it is known at preview.
    """

    def __init__(self, naming: Naming, env: AwsEnv, *, sections: Sequence[tuple[str, Sequence[Widget]]],
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ai-pipelines:blocks:PipelineDashboard", naming.logical("dashboard"), None, opts)
        widgets: list[dict[str, Any]] = []
        for heading, section in sections:
            widgets.append({"type": "text", "width": 24, "height": 1, "properties": {"markdown": f"## {heading}"}})
            widgets += [widget.body(env.region) for widget in section]
        self.name = naming.name("dashboard", max_length=255)
        self.dashboard = aws.cloudwatch.Dashboard(
            naming.logical("dashboard"), dashboard_name=self.name,
            dashboard_body=pulumi.Output.json_dumps({"widgets": widgets}),
            opts=pulumi.ResourceOptions(parent=self))
        self.dashboard_name: pulumi.Output[str] = self.dashboard.dashboard_name
        self.register_outputs({"name": self.dashboard_name})
