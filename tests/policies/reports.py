"""Reading an AnalysisReport in tests."""

from __future__ import annotations

from offline.model import AnalysisReport, Skipped, Violation


def findings(report: AnalysisReport, policy: str) -> list[Violation]:
    return [v for v in report.violations if v.policy == policy]


def only(report: AnalysisReport, policy: str) -> Violation:
    """The single violation of `policy`, failing with the report's violations if there is not exactly one."""
    found = findings(report, policy)
    assert len(found) == 1, f"expected one {policy} violation, got: {[v.message for v in found] or report.violations}"
    return found[0]


def skipped(report: AnalysisReport, policy: str) -> list[Skipped]:
    return [s for s in report.skipped if s.policy == policy]


def text(report: AnalysisReport) -> str:
    return "\n".join(f"{v.policy} {v.enforcement} {v.urn}: {v.message}" for v in report.violations)
