"""Mutation testing (`make mutation`): cosmic-ray over the modules of `[tool.mutation]` in pyproject.toml.

Each group of that section names modules and the test files that cover them; every mutant of a group's modules is
run against that group's tests alone. Mutants are made and tested in copies of the working tree under
`.build/mutation/` (one per worker), never in the tree itself. Printed at the end: killed/total, and each surviving
mutant with its diff, marked as equivalent when `docs/mutation-survivors.md` lists it with the reason. The exit
status is 1 when a survivor is not listed there, or a group's tests fail before any mutation.

    python -m tools.mutation                         # every group, one worker per CPU
    python -m tools.mutation --group policies-sqs    # some groups (repeat --group)
    python -m tools.mutation --list                  # the groups, their modules and tests
    python -m tools.mutation --survivors --group X   # only the mutants X's last full run let survive

`--survivors` is for the loop of writing a test and checking that it kills its mutant: a full run records its
survivors (`.build/mutation/survivors/<group>.json`, with a digest of each module), and a re-check tests only
those, counting every other mutant of that run as killed still. Tests only grow in that loop; a module that changed
since has its mutants numbered afresh, so all of that module's mutants run again.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".build" / "mutation"
SURVIVORS_DOC = ROOT / "docs" / "mutation-survivors.md"
SURVIVORS = WORK / "survivors"
SKIPPED_TOP_LEVEL = {".git", ".venv", ".build", ".hypothesis", ".mypy_cache", ".ruff_cache", ".pytest_cache", "out"}
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Group:
    name: str
    modules: tuple[str, ...]
    tests: tuple[str, ...]


@dataclass
class Mutant:
    group: str
    module: str
    operator: str
    occurrence: int
    line: int
    source_line: str
    mutated_line: str
    outcome: str  # killed, survived, timeout, incompetent
    diff: str
    equivalent_reason: str | None = None


@dataclass
class GroupResult:
    group: Group
    seconds: float = 0.0
    baseline_seconds: float = 0.0
    error: str | None = None
    mutants: list[Mutant] = field(default_factory=list)
    killed_before: int = 0  # in a re-check: mutants the last full run killed, not run again


def load_settings() -> dict[str, Any]:
    settings: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutation"]
    return settings


def load_groups(settings: dict[str, Any]) -> list[Group]:
    return [Group(g["name"], tuple(g["modules"]), tuple(g["tests"])) for g in settings["group"]]


def equivalents() -> dict[tuple[str, str, str], str]:
    """(module, line, line as mutated) -> why that mutant is equivalent (docs/mutation-survivors.md's table)."""
    listed: dict[tuple[str, str, str], str] = {}
    if not SURVIVORS_DOC.exists():
        return listed
    for row in SURVIVORS_DOC.read_text().splitlines():
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", row.strip().strip("|"))]
        if len(cells) == 4 and cells[0].startswith("`") and cells[1].startswith("`"):
            module, line, mutated = (cell.strip("`").replace("\\|", "|") for cell in cells[:3])
            listed[(module, line, mutated)] = cells[3]
    return listed


def tree_files() -> list[str]:
    """Tracked files and untracked ones git does not ignore: the working tree as it is now."""
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT, check=True,
                         capture_output=True).stdout.decode()
    return [p for p in out.split("\0") if p and p.split("/", 1)[0] not in SKIPPED_TOP_LEVEL and (ROOT / p).is_file()]


def make_workspace(group: Group, files: list[str]) -> Path:
    # One copy per group, named by it: two `make mutation --group` runs side by side never share a copy.
    workspace = WORK / group.name
    shutil.rmtree(workspace, ignore_errors=True)
    for relative in files:
        target = workspace / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / relative, target)
    pack_venv = ROOT / "policies" / "venv"
    if pack_venv.exists():  # the policy pack's own virtualenv, where the tests' pack process runs
        (workspace / "policies" / "venv").symlink_to(pack_venv)
    return workspace


def test_command(group: Group) -> list[str]:
    return [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *group.tests]


def _config(group: Group, settings: dict[str, Any], timeout: float) -> str:
    command = " ".join(test_command(group))
    modules = ", ".join(json.dumps(m) for m in group.modules)
    excluded = ", ".join(json.dumps(e) for e in settings["exclude-operators"])
    return (f"[cosmic-ray]\nmodule-path = [{modules}]\ntimeout = {timeout:.0f}\nexcluded-modules = []\n"
            f"test-command = {json.dumps(command)}\n\n[cosmic-ray.distributor]\nname = \"local\"\n\n"
            f"[cosmic-ray.filters.operators-filter]\nexclude-operators = [{excluded}]\n")


def _changed_line(module_text: list[str], diff: str, fallback: int) -> tuple[int, str, str]:
    """(line number, the line, the line as mutated) of a mutant's diff. Blank lines are not the change: a removed
    decorator's diff may take the blank line above it away too."""
    removed = added = None
    for diff_line in diff.splitlines():
        text = diff_line[1:].strip()
        match = re.match(r"@@ -(\d+)", diff_line)
        if match:
            fallback = int(match.group(1))
        elif diff_line.startswith("---") or diff_line.startswith("+++"):
            continue
        elif diff_line.startswith("-") and removed is None:
            if text:
                removed = text
            else:
                fallback += 1
        elif diff_line.startswith("+") and added is None and text:
            added = text
        elif diff_line.startswith(" ") and removed is None:
            fallback += 1
    if removed is None:
        removed = module_text[fallback - 1].strip() if 0 < fallback <= len(module_text) else ""
    return fallback, removed, added or ""


def module_digests(group: Group, root: Path | None = None) -> dict[str, str]:
    """Each of the group's module files (relative path) with a digest of its text."""
    root = root or ROOT
    digests = {}
    for module in group.modules:
        path = root / module
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            digests[file.relative_to(root).as_posix()] = hashlib.sha256(file.read_bytes()).hexdigest()
    return digests


def last_survivors(group: Group) -> dict[str, Any] | None:
    """The group's last full run: per module its digest and killed count, and the survivors."""
    path = SURVIVORS / f"{group.name}.json"
    if not path.exists():
        return None
    saved: dict[str, Any] = json.loads(path.read_text())
    return saved if isinstance(saved.get("modules"), dict) else None


def unchanged_modules(group: Group, recorded: dict[str, Any]) -> set[str]:
    """Modules whose text is what the recorded run mutated: their mutants keep their numbers and outcomes."""
    now = module_digests(group)
    return {module for module, digest in recorded["modules"].items() if now.get(module) == digest}


def _signature_annotations(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Spans of a module's function annotations (parameters, returns, annotated locals), when the module has
    `from __future__ import annotations`: those are kept as strings and never evaluated, so a mutant inside one
    (`str | None` to `str & None`) can never be told from the code. Class-level annotations are left alone:
    pydantic and dataclasses read them."""
    tree = ast.parse(source)
    future = any(isinstance(node, ast.ImportFrom) and node.module == "__future__"
                 and any(alias.name == "annotations" for alias in node.names) for node in tree.body)
    if not future:
        return []
    spans = []
    for function in ast.walk(tree):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        arguments = function.args
        annotations = [a.annotation for a in (*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs,
                                              arguments.vararg, arguments.kwarg) if a is not None]
        annotations += [function.returns] if function.returns is not None else []
        annotations += [n.annotation for n in ast.walk(function) if isinstance(n, ast.AnnAssign)]
        spans += [((a.lineno, a.col_offset), (a.end_lineno or a.lineno, a.end_col_offset or 0))
                  for a in annotations if a is not None]
    return spans


def _drop_annotation_mutants(db: Any, workspace: Path) -> int:
    """Mark every pending mutant inside a never-evaluated annotation as done (skipped); return how many."""
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    spans: dict[str, list[tuple[tuple[int, int], tuple[int, int]]]] = {}
    dropped = 0
    for item in list(db.pending_work_items):
        mutation = item.mutations[0]
        module = str(mutation.module_path)
        if module not in spans:
            spans[module] = _signature_annotations((workspace / module).read_text())
        start = tuple(mutation.start_pos)
        if any(first <= start < last for first, last in spans[module]):
            db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output="in an annotation"))
            dropped += 1
    return dropped


def _keep_only(db: Any, survivors: list[list[Any]], unchanged: set[str]) -> int:
    """Mark every pending mutant of an unchanged module that is not in `survivors` as done (skipped); return how
    many. A changed module's mutants all run: its occurrences are numbered afresh."""
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    wanted = {(str(module), operator, int(occurrence)) for module, operator, occurrence in survivors}
    dropped = 0
    for item in list(db.pending_work_items):
        mutation = item.mutations[0]
        identity = (str(mutation.module_path), mutation.operator_name, mutation.occurrence)
        if identity[0] in unchanged and identity not in wanted:
            db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output="killed before"))
            dropped += 1
    return dropped


def run_group(group: Group, workspace: Path, settings: dict[str, Any], recheck: dict[str, Any] | None = None
              ) -> GroupResult:
    from cosmic_ray.work_db import WorkDB, use_db  # a development dependency: imported when mutating only

    result = GroupResult(group)
    started = time.monotonic()
    baseline = subprocess.run(test_command(group), cwd=workspace, capture_output=True, text=True)
    result.baseline_seconds = time.monotonic() - started
    if baseline.returncode != 0:
        result.error = "the tests fail without any mutation:\n" + baseline.stdout[-3000:]
        return result
    timeout = max(float(settings.get("min-timeout", 60)), settings.get("timeout-factor", 4) * result.baseline_seconds)
    state = workspace / ".mutation"
    state.mkdir(exist_ok=True)
    config, session = state / f"{group.name}.toml", state / f"{group.name}.sqlite"
    config.write_text(_config(group, settings, timeout))
    session.unlink(missing_ok=True)
    for step in ([BIN / "cosmic-ray", "init", config, session], [BIN / "cr-filter-operators", session, config],
                 [BIN / "cr-filter-pragma", session], "filter", [BIN / "cosmic-ray", "exec", config, session]):
        if step == "filter":
            with use_db(str(session), WorkDB.Mode.open) as db:
                _drop_annotation_mutants(db, workspace)
                if recheck is not None:
                    unchanged = unchanged_modules(group, recheck)
                    _keep_only(db, recheck["survivors"], unchanged)
                    result.killed_before = sum(int(recheck["killed"].get(m, 0)) for m in unchanged)
            continue
        done = subprocess.run([str(part) for part in step], cwd=workspace, capture_output=True, text=True)
        if done.returncode != 0:
            result.error = f"{step[0]} failed: {done.stderr[-3000:]}"
            return result
    survivors: list[list[Any]] = []
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item, outcome in db.completed_work_items:
            if outcome.worker_outcome == "skipped":
                continue
            mutation = item.mutations[0]
            identity = [str(mutation.module_path), mutation.operator_name, mutation.occurrence]
            module = str(mutation.module_path)
            text = (workspace / module).read_text().splitlines()
            line, source, mutated = _changed_line(text, outcome.diff or "", mutation.start_pos[0])
            kind = str(outcome.test_outcome.value if outcome.test_outcome else outcome.worker_outcome.value)
            if kind == "killed" and outcome.output == "timeout":
                kind = "timeout"
            result.mutants.append(Mutant(group.name, module, mutation.operator_name, mutation.occurrence, line,
                                         source, mutated, kind, outcome.diff or ""))
            if kind == "survived":
                survivors.append(identity)
    result.seconds = time.monotonic() - started
    if recheck is None:
        SURVIVORS.mkdir(parents=True, exist_ok=True)
        killed: dict[str, int] = {}
        for mutant in result.mutants:
            killed[mutant.module] = killed.get(mutant.module, 0) + (mutant.outcome != "survived")
        (SURVIVORS / f"{group.name}.json").write_text(json.dumps(
            {"modules": module_digests(group, workspace), "killed": killed, "survivors": survivors}, indent=1))
    return result


def report(results: list[GroupResult], seconds: float, jobs: int) -> int:
    listed = equivalents()
    mutants = [m for r in results for m in r.mutants]
    for mutant in mutants:
        mutant.equivalent_reason = listed.get((mutant.module, mutant.source_line, mutant.mutated_line))
    survivors = [m for m in mutants if m.outcome == "survived"]
    unexplained = [m for m in survivors if m.equivalent_reason is None]
    before = sum(r.killed_before for r in results)
    killed = before + len(mutants) - len(survivors)
    total_mutants = before + len(mutants)
    print("\nMutation testing (cosmic-ray): killed/total per group")
    for r in results:
        total = r.killed_before + len(r.mutants)
        dead = r.killed_before + sum(1 for m in r.mutants if m.outcome != "survived")
        again = f", {len(r.mutants)} survivors of the last full run re-checked" if r.killed_before else ""
        status = f"ERROR: {r.error}" if r.error else f"{dead}/{total} in {r.seconds:.0f} s{again}"
        print(f"  {r.group.name:<28} {status} (tests {r.baseline_seconds:.1f} s unmutated)")
    for m in survivors:
        label = f"equivalent: {m.equivalent_reason}" if m.equivalent_reason else "SURVIVED"
        print(f"\n{label}\n  {m.module}:{m.line} {m.operator} (occurrence {m.occurrence})\n"
              f"    - {m.source_line}\n    + {m.mutated_line}")
    score = 100.0 * killed / total_mutants if total_mutants else 0.0
    timeouts = sum(1 for m in mutants if m.outcome == "timeout")
    print(f"\nscore: {killed}/{total_mutants} killed ({score:.1f}%; {timeouts} by timeout), "
          f"{len(survivors)} survived ({len(survivors) - len(unexplained)} listed as equivalent, "
          f"{len(unexplained)} unexplained); {seconds / 60:.1f} min with {jobs} workers")
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "last.json").write_text(json.dumps({
        "killed": killed, "total": total_mutants, "seconds": round(seconds), "jobs": jobs,
        "groups": {r.group.name: {"error": r.error, "seconds": round(r.seconds), "rechecked": bool(r.killed_before),
                                  "killed": r.killed_before + sum(1 for m in r.mutants if m.outcome != "survived"),
                                  "total": r.killed_before + len(r.mutants)} for r in results},
        "survivors": [{"module": m.module, "line": m.line, "source": m.source_line, "mutated": m.mutated_line,
                       "operator": m.operator, "equivalent": m.equivalent_reason} for m in survivors]}, indent=2))
    return 1 if unexplained or any(r.error for r in results) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--group", action="append", help="run only this group (repeatable)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="workers (default: one per CPU)")
    parser.add_argument("--list", action="store_true", help="list the groups and exit")
    parser.add_argument("--survivors", action="store_true",
                        help="re-check only the survivors of each group's last full run (modules unchanged)")
    args = parser.parse_args(argv)
    settings = load_settings()
    groups = load_groups(settings)
    if args.list:
        for g in groups:
            print(f"{g.name}: {' '.join(g.modules)}\n    tests: {' '.join(g.tests)}")
        return 0
    if args.group:
        unknown = set(args.group) - {g.name for g in groups}
        if unknown:
            parser.error(f"unknown group(s) {sorted(unknown)}; --list shows them")
        groups = [g for g in groups if g.name in args.group]
    jobs = max(1, min(args.jobs, len(groups)))
    started = time.monotonic()
    files = tree_files()

    def work(group: Group) -> GroupResult:
        recheck = last_survivors(group) if args.survivors else None
        if args.survivors and recheck is None:
            print(f"{group.name}: no full run recorded; running every mutant", flush=True)
        elif recheck is not None:
            changed = sorted(set(module_digests(group)) - unchanged_modules(group, recheck))
            if changed:
                print(f"{group.name}: changed since its full run, all their mutants run: {', '.join(changed)}",
                      flush=True)
        print(f"mutating {group.name} ({', '.join(group.modules)})", flush=True)
        result = run_group(group, make_workspace(group, files), settings, recheck)
        survived = sum(1 for m in result.mutants if m.outcome == "survived")
        print(f"  {group.name}: {len(result.mutants)} mutants, {survived} survived, in {result.seconds:.0f} s"
              + (f" ({result.error.splitlines()[0]})" if result.error else ""), flush=True)
        return result

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(work, groups))
    return report(results, time.monotonic() - started, jobs)


if __name__ == "__main__":
    sys.exit(main())
