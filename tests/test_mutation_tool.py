"""`make mutation`'s bookkeeping (tools/mutation.py): which mutants a re-check runs, and when it must run them all."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tools import mutation


@dataclass
class _Mutation:
    module_path: str
    operator_name: str
    occurrence: int


@dataclass
class _Item:
    job_id: str
    mutations: list[_Mutation]


@dataclass
class _Db:
    pending_work_items: list[_Item]
    results: dict[str, Any] = field(default_factory=dict)

    def set_result(self, job_id: str, result: Any) -> None:
        self.results[job_id] = result


def test_a_recheck_runs_only_the_recorded_survivors() -> None:
    items = [_Item(f"job-{i}", [_Mutation("m.py", op, occurrence)])
             for i, (op, occurrence) in enumerate([("NumberReplacer", 0), ("NumberReplacer", 1), ("AddNot", 0)])]
    db = _Db(items)
    items.append(_Item("job-3", [_Mutation("changed.py", "AddNot", 0)]))
    assert mutation._keep_only(db, [["m.py", "NumberReplacer", 1]], unchanged={"m.py"}) == 2
    assert set(db.results) == {"job-0", "job-2"}  # job-3's module changed: it runs again
    assert all(r.worker_outcome.value == "skipped" for r in db.results.values())


def test_a_changed_module_loses_its_record_and_only_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "rules.py").write_text("LIMIT = 5\n")
    (package / "other.py").write_text("NAME = 'x'\n")
    group = mutation.Group("g", ("pkg",), ("tests/x.py",))
    monkeypatch.setattr(mutation, "ROOT", tmp_path)
    monkeypatch.setattr(mutation, "SURVIVORS", tmp_path / "survivors")
    (tmp_path / "survivors").mkdir()
    (tmp_path / "survivors" / "g.json").write_text(json.dumps(
        {"modules": mutation.module_digests(group, tmp_path), "killed": {"pkg/rules.py": 3, "pkg/other.py": 1},
         "survivors": [["pkg/rules.py", "NumberReplacer", 0]]}))
    recorded = mutation.last_survivors(group)
    assert recorded is not None
    assert mutation.unchanged_modules(group, recorded) == {"pkg/rules.py", "pkg/other.py"}
    (package / "rules.py").write_text("LIMIT = 6\n")  # occurrences are numbered afresh: the record no longer holds
    assert mutation.unchanged_modules(group, recorded) == {"pkg/other.py"}


def test_mutants_in_function_annotations_are_dropped_only_where_never_evaluated() -> None:
    source = ("from __future__ import annotations\n"
              "class Model(BaseModel):\n"
              "    limit: int | None = None\n"  # read by pydantic: mutants here are real
              "def pick(items: list[int] | None, *rest: int) -> int | None:\n"
              "    found: int | None = None\n"
              "    return found or (1 | 2)\n")
    spans = mutation._signature_annotations(source)
    inside = [(4, 26), (4, 41), (4, 53), (5, 15)]  # `list[int] | None`, `*rest: int`, the return's `|`, a local's
    outside = [(3, 15), (6, 23)]  # the class field's `|`, a `|` in an expression
    assert all(any(a <= pos < b for a, b in spans) for pos in inside)
    assert not any(a <= pos < b for a, b in spans for pos in outside)
    assert mutation._signature_annotations(source.split("\n", 1)[1]) == []  # evaluated without the future import


def test_a_removed_decorator_is_named_by_its_line_not_the_blank_line_its_diff_takes_with_it() -> None:
    module = ["class A:", "    x = 1", "", "    @cache", "    def f(self) -> int:", "        return 1"]
    diff = ("--- a/m.py\n+++ b/m.py\n@@ -1,6 +1,4 @@\n class A:\n     x = 1\n-\n-    @cache\n"
            "     def f(self) -> int:\n         return 1")
    assert mutation._changed_line(module, diff, 1) == (4, "@cache", "")
    changed = "--- a/m.py\n+++ b/m.py\n@@ -2,3 +2,3 @@\n     x = 1\n-\n+\n-    @cache\n+    @cache(maxsize=2)\n"
    assert mutation._changed_line(module, changed, 1)[1:] == ("@cache", "@cache(maxsize=2)")
    number = "--- a/m.py\n+++ b/m.py\n@@ -1,2 +1,2 @@\n class A:\n-    x = 1\n+    x = 2\n"
    assert mutation._changed_line(module, number, 1) == (2, "x = 1", "x = 2")



@pytest.mark.parametrize("tree", ["policies/rules", "components/config"])
def test_every_module_of_the_rules_and_the_config_is_mutated(tree: str) -> None:
    """The issue's scope: every rule module and every config module has its mutants run by some group (a group
    names a module or its directory)."""
    covered = {m for g in mutation.load_groups(mutation.load_settings()) for m in g.modules}
    modules = [p.relative_to(mutation.ROOT).as_posix() for p in sorted((mutation.ROOT / tree).glob("*.py"))]
    assert [m for m in modules if m not in covered and tree not in covered] == []


def test_every_listed_equivalent_names_a_line_its_module_still_has() -> None:
    """A row left behind by a change of its line would explain a mutant that no longer exists."""
    stale = [(module, line) for module, line, _ in mutation.equivalents()
             if line not in {text.strip() for text in (mutation.ROOT / module).read_text().splitlines()}]
    assert stale == []
