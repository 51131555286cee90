"""Fixtures shared by the Lambda handler tests: a fake AWS environment, a Lambda context, an SQS event source
that delivers like Lambda's event source mapping, and the AWS call recorder (``tests/support/aws_calls.py``).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
from moto import mock_aws

from tests.support import aws_calls as call_recorder

REGION = "us-east-1"
ACCOUNT = call_recorder.DEFAULT_ACCOUNT

# Before any botocore session exists, so every client a handler creates is recorded.
call_recorder.install()


@pytest.fixture(autouse=True)
def _fake_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Credentials that can never reach a real account, and a fixed region."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.fixture
def aws() -> Iterator[None]:
    """moto for every AWS service it emulates, for the duration of one test."""
    with mock_aws():
        yield


@pytest.fixture(scope="session", autouse=True)
def _write_recorded_aws_calls(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    call_recorder.REGISTRY.write(request.config.rootpath / ".build" / "aws-calls")


@pytest.fixture
def aws_calls() -> Callable[..., Any]:
    """``with aws_calls("kb_sync") as calls: ...`` records the block's AWS calls as that function's."""
    return call_recorder.recording


@dataclass
class FakeLambdaContext:
    function_name: str = "handler-under-test"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:handler-under-test"
    log_group_name: str = "/aws/lambda/handler-under-test"
    log_stream_name: str = "2024/01/01/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture
def lambda_context_factory() -> Callable[..., FakeLambdaContext]:
    """``lambda_context_factory(function_name="kb-sync")``: a fresh context (new request id) per invocation."""
    return FakeLambdaContext


def lambda_sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """One record of Lambda's SQS event, built from a message as ``ReceiveMessage`` returned it."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": message.get("Attributes", {}),
        "messageAttributes": message.get("MessageAttributes", {}),
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }


@dataclass
class Delivery:
    """What one poll of the event source did: the event handed over and the handler's answer."""

    event: dict[str, Any]
    response: Any = None
    error: BaseException | None = None

    @property
    def message_ids(self) -> list[str]:
        return [record["messageId"] for record in self.event["Records"]]

    @property
    def failed_ids(self) -> list[str]:
        if self.error is not None:
            return self.message_ids
        return [item["itemIdentifier"] for item in (self.response or {}).get("batchItemFailures", [])]


@dataclass
class SqsEventSource:
    """Lambda's SQS event source mapping with ``ReportBatchItemFailures``, played against a moto queue.

    ``poll`` receives up to ``batch_size`` visible messages, invokes the handler with them, deletes the
    messages the handler did not report as failed (none when it raised) and leaves the rest to come back after
    the visibility timeout, where moto counts receives and redrives to the DLQ like SQS.
    """

    queue_url: str
    handler: Callable[[dict[str, Any], Any], Any]
    context_factory: Callable[[], Any] = FakeLambdaContext
    batch_size: int = 10
    visibility_timeout: int = 30

    def __post_init__(self) -> None:
        self._sqs = boto3.client("sqs", region_name=REGION)
        self.queue_arn = self._sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]

    def receive(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while len(messages) < self.batch_size:
            page = self._sqs.receive_message(
                QueueUrl=self.queue_url,
                MaxNumberOfMessages=min(10, self.batch_size - len(messages)),
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
                VisibilityTimeout=self.visibility_timeout,
            ).get("Messages", [])
            if not page:
                break
            messages.extend(page)
        return messages

    def event(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """The Lambda event for received ``messages``."""
        return {"Records": [lambda_sqs_record(m, self.queue_arn) for m in messages]}

    def poll(self, *, raise_errors: bool = False) -> Delivery | None:
        """Deliver one batch; None when nothing is visible. Errors are kept on the delivery unless asked."""
        messages = self.receive()
        if not messages:
            return None
        delivery = Delivery(self.event(messages))
        try:
            delivery.response = self.handler(delivery.event, self.context_factory())
        except Exception as error:
            delivery.error = error
            if raise_errors:
                raise
            return delivery
        failed = set(delivery.failed_ids)
        for message in messages:
            if message["MessageId"] not in failed:
                self._sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
        return delivery


@pytest.fixture
def sqs_event_source(aws: None) -> Callable[..., SqsEventSource]:
    """``sqs_event_source(queue_url, handler, batch_size=10)``: an event source mapping over a moto queue."""
    return SqsEventSource


class SqsClock:
    """Moves moto's SQS clock forward, so delayed and in-flight messages become visible without waiting."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import moto.sqs.models as sqs_models

        self.offset = 0.0
        real_time, real_millis = sqs_models.unix_time, sqs_models.unix_time_millis
        monkeypatch.setattr(sqs_models, "unix_time", lambda dt=None: real_time(dt) + (0 if dt else self.offset))
        monkeypatch.setattr(
            sqs_models, "unix_time_millis", lambda dt=None: real_millis(dt) + (0 if dt else self.offset * 1000)
        )

    def advance(self, seconds: float) -> None:
        self.offset += seconds


class LogCapture(logging.Handler):
    """Collects a handler's structured log entries, formatted exactly as Powertools writes them."""

    def __init__(self, formatter: logging.Formatter) -> None:
        super().__init__()
        self.setFormatter(formatter)
        self.entries: list[dict[str, Any]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.entries.append(json.loads(self.format(record)))

    def named(self, message: str) -> list[dict[str, Any]]:
        return [entry for entry in self.entries if str(entry.get("message", "")).startswith(message)]


@contextmanager
def captured_logs(logger: Any) -> Iterator[LogCapture]:
    """Capture a Powertools logger's entries for the duration of the block."""
    capture = LogCapture(logger.registered_formatter)
    logger.addHandler(capture)
    try:
        yield capture
    finally:
        logger.removeHandler(capture)
