"""What `python -m offline preview` prints: a report for people, or (with `--json`) one for machines.

The human report answers "what would this stack create, and does the policy pack let it through?" at a glance:
resources per pipeline and type, the violations, the policies that could not run because a value was unknown
(in a shipped stack that list must be empty), and one summary line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from offline.model import AnalysisReport, ResourceRecord
from offline.synth import Synthesis

STACK_TYPE = "pulumi:pulumi:Stack"
STACK_LEVEL = "(stack)"  # the pipeline column of resources that belong to no pipeline


@dataclass
class PreviewResult:
    synthesis: Synthesis
    analysis: AnalysisReport
    elapsed_s: float

    @property
    def passed(self) -> bool:
        return not self.analysis.mandatory


def json_report(result: PreviewResult) -> dict[str, Any]:
    """The machine-readable report; its keys and their order are a public contract."""
    return {
        "stack": result.synthesis.stack,
        "mode": result.synthesis.mode,
        "elapsed_s": round(result.elapsed_s, 3),
        "resources": [{"urn": r.urn, "type": r.type, "name": r.name, "parent": r.parent, "custom": r.custom}
                      for r in result.synthesis.resources],
        "policies": [{"name": p.name, "enforcement": p.enforcement} for p in result.analysis.policies],
        "violations": [{"policy": v.policy, "enforcement": v.enforcement, "urn": v.urn, "message": v.message}
                       for v in result.analysis.violations],
        "skipped": [{"policy": s.policy, "urn": s.urn, "message": s.message} for s in result.analysis.skipped],
    }


def pipelines(resources: Sequence[ResourceRecord]) -> dict[str, str]:
    """The pipeline of each resource (URN -> pipeline), the root stack left out.

    A resource's own `pipeline` tag decides. An untagged one (a component, a KMS alias, a policy) belongs to the
    pipeline that the tagged resources under its top-level component mostly carry, or else is named after that
    component; an untagged custom resource registered directly under the stack is stack-level.
    """
    by_urn = {r.urn: r for r in resources}

    def top_level(record: ResourceRecord) -> ResourceRecord:
        while record.parent in by_urn and by_urn[record.parent].type != STACK_TYPE:
            record = by_urn[record.parent]
        return record

    tops = {r.urn: top_level(r) for r in resources if r.type != STACK_TYPE}
    votes: dict[str, Counter[str]] = {}
    for urn, top in tops.items():
        if tag := _tag(by_urn[urn]):
            votes.setdefault(top.urn, Counter())[tag] += 1

    def pipeline(urn: str) -> str:
        if tag := _tag(by_urn[urn]):
            return tag
        top = tops[urn]
        if top.urn in votes:
            return votes[top.urn].most_common(1)[0][0]
        return STACK_LEVEL if top.custom else top.name

    return {urn: pipeline(urn) for urn in tops}


def _tag(record: ResourceRecord) -> str:
    tags = record.inputs.get("tags")
    return str(tags.get("pipeline", "")) if isinstance(tags, dict) else ""


def text_report(result: PreviewResult) -> str:
    synthesis, analysis = result.synthesis, result.analysis
    sections = [_resource_table(synthesis), _violation_table(synthesis, analysis), _skipped_list(synthesis, analysis),
                summary_line(result)]
    return "\n\n".join(s for s in sections if s) + "\n"


def summary_line(result: PreviewResult) -> str:
    synthesis, analysis = result.synthesis, result.analysis
    resources = [r for r in synthesis.resources if r.type != STACK_TYPE]
    verdict = "PASS" if result.passed else "FAIL"
    return (f"{verdict}: stack {synthesis.stack} ({synthesis.mode}): {len(resources)} resources, "
            f"{len(analysis.policies)} policies, {len(analysis.violations)} violations "
            f"({len(analysis.mandatory)} mandatory), {len(analysis.skipped)} skipped for unknown values, "
            f"{result.elapsed_s:.1f} s")


def _resource_table(synthesis: Synthesis) -> str:
    """Types down, pipelines across, totals on the last row and column."""
    pipeline_of = pipelines(synthesis.resources)
    counts = Counter((display_type(r.type), pipeline_of[r.urn]) for r in synthesis.resources
                     if r.urn in pipeline_of)
    columns = sorted({p for _, p in counts}, key=lambda p: (p == STACK_LEVEL, p))
    types = sorted({t for t, _ in counts})
    rows = [[t, *(str(counts[t, p] or "") for p in columns), str(sum(counts[t, p] for p in columns))]
            for t in types]
    totals = ["total", *(str(sum(counts[t, p] for t in types)) for p in columns), str(sum(counts.values()))]
    return "Resources per pipeline and type\n" + _table(["type", *columns, "total"], [*rows, totals],
                                                         numeric_from=1)


def _violation_table(synthesis: Synthesis, analysis: AnalysisReport) -> str:
    if not analysis.violations:
        return "Policy violations: none"
    names = _display_names(synthesis)
    descriptions = {p.name: p.description for p in analysis.policies}
    order = {"mandatory": 0, "remediate": 1, "advisory": 2}
    violations = sorted(analysis.violations, key=lambda v: (order.get(v.enforcement, 3), v.policy, v.urn))
    rows = [[v.policy, v.enforcement, names.get(v.urn, v.urn or STACK_LEVEL),
             _specific(v.message, descriptions.get(v.policy, ""))] for v in violations]
    return (f"Policy violations ({len(analysis.violations)})\n"
            + _table(["policy", "enforcement", "resource", "message"], rows))


def _skipped_list(synthesis: Synthesis, analysis: AnalysisReport) -> str:
    if not analysis.skipped:
        return "Policies skipped because a value was unknown: none"
    names = _display_names(synthesis)
    # The SDK's note reads "can't run policy 'x' from policy pack 'y' during preview: <what was unknown>".
    rows = [[s.policy, names.get(s.urn, s.urn or STACK_LEVEL), s.message.partition(" during preview: ")[2] or s.message]
            for s in sorted(analysis.skipped, key=lambda s: (s.policy, s.urn))]
    return (f"Policies skipped because a value was unknown ({len(analysis.skipped)})\n"
            + _table(["policy", "resource", "message"], rows))


def _specific(message: str, description: str) -> str:
    """The SDK prefixes each message with the policy's description; the table shows only what is specific."""
    head, _, rest = message.partition("\n")
    return rest.strip() if description and head.strip() == description.strip() and rest.strip() else message


def _display_names(synthesis: Synthesis) -> dict[str, str]:
    return {r.urn: f"{r.name} ({display_type(r.type)})" for r in synthesis.resources}


def display_type(type_: str) -> str:
    """The type as the Pulumi CLI displays it: `aws:sqs/queue:Queue` -> `aws:sqs:Queue`."""
    package, module, name = [*type_.split(":"), "", ""][:3]
    return f"{package}:{module.split('/')[0]}:{name}" if name else type_


def _table(header: Sequence[str], rows: Iterable[Sequence[str]], numeric_from: int | None = None) -> str:
    """A plain-text table; the last column is never padded, so long messages don't widen every line."""
    lines = [list(header), *(list(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]

    def cell(i: int, text: str) -> str:
        if i == len(header) - 1 and numeric_from is None:
            return text
        numeric = numeric_from is not None and i >= numeric_from
        return text.rjust(widths[i]) if numeric else text.ljust(widths[i])

    def render(line: list[str]) -> str:
        # A multi-line last cell continues on the next lines, aligned under its column.
        *first, last = line
        head, *more = last.splitlines() or [""]
        text = "  " + "  ".join(cell(i, t) for i, t in enumerate([*first, head])).rstrip()
        indent = " " * (2 + sum(widths[:-1]) + 2 * len(first))
        return "\n".join([text, *(indent + extra for extra in more)])

    return "\n".join(render(line) for line in lines)
