"""The data flow of a stack as a Mermaid flowchart, derived from property dependencies.

Edges come from the resources that connect others, read through the engine's property dependencies (never by
matching ARNs): a bucket notification links its bucket to its queues, an event source mapping links its queue to
its function, a queue's redrive policy links it to its DLQ, a schedule links to what it invokes, a function to
what its environment names. Nodes are grouped by pipeline; the output is sorted, so the same stack always gives
the same text and the README's diagram can be checked in a test.

    python -m offline preview --stack dev --graph dev.mmd
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from offline.model import ResourceRecord
from offline.report import STACK_LEVEL, pipelines
from offline.synth import Synthesis, synthesize

README_BEGIN = "<!-- architecture:begin -->"
README_END = "<!-- architecture:end -->"

SELF: tuple[str, ...] = ()  # in a Flow: the connecting resource is itself the endpoint


@dataclass(frozen=True)
class Kind:
    id_prefix: str
    label: str
    shape: str  # a Mermaid node shape with `{}` for the quoted label


KINDS: dict[str, Kind] = {
    "aws:s3/bucket:Bucket": Kind("bucket", "S3 bucket", "[({})]"),
    "aws:s3/bucketV2:BucketV2": Kind("bucket", "S3 bucket", "[({})]"),
    "aws:sqs/queue:Queue": Kind("queue", "SQS queue", "[[{}]]"),
    "aws:lambda/function:Function": Kind("fn", "Lambda function", "({})"),
    "aws:scheduler/schedule:Schedule": Kind("schedule", "schedule", "{{{{{}}}}}"),
    "aws:cloudwatch/eventBus:EventBus": Kind("bus", "event bus", "[/{}/]"),
    "aws:cloudwatch/eventRule:EventRule": Kind("rule", "event rule", "{{{{{}}}}}"),
    "aws:sfn/stateMachine:StateMachine": Kind("sfn", "state machine", "[{}]"),
    "aws:dynamodb/table:Table": Kind("table", "DynamoDB table", "[({})]"),
    "aws:sns/topic:Topic": Kind("topic", "SNS topic", "[/{}/]"),
    "aws:secretsmanager/secret:Secret": Kind("secret", "secret", "[{}]"),
}


@dataclass(frozen=True)
class Flow:
    """Data moves from the resources named in `sources` to those in `targets` (property names of the connector)."""

    sources: tuple[str, ...]
    targets: tuple[str, ...]
    label: str


FLOWS: dict[str, tuple[Flow, ...]] = {
    "aws:s3/bucketNotification:BucketNotification": (
        Flow(("bucket",), ("queues", "lambdaFunctions", "topics"), "notification"),),
    "aws:lambda/eventSourceMapping:EventSourceMapping": (Flow(("eventSourceArn",), ("functionName",), "batches"),),
    "aws:sqs/queue:Queue": (Flow(SELF, ("redrivePolicy",), "dead letters"),),
    "aws:scheduler/schedule:Schedule": (Flow(SELF, ("target",), "invokes"),),
    "aws:cloudwatch/eventRule:EventRule": (Flow(("eventBusName",), SELF, "matches"),),
    "aws:cloudwatch/eventTarget:EventTarget": (Flow(("rule",), ("arn",), "delivers"),
                                               Flow(("rule",), ("deadLetterConfig",), "dead letters")),
    "aws:lambda/function:Function": (Flow(SELF, ("environment",), "uses"),),
    "aws:sfn/stateMachine:StateMachine": (Flow(SELF, ("definition",), "task"),),
    "aws:sns/topicSubscription:TopicSubscription": (Flow(("topic",), ("endpoint",), "delivers"),),
    "aws:pipes/pipe:Pipe": (Flow(("source",), ("target",), "pipe"),),
}


@dataclass(frozen=True, order=True)
class Edge:
    source: str  # URNs
    target: str
    label: str


def edges(resources: Sequence[ResourceRecord]) -> list[Edge]:
    """Every data-flow edge between resources of a known kind, deduplicated and sorted."""
    by_urn = {r.urn: r for r in resources}
    # Queues that receive what others could not process or deliver.
    dlqs = {urn for r in resources for prop in ("redrivePolicy", "deadLetterConfig")
            for urn in r.property_dependencies.get(prop, [])}

    def ends(record: ResourceRecord, properties: tuple[str, ...]) -> list[str]:
        urns = [record.urn] if properties == SELF else [
            urn for prop in properties for urn in record.property_dependencies.get(prop, [])]
        return [u for u in urns if u in by_urn and by_urn[u].type in KINDS]

    found: set[Edge] = set()
    for record in resources:
        for flow in FLOWS.get(record.type, ()):
            for source in ends(record, flow.sources):
                for target in ends(record, flow.targets):
                    if source == target:
                        continue
                    # A schedule's target property names both what it invokes and where undeliverable events go.
                    label = "dead letters" if target in dlqs and flow.label == "invokes" else flow.label
                    found.add(Edge(source, target, label))
    return sorted(found)


def mermaid(resources: Sequence[ResourceRecord]) -> str:
    """A Mermaid flowchart: one subgraph per pipeline, then the edges."""
    flow = edges(resources)
    by_urn = {r.urn: r for r in resources}
    in_flow = {urn for e in flow for urn in (e.source, e.target)}
    pipeline_of = pipelines(resources)
    ids = _node_ids([by_urn[urn] for urn in sorted(in_flow)])

    lines = ["flowchart LR"]
    groups: dict[str, list[str]] = {}
    for urn in in_flow:
        groups.setdefault(pipeline_of.get(urn, STACK_LEVEL), []).append(urn)
    for pipeline in sorted(groups, key=lambda p: (p == STACK_LEVEL, p)):
        nodes = sorted(_node(ids[urn], by_urn[urn]) for urn in groups[pipeline])
        if pipeline == STACK_LEVEL:
            lines += [f"  {node}" for node in nodes]
            continue
        lines.append(f'  subgraph {_safe("pipeline_" + pipeline)}["{pipeline}"]')
        lines += [f"    {node}" for node in nodes]
        lines.append("  end")
    lines += sorted(f"  {ids[e.source]} -->|{e.label}| {ids[e.target]}" for e in flow)
    return "\n".join(lines) + "\n"


def synthesis_graph(synthesis: Synthesis) -> str:
    return mermaid(synthesis.resources)


def readme_block(stack: str = "dev") -> str:
    """The fenced Mermaid block that README.md carries between its architecture markers."""
    return f"```mermaid\n{synthesis_graph(synthesize(stack))}```"


def readme_section(readme: str) -> str:
    """The text between the README's architecture markers (empty if they are missing)."""
    start, end = readme.find(README_BEGIN), readme.find(README_END)
    if start < 0 or end < start:
        return ""
    return readme[start + len(README_BEGIN):end].strip()


def _node(node_id: str, record: ResourceRecord) -> str:
    kind = KINDS[record.type]
    return node_id + kind.shape.format(f'"{record.name}<br/>{kind.label}"')


def _node_ids(records: Sequence[ResourceRecord]) -> dict[str, str]:
    """Readable, stable ids (`queue_kbsync_changes`), made unique if two resources would share one."""
    ids: dict[str, str] = {}
    taken: set[str] = set()
    for record in sorted(records, key=lambda r: r.urn):
        base = _safe(f"{KINDS[record.type].id_prefix}_{record.name}")
        node_id, n = base, 1
        while node_id in taken:
            n += 1
            node_id = f"{base}_{n}"
        taken.add(node_id)
        ids[record.urn] = node_id
    return ids


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text)
