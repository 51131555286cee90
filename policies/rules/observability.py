"""Signals the pipelines need to be operated: state machine runs that end badly raise an alarm, and event source
mappings publish how many events they poll and process."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, PolicyResource, Severity

from .core import types
from .core.frameworks import serverless_lens, well_architected
from .core.rule import ResourceContext, Rule, StackContext, describe
from .core.values import as_list, get_path

_STATES_NAMESPACE = "AWS/States"
_EVENT_COUNT = "EventCount"


def _watched_metrics(ctx: StackContext, machine: PolicyResource) -> set[str]:
    """Step Functions metrics watched by an alarm with an action that was built from the state machine (its
    dimensions or metric queries name it)."""
    watched: set[str] = set()
    for alarm in ctx.index.referrers(machine, types.METRIC_ALARM):
        if not as_list(alarm.props.get("alarmActions")):
            continue  # cloudwatch-alarm-has-action reports it; it tells nobody
        if alarm.props.get("namespace") == _STATES_NAMESPACE:
            watched.add(str(alarm.props.get("metricName")))
        for query in as_list(alarm.props.get("metricQueries")):
            if get_path(query, "metric", "namespace") == _STATES_NAMESPACE:
                watched.add(str(get_path(query, "metric", "metricName")))
    return watched


def _execution_alarms(ctx: StackContext) -> None:
    required = [str(m) for m in ctx.settings["metrics"]]
    for machine in ctx.index.of_type(types.STATE_MACHINE):
        with ctx.about(machine):
            missing = [m for m in required if m not in _watched_metrics(ctx, machine)]
            if missing:
                ctx.violation(machine, f"{describe(machine)} has no alarm with an action on {', '.join(missing)} "
                                       f"({_STATES_NAMESPACE}, dimension StateMachineArn), so runs that end that way "
                                       f"go unnoticed")


def _mapping_metrics(ctx: ResourceContext) -> None:
    metrics = [str(m) for m in as_list(get_path(ctx.props, "metricsConfig", "metrics"))]
    if _EVENT_COUNT not in metrics:
        ctx.violation(f"{ctx.subject} has no metricsConfig.metrics ['{_EVENT_COUNT}'], so the polled, filtered, "
                      f"processed and dropped event counts are not published")


RULES = (
    Rule(
        name="sfn-execution-alarms",
        what="Every state machine has alarms with an action on ExecutionsFailed, ExecutionsTimedOut and "
             "ExecutionsAborted (AWS/States).",
        why="A batch run that fails, times out or is aborted leaves its work undone with no error anywhere else; "
            "only these metrics say so.",
        scope="stack",
        check=_execution_alarms,
        notes="Mandatory: the shipped stacks' state machines alarm on all three (one metric-math alarm over the "
              "three metrics, from the state machine block).",
        level=EnforcementLevel.MANDATORY,
        severity=Severity.MEDIUM,
        frameworks=(
            well_architected("REL06-BP03", spec="Send notifications (real-time processing and alarming)"),
            serverless_lens("OPS 1", spec="Evaluating a serverless application's health"),
        ),
        remediation="Add a MetricAlarm per metric (namespace AWS/States, dimension StateMachineArn built from the "
                    "state machine, Sum > 0 over 1 period) with the alarm topic as its action.",
        url="https://docs.aws.amazon.com/step-functions/latest/dg/procedure-cw-metrics.html",
        settings={"metrics": {"type": "array", "items": {"type": "string"},
                              "default": ["ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"],
                              "description": "Step Functions execution metrics each state machine must alarm on."}},
        relations=("MetricAlarm.dimensions (or metricQueries) -> StateMachine",),
    ),
    Rule(
        name="lambda-mapping-metrics",
        what="Every event source mapping publishes its event metrics (metricsConfig.metrics includes EventCount).",
        why="Without them a mapping's polled, filtered, processed, failed and dropped events are invisible; a "
            "worker that silently drops work looks the same as an idle one.",
        scope="resource",
        resource_types=(types.EVENT_SOURCE_MAPPING,),
        check=_mapping_metrics,
        notes="Mandatory: every mapping the shipped stacks create sets it (the queue worker block).",
        level=EnforcementLevel.MANDATORY,
        severity=Severity.LOW,
        frameworks=(
            well_architected("REL06-BP01", spec="Monitor all components for the workload"),
            serverless_lens("OPS 1", spec="Evaluating a serverless application's health"),
        ),
        remediation="Set metricsConfig={'metrics': ['EventCount']} on the aws.lambda.EventSourceMapping.",
        url="https://docs.aws.amazon.com/lambda/latest/dg/monitoring-metrics-types.html#event-source-mapping-metrics",
    ),
)
