"""The state machine the stack deploys, executed by moto's Step Functions with the functions' handlers answering
its Lambda invocations in this process: shard -> Distributed Map over the shard list -> each child submits its
job and waits on its task token -> Bedrock's completion events resume the children -> finalize -> BatchRunCompleted.

moto executes the batch path (callback tasks, a JSON ItemReader, ResultWriter); it cannot load the synchronous
Map (it rejects ItemBatcher and JSONL readers), so that one state is left out of the executed copy, and the
synchronous worker is tested on its own (test_batch_inference_mode_b.py) and the definition as a whole is
validated by asl-validator (tests/pipelines/test_batch_inference.py).
"""

from __future__ import annotations

import json
import time
from typing import Any

import boto3
import pytest
from botocore.stub import ANY
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend

from tests.handlers.batch_inference.conftest import (
    COMPLETION_QUEUE_URL,
    HANDLERS,
    INPUT_BUCKET,
    JOBS_TABLE,
    MODEL_ID,
    OUTPUT_BUCKET,
    Storage,
    deliver_event,
)
from tests.handlers.batch_inference.fakes import (
    FakeBedrock,
    error_line,
    job_arn,
    job_state_change,
    output_line,
    write_job_output,
)
from tests.handlers.batch_inference.helpers import CORPUS, RUN, records, small_jobs
from tests.handlers.conftest import FakeLambdaContext, SqsEventSource
from tests.support.stacks import shipped_stack

MACHINE = shipped_stack("dev").named("batchinf-runs").inputs
FUNCTIONS = {record.inputs["name"]: record.inputs["handler"].split(".")[1]
             for record in shipped_stack("dev").of_type("aws:lambda/function:Function")
             if record.inputs["handler"].startswith("batch_inference.")}


def executable(definition: dict[str, Any]) -> dict[str, Any]:
    """The deployed definition without the synchronous Maps (the corpus's, and a switched shard's inside each batch
    child), which moto cannot load."""
    document = json.loads(json.dumps(definition))
    del document["States"]["InferRecords"]
    choices = document["States"]["ChooseMode"]["Choices"]
    choices[:] = [c for c in choices if c["Next"] != "InferRecords"]
    child = document["States"]["SubmitShards"]["ItemProcessor"]["States"]
    del child["InferShard"], child["SubmitAndWait"]["Catch"]
    return document


@pytest.fixture
def aws() -> Any:
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}):
        yield


@pytest.fixture
def lambdas(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """moto's Lambda invocations answered by the handlers; the names of the functions invoked, in order."""
    invoked: list[str] = []

    def invoke(self: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any) -> bytes:
        name = function_name.rsplit(":", 1)[-1]
        invoked.append(FUNCTIONS[name])
        result = HANDLERS[FUNCTIONS[name]].handler(json.loads(body), FakeLambdaContext(function_name=name))
        return json.dumps(result).encode()

    monkeypatch.setattr(LambdaSimpleBackend, "invoke", invoke)
    return invoked


def _wait(condition: Any, what: str, seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            value = condition()
        except RuntimeError as error:  # moto's backend is not thread-safe: a read racing the execution's write
            if "changed size during iteration" not in str(error):
                raise
            value = None  # ... counts as "not yet"
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_batch_run_executes_end_to_end(storage: Storage, bedrock: FakeBedrock, lambdas: list[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # Nothing here is recorded for least privilege: moto runs the other functions on its own threads meanwhile.
    completion_source = SqsEventSource(COMPLETION_QUEUE_URL, lambda event, context: HANDLERS["completion"].handler(
        event, FakeLambdaContext(function_name="completion")), batch_size=1, visibility_timeout=600)
    small_jobs(monkeypatch, 3, 6)
    storage.put_corpus(CORPUS, [*records(8), "not json"])
    arns = [job_arn("job00000abcd"), job_arn("job00001abcd")]
    for arn in arns:  # children run concurrently, so the jobs are told apart by the ARN their submitter stored
        bedrock.creates(name=ANY, token=ANY, arn=arn)
    sfn = boto3.client("stepfunctions", region_name="us-east-1")
    machine = sfn.create_state_machine(name=MACHINE["name"], roleArn="arn:aws:iam::123456789012:role/runs",
                                       definition=json.dumps(executable(json.loads(MACHINE["definition"]))))
    execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name=RUN,
                                    input=json.dumps({"corpusKey": CORPUS}))["executionArn"]

    items = _wait(lambda: _submitted_jobs(storage, expected=2), "both jobs submitted")
    assert len(items) == 2
    for item in items:  # Bedrock runs each job; the first record of each shard fails in the model
        ids = [json.loads(line)["recordId"] for line in storage.read(
            INPUT_BUCKET, item["shardKey"]).splitlines()]
        output_uri = f"s3://{OUTPUT_BUCKET}/bedrock-output/{RUN}/{item['shardId']}/"
        write_job_output(storage.s3, output_uri, item["jobArn"].rsplit("/", 1)[-1], item["shardKey"],
                         [error_line(ids[0]), *(output_line(r, f"summary of {r}") for r in ids[1:])][::-1],
                         total=len(ids))
        deliver_event(storage, job_state_change(item["jobArn"], item["jobKey"], "Completed", MODEL_ID))
        bedrock.describes(arn=item["jobArn"], name=item["jobKey"], status="Completed",
                          input_uri=f"s3://{INPUT_BUCKET}/{item['shardKey']}", output_uri=output_uri)
        completion_source.poll()

    status = _wait(lambda: (d := sfn.describe_execution(executionArn=execution))["status"] != "RUNNING" and d,
                   "the execution to finish")
    assert status["status"] == "SUCCEEDED", status
    assert lambdas[0] == "sharder" and lambdas.count("submitter") == 2 and lambdas[-1] == "finalizer"
    results = storage.results(RUN)
    assert len(results) == 6 and len({r["recordId"] for r in results}) == 6
    lane = storage.failure_lane()
    assert sorted(m["reason"] for m in lane) == ["model_error", "model_error", "not_json"]
    (event,) = storage.published()
    assert event["detail-type"] == "BatchRunCompleted" and event["detail"]["runId"] == RUN
    assert event["detail"]["status"] == "SUCCEEDED" and event["detail"]["mode"] == "batch"
    output = json.loads(status["output"])
    assert output["map"]["ResultWriterDetails"]["Bucket"] == OUTPUT_BUCKET


def _submitted_jobs(storage: Storage, *, expected: int) -> list[dict[str, Any]] | None:
    """The job items once all `expected` carry their job ARN (the two submitters finish in either order)."""
    items = [i for i in (storage.job_item(name) for name in _job_names(storage)) if i and i.get("jobArn")]
    return items if len(items) == expected else None


def _job_names(storage: Storage) -> list[str]:
    items = storage.ddb.scan(TableName=JOBS_TABLE)["Items"]
    return sorted(i["jobKey"]["S"] for i in items if not i["jobKey"]["S"].startswith("run#"))
