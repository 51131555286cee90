"""The main-branch workflow smoke-tests each stack right after its ``pulumi up``, and deploys nothing while the
stack files carry example ids (the repository variable DEPLOY_STACKS stays unset until they are replaced)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

WORKFLOW = Path(__file__).resolve().parents[2] / ".github" / "workflows" / "main.yml"


def deploy_job() -> dict[str, Any]:
    job: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))["jobs"]["up"]
    return job


def test_smoke_runs_for_the_stack_right_after_its_pulumi_up() -> None:
    steps = deploy_job()["steps"]
    up = next(i for i, step in enumerate(steps)
              if str(step.get("uses", "")).startswith("pulumi/actions") and step["with"]["command"] == "up")
    smoke = steps[up + 1]
    assert smoke["run"].split() == [".venv/bin/python", "-m", "ops", "smoke", "--stack", "${{", "matrix.stack",
                                    "}}", "--yes"]
    assert steps[up]["with"]["stack-name"] == "${{ matrix.stack }}"
    assert "PULUMI_ACCESS_TOKEN" in smoke["env"]  # `--stack` reads the outputs through the Pulumi CLI


def test_nothing_deploys_until_the_stack_files_hold_real_ids() -> None:
    job = deploy_job()
    assert job["if"] == "vars.DEPLOY_STACKS == 'true'"
    assert job["strategy"]["max-parallel"] == 1 and job["strategy"]["matrix"]["stack"] == ["dev", "prod"]
