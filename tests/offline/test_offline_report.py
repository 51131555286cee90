"""The human report: pipelines, per-type counts, violation table, skipped policies, one summary line."""

from __future__ import annotations

from offline.model import AnalysisReport, PolicyInfo, Skipped, Violation
from offline.report import STACK_LEVEL, PreviewResult, display_type, pipelines, summary_line, text_report
from offline.synth import Synthesis, synthesize


def _analysis(synthesis: Synthesis) -> AnalysisReport:
    worker, policy = synthesis.named("orders-worker"), synthesis.named("orders-queue-policy")
    return AnalysisReport(
        policies=[PolicyInfo("timeouts", "mandatory"), PolicyInfo("tags", "advisory"), PolicyInfo("tls", "mandatory")],
        violations=[Violation("tags", "advisory", worker.urn, "no owner tag"),
                    Violation("timeouts", "mandatory", worker.urn, "timeout 600 s exceeds the maximum of 300 s")],
        skipped=[Skipped("tls", policy.urn, "string value at .policy can't be known during preview")])


def test_every_resource_of_the_fixture_is_in_its_pipeline(violating_preview: Synthesis) -> None:
    assignment = pipelines(violating_preview.resources)
    assert set(assignment.values()) == {"orders"}
    assert len(assignment) == len(violating_preview.resources) - 1  # the root stack is no pipeline's


def test_untagged_resources_follow_their_component_and_stack_level_ones_are_named_so() -> None:
    dev = synthesize("dev")
    names = {r.urn: r.name for r in dev.resources}
    assignment = {names[urn]: pipeline for urn, pipeline in pipelines(dev.resources).items()}
    assert assignment["kbsync"] == "kbsync"                    # the pipeline component (no tags of its own)
    assert assignment["shared-alarms-key-alias"] == "shared"   # an untagged resource inside a component
    notifications = [name for name in assignment if name.endswith("-notifications")]
    assert notifications and {assignment[n] for n in notifications} == {STACK_LEVEL}


def test_text_report_names_every_violation_and_skipped_policy(violating_preview: Synthesis) -> None:
    text = text_report(PreviewResult(violating_preview, _analysis(violating_preview), 1.25))
    assert "Resources per pipeline and type" in text and "aws:sqs:Queue" in text
    lines = text.splitlines()
    mandatory = next(i for i, line in enumerate(lines) if "timeouts" in line and "mandatory" in line)
    advisory = next(i for i, line in enumerate(lines) if "tags" in line and "advisory" in line)
    assert mandatory < advisory  # what blocks comes first
    assert "orders-worker (aws:lambda:Function)" in lines[mandatory]
    assert any("tls" in line and "orders-queue-policy" in line and "can't be known" in line for line in lines)
    assert lines[-1].startswith("FAIL: stack violating (preview): 10 resources, 3 policies, 2 violations "
                                "(1 mandatory), 1 skipped for unknown values")


def test_clean_report_says_none_and_passes(violating_update: Synthesis) -> None:
    result = PreviewResult(violating_update, AnalysisReport([PolicyInfo("x", "mandatory")], [], []), 0.5)
    text = text_report(result)
    assert "Policy violations: none" in text and "Policies skipped because a value was unknown: none" in text
    assert summary_line(result).startswith("PASS: stack violating (update)")


def test_display_type_is_the_clis() -> None:
    assert display_type("aws:sqs/queue:Queue") == "aws:sqs:Queue"
    assert display_type("ai-pipelines:blocks:QueueWorker") == "ai-pipelines:blocks:QueueWorker"
