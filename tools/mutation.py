"""Mutation testing (`make mutation`): cosmic-ray over the modules of `[tool.mutation]` in pyproject.toml.

Each group of that section names modules and the test files that cover them; every mutant of a group's modules is
run against that group's tests alone. Mutants are made and tested in copies of the working tree under
`.build/mutation/` (one per worker), never in the tree itself. Printed at the end: killed/total, and each surviving
mutant with its diff, marked as equivalent when `docs/mutation-survivors.md` lists it with the reason. The exit
status is 1 when a survivor is not listed there, or a group's tests fail before any mutation.

    python -m tools.mutation                         # every group, one worker per CPU
    python -m tools.mutation --group policies-sqs    # some groups (repeat --group)
    python -m tools.mutation --list                  # the groups, their modules and tests
"""

from __future__ import annotations

import argparse
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
    """(line number, the line, the line as mutated) of a mutant's diff."""
    removed = added = None
    for diff_line in diff.splitlines():
        match = re.match(r"@@ -(\d+)", diff_line)
        if match:
            fallback = int(match.group(1))
        elif diff_line.startswith("-") and not diff_line.startswith("---"):
            removed = removed if removed is not None else diff_line[1:].strip()
        elif diff_line.startswith("+") and not diff_line.startswith("+++"):
            added = added if added is not None else diff_line[1:].strip()
        elif diff_line.startswith(" ") and removed is None:
            fallback += 1
    if removed is None:
        removed = module_text[fallback - 1].strip() if 0 < fallback <= len(module_text) else ""
    return fallback, removed, added or ""


def run_group(group: Group, workspace: Path, settings: dict[str, Any]) -> GroupResult:
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
                 [BIN / "cr-filter-pragma", session], [BIN / "cosmic-ray", "exec", config, session]):
        done = subprocess.run([str(part) for part in step], cwd=workspace, capture_output=True, text=True)
        if done.returncode != 0:
            result.error = f"{step[0]} failed: {done.stderr[-3000:]}"
            return result
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item, outcome in db.completed_work_items:
            if outcome.worker_outcome == "skipped":
                continue
            mutation = item.mutations[0]
            module = str(mutation.module_path)
            text = (workspace / module).read_text().splitlines()
            line, source, mutated = _changed_line(text, outcome.diff or "", mutation.start_pos[0])
            kind = str(outcome.test_outcome.value if outcome.test_outcome else outcome.worker_outcome.value)
            if kind == "killed" and outcome.output == "timeout":
                kind = "timeout"
            result.mutants.append(Mutant(group.name, module, mutation.operator_name, mutation.occurrence, line,
                                         source, mutated, kind, outcome.diff or ""))
    result.seconds = time.monotonic() - started
    return result


def report(results: list[GroupResult], seconds: float, jobs: int) -> int:
    listed = equivalents()
    mutants = [m for r in results for m in r.mutants]
    for mutant in mutants:
        mutant.equivalent_reason = listed.get((mutant.module, mutant.source_line, mutant.mutated_line))
    survivors = [m for m in mutants if m.outcome == "survived"]
    unexplained = [m for m in survivors if m.equivalent_reason is None]
    killed = len(mutants) - len(survivors)
    print("\nMutation testing (cosmic-ray): killed/total per group")
    for r in results:
        total = len(r.mutants)
        dead = sum(1 for m in r.mutants if m.outcome != "survived")
        status = f"ERROR: {r.error}" if r.error else f"{dead}/{total} in {r.seconds:.0f} s"
        print(f"  {r.group.name:<28} {status} (tests {r.baseline_seconds:.1f} s unmutated)")
    for m in survivors:
        label = f"equivalent: {m.equivalent_reason}" if m.equivalent_reason else "SURVIVED"
        print(f"\n{label}\n  {m.module}:{m.line} {m.operator} (occurrence {m.occurrence})\n"
              f"    - {m.source_line}\n    + {m.mutated_line}")
    score = 100.0 * killed / len(mutants) if mutants else 0.0
    timeouts = sum(1 for m in mutants if m.outcome == "timeout")
    print(f"\nscore: {killed}/{len(mutants)} killed ({score:.1f}%; {timeouts} by timeout), "
          f"{len(survivors)} survived ({len(survivors) - len(unexplained)} listed as equivalent, "
          f"{len(unexplained)} unexplained); {seconds / 60:.1f} min with {jobs} workers")
    WORK.mkdir(parents=True, exist_ok=True)
    (WORK / "last.json").write_text(json.dumps({
        "killed": killed, "total": len(mutants), "seconds": round(seconds), "jobs": jobs,
        "groups": {r.group.name: {"error": r.error, "seconds": round(r.seconds),
                                  "killed": sum(1 for m in r.mutants if m.outcome != "survived"),
                                  "total": len(r.mutants)} for r in results},
        "survivors": [{"module": m.module, "line": m.line, "source": m.source_line, "mutated": m.mutated_line,
                       "operator": m.operator, "equivalent": m.equivalent_reason} for m in survivors]}, indent=2))
    return 1 if unexplained or any(r.error for r in results) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--group", action="append", help="run only this group (repeatable)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="workers (default: one per CPU)")
    parser.add_argument("--list", action="store_true", help="list the groups and exit")
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
        print(f"mutating {group.name} ({', '.join(group.modules)})", flush=True)
        result = run_group(group, make_workspace(group, files), settings)
        survived = sum(1 for m in result.mutants if m.outcome == "survived")
        print(f"  {group.name}: {len(result.mutants)} mutants, {survived} survived, in {result.seconds:.0f} s"
              + (f" ({result.error.splitlines()[0]})" if result.error else ""), flush=True)
        return result

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        results = list(pool.map(work, groups))
    return report(results, time.monotonic() - started, jobs)


if __name__ == "__main__":
    sys.exit(main())
