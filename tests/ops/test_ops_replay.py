from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import Deployed

from ops.__main__ import main
from ops.corpus import numbered_lines, record_id

CORPUS = [b'{"id": "a", "text": "first"}', b"not json", b'{"text": "no id"}', b'{"id": "b", "text": "fine"}',
          b'{"id": "a", "text": "a again"}', b'{"id": "c", "text": "job failed"}']
HASHED = record_id(CORPUS[2], "id")


def lane_record(run: str, stage: str, reason: str, *, record: str | None = None, line: int | None = None,
                dedupe: str) -> dict[str, object]:
    return {"body": json.dumps({"runId": run, "stage": stage, "reason": reason, "detail": "d", "recordId": record,
                                "lineNumber": line, "source": {"bucket": "b", "key": "k"}}), "dedupe": dedupe}


@pytest.fixture
def failed_run(deployed: Deployed) -> str:
    outputs, sfn, sqs = deployed.outputs, deployed.client("stepfunctions"), deployed.client("sqs")
    machine = outputs.value("batchinf", "stateMachineArn")
    sfn.create_state_machine(name=machine.rsplit(":", 1)[1], roleArn="arn:aws:iam::123456789012:role/sfn",
                             definition='{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}')
    sfn.start_execution(stateMachineArn=machine, name="run-1", input=json.dumps({"corpusKey": "corpus/t.jsonl"}))
    deployed.client("s3").put_object(Bucket=outputs.value("batchinf", "inputBucket"), Key="corpus/t.jsonl",
                                     Body=b"\n".join(CORPUS) + b"\n")
    lane = outputs.value("batchinf", "failureLaneUrl")
    for item in (lane_record("run-1", "shard", "not_json", line=2, dedupe="line-2"),
                 lane_record("run-1", "model", "throttled", record="a", dedupe="a"),
                 lane_record("run-1", "model", "model_rejected", record=HASHED, dedupe=str(HASHED)),
                 lane_record("run-1", "unit", "duplicate_record_id", record="a", dedupe="a#5"),
                 lane_record("run-1", "job", "job_failed", record="c", dedupe="c"),
                 lane_record("run-1", "job", "job_failed", record="c", dedupe="c"),  # sent twice by a crash
                 lane_record("run-0", "model", "throttled", record="z", dedupe="z")):
        sqs.send_message(QueueUrl=lane, MessageBody=str(item["body"]), MessageAttributes={
            "dedupeKey": {"DataType": "String", "StringValue": str(item["dedupe"])}})
    return lane


def lane_bodies(deployed: Deployed, lane: str) -> list[dict[str, object]]:
    messages = deployed.client("sqs").receive_message(QueueUrl=lane, MaxNumberOfMessages=10,
                                                      VisibilityTimeout=0).get("Messages", [])
    return [json.loads(m["Body"]) for m in messages]


def test_replay_writes_a_corpus_of_the_replayable_lines_a_fix_file_and_starts_a_run(
        deployed: Deployed, failed_run: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fix = tmp_path / "fix.jsonl"
    code = main(["replay-failures", "--outputs", str(deployed.outputs_file), "--run", "run-1", "--yes",
                 "--fix-file", str(fix), "--start-run"], clients=deployed.clients)
    out = capsys.readouterr().out
    assert code == 0, out
    assert "6 message(s) of run run-1 (5 distinct records), 1 of other runs left alone" in out

    s3, bucket = deployed.client("s3"), deployed.outputs.value("batchinf", "inputBucket")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="corpus/replays/")["Contents"]]
    assert len(keys) == 1 and keys[0].startswith("corpus/replays/run-1-")
    assert s3.get_object(Bucket=bucket, Key=keys[0])["Body"].read().splitlines() == [CORPUS[0], CORPUS[2], CORPUS[5]]

    to_fix = [json.loads(line) for line in fix.read_text().splitlines()]
    assert [(r["reason"], r["lineNumber"], r["line"]) for r in to_fix] == [
        ("not_json", 2, "not json"), ("duplicate_record_id", 5, CORPUS[4].decode())]

    runs = deployed.client("stepfunctions").list_executions(
        stateMachineArn=deployed.outputs.value("batchinf", "stateMachineArn"))["executions"]
    replay = [r for r in runs if r["name"].startswith("run-1-replay-")]
    assert len(replay) == 1
    started = deployed.client("stepfunctions").describe_execution(executionArn=replay[0]["executionArn"])
    assert json.loads(started["input"]) == {"corpusKey": keys[0]}
    assert [b["runId"] for b in lane_bodies(deployed, failed_run)] == ["run-0"]  # released at once, the rest deleted


def test_a_dry_run_writes_nothing_and_leaves_every_record_in_the_lane(
        deployed: Deployed, failed_run: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fix = tmp_path / "fix.jsonl"
    assert main(["replay-failures", "--outputs", str(deployed.outputs_file), "--run", "run-1", "--dry-run",
                 "--fix-file", str(fix)], clients=deployed.clients) == 0
    assert "dry run: would write 3 line(s) to s3://" in capsys.readouterr().out
    assert not fix.exists()
    assert "Contents" not in deployed.client("s3").list_objects_v2(
        Bucket=deployed.outputs.value("batchinf", "inputBucket"), Prefix="corpus/replays/")
    assert len(lane_bodies(deployed, failed_run)) == 7


def test_a_local_file_instead_of_s3_and_keep_leaves_the_lane_as_it_was(
        deployed: Deployed, failed_run: str, tmp_path: Path) -> None:
    local, fix = tmp_path / "replay.jsonl", tmp_path / "fix.jsonl"
    assert main(["replay-failures", "--outputs", str(deployed.outputs_file), "--run", "run-1", "--yes", "--keep",
                 "--local", str(local), "--fix-file", str(fix)], clients=deployed.clients) == 0
    assert local.read_bytes().splitlines() == [CORPUS[0], CORPUS[2], CORPUS[5]]
    assert len(lane_bodies(deployed, failed_run)) == 7


def test_record_ids_and_line_numbers_are_the_sharders() -> None:
    from batch_inference.records import record_id_of

    for line in CORPUS[:1] + CORPUS[2:]:
        value = json.loads(line).get("id")
        assert record_id(line, "id") == record_id_of(value, line)
    assert record_id(b'{"id": 3, "text": "x"}', "id") == record_id_of(3, b'{"id": 3, "text": "x"}') == "3"
    assert record_id(b'{"id": true, "text": "x"}', "id") is None
    chunks = [b'{"a":1}\r\n\n{"b', b'":2}\n', b"tail"]
    assert list(numbered_lines(chunks)) == [(1, b'{"a":1}'), (2, b""), (3, b'{"b":2}'), (4, b"tail")]
