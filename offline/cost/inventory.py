"""What a synthesized stack holds that a bill depends on, per pipeline: functions (memory, architecture, event
source batch size, log retention), queues, tables, buckets, alarms, dashboards, state machines, schedules, keys
and secrets. Read from the resource records only: the stack's config reaches them as inputs and environment."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from offline.model import ResourceRecord
from offline.synth import Synthesis

HOURS_PER_MONTH = 730.0  # AWS's monthly convention
DAYS_PER_MONTH = HOURS_PER_MONTH / 24
# The pipeline component types and the `pipeline` tag their resources carry.
PIPELINES = {"KnowledgeBaseSync": "kbsync", "EventProcessor": "eventproc", "FileIngestion": "fileingest",
             "BatchInference": "batchinf"}
SHARED = "shared"
# Custom metrics each handler publishes on its normal path (Powertools metrics, one dimension: the service), from
# handlers/*: a metric that appears only on failures is not billed in a month without them.
CUSTOM_METRICS = {
    "kb_sync.app.handler": ("MessagesReceived", "ScheduledRuns", "IngestionJobsStarted", "ObjectsCreated",
                            "ObjectsRemoved", "BurstsDeferred", "DocumentsSubmittedCreated",
                            "DocumentsSubmittedRemoved", "DirectDocumentsDone", "IngestionJobsCompleted",
                            "IngestionDocumentsFailed"),
    "event_processor.app.handler": ("MessagesReceived", "ResultsStored"),
    "file_ingestion.app.handler": ("MessagesReceived", "FilesLoaded", "RowsInserted", "RowsAlreadyLoaded"),
    "batch_inference.sharder.handler": ("CorpusLines", "RecordsSharded", "LinesRejected", "ShardsWritten"),
    "batch_inference.submitter.handler": ("JobsSubmitted",),
    "batch_inference.completion.handler": ("RecordsSucceeded", "RecordsFailed", "RecordsDuplicates"),
    "batch_inference.sync_worker.handler": ("RecordsSucceeded", "RecordsFailed", "RecordsDuplicates"),
    "batch_inference.finalizer.handler": ("RunsCompleted",),
    "batch_inference.reconciler.handler": ("MissedCompletions", "MissedRunEndings"),
}


@dataclass(frozen=True)
class Function:
    name: str  # logical name without the pipeline prefix: "worker", "sharder"
    physical: str
    memory_mb: float
    architecture: str
    handler: str
    environment: dict[str, str]
    batch_size: int | None = None  # of its SQS event source, if it has one
    log_retention_days: float | None = None

    @property
    def custom_metrics(self) -> tuple[str, ...]:
        return CUSTOM_METRICS.get(self.handler, ())


@dataclass(frozen=True)
class Table:
    name: str
    pitr: bool
    ttl: bool


@dataclass
class Pipeline:
    key: str
    functions: dict[str, Function] = field(default_factory=dict)
    queues: list[str] = field(default_factory=list)
    event_sources: int = 0
    tables: dict[str, Table] = field(default_factory=dict)
    buckets: list[str] = field(default_factory=list)
    buses: list[str] = field(default_factory=list)
    alarms: int = 0
    alarm_metrics: int = 0  # what CloudWatch bills: a metric-math alarm is billed for each metric it reads
    dashboards: int = 0
    kms_keys: int = 0
    interface_endpoint_zones: int = 0  # an interface endpoint is billed per hour in each of its subnets' zones
    secrets: int = 0
    schedules: dict[str, float] = field(default_factory=dict)  # logical name -> invocations per month
    state_machines: list[dict[str, Any]] = field(default_factory=list)  # ASL definitions

    def function(self, name: str) -> Function:
        try:
            return self.functions[name]
        except KeyError:
            raise KeyError(f"{self.key}: no function {name!r} (functions: {', '.join(self.functions)})") from None

    def table(self, name: str) -> Table | None:
        return self.tables.get(name)


@dataclass
class Inventory:
    project: str
    stack: str
    region: str
    pipelines: dict[str, Pipeline]

    def get(self, key: str) -> Pipeline | None:
        return self.pipelines.get(key)


def inventory(synthesis: Synthesis) -> Inventory:
    pipelines: dict[str, Pipeline] = {}
    custom = [r for r in synthesis.resources if r.custom]
    for record in custom:
        key = pipeline_of(record)
        if key is not None:
            _add(pipelines.setdefault(key, Pipeline(key)), _short(record.name, key), record)
    _attach(pipelines, custom)
    return Inventory(project=synthesis.project, stack=synthesis.stack, region=synthesis.account.region,
                     pipelines=pipelines)


def pipeline_of(record: ResourceRecord) -> str | None:
    """The pipeline a resource belongs to: its `pipeline` tag, else the pipeline component above it in its URN."""
    tags = record.inputs.get("tags")
    if isinstance(tags, dict) and isinstance(tags.get("pipeline"), str):
        return str(tags["pipeline"])
    chain = record.urn.split("::")[2] if record.urn.count("::") >= 3 else ""
    for component, key in PIPELINES.items():
        if f":pipelines:{component}$" in chain or chain.endswith(f":pipelines:{component}"):
            return key
    return None


def _short(name: str, key: str) -> str:
    return name.removeprefix(f"{key}-")


def _add(pipeline: Pipeline, name: str, record: ResourceRecord) -> None:
    inputs = record.inputs
    kind = record.type
    if kind == "aws:lambda/function:Function":
        variables = (inputs.get("environment") or {}).get("variables") or {}
        pipeline.functions[name] = Function(
            name=name, physical=str(inputs.get("name", name)), memory_mb=float(inputs.get("memorySize", 128)),
            architecture=str((inputs.get("architectures") or ["x86_64"])[0]), handler=str(inputs.get("handler", "")),
            environment={str(k): str(v) for k, v in variables.items()})
    elif kind == "aws:sqs/queue:Queue":
        pipeline.queues.append(name)
    elif kind == "aws:dynamodb/table:Table":
        table = Table(name=name, pitr=bool((inputs.get("pointInTimeRecovery") or {}).get("enabled")),
                      ttl=bool((inputs.get("ttl") or {}).get("enabled")))
        pipeline.tables[name.removesuffix("-table")] = table
    elif kind == "aws:s3/bucket:Bucket":
        pipeline.buckets.append(name)
    elif kind == "aws:cloudwatch/eventBus:EventBus":
        pipeline.buses.append(name)
    elif kind == "aws:cloudwatch/metricAlarm:MetricAlarm":
        pipeline.alarms += 1
        pipeline.alarm_metrics += alarm_metrics(inputs)
    elif kind == "aws:cloudwatch/dashboard:Dashboard":
        pipeline.dashboards += 1
    elif kind == "aws:kms/key:Key":
        pipeline.kms_keys += 1
    elif kind == "aws:ec2/vpcEndpoint:VpcEndpoint":
        if inputs.get("vpcEndpointType") == "Interface":  # gateway endpoints (S3, DynamoDB) cost nothing
            pipeline.interface_endpoint_zones += len(inputs.get("subnetIds") or [])
    elif kind == "aws:secretsmanager/secret:Secret":
        pipeline.secrets += 1
    elif kind == "aws:scheduler/schedule:Schedule":
        pipeline.schedules[name] = per_month(str(inputs.get("scheduleExpression", "")))
    elif kind == "aws:sfn/stateMachine:StateMachine":
        definition = inputs.get("definition")
        if isinstance(definition, str):
            pipeline.state_machines.append(json.loads(definition))
        elif isinstance(definition, dict):
            pipeline.state_machines.append(definition)


def alarm_metrics(inputs: dict[str, Any]) -> int:
    """The metrics an alarm is billed for (AWS's CloudWatch pricing: "$0.10 per alarm metric"): one for an alarm on
    a metric, each metric a metric-math alarm reads (its expressions are free)."""
    queries = inputs.get("metricQueries") or []
    return sum(1 for query in queries if isinstance(query, dict) and query.get("metric")) if queries else 1


def _attach(pipelines: dict[str, Pipeline], records: Iterable[ResourceRecord]) -> None:
    """Event source batch sizes and log retention, onto the functions they belong to."""
    for record in records:
        key = pipeline_of(record)
        pipeline = pipelines.get(key or "")
        if pipeline is None:
            continue
        if record.type == "aws:lambda/eventSourceMapping:EventSourceMapping":
            pipeline.event_sources += 1
            _update(pipeline, str(record.inputs.get("functionName")), batch_size=int(record.inputs["batchSize"]))
        elif record.type == "aws:cloudwatch/logGroup:LogGroup":
            name = str(record.inputs.get("name", ""))
            if name.startswith("/aws/lambda/"):
                _update(pipeline, name.removeprefix("/aws/lambda/"),
                        log_retention_days=float(record.inputs.get("retentionInDays") or 0) or None)


def _update(pipeline: Pipeline, physical: str, **changes: Any) -> None:
    for name, function in pipeline.functions.items():
        if function.physical == physical:
            pipeline.functions[name] = Function(**{**function.__dict__, **changes})


_RATE = re.compile(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)")


def per_month(expression: str) -> float:
    """Invocations a month of an EventBridge Scheduler expression: rate() exactly, cron() as once a day, at() once."""
    match = _RATE.fullmatch(expression.strip())
    if match:
        hours = {"minute": 1 / 60, "hour": 1.0, "day": 24.0}[match.group(2).rstrip("s")] * int(match.group(1))
        return HOURS_PER_MONTH / hours
    if expression.startswith("cron("):
        return DAYS_PER_MONTH
    return 1.0 if expression.startswith("at(") else 0.0
