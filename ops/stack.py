"""A stack's outputs, as ``pulumi stack output --json`` prints them, and the names derived from them.

The program names every resource ``<project>-<stack>-<pipeline>-<purpose>`` (``components.blocks.naming``); the
alarm topic is the ``shared`` pipeline's ``alarms``, so its ARN, always exported, gives the ``<project>-<stack>``
head, the account, the region and the partition. Queues and functions a pipeline does not export are found by name.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from components.blocks.naming import Naming

TOPIC_SUFFIX = "-shared-alarms"
# Output key of each pipeline and the pipeline name its resources carry.
PIPELINES = {"kbsync": "knowledgeBaseSync", "eventproc": "eventProcessing", "fileingest": "fileIngestion",
             "batchinf": "batchInference"}


class OutputsError(Exception):
    """The outputs are missing, unreadable or not a stack of this program."""


@dataclass(frozen=True)
class StackOutputs:
    values: Mapping[str, Any]
    partition: str
    region: str
    account: str
    head: str  # "<project>-<stack>"

    @classmethod
    def parse(cls, values: Mapping[str, Any]) -> StackOutputs:
        topic = values.get("alarmTopicArn")
        parts = topic.split(":") if isinstance(topic, str) else []
        if len(parts) != 6 or parts[2] != "sns" or not parts[5].endswith(TOPIC_SUFFIX):
            raise OutputsError(f"alarmTopicArn is {topic!r}: not the alarm topic of an ai-pipelines stack")
        head = parts[5].removesuffix(TOPIC_SUFFIX)
        if "-" not in head:
            raise OutputsError(f"cannot tell project and stack apart in the topic name {parts[5]!r}")
        return cls(values, partition=parts[1], region=parts[3], account=parts[4], head=head)

    def enabled(self) -> list[str]:
        """The pipelines this stack builds, in the program's order."""
        return [p for p, key in PIPELINES.items() if isinstance(self.values.get(key), Mapping)]

    def section(self, pipeline: str) -> Mapping[str, Any]:
        section = self.values.get(PIPELINES[pipeline])
        if not isinstance(section, Mapping):
            raise OutputsError(f"the stack does not build {pipeline} ({PIPELINES[pipeline]} is not in its outputs)")
        return section

    def value(self, pipeline: str, key: str) -> str:
        value = self.section(pipeline).get(key)
        if not isinstance(value, str) or not value:
            raise OutputsError(f"{PIPELINES[pipeline]}.{key} is missing from the outputs")
        return value

    def name(self, pipeline: str, purpose: str, max_length: int = 64) -> str:
        """The physical name the program gives ``purpose`` of ``pipeline`` (queues: ``max_length=80``)."""
        project, stack = self.head.rsplit("-", 1)
        return Naming(project, stack, pipeline, owner="").name(purpose, max_length=max_length)

    def queue_name(self, pipeline: str, purpose: str) -> str:
        return self.name(pipeline, purpose, max_length=80)

    def queue_arn(self, name: str) -> str:
        return f"arn:{self.partition}:sqs:{self.region}:{self.account}:{name}"

    def alarm_prefix(self) -> str:
        return f"{self.head}-"


def load_outputs(path: str | None = None, stack: str | None = None, *, cwd: Path | None = None) -> StackOutputs:
    """The outputs saved in ``path``, or those of ``stack`` read through the Pulumi CLI."""
    if path is not None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as error:
            raise OutputsError(f"cannot read {path}: {error.strerror}") from error
        return StackOutputs.parse(_object(text, path))
    if stack is None:
        raise OutputsError("pass --outputs FILE (pulumi stack output --json > FILE) or --stack NAME")
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise OutputsError("the pulumi CLI is not on PATH: save `pulumi stack output --json` and pass --outputs FILE")
    command = [pulumi, "stack", "output", "--json", "--stack", stack]
    done = subprocess.run(command, capture_output=True, text=True, check=False, cwd=cwd)
    if done.returncode != 0:
        raise OutputsError(f"{' '.join(command[1:])} failed: {done.stderr.strip()[:500]}")
    return StackOutputs.parse(_object(done.stdout, f"pulumi stack output --stack {stack}"))


def _object(text: str, where: str) -> Mapping[str, Any]:
    try:
        values = json.loads(text)
    except json.JSONDecodeError as error:
        raise OutputsError(f"{where} is not JSON: {error}") from error
    if not isinstance(values, dict):
        raise OutputsError(f"{where} is not a JSON object of stack outputs")
    return values
