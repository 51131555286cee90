"""docs/reliability.md names real tests, every reliability test is in it, and every pipeline covers every fault."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "docs" / "reliability.md"
FAULTS = {
    "poison message", "duplicate delivery", "concurrent duplicate",
    "crash after the side effect, before the acknowledgement", "downstream throttling", "downstream outage",
    "database down mid-batch", "partial PutEvents failure", "missed completion event",
    "expired visibility during a slow batch",
}
# Faults particular to one pipeline, listed for it beside the common ones.
PIPELINE_FAULTS = {"event processing": {"crash between PutEvents and the publication mark"}}


def rows() -> list[dict[str, str]]:
    parsed = []
    for line in TABLE.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] not in ("fault", "---"):
            parsed.append(dict(zip(("fault", "pipeline", "outcome", "test"), cells, strict=True)))
    return parsed


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.name.startswith("test_")}


def test_every_named_test_exists() -> None:
    missing = []
    for row in rows():
        if row["test"] == "n/a":
            assert row["outcome"].startswith("not applicable"), f"{row['fault']}: n/a needs a reason"
            continue
        path, _, name = row["test"].strip("`").partition("::")
        if not (ROOT / path).exists() or name not in defined_tests(ROOT / path):
            missing.append(row["test"])
    assert missing == []


def test_every_pipeline_lists_every_fault_once() -> None:
    by_pipeline: dict[str, list[str]] = defaultdict(list)
    for row in rows():
        by_pipeline[row["pipeline"]].append(row["fault"])
    assert by_pipeline, "the table is empty"
    for pipeline, faults in by_pipeline.items():
        assert sorted(faults) == sorted(FAULTS | PIPELINE_FAULTS.get(pipeline, set())), pipeline


def test_every_reliability_test_is_in_the_table() -> None:
    named = {row["test"].strip("`") for row in rows()}
    unlisted = [f"{path.relative_to(ROOT)}::{name}" for path in (ROOT / "tests").rglob("test_*.py")
                for name in defined_tests(path) if name.startswith("test_reliability_")
                and f"{path.relative_to(ROOT)}::{name}" not in named]
    assert unlisted == []
