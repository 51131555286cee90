"""The shipped policy configs and the pack's version: what the pull-request check relies on."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from offline.analyzer import DEFAULT_PACK_DIR, PolicyPackProcess
from tests.policies.builders import Stack, alarm_topic, queue_with_dlq, worker
from tests.policies.reports import skipped

CONFIGS = sorted((DEFAULT_PACK_DIR / "config").glob("*.json"))
MANIFEST = DEFAULT_PACK_DIR / "PulumiPolicy.yaml"
README = Path(__file__).resolve().parents[2] / "README.md"


def manifest_version() -> str:
    match = re.search(r"^version:\s*(\S+)$", MANIFEST.read_text(encoding="utf-8"), re.MULTILINE)
    assert match, "PulumiPolicy.yaml has no version"
    return match.group(1)


def test_every_stack_has_a_config() -> None:
    stacks = {p.name[len("Pulumi."):-len(".yaml")] for p in README.parent.glob("Pulumi.*.yaml")}
    assert stacks == {p.stem for p in CONFIGS}


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: p.stem)
def test_every_policy_the_pack_serves_fails_on_unknown_values(pack: PolicyPackProcess, config: Path) -> None:
    """A pull-request check must never pass a stack because a value was unknown at preview (or skip silently)."""
    entries = json.loads(config.read_text(encoding="utf-8"))
    lax = [p.name for p in pack.policies()
           if not isinstance(entries.get(p.name), dict) or entries[p.name].get("unknownValues") != "violation"]
    assert lax == []


def test_one_version_everywhere(pack: PolicyPackProcess) -> None:
    version = manifest_version()
    assert pack.info().version == version
    heading = (DEFAULT_PACK_DIR / "README.md").read_text(encoding="utf-8").splitlines()[0]
    assert heading.endswith(f"(version {version})")
    # The SDK's own note for a value unknown at preview names the pack with the same version.
    stack = Stack()
    topic = alarm_topic(stack)
    worker(stack, "worker", queue_with_dlq(stack, "jobs", topic), topic,
           function={"timeout": "04da6b54-80e4-46f7-96ec-b56ff0331ba9"})
    report = pack.analyze(stack.records)
    [note] = skipped(report, "sqs-visibility-timeout-covers-consumer")
    assert f"'ai-pipelines-guardrails@v{version}'" in note.message
