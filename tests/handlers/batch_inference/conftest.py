"""Fixtures for the batch_inference handler tests: the pipeline's storage in moto, named and configured as the
synthesized dev stack names them; each function's environment exactly as the stack gives it; Bedrock and Step
Functions behind Stubbers; and each function invoked as Lambda would, its AWS calls recorded as its own
(``batch_inference.<module>``) for the least-privilege check.
"""

from __future__ import annotations

import fnmatch
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse

from tests.handlers.batch_inference.fakes import ACCOUNT, REGION, FakeBedrock, FakeConverse, FakeStepFunctions
from tests.handlers.conftest import FakeLambdaContext, SqsEventSource
from tests.support import aws_calls, iam_actions
from tests.support.stacks import function_environment, function_roles, shipped_stack

PACKAGE = "batch_inference"
MODULES = ("sharder", "submitter", "completion", "sync_worker", "reconciler", "finalizer", "run_ended")
ENV = {module: function_environment(f"{PACKAGE}.{module}") for module in MODULES}
_STACK = shipped_stack("dev")

INPUT_BUCKET = ENV["sharder"]["INPUT_BUCKET"]
OUTPUT_BUCKET = ENV["sharder"]["OUTPUT_BUCKET"]
LEDGER_TABLE = ENV["sharder"]["LEDGER_TABLE"]
RUN = "run-2026-06-27"
JOBS_TABLE = ENV["submitter"]["JOBS_TABLE"]
FAILURE_LANE_URL = ENV["sharder"]["FAILURE_LANE_URL"]
COMPLETION_QUEUE_URL = ENV["reconciler"]["COMPLETION_QUEUE_URL"]
STATE_MACHINE_ARN = ENV["reconciler"]["STATE_MACHINE_ARN"]
RESULT_BUS = ENV["finalizer"]["RESULT_BUS_NAME"]
MODEL_ID = ENV["submitter"]["MODEL_ID"]
BATCH_ROLE_ARN = ENV["submitter"]["BATCH_ROLE_ARN"]
JOB_PREFIX = ENV["submitter"]["JOB_NAME_PREFIX"]
STACK_TAGS: dict[str, str] = json.loads(ENV["submitter"]["JOB_TAGS"])
FAILURE_LANE = _STACK.named("batchinf-failures").inputs
COMPLETION_QUEUE = _STACK.named("batchinf-completions").inputs
COMPLETION_FUNCTION = _STACK.named("batchinf-completion").inputs
RUN_ENDINGS_QUEUE = _STACK.named("batchinf-run-endings").inputs
RUN_ENDINGS_URL = COMPLETION_QUEUE_URL.rsplit("/", 1)[0] + "/" + RUN_ENDINGS_QUEUE["name"]


def _bedrock(params: Any, partition: str, region: str, account: str) -> list[str]:
    """The ARNs a Bedrock control-plane request names: the job it reads; or the job it creates and the foundation
    model that job runs (AWS's service authorization reference authorizes CreateModelInvocationJob on the job and
    the foundation model; a profile id ``eu.<model>`` names the model behind it)."""
    if "jobIdentifier" in params:
        return [str(params["jobIdentifier"])]
    if "modelId" in params:
        job = [f"arn:{partition}:bedrock:{region}:{account}:model-invocation-job/{params['jobName']}"
               ] if "jobName" in params else []
        model = str(params["modelId"])
        base = model.split(".", 1)[1] if model.split(".", 1)[0] in aws_calls.INFERENCE_PROFILE_GEOGRAPHIES else model
        return [*job, f"arn:{partition}:bedrock:{region}::foundation-model/{base}"]
    return []


aws_calls.register_resolver("bedrock", _bedrock)
aws_calls.register_resolver("stepfunctions", lambda params, partition, region, account: [])

# Each module validates its configuration at import, as at a cold start: the stack's variables first (one value per
# name across the functions, as the stack derives them all from the same names).
for _module_env in ENV.values():
    os.environ.update(_module_env)

from batch_inference import (  # noqa: E402
    clients,
    completion,
    finalizer,
    reconciler,
    run_ended,
    sharder,
    submitter,
    sync_worker,
)

HANDLERS: dict[str, Any] = {"sharder": sharder, "submitter": submitter, "completion": completion,
                            "sync_worker": sync_worker, "reconciler": reconciler, "finalizer": finalizer,
                            "run_ended": run_ended}


@pytest.fixture(autouse=True)
def _fresh_clients() -> Iterator[None]:
    clients.reset()
    yield
    clients.reset()


class _MissingKeys:
    """S3's answer to a GetObject of a key that does not exist, as the calling function's role decides it.

    S3 answers 404 NoSuchKey only to a caller allowed ``s3:ListBucket`` on the bucket with the key as ``s3:prefix``
    (AWS's GetObject reference; ``s3:prefix`` is the requested key in that check), and 403 AccessDenied to anyone
    else; moto always answers 404. While a handler runs (`Invoke`), its GetObject of a missing key is answered as
    its role in the synthesized dev stack makes S3 answer, and an allowed ListBucket is recorded as its call (the
    least-privilege check then finds that grant exercised).
    """

    def __init__(self) -> None:
        self.function: str | None = None
        self.roles = {role.package: role for role in function_roles(_STACK)}

    def install(self, client: Any) -> None:
        client.meta.events.register("before-parameter-build.s3.GetObject", self._remember)
        client.meta.events.register("before-call.s3.GetObject", self._answer)

    @staticmethod
    def _remember(params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["missing_keys_object"] = (params["Bucket"], params["Key"])

    def _answer(self, context: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if self.function is None or "missing_keys_object" not in context:
            return None
        bucket, key = context["missing_keys_object"]
        with aws_calls.paused():
            listed = boto3.client("s3", region_name=REGION).list_objects_v2(Bucket=bucket, Prefix=key, MaxKeys=1)
        if any(o["Key"] == key for o in listed.get("Contents", [])):
            return None
        package = f"{PACKAGE}.{self.function}"
        bucket_arn = f"arn:aws:s3:::{bucket}"
        allowed = [s for s in self.roles[package].statements
                   if iam_actions.allowing_statements([s], "s3:ListBucket", bucket_arn)
                   and _conditions_hold(s.get("Condition", {}), {"s3:prefix": key})]
        if allowed:
            aws_calls.REGISTRY.record(package, aws_calls.AwsCall("s3", "ListObjectsV2", bucket_arn))
            return None  # moto answers NoSuchKey
        return (AWSResponse(f"https://{bucket}.s3.amazonaws.com/{key}", 403, {}, None),
                {"Error": {"Code": "AccessDenied", "Message": "Access Denied"},
                 "ResponseMetadata": {"HTTPStatusCode": 403}})


def _conditions_hold(conditions: dict[str, dict[str, Any]], request: dict[str, str]) -> bool:
    """Whether a statement's conditions hold for a request with these context keys (StringEquals and StringLike;
    any other operator is taken not to hold)."""
    for operator, tests in conditions.items():
        if operator not in ("StringEquals", "StringLike"):
            return False
        for name, expected in tests.items():
            value = request.get(name)
            patterns = [expected] if isinstance(expected, str) else list(expected)
            if value is None or not any(fnmatch.fnmatchcase(value, pattern) if operator == "StringLike"
                                        else value == pattern for pattern in patterns):
                return False
    return True


MISSING_KEYS = _MissingKeys()


@pytest.fixture(autouse=True)
def _s3_answers_missing_keys_as_the_role_decides(_fresh_clients: None) -> None:
    MISSING_KEYS.install(clients.s3())


@dataclass
class Storage:
    """The pipeline's buckets, tables and queues in moto."""

    s3: Any
    sqs: Any
    ddb: Any
    events: Any
    results_queue_url: str

    def put_corpus(self, key: str, lines: list[str | bytes]) -> None:
        body = b"".join((line.encode() if isinstance(line, str) else line) + b"\n" for line in lines)
        self.s3.put_object(Bucket=INPUT_BUCKET, Key=key, Body=body)

    def read(self, bucket: str, key: str) -> bytes:
        return bytes(self.s3.get_object(Bucket=bucket, Key=key)["Body"].read())

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def results(self, run_id: str) -> list[dict[str, Any]]:
        rows = []
        for key in self.keys(OUTPUT_BUCKET, f"results/{run_id}/"):
            rows += [json.loads(line) for line in self.read(OUTPUT_BUCKET, key).splitlines() if line]
        return rows

    def drain(self, queue_url: str) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while True:
            page = self.sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=0,
                                            MessageAttributeNames=["All"]).get("Messages", [])
            if not page:
                return messages
            for message in page:
                self.sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            messages += page

    def failure_lane(self) -> list[dict[str, Any]]:
        return [json.loads(m["Body"]) for m in self.drain(FAILURE_LANE_URL)]

    def ledger(self, run_id: str = RUN) -> dict[str, dict[str, Any]]:
        """The run's ledger items by record key (the table's key is ``<runId>#<record key>``)."""
        items = self.ddb.scan(TableName=LEDGER_TABLE)["Items"]
        prefix = f"{run_id}#"
        return {item["recordId"]["S"].removeprefix(prefix): {k: next(iter(v.values())) for k, v in item.items()}
                for item in items if item["recordId"]["S"].startswith(prefix)}

    def job_item(self, job_name: str) -> dict[str, Any] | None:
        item = self.ddb.get_item(TableName=JOBS_TABLE, Key={"jobKey": {"S": job_name}}).get("Item")
        return {k: next(iter(v.values())) for k, v in item.items()} if item else None

    def published(self) -> list[dict[str, Any]]:
        return [json.loads(m["Body"]) for m in self.drain(self.results_queue_url)]


def _queue(sqs: Any, url: str, inputs: dict[str, Any], dlq_name: str) -> None:
    """The queue at `url` with its DLQ and the stack's visibility timeout and receive count."""
    name = url.rsplit("/", 1)[-1]
    dlq_url = sqs.create_queue(QueueName=dlq_name)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    receives = int(json.loads(inputs["redrivePolicy"])["maxReceiveCount"]) if isinstance(inputs.get("redrivePolicy"),
                                                                                     str) else 5
    created = sqs.create_queue(QueueName=name, Attributes={
        "VisibilityTimeout": str(int(inputs["visibilityTimeoutSeconds"])),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(receives)})})
    assert created["QueueUrl"] == url


@pytest.fixture
def storage(aws: None) -> Storage:
    s3 = boto3.client("s3", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    ddb = boto3.client("dynamodb", region_name=REGION)
    events = boto3.client("events", region_name=REGION)
    for bucket in (INPUT_BUCKET, OUTPUT_BUCKET):
        s3.create_bucket(Bucket=bucket)
    for table, key in ((LEDGER_TABLE, "recordId"), (JOBS_TABLE, "jobKey")):
        ddb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                         KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                         AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}])
    _queue(sqs, FAILURE_LANE_URL, FAILURE_LANE, _STACK.named("batchinf-failures-dlq").inputs["name"])
    _queue(sqs, COMPLETION_QUEUE_URL, COMPLETION_QUEUE, _STACK.named("batchinf-completions-dlq").inputs["name"])
    _queue(sqs, RUN_ENDINGS_URL, RUN_ENDINGS_QUEUE, _STACK.named("batchinf-run-endings-dlq").inputs["name"])
    # The result bus, with a subscriber queue standing in for the next stage.
    events.create_event_bus(Name=RESULT_BUS)
    results_url = sqs.create_queue(QueueName="next-stage")["QueueUrl"]
    results_arn = sqs.get_queue_attributes(QueueUrl=results_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"]
    events.put_rule(Name="next-stage", EventBusName=RESULT_BUS,
                    EventPattern=json.dumps({"detail-type": ["BatchRunCompleted"]}))
    events.put_targets(Rule="next-stage", EventBusName=RESULT_BUS, Targets=[{"Id": "q", "Arn": results_arn}])
    return Storage(s3=s3, sqs=sqs, ddb=ddb, events=events, results_queue_url=results_url)


@pytest.fixture
def bedrock(storage: Storage) -> Iterator[FakeBedrock]:
    with FakeBedrock(clients.bedrock(), model_id=MODEL_ID, role_arn=BATCH_ROLE_ARN, job_prefix=JOB_PREFIX,
                     stack_tags=STACK_TAGS) as fake:
        yield fake
    fake.stubber.assert_no_pending_responses()


@pytest.fixture
def states(storage: Storage) -> Iterator[FakeStepFunctions]:
    with FakeStepFunctions(clients.stepfunctions()) as fake:
        yield fake
    fake.stubber.assert_no_pending_responses()


@pytest.fixture
def converse(storage: Storage, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeConverse]:
    """Converse behind a Stubber; records run one at a time so answers meet records in order; no real sleeping."""
    monkeypatch.setattr(sync_worker, "settings", replace(sync_worker.settings, record_concurrency=1))
    client = clients.bedrock_runtime(sync_worker.settings.model_timeout_seconds, 1)
    with FakeConverse(client, MODEL_ID) as fake:
        yield fake
    fake.stubber.assert_no_pending_responses()


class Invoke:
    """Invokes a function's handler as Lambda would, recording its AWS calls as that function's."""

    def __init__(self) -> None:
        self.calls: dict[str, list[aws_calls.AwsCall]] = {}

    def __call__(self, module: str, event: Any) -> Any:
        with aws_calls.recording(f"{PACKAGE}.{module}", environment=ENV[module]) as calls:
            MISSING_KEYS.function = module
            try:
                return HANDLERS[module].handler(event, FakeLambdaContext(function_name=f"batchinf-{module}"))
            finally:
                MISSING_KEYS.function = None
                self.calls.setdefault(module, []).extend(calls)

    def operations(self, module: str) -> list[str]:
        return [f"{c.service}:{c.operation}" for c in self.calls.get(module, [])]


@pytest.fixture
def invoke(storage: Storage) -> Invoke:
    return Invoke()


@pytest.fixture
def completion_source(storage: Storage, invoke: Invoke) -> SqsEventSource:
    """The completion queue's event source mapping, delivering to the completion handler (batch size 1)."""
    return SqsEventSource(COMPLETION_QUEUE_URL, lambda event, context: invoke("completion", event), batch_size=1,
                          visibility_timeout=int(COMPLETION_QUEUE["visibilityTimeoutSeconds"]))


@pytest.fixture
def run_endings_source(storage: Storage, invoke: Invoke) -> SqsEventSource:
    """The run-endings queue's event source mapping, delivering to the run-ended handler."""
    return SqsEventSource(RUN_ENDINGS_URL, lambda event, context: invoke("run_ended", event),
                          visibility_timeout=int(RUN_ENDINGS_QUEUE["visibilityTimeoutSeconds"]))


def deliver_event(storage: Storage, event: dict[str, Any]) -> None:
    """EventBridge delivering Bedrock's event to the completion queue (the rule's target)."""
    storage.sqs.send_message(QueueUrl=COMPLETION_QUEUE_URL, MessageBody=json.dumps(event))


Factory = Callable[..., Any]
__all__ = ["ACCOUNT", "REGION"]
