"""Fixtures for the event_processor handler tests: the pipeline in moto, built from the synthesized dev stack, Bedrock
behind a Stubber, one clock for SQS, the handler's backoff and its Lambda context, and the handler invoked the way
Lambda would, with its AWS calls recorded as ``event_processor``'s.

The function's environment is exactly what the dev stack gives it (``function_environment``), synthesized in moto's
region, and the moto resources carry the stack's names, patterns and queue settings, so the calls the handler makes
are the calls it would make in the account, and the least-privilege check holds them against the real role.
"""

from __future__ import annotations

import json
import os
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from tests.handlers.conftest import ACCOUNT, REGION, LogCapture, SqsClock, SqsEventSource, captured_logs
from tests.handlers.event_processor.model_fake import FakeModel
from tests.support import aws_calls
from tests.support.stacks import function_environment, shipped_stack

PACKAGE = "event_processor"
ENVIRONMENT = function_environment(PACKAGE)
_STACK = shipped_stack("dev")


def _stack(name: str) -> dict[str, Any]:
    return _STACK.named(name).inputs


INTAKE_RULE = _stack("eventproc-intake-rule")
COMPLETED_RULE = _stack("eventproc-completed-rule")
WORK_QUEUE = _stack("eventproc-work")
WORK_DLQ = _stack("eventproc-work-dlq")
FUNCTION = _stack("eventproc-worker")
IDEMPOTENCY_TABLE = _stack("eventproc-idempotency-table")
RESULTS_TABLE = _stack("eventproc-results-table")
SUBSCRIBER_QUEUE = _stack("eventproc-subscriber")

VISIBILITY_TIMEOUT = int(WORK_QUEUE["visibilityTimeoutSeconds"])
MAX_RECEIVE_COUNT = int(json.loads(WORK_QUEUE["redrivePolicy"])["maxReceiveCount"])
FUNCTION_TIMEOUT = int(FUNCTION["timeout"])
SOURCE = json.loads(INTAKE_RULE["eventPattern"])["source"][0]
DETAIL_TYPE = json.loads(INTAKE_RULE["eventPattern"])["detail-type"][0]


# event_processor.app validates its configuration at import, as at a cold start, so the variables are set first.
os.environ.update(ENVIRONMENT)

from event_processor import app, clients  # noqa: E402


class Clock(SqsClock):
    """One virtual time for moto's SQS (visibility, delays), the handler's backoff and claims, and the context.

    Sleeping advances it instantly, so backoff and budgets are exercised without waiting.
    """

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import time

        super().__init__(monkeypatch)
        self._real = time.time
        self.slept: list[float] = []

    def time(self) -> float:
        return self._real() + self.offset

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.offset += seconds


@dataclass
class Context:
    """Lambda's context for one invocation, its remaining time read from the shared clock."""

    clock: Clock
    timeout: float = FUNCTION_TIMEOUT
    function_name: str = FUNCTION["name"]
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{FUNCTION['name']}"
    log_group_name: str = f"/aws/lambda/{FUNCTION['name']}"
    log_stream_name: str = "2024/01/01/[$LATEST]0123456789abcdef"
    started: float = 0.0

    def __post_init__(self) -> None:
        self.started = self.clock.time()

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self.started + self.timeout - self.clock.time()) * 1000))


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)


@pytest.fixture
def ep_app(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The handler module with fresh clients, running on the shared clock, in a Lambda-like environment."""
    clients.reset()
    monkeypatch.setattr(app, "clock", clock)
    # As in Lambda: Powertools then runs the batch on a reusable event loop instead of asyncio.run(), which would
    # leave the test process's main thread without one.
    monkeypatch.setenv("LAMBDA_TASK_ROOT", "/var/task")
    yield app
    clients.reset()


@dataclass
class Pipeline:
    """The pipeline's AWS side in moto, as the dev stack wires it: input bus -> rule -> work queue (with its DLQ),
    the two tables, and the result bus with the example subscriber's rule -> queue."""

    events: Any
    sqs: Any
    dynamodb: Any
    queue_url: str
    dlq_url: str
    subscriber_url: str
    input_bus: str = INTAKE_RULE["eventBusName"]
    result_bus: str = COMPLETED_RULE["eventBusName"]
    _completed: list[dict[str, Any]] = field(default_factory=list)
    _dead: list[str] = field(default_factory=list)

    def submit(self, item_id: str, content: str = "an invoice for 3 widgets", *, reference: str | None = None,
               source: str = SOURCE, detail_type: str = DETAIL_TYPE, **extra: Any) -> str:
        """A producer puts an item on the input bus; returns the EventBridge event id."""
        detail = {"itemId": item_id, "content": content, **extra}
        if reference is not None:
            detail["reference"] = reference
        response = self.events.put_events(Entries=[{"EventBusName": self.input_bus, "Source": source,
                                                    "DetailType": detail_type, "Detail": json.dumps(detail)}])
        assert response["FailedEntryCount"] == 0, response
        return str(response["Entries"][0]["EventId"])

    def send_raw(self, body: str) -> str:
        """Put a raw body on the work queue, as a misbehaving producer or a bad redrive would."""
        return str(self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)["MessageId"])

    def results(self) -> list[dict[str, Any]]:
        return list(self.dynamodb.scan(TableName=RESULTS_TABLE["name"])["Items"])

    def idempotency_records(self) -> list[dict[str, Any]]:
        """Powertools' records (not the item-version records kept beside them)."""
        return [item for item in self.dynamodb.scan(TableName=IDEMPOTENCY_TABLE["name"])["Items"]
                if not item["id"]["S"].startswith("item-version#")]

    def completed(self) -> list[dict[str, Any]]:
        """Every ProcessingCompleted event the example subscriber has received so far."""
        while True:
            page = self.sqs.receive_message(QueueUrl=self.subscriber_url, MaxNumberOfMessages=10).get("Messages", [])
            if not page:
                return list(self._completed)
            for message in page:
                self._completed.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=self.subscriber_url, ReceiptHandle=message["ReceiptHandle"])

    def dead_letters(self) -> list[str]:
        """Every body that reached the work queue's DLQ so far."""
        while True:
            page = self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10).get("Messages", [])
            if not page:
                return list(self._dead)
            for message in page:
                self._dead.append(message["Body"])
                self.sqs.delete_message(QueueUrl=self.dlq_url, ReceiptHandle=message["ReceiptHandle"])

    def in_queue(self) -> int:
        attributes = self.sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def ledger(self, item_ids: Sequence[str], raw_bodies: Sequence[str] = ()) -> dict[str, Counter[str]]:
        """Where every input ended: per item id (or raw body), how often it was stored, announced, dead-lettered."""
        ledger: dict[str, Counter[str]] = {key: Counter() for key in [*item_ids, *raw_bodies]}
        for item in self.results():
            ledger.setdefault(item["input"]["M"]["itemId"]["S"], Counter())["stored"] += 1
        for event in self.completed():
            ledger.setdefault(event["detail"]["input"]["itemId"], Counter())["published"] += 1
        for body in self.dead_letters():
            if body in ledger:
                ledger[body]["dlq"] += 1
                continue
            try:
                item_id = str(json.loads(body)["detail"]["itemId"])
            except (ValueError, KeyError, TypeError):
                item_id = body
            ledger.setdefault(item_id, Counter())["dlq"] += 1
        return ledger


STORED_ONCE = Counter({"stored": 1, "published": 1})
DEAD_LETTERED = Counter({"dlq": 1})


def assert_each_exactly_once(ledger: dict[str, Counter[str]]) -> None:
    """Every input ends stored once and announced once, or in the DLQ once; never both, never doubled."""
    wrong = {key: dict(counts) for key, counts in ledger.items() if counts not in (STORED_ONCE, DEAD_LETTERED)}
    assert wrong == {}, f"inputs not accounted for exactly once: {wrong}"


@pytest.fixture
def atomic_dynamodb_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make moto's conditional writes atomic, as DynamoDB's are.

    moto checks a condition and then writes without a lock, so two threads putting the same key with
    ``attribute_not_exists`` can both succeed; DynamoDB never lets that happen. The handler's threads rely on it.
    """
    import functools
    import threading

    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ("put_item", "update_item", "delete_item", "get_item"):
        original = getattr(DynamoDBBackend, name)

        @functools.wraps(original)
        def locked(*args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return __original(*args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, locked)


@pytest.fixture
def pipeline(aws: None, atomic_dynamodb_writes: None) -> Pipeline:
    events = boto3.client("events", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    dynamodb = boto3.client("dynamodb", region_name=REGION)

    dlq_url = sqs.create_queue(QueueName=WORK_DLQ["name"])["QueueUrl"]
    redrive = json.loads(WORK_QUEUE["redrivePolicy"])
    queue_url = sqs.create_queue(QueueName=WORK_QUEUE["name"], Attributes={
        "VisibilityTimeout": str(VISIBILITY_TIMEOUT),
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": redrive["deadLetterTargetArn"],
                                     "maxReceiveCount": str(redrive["maxReceiveCount"])})})["QueueUrl"]
    subscriber_url = sqs.create_queue(QueueName=SUBSCRIBER_QUEUE["name"])["QueueUrl"]
    for rule, queue in ((INTAKE_RULE, queue_url), (COMPLETED_RULE, subscriber_url)):
        events.create_event_bus(Name=rule["eventBusName"])
        events.put_rule(Name=rule["name"], EventBusName=rule["eventBusName"], EventPattern=rule["eventPattern"])
        arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        events.put_targets(Rule=rule["name"], EventBusName=rule["eventBusName"], Targets=[{"Id": "queue", "Arn": arn}])
    for table in (IDEMPOTENCY_TABLE, RESULTS_TABLE):
        dynamodb.create_table(TableName=table["name"], BillingMode="PAY_PER_REQUEST",
                              KeySchema=[{"AttributeName": table["hashKey"], "KeyType": "HASH"}],
                              AttributeDefinitions=[{"AttributeName": table["hashKey"], "AttributeType": "S"}])
        if table.get("ttl"):
            dynamodb.update_time_to_live(TableName=table["name"], TimeToLiveSpecification={
                "Enabled": True, "AttributeName": table["ttl"]["attributeName"]})
    return Pipeline(events=events, sqs=sqs, dynamodb=dynamodb, queue_url=queue_url, dlq_url=dlq_url,
                    subscriber_url=subscriber_url)


@pytest.fixture
def model(ep_app: Any) -> Iterator[FakeModel]:
    """Bedrock behind a Stubber on the very client the handler uses."""
    with FakeModel(clients.model_client(ep_app.settings)) as fake:
        yield fake


@pytest.fixture
def context_factory(clock: Clock) -> Callable[..., Context]:
    return lambda **overrides: Context(clock=clock, **overrides)


@pytest.fixture
def invoke(ep_app: Any, context_factory: Callable[..., Context]) -> Callable[..., Any]:
    """Call the handler as Lambda would, recording its AWS calls as the function's."""

    def call(event: Any, context: Any = None) -> Any:
        with aws_calls.recording(PACKAGE, environment=ENVIRONMENT):
            return ep_app.handler(event, context or context_factory())

    return call


@pytest.fixture
def event_source(pipeline: Pipeline, invoke: Callable[..., Any], context_factory: Callable[..., Context]
                 ) -> SqsEventSource:
    """Lambda's event source mapping over the work queue, with the stack's batch size and visibility timeout."""
    mapping = _stack("eventproc-worker-source")
    return SqsEventSource(pipeline.queue_url, invoke, context_factory=context_factory,
                          batch_size=int(mapping["batchSize"]), visibility_timeout=VISIBILITY_TIMEOUT)


def drain(event_source: SqsEventSource, pipeline: Pipeline, clock: Clock, *, max_polls: int = 50) -> list[Any]:
    """Poll until the work queue is empty, letting each visibility timeout pass: SQS retries and dead-letters."""
    deliveries = []
    for _ in range(max_polls):
        delivery = event_source.poll()
        if delivery is not None:
            deliveries.append(delivery)
            continue
        if pipeline.in_queue() == 0:
            return deliveries
        clock.advance(VISIBILITY_TIMEOUT + 1)
    raise AssertionError(f"the work queue did not drain in {max_polls} polls")




@pytest.fixture
def logs(ep_app: Any) -> Iterator[LogCapture]:
    with captured_logs(ep_app.logger) as capture:
        yield capture


@pytest.fixture
def configure(ep_app: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """``configure(**changes)``: override the function's settings (and the intake rules derived from them)."""
    from dataclasses import replace

    from event_processor.intake import IntakeRules

    def apply(**changes: Any) -> None:
        settings = replace(ep_app.settings, **changes)
        monkeypatch.setattr(ep_app, "settings", settings)
        monkeypatch.setattr(ep_app, "rules", IntakeRules(
            accepted_sources=settings.accepted_sources, accepted_detail_types=settings.accepted_detail_types,
            key_fields=settings.idempotency_key_fields, max_input_chars=settings.max_input_chars))

    return apply
