"""Each pipeline has one dashboard, and every alarm of the pipeline is drawn on it from the same metric definition:
read back from the offline export of each shipped stack at preview (what `pulumi stack export` would hold), every
metric an alarm reads appears on one widget of its pipeline's dashboard with the identical namespace, name,
dimensions, statistic and period, beside the alarm's expression (for metric math) and its threshold."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pytest

from offline.cost.inventory import pipeline_of
from offline.export import read_export, write_export
from offline.model import ResourceRecord
from offline.synth import Synthesis, synthesize
from tests.support.stacks import SHIPPED_STACKS

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
OUTPUT_KEYS = {"kbsync": "knowledgeBaseSync", "eventproc": "eventProcessing", "fileingest": "fileIngestion",
               "batchinf": "batchInference"}

# (namespace, name, dimensions, stat, period)
MetricKey = tuple[str, str, tuple[tuple[str, str], ...], str, int]


@dataclass(frozen=True)
class Drawn:
    metrics: frozenset[MetricKey]
    expressions: frozenset[str]
    lines: frozenset[float]


@pytest.fixture(scope="module", params=SHIPPED_STACKS)
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
             ) -> tuple[Synthesis, list[ResourceRecord]]:
    synthesis = synthesize(request.param, "preview")
    path = tmp_path_factory.mktemp("export") / f"{request.param}.json"
    write_export(synthesis, path)
    return synthesis, read_export(path)


def key(namespace: str, name: str, dimensions: dict[str, Any] | None, stat: str, period: int) -> MetricKey:
    return (namespace, name, tuple(sorted((str(k), str(v)) for k, v in (dimensions or {}).items())), stat,
            int(period))


def alarm_reads(alarm: ResourceRecord) -> tuple[set[MetricKey], set[str]]:
    """The metrics an alarm reads, and its expressions."""
    inputs = alarm.inputs
    if inputs.get("metricName"):
        return {key(inputs["namespace"], inputs["metricName"], inputs.get("dimensions"), inputs["statistic"],
                    inputs["period"])}, set()
    metrics, expressions = set(), set()
    for query in inputs["metricQueries"]:
        if "metric" in query:
            metric = query["metric"]
            metrics.add(key(metric["namespace"], metric["metricName"], metric.get("dimensions"), metric["stat"],
                            metric["period"]))
        else:
            expressions.add(query["expression"])
    return metrics, expressions


def widgets(dashboard: ResourceRecord) -> Iterable[Drawn]:
    """What each metric widget draws. A row states its stat and period, else the widget's, else CloudWatch's
    defaults (Average, 300 s)."""
    body = json.loads(dashboard.inputs["dashboardBody"])
    for widget in body["widgets"]:
        if widget["type"] != "metric":
            continue
        properties = widget["properties"]
        metrics, expressions = set(), set()
        for row in properties["metrics"]:
            options = row[-1] if isinstance(row[-1], dict) else {}
            if "expression" in options:
                expressions.add(options["expression"])
                continue
            names = row[:-1] if options else row
            namespace, name, pairs = names[0], names[1], names[2:]
            metrics.add(key(namespace, name, dict(zip(pairs[::2], pairs[1::2], strict=True)),
                            options.get("stat", properties.get("stat", "Average")),
                            options.get("period", properties.get("period", 300))))
        lines = {float(line["value"]) for line in properties.get("annotations", {}).get("horizontal", [])}
        yield Drawn(frozenset(metrics), frozenset(expressions), frozenset(lines))


def by_pipeline(records: list[ResourceRecord], type_: str) -> dict[str, list[ResourceRecord]]:
    found: dict[str, list[ResourceRecord]] = defaultdict(list)
    for record in records:
        if record.type == type_:
            found[pipeline_of(record) or "?"].append(record)
    return found


def test_every_pipeline_has_one_dashboard_named_in_the_stack_outputs(
        exported: tuple[Synthesis, list[ResourceRecord]]) -> None:
    synthesis, records = exported
    dashboards = by_pipeline(records, DASHBOARD)
    assert {pipeline: len(found) for pipeline, found in dashboards.items()} == {p: 1 for p in OUTPUT_KEYS}
    for pipeline, (dashboard,) in dashboards.items():
        name = dashboard.inputs["dashboardName"]
        assert name == f"{synthesis.project}-{synthesis.stack}-{pipeline}-dashboard"
        assert synthesis.outputs[OUTPUT_KEYS[pipeline]]["dashboardName"] == name


def test_every_alarm_is_drawn_on_its_pipelines_dashboard_from_the_same_definition(
        exported: tuple[Synthesis, list[ResourceRecord]]) -> None:
    _, records = exported
    dashboards = by_pipeline(records, DASHBOARD)
    alarms = by_pipeline(records, ALARM)
    assert set(alarms) == set(OUTPUT_KEYS)
    missing = []
    for pipeline, found in alarms.items():
        drawn = [w for dashboard in dashboards.get(pipeline, []) for w in widgets(dashboard)]
        for alarm in found:
            metrics, expressions = alarm_reads(alarm)
            threshold = float(alarm.inputs["threshold"])
            if not any(metrics <= w.metrics and expressions <= w.expressions and threshold in w.lines
                       for w in drawn):
                missing.append(alarm.inputs["name"])
    assert missing == []
    assert sum(len(found) for found in alarms.values()) > 30


def test_error_rate_alarms_guard_on_invocations(exported: tuple[Synthesis, list[ResourceRecord]]) -> None:
    synthesis, records = exported
    rates = {r.inputs["name"].removeprefix(f"{synthesis.project}-{synthesis.stack}-"): r for r in records
             if r.type == ALARM and r.inputs["name"].endswith("-error-rate")}
    assert set(rates) == {"eventproc-worker-error-rate", "fileingest-worker-error-rate",
                          "batchinf-sync-worker-error-rate"}
    for alarm in rates.values():
        metrics, (expression,) = alarm_reads(alarm)
        assert {m[1] for m in metrics} == {"Errors", "Invocations"} and {m[4] for m in metrics} == {300}
        assert expression == "IF(invocations >= 20, 100 * FILL(errors, 0) / invocations, 0)"
        assert alarm.inputs["threshold"] == 5


OWN_SIGNALS = {
    "kbsync": ("IngestionJobsStarted", "FollowUpsSent", "FollowUpsExhausted", "ObjectsCreated", "MessagesReceived"),
    "eventproc": ("InvocationLatency", "InvocationThrottles", "ResultsStored", "MessagesReceived"),
    "fileingest": ("FilesLoaded", "FilesSkipped", "RowsInserted", "MessagesReceived"),
    "batchinf": ("ExecutionsStarted", "RecordsSharded", "RecordsSucceeded", "JobsSubmitted", "InvocationLatency",
                 "SEARCH('{AWS/States,MapRunArn} MapRunArn=ai-pipelines-"),
}


def test_dashboards_show_each_pipelines_own_signals_and_each_functions_limits(
        exported: tuple[Synthesis, list[ResourceRecord]]) -> None:
    synthesis, records = exported
    functions = {r.inputs["name"]: r.inputs for r in records if r.type == "aws:lambda/function:Function"}
    for pipeline, (dashboard,) in by_pipeline(records, DASHBOARD).items():
        body = dashboard.inputs["dashboardBody"]
        assert [s for s in OWN_SIGNALS[pipeline] if s not in body] == []
        drawn = list(widgets(dashboard))
        for name, function in functions.items():
            if not name.startswith(f"{synthesis.project}-{synthesis.stack}-{pipeline}-") or name.endswith("-migrate"):
                continue
            duration = key("AWS/Lambda", "Duration", {"FunctionName": name}, "Maximum", 60)
            assert any(duration in w.metrics and function["timeout"] * 1000 in w.lines for w in drawn), name
            if function.get("reservedConcurrentExecutions", -1) >= 0:  # the provider's -1: unreserved
                concurrency = key("AWS/Lambda", "ConcurrentExecutions", {"FunctionName": name}, "Maximum", 60)
                assert any(concurrency in w.metrics and function["reservedConcurrentExecutions"] in w.lines
                           for w in drawn), name
