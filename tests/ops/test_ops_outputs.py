from __future__ import annotations

import json
from pathlib import Path

import pytest

from ops.stack import OutputsError, load_outputs
from tests.support.stacks import shipped_stack


def test_every_queue_and_function_name_derived_from_the_outputs_is_one_the_program_creates(tmp_path: Path) -> None:
    synthesis = shipped_stack("dev")
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(dict(synthesis.outputs)))
    outputs = load_outputs(str(path))
    queues = {q.inputs["name"] for q in synthesis.of_type("aws:sqs/queue:Queue")}
    functions = {f.inputs["name"] for f in synthesis.of_type("aws:lambda/function:Function")}
    from ops.lanes import LANES, OPTIONAL_QUEUES, QUEUES

    derived = {(p, q): outputs.queue_name(p, q) for p, names in QUEUES.items() for q in names}
    assert queues <= set(derived.values())
    assert {name for key, name in derived.items() if key not in OPTIONAL_QUEUES} <= queues
    consumers = {outputs.name(p, lane.consumer) for p, ls in LANES.items() for lane in ls if lane.consumer}
    assert consumers <= functions
    assert outputs.name("batchinf", "sharder") in functions
    assert (outputs.region, outputs.account, outputs.head) == ("us-east-1", "123456789012", "ai-pipelines-dev")


def test_a_long_name_is_hashed_as_the_program_hashes_it() -> None:
    from components.blocks.naming import Naming
    from ops.stack import StackOutputs

    stack = "a-very-long-stack-name-for-testing-the-hash-of-long-physical-names"
    outputs = StackOutputs.parse({"alarmTopicArn": f"arn:aws:sns:eu-west-1:111122223333:proj-{stack}-shared-alarms"})
    expected = Naming("proj", stack, "batchinf", "x").name("run-endings-undelivered", max_length=80)
    assert len(expected) == 80
    assert outputs.queue_name("batchinf", "run-endings-undelivered") == expected


@pytest.mark.parametrize(("content", "message"), [
    ("[]", "not a JSON object"), ("{", "not JSON"), ('{"alarmTopicArn": "arn:aws:sns:r:1:other"}', "not the alarm"),
])
def test_outputs_that_are_not_a_stack_of_this_program_are_refused(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "o.json"
    path.write_text(content)
    with pytest.raises(OutputsError, match=message):
        load_outputs(str(path))


def test_without_the_pulumi_cli_the_stack_option_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(OutputsError, match="--outputs FILE"):
        load_outputs(stack="dev")


def test_the_stack_option_reads_the_outputs_through_the_pulumi_cli(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "pulumi"
    fake.write_text("#!/bin/sh\necho \"$@\" > " + str(tmp_path / "args") + "\n"
                    "echo '{\"alarmTopicArn\": \"arn:aws:sns:eu-west-1:1:p-prod-shared-alarms\"}'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    outputs = load_outputs(stack="prod")
    assert outputs.head == "p-prod"
    assert (tmp_path / "args").read_text().split() == ["stack", "output", "--json", "--stack", "prod"]
