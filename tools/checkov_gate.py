"""checkov's Terraform-plan checks over the synthesized stacks, failing on any failure not skipped with a reason.

    make checkov                                   # both shipped stacks, checkov in its own virtualenv
    python -m tools.checkov_gate --checkov PATH [--stack prod] [--stack dev]

An independent rule set read against the same planned state the pack judges (``tools.terraform_plan``). The skips
live in ``tools/checkov_skips.json``: a check id with its reason, limited to some stacks or resources when it says
so. A skip that no longer matches any failure is reported too, so the list cannot outlive its reasons. checkov is
not a project dependency (its own dependency tree conflicts with the pinned ones), hence a separate virtualenv.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SKIPS_FILE = Path(__file__).with_name("checkov_skips.json")
SHIPPED_STACKS = ("prod", "dev")


@dataclass(frozen=True)
class Failure:
    check_id: str
    resource: str
    name: str


@dataclass(frozen=True)
class Verdict:
    unskipped: list[Failure]
    skipped: list[Failure]
    stale: list[str]  # skips that apply to this stack and matched nothing


def load_skips(path: Path = SKIPS_FILE) -> dict[str, list[dict[str, Any]]]:
    """Each check id's skips: one object, or a list of them when the reason differs by stack or resource."""
    raw: dict[str, Any] = json.loads(path.read_text())["skips"]
    skips = {check_id: entry if isinstance(entry, list) else [entry] for check_id, entry in raw.items()}
    for check_id, entries in skips.items():
        if not entries or not all(str(entry.get("reason", "")).strip() for entry in entries):
            raise ValueError(f"{path.name}: skip {check_id} has no reason")
    return skips


def _applies(skip: dict[str, Any], stack: str) -> bool:
    return stack in skip.get("stacks", SHIPPED_STACKS)


def _covering(entries: list[dict[str, Any]], failure: Failure, stack: str) -> int | None:
    """The index of the first skip entry that covers this failure in this stack, if any."""
    for index, entry in enumerate(entries):
        if _applies(entry, stack) and failure.resource in entry.get("resources", [failure.resource]):
            return index
    return None


def judge(failures: Sequence[Failure], skips: dict[str, list[dict[str, Any]]], stack: str) -> Verdict:
    """Split a stack's failures into skipped (by check id, and by resource when the skip names resources) and not."""
    unskipped, skipped, used = [], [], set()
    for failure in failures:
        index = _covering(skips.get(failure.check_id, []), failure, stack)
        if index is None:
            unskipped.append(failure)
        else:
            skipped.append(failure)
            used.add((failure.check_id, index))
    stale = sorted(f"{check_id}" + (f" (entry {index + 1})" if len(entries) > 1 else "")
                   for check_id, entries in skips.items() for index, entry in enumerate(entries)
                   if _applies(entry, stack) and (check_id, index) not in used)
    return Verdict(unskipped, skipped, stale)


def failures_of(report: Any) -> list[Failure]:
    """The failed checks of checkov's JSON report (one framework: an object; several: a list of them)."""
    reports = report if isinstance(report, list) else [report]
    return [Failure(check["check_id"], check["resource"], check["check_name"])
            for one in reports for check in one.get("results", {}).get("failed_checks", [])]


def run_checkov(checkov: str, stack: str) -> list[Failure]:
    from offline.synth import synthesize
    from tools.terraform_plan import plan

    with tempfile.TemporaryDirectory() as work:
        plan_file = Path(work) / f"{stack}.tfplan.json"
        plan_file.write_text(json.dumps(plan(synthesize(stack, "update").resources), default=str))
        result = subprocess.run([checkov, "-f", str(plan_file), "--framework", "terraform_plan", "-o", "json",
                                 "--quiet", "--compact"], capture_output=True, text=True, check=False)
    if result.returncode not in (0, 1) or not result.stdout.strip():
        raise RuntimeError(f"checkov failed on {stack} (exit {result.returncode}): {result.stderr.strip()[-2000:]}")
    return failures_of(json.loads(result.stdout))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.checkov_gate", description=__doc__.split("\n")[0])
    parser.add_argument("--checkov", required=True, help="the checkov executable (make checkov installs one)")
    parser.add_argument("--stack", action="append", help="a stack to check (repeat); default: prod and dev")
    args = parser.parse_args(argv)
    skips, status = load_skips(), 0
    for stack in args.stack or SHIPPED_STACKS:
        verdict = judge(run_checkov(args.checkov, stack), skips, stack)
        print(f"{stack}: {len(verdict.unskipped)} failed, {len(verdict.skipped)} skipped with a reason "
              f"({len({f.check_id for f in verdict.skipped})} checks)")
        for failure in verdict.unskipped:
            print(f"  FAILED {failure.check_id} {failure.resource}: {failure.name}")
        for check_id in verdict.stale:
            print(f"  STALE skip {check_id}: matches no failure in {stack}; remove it or limit it to other stacks")
        status = status or int(bool(verdict.unskipped or verdict.stale))
    return status


if __name__ == "__main__":
    sys.exit(main())
