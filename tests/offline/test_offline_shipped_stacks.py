"""Every shipped stack, in both modes, through the offline preview with the project's own policy pack started as
the Pulumi CLI starts it (in the pack's own virtualenv): no violation at any level, and no policy skipped because a
value was unknown (design principle 1), under the stack's shipped config (every rule strict about unknowns) and
under no config at all (every rule skipping what it cannot know)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from offline import cli

REPO = Path(__file__).resolve().parents[2]
STACKS = sorted(p.name[len("Pulumi."):-len(".yaml")] for p in REPO.glob("Pulumi.*.yaml"))


def test_the_shipped_stacks_are_found() -> None:
    assert {"dev", "prod"} <= set(STACKS)


@pytest.mark.parametrize("config", ["shipped", "none"])
@pytest.mark.parametrize("mode", ["preview", "update"])
@pytest.mark.parametrize("stack", STACKS)
def test_shipped_stack_passes_the_policy_pack(stack: str, mode: str, config: str, tmp_path: Path) -> None:
    no_config = tmp_path / "none.json"
    no_config.write_text("{}")
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(["preview", "--stack", stack, "--mode", mode, "--json",
                         *(["--policy-config", str(no_config)] if config == "none" else [])])
    assert code in (0, 1), err.getvalue()
    report = json.loads(out.getvalue())
    mandatory = [f"{v['policy']} on {v['urn']}: {v['message']}" for v in report["violations"]
                 if v["enforcement"] == "mandatory"]
    skipped = [f"{s['policy']} on {s['urn']}: {s['message']}" for s in report["skipped"]]
    assert mandatory == [] and skipped == []
    assert code == 0
    # Not even an advisory finding: every rule the pack serves holds on the shipped stacks.
    assert [f"{v['policy']} on {v['urn']}: {v['message']}" for v in report["violations"]] == []
