"""``smoke`` against a moto deployment: each test plays the pipeline, making its result appear while smoke polls."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber
from conftest import Deployed
from moto.stepfunctions.models import stepfunctions_backends

from ops import smoke
from ops.__main__ import main
from ops.probes import Probe


class Pipeline:
    """Fake time; each sleep of the poller runs the next step of the simulated pipeline."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now, self.probes, self.steps = 0.0, list[Probe](), list[Callable[[Probe], None]]()
        original = smoke.wait
        monkeypatch.setattr(smoke, "clock", lambda: self.now)
        monkeypatch.setattr(smoke, "sleep", self._sleep)
        monkeypatch.setattr(smoke, "wait", lambda probe: (self.probes.append(probe), original(probe))[1])

    def _sleep(self, seconds: float) -> None:
        self.now += seconds
        if self.steps:
            self.steps.pop(0)(self.probes[-1])


@pytest.fixture
def pipeline(monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    return Pipeline(monkeypatch)


def log(deployed: Deployed, function: str, entry: dict[str, Any]) -> None:
    logs, group = deployed.client("logs"), f"/aws/lambda/{function}"
    if not logs.describe_log_streams(logGroupName=group)["logStreams"]:
        logs.create_log_stream(logGroupName=group, logStreamName="s")
    logs.put_log_events(logGroupName=group, logStreamName="s",
                        logEvents=[{"timestamp": int(time.time() * 1000), "message": json.dumps(entry)}])


def smoke_run(deployed: Deployed, *pipelines: str, timeout: str | None = None) -> int:
    arguments = ["smoke", "--outputs", str(deployed.outputs_file), "--yes"]
    arguments += [a for p in pipelines for a in ("--pipeline", p)] + (["--timeout", timeout] if timeout else [])
    return main(arguments, clients=deployed.clients)


def keys(deployed: Deployed, bucket: str, prefix: str = "") -> list[str]:
    return [o["Key"] for o in deployed.client("s3").list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]


def test_event_processing_passes_when_the_result_is_stored_and_announced_and_removes_it(
        deployed: Deployed, pipeline: Pipeline, capsys: pytest.CaptureFixture[str]) -> None:
    outputs, dynamodb = deployed.outputs, deployed.client("dynamodb")
    deployed.client("events").create_event_bus(Name=outputs.value("eventproc", "inputBusName"))
    table = outputs.value("eventproc", "resultsTable")
    dynamodb.create_table(TableName=table, KeySchema=[{"AttributeName": "resultId", "KeyType": "HASH"}],
                          AttributeDefinitions=[{"AttributeName": "resultId", "AttributeType": "S"}],
                          BillingMode="PAY_PER_REQUEST")

    def worker(probe: Probe) -> None:
        dynamodb.put_item(TableName=table, Item={"resultId": {"S": "r-1"}, "answer": {"S": "other"}})
        log(deployed, outputs.value("eventproc", "functionName"), {
            "level": "INFO", "message": "Result stored and announced", "eventId": probe.state["eventId"],
            "resultId": "r-1"})

    pipeline.steps = [lambda probe: None, worker]
    assert smoke_run(deployed, "eventproc") == 0
    out = capsys.readouterr().out
    assert "eventproc: put one com.example.documents / DocumentSubmitted event" in out
    assert "eventproc: PASS result r-1" in out
    assert "Item" not in dynamodb.get_item(TableName=table, Key={"resultId": {"S": "r-1"}})


def test_batch_inference_passes_when_the_run_succeeds_with_both_records_and_cleans_up(
        deployed: Deployed, pipeline: Pipeline, capsys: pytest.CaptureFixture[str]) -> None:
    outputs, sfn, s3 = deployed.outputs, deployed.client("stepfunctions"), deployed.client("s3")
    machine = outputs.value("batchinf", "stateMachineArn")
    sfn.create_state_machine(name=machine.rsplit(":", 1)[1], roleArn="arn:aws:iam::123456789012:role/sfn",
                             definition='{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}')
    inputs, results = outputs.value("batchinf", "inputBucket"), outputs.value("batchinf", "outputBucket")

    answered: list[int] = [2, 1]

    def run_succeeds(probe: Probe) -> None:
        run = probe.state["execution"].rsplit(":", 1)[1]
        corpus = s3.get_object(Bucket=inputs, Key=probe.state["corpus"])["Body"].read().splitlines()
        ids = [json.loads(line)["id"] for line in corpus][:answered.pop(0)]
        s3.put_object(Bucket=inputs, Key=f"shards/{run}/shard-0.jsonl", Body=b"x")
        s3.put_object(Bucket=results, Key=f"results/{run}/part-0.jsonl", Body="".join(
            json.dumps({"recordId": i, "output": "hello"}) + "\n" for i in ids).encode())
        s3.put_object(Bucket=results, Key=f"runs/{run}/manifest.json", Body=b"{}")
        backend = stepfunctions_backends["123456789012"]["us-east-1"]
        backend.describe_execution(probe.state["execution"]).status = "SUCCEEDED"

    pipeline.steps = [run_succeeds]
    assert smoke_run(deployed, "batchinf") == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "batchinf: PASS both records answered" in out
    assert keys(deployed, inputs) == [] and keys(deployed, results) == []

    pipeline.steps = [run_succeeds]  # a run that succeeds without one of the records
    assert smoke_run(deployed, "batchinf") == 1
    assert "batchinf: FAIL no result for ['ops-smoke-" in capsys.readouterr().out
    assert keys(deployed, inputs) == [] and keys(deployed, results) == []


def test_a_result_that_never_appears_fails_at_the_deadline_and_still_cleans_up(
        deployed: Deployed, pipeline: Pipeline, capsys: pytest.CaptureFixture[str]) -> None:
    outputs, sfn = deployed.outputs, deployed.client("stepfunctions")
    machine = outputs.value("batchinf", "stateMachineArn")
    sfn.create_state_machine(name=machine.rsplit(":", 1)[1], roleArn="arn:aws:iam::123456789012:role/sfn",
                             definition='{"StartAt": "A", "States": {"A": {"Type": "Pass", "End": true}}}')
    assert smoke_run(deployed, "batchinf", timeout="45") == 1
    assert "batchinf: FAIL no result within 45 s" in capsys.readouterr().out
    assert pipeline.now == 45 and len(pipeline.probes) == 1
    execution = sfn.describe_execution(executionArn=pipeline.probes[0].state["execution"])
    assert execution["status"] == "ABORTED"
    assert keys(deployed, outputs.value("batchinf", "inputBucket")) == []


def test_file_ingestion_fails_when_the_worker_names_the_file_and_passes_on_a_settled_batch(
        deployed: Deployed, pipeline: Pipeline, capsys: pytest.CaptureFixture[str]) -> None:
    function, bucket = deployed.outputs.value("fileingest", "functionName"), deployed.outputs.value(
        "fileingest", "bucketName")
    uploaded: list[str] = []

    def rejected(probe: Probe) -> None:
        key = probe.state["object"][1]
        uploaded.append(key)
        assert deployed.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read() == b"[]"
        log(deployed, function, {"level": "ERROR", "message": "File not loaded", "reason": "UnroutedKeyError",
                                 "keySha256": hashlib.sha256(key.encode()).hexdigest()})

    pipeline.steps = [rejected]
    assert smoke_run(deployed, "fileingest") == 1
    assert "fileingest: FAIL File not loaded: UnroutedKeyError" in capsys.readouterr().out
    assert uploaded[0].startswith("input/orders/ops-smoke-") and uploaded[0].endswith(".json")
    assert keys(deployed, bucket, "input/") == []

    pipeline.steps = [lambda probe: log(deployed, function, {"message": "Batch settled", "files": 1, "failed": 0})]
    assert smoke_run(deployed, "fileingest") == 0
    assert "fileingest: PASS a batch of 1 file(s) settled" in capsys.readouterr().out


@pytest.fixture
def agent(deployed: Deployed) -> Iterator[Stubber]:
    client = boto3.client("bedrock-agent", region_name="us-east-1")
    deployed.clients._clients["bedrock-agent"] = client
    with Stubber(client) as stubber:
        yield stubber


def test_knowledge_base_sync_passes_on_a_job_started_after_the_document_that_completes(
        deployed: Deployed, pipeline: Pipeline, agent: Stubber, capsys: pytest.CaptureFixture[str]) -> None:
    def jobs(*summaries: tuple[str, datetime]) -> None:
        agent.add_response("list_ingestion_jobs", {"ingestionJobSummaries": [
            {"knowledgeBaseId": "KBDEV00001", "dataSourceId": "DSDEV00001", "ingestionJobId": f"JOB000000{n}",
             "status": status, "startedAt": started, "updatedAt": started}
            for n, (status, started) in enumerate(summaries)]}, {
            "knowledgeBaseId": "KBDEV00001", "dataSourceId": "DSDEV00001", "sortBy": ANY, "maxResults": ANY})

    old = datetime.now(UTC) - timedelta(hours=1)
    jobs(("COMPLETE", old))
    jobs(("IN_PROGRESS", datetime.now(UTC) + timedelta(seconds=5)), ("COMPLETE", old))
    jobs(("COMPLETE", datetime.now(UTC) + timedelta(seconds=5)), ("COMPLETE", old))
    bucket = deployed.outputs.value("kbsync", "bucketName")
    seen: list[str] = []
    pipeline.steps = [lambda probe: seen.extend(keys(deployed, bucket, "documents/"))] * 2
    assert smoke_run(deployed, "kbsync") == 0
    out = capsys.readouterr().out
    assert "kbsync: PASS JOB0000000 COMPLETE" in out
    assert seen[0].startswith("documents/ops-smoke/")
    assert keys(deployed, bucket, "documents/") == []
    agent.assert_no_pending_responses()


def test_smoke_dry_run_sends_nothing(deployed: Deployed, pipeline: Pipeline,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    deployed.client("events").create_event_bus(Name=deployed.outputs.value("eventproc", "inputBusName"))
    code = main(["smoke", "--outputs", str(deployed.outputs_file), "--dry-run", "--pipeline", "fileingest",
                 "--pipeline", "batchinf"], clients=deployed.clients)
    out = capsys.readouterr().out
    assert code == 0 and "dry run: nothing sent" in out
    assert "fileingest: put s3://" in out and "batchinf: put a two-record corpus corpus/ops-smoke/" in out
    assert keys(deployed, deployed.outputs.value("fileingest", "bucketName"), "input/") == []
    assert pipeline.probes == []
