"""docs/reliability.md's table and the tests it names stay in step, and each named test injects its row's fault.

Every test named in a row exists and is decorated with ``faults.injects(<the row's fault>)``
(``tests/support/faults.py``); that decorator fails the test unless a fault injector recorded injecting that fault
while it ran, so a row cannot rest on a test that only claims its fault. Every ``test_reliability_*`` test is named
in the table, and every pipeline lists every fault once (and
only the faults ``tests/support/faults.py`` knows).
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

import pytest

from tests.support import faults

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "docs" / "reliability.md"
FAULTS = faults.FAULTS


def rows() -> list[dict[str, str]]:
    """The rows of the first table (the reliability table), up to the first heading after it."""
    parsed = []
    for line in TABLE.read_text().split("\n## ", 1)[0].splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0] not in ("fault", "---"):
            parsed.append(dict(zip(("fault", "pipeline", "outcome", "test"), cells, strict=True)))
    return parsed


def named_tests(row: dict[str, str]) -> list[str]:
    """The tests of a row's test cell: one or more `path::name`, comma separated."""
    return re.findall(r"`([^`]+)`", row["test"])


def defined_tests(path: Path) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(path.read_text())
    return {node.name: node for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


def claimed_faults(function: ast.FunctionDef) -> list[str]:
    """The faults a test's ``@faults.injects("...")`` decorators claim."""
    claimed = []
    for decorator in function.decorator_list:
        if isinstance(decorator, ast.Call) and decorator.args and isinstance(decorator.args[0], ast.Constant):
            func = decorator.func
            if (func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")) == "injects":
                claimed.append(str(decorator.args[0].value))
    return claimed


def test_every_named_test_exists() -> None:
    missing = []
    for row in rows():
        if row["test"] == "n/a":
            assert row["outcome"].startswith("not applicable"), f"{row['fault']}: n/a needs a reason"
            continue
        assert named_tests(row), f"{row['pipeline']} / {row['fault']}: no test named"
        for named in named_tests(row):
            path, _, name = named.partition("::")
            if not (ROOT / path).exists() or name not in defined_tests(ROOT / path):
                missing.append(named)
    assert missing == []


def test_every_named_test_injects_its_rows_fault() -> None:
    wrong = []
    for row in rows():
        for named in named_tests(row):
            path, _, name = named.partition("::")
            function = defined_tests(ROOT / path).get(name)
            if function is not None and row["fault"] not in claimed_faults(function):
                wrong.append(f"{named} ({row['pipeline']}): claims {claimed_faults(function)}, not {row['fault']!r}")
    assert wrong == []


def test_every_pipeline_lists_every_fault_once() -> None:
    by_pipeline: dict[str, list[str]] = defaultdict(list)
    for row in rows():
        by_pipeline[row["pipeline"]].append(row["fault"])
    assert by_pipeline, "the table is empty"
    for pipeline, listed in by_pipeline.items():
        common = [fault for fault in listed if fault in FAULTS]
        assert sorted(common) == sorted(FAULTS), pipeline
        assert set(listed) <= faults.KNOWN and len(set(listed)) == len(listed), pipeline


def test_every_reliability_test_is_in_the_table() -> None:
    named = {test for row in rows() for test in named_tests(row)}
    unlisted = [f"{path.relative_to(ROOT)}::{name}" for path in (ROOT / "tests").rglob("test_*.py")
                for name in defined_tests(path) if name.startswith("test_reliability_")
                and f"{path.relative_to(ROOT)}::{name}" not in named]
    assert unlisted == []


def test_a_test_that_claims_a_fault_it_never_injects_fails() -> None:
    @faults.injects("downstream outage")
    def claims_only() -> None:
        pass

    @faults.injects("downstream outage")
    def injects_another() -> None:
        faults.injected("downstream throttling", "a throttled call")

    @faults.injects("downstream outage")
    def injects_it() -> str:
        faults.injected("downstream outage", "the dependency is down")
        return "done"

    with pytest.raises(faults.FaultNotInjectedError, match="never injected it"):
        claims_only()
    with pytest.raises(faults.FaultNotInjectedError, match="downstream throttling"):
        injects_another()
    assert injects_it() == "done"
    faults.injected("downstream outage", "outside any claiming test: recorded nowhere")
    with pytest.raises(ValueError, match="unknown fault"):
        faults.injects("a fault the table does not know")
