"""Every alarm the shipped stacks create has an answer in ``ops.runbook`` (what ``status`` prints) and a row in the
README's Runbook section."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ops import runbook
from tests.support.stacks import SHIPPED_STACKS, shipped_stack

README = Path(__file__).resolve().parents[2] / "README.md"


def runbook_section() -> str:
    text = README.read_text(encoding="utf-8")
    return text[text.index("\n## Runbook\n"):text.index("\n## Measured figures\n")]


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_every_alarm_of_the_stack_has_an_answer_and_a_runbook_row(stack: str) -> None:
    synthesis = shipped_stack(stack)
    head = f"{synthesis.project}-{synthesis.stack}"
    names = [a.inputs["name"] for a in synthesis.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")]
    assert len(names) > 30
    assert [n for n in names if runbook.lookup(head, n) is None] == []
    section = runbook_section()
    missing = []
    for name in names:
        alarm = name.removeprefix(f"{head}-")
        function = re.fullmatch(r"batchinf-(.+)-(errors|throttles)", alarm)
        if f"`{alarm}`" not in section and not (function and f"`{function.group(1)}`" in section):
            missing.append(alarm)
    assert missing == []


def test_every_answer_is_a_command_the_cli_has() -> None:
    from ops.__main__ import parser

    commands = set(parser()._subparsers._group_actions[0].choices)  # type: ignore[union-attr]
    assert {entry.command.split()[0] for entry in runbook.ENTRIES.values()} <= commands
