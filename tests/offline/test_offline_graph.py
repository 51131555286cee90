"""The data-flow graph: edges from property dependencies, grouped by pipeline, deterministic."""

from __future__ import annotations

import random
from pathlib import Path

from offline.graph import Edge, edges, mermaid, readme_block, readme_section
from offline.model import ResourceRecord
from offline.synth import Synthesis

README = Path(__file__).resolve().parents[2] / "README.md"


def test_edges_follow_property_dependencies(violating_preview: Synthesis) -> None:
    urn = {r.name: r.urn for r in violating_preview.resources}
    assert edges(violating_preview.resources) == sorted([
        Edge(urn["orders-inbox"], urn["orders-queue"], "notification"),
        Edge(urn["orders-queue"], urn["orders-worker"], "batches"),
        Edge(urn["orders-queue"], urn["orders-dlq"], "dead letters"),
        Edge(urn["orders-nightly"], urn["orders-worker"], "invokes"),
    ])


def test_mermaid_groups_by_pipeline(violating_preview: Synthesis) -> None:
    text = mermaid(violating_preview.resources)
    assert text.startswith("flowchart LR\n")
    assert '  subgraph pipeline_orders["orders"]\n' in text
    assert '    queue_orders_queue[["orders-queue<br/>SQS queue"]]\n' in text
    assert "  bucket_orders_inbox -->|notification| queue_orders_queue\n" in text
    assert "role" not in text  # only resources data flows through


def test_output_does_not_depend_on_registration_order(violating_preview: Synthesis) -> None:
    shuffled = list(violating_preview.resources)
    random.Random(7).shuffle(shuffled)
    assert mermaid(shuffled) == mermaid(violating_preview.resources)


def test_readme_section_between_markers() -> None:
    text = "intro\n<!-- architecture:begin -->\n```mermaid\nflowchart LR\n```\n<!-- architecture:end -->\nrest"
    assert readme_section(text) == "```mermaid\nflowchart LR\n```"
    assert readme_section("no markers") == ""


def test_readme_architecture_diagram_is_current() -> None:
    wanted = readme_block("dev").strip()
    assert readme_section(README.read_text()) == wanted, (
        "README.md's architecture diagram is out of date: run `make docs`")


def test_event_bus_flows_and_target_dead_letters() -> None:
    def record(type_: str, name: str, **deps: list[str]) -> ResourceRecord:
        return ResourceRecord(urn=f"urn:{name}", type=type_, name=name, custom=True,
                              inputs={"tags": {"pipeline": "events"}}, property_dependencies=deps)

    resources = [
        record("aws:cloudwatch/eventBus:EventBus", "bus"),
        record("aws:cloudwatch/eventRule:EventRule", "rule", eventBusName=["urn:bus"]),
        record("aws:sqs/queue:Queue", "work"),
        record("aws:sqs/queue:Queue", "undelivered"),
        record("aws:cloudwatch/eventTarget:EventTarget", "target", rule=["urn:rule"], arn=["urn:work"],
               deadLetterConfig=["urn:undelivered"]),
    ]
    assert edges(resources) == [Edge("urn:bus", "urn:rule", "matches"),
                                Edge("urn:rule", "urn:undelivered", "dead letters"),
                                Edge("urn:rule", "urn:work", "delivers")]
    assert "target" not in mermaid(resources)  # connectors are edges, not nodes
