"""Fixtures for the kb_sync handler tests: the pipeline in moto, Bedrock behind a Stubber, a clock for SQS
delays, and the handler invoked the way Lambda would, with its AWS calls recorded as ``kb_sync``'s."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from tests.handlers.conftest import LogCapture, SqsClock, captured_logs
from tests.handlers.kb_sync.bedrock_fake import FakeKnowledgeBase
from tests.handlers.kb_sync.names import (
    BUCKET,
    DATA_SOURCE_ID,
    DLQ,
    ENVIRONMENT,
    FUNCTION,
    KNOWLEDGE_BASE_ID,
    MAX_RECEIVE_COUNT,
    PREFIX,
    QUEUE,
    QUEUE_URL,
    REGION,
)
from tests.support import aws_calls

# kb_sync.app validates its configuration at import, as at a cold start, so the variables are set first.
os.environ.update(ENVIRONMENT)

from kb_sync import app, clients


@pytest.fixture
def kb_app() -> Iterator[Any]:
    """The handler module with fresh clients; ``configure(**changes)`` overrides its settings for one test."""
    clients.reset()
    yield app
    clients.reset()


@pytest.fixture
def configure(kb_app: Any, monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    def apply(**changes: Any) -> None:
        monkeypatch.setattr(kb_app, "settings", replace(kb_app.settings, **changes))

    return apply


@pytest.fixture
def jobs_mode(configure: Callable[..., None]) -> None:
    """Every change through StartIngestionJob at once (mode jobs, no burst settling): the job path alone."""
    configure(sync_mode="jobs", burst_settle_seconds=0)


@dataclass
class Pipeline:
    """The data-source bucket notifying the pipeline's queue (with its DLQ), as the infrastructure wires them."""

    s3: Any
    sqs: Any
    queue_url: str
    dlq_url: str

    def put(self, key: str, body: bytes = b"document") -> None:
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)

    def delete(self, key: str) -> None:
        self.s3.delete_object(Bucket=BUCKET, Key=key)

    def send(self, body: str) -> str:
        """Put a raw message on the queue, as a misbehaving producer would."""
        return self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)["MessageId"]

    def attribute(self, name: str, queue_url: str | None = None) -> int:
        attributes = self.sqs.get_queue_attributes(QueueUrl=queue_url or self.queue_url, AttributeNames=[name])
        return int(attributes["Attributes"][name])

    def dead_letters(self) -> list[dict[str, Any]]:
        return self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10).get("Messages", [])


@pytest.fixture
def pipeline(aws: None) -> Pipeline:
    s3 = boto3.client("s3", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    dlq_url = sqs.create_queue(QueueName=DLQ)["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
    queue_url = sqs.create_queue(QueueName=QUEUE, Attributes={"RedrivePolicy": json.dumps(redrive)})["QueueUrl"]
    assert queue_url == QUEUE_URL
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": PREFIX}]}},
                }
            ]
        },
    )
    return Pipeline(s3=s3, sqs=sqs, queue_url=queue_url, dlq_url=dlq_url)


@pytest.fixture
def bedrock(kb_app: Any, clock: SqsClock) -> Iterator[FakeKnowledgeBase]:
    """Bedrock behind a Stubber on the very client the handler uses, on the same clock as SQS."""
    def now() -> datetime:
        return datetime.now(UTC) + timedelta(seconds=clock.offset)

    with FakeKnowledgeBase(clients.bedrock_agent(), KNOWLEDGE_BASE_ID, DATA_SOURCE_ID, now=now) as fake:
        yield fake
    fake.stubber.assert_no_pending_responses()


class Invoker:
    """Calls the handler as Lambda would, recording its AWS calls as the function's; ``calls`` holds this test's."""

    def __init__(self, handler: Callable[..., Any], context_factory: Callable[..., Any]) -> None:
        self._handler = handler
        self._context_factory = context_factory
        self.calls: list[aws_calls.AwsCall] = []

    def __call__(self, event: Any, context: Any = None) -> Any:
        with aws_calls.recording(FUNCTION, environment=ENVIRONMENT) as calls:
            try:
                return self._handler(event, context or self._context_factory(function_name="kb-sync"))
            finally:
                self.calls.extend(calls)


@pytest.fixture
def invoke(kb_app: Any, lambda_context_factory: Callable[..., Any]) -> Invoker:
    return Invoker(kb_app.handler, lambda_context_factory)


@pytest.fixture
def event_source(pipeline: Pipeline, invoke: Callable[..., Any], sqs_event_source: Callable[..., Any]) -> Any:
    """Lambda's event source mapping over the pipeline's queue, with a batch large enough for a burst."""
    return sqs_event_source(pipeline.queue_url, invoke, batch_size=1000)


Clock = SqsClock


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)




@pytest.fixture
def logs(kb_app: Any) -> Iterator[LogCapture]:
    with captured_logs(kb_app.logger) as capture:
        yield capture
