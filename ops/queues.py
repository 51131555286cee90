"""Queue lookups, depths and a look at messages that leaves them where they are.

Peeking. SQS has no read that leaves a message untouched: ``ReceiveMessage`` with ``VisibilityTimeout=0`` returns
messages and makes them visible again at once, so nothing is consumed or hidden from the queue's consumers, but
each receive adds one to the message's ``ApproximateReceiveCount``. On a dead-letter queue (it has no redrive policy
of its own) that count moves nothing; on a source queue with a redrive policy, peeking ``maxReceiveCount`` times
would dead-letter the message, so only dead-letter queues are peeked. A short poll samples a subset of SQS's
servers, so a peek may return fewer messages than the queue holds (``WaitTimeSeconds`` makes it ask them all).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ops.stack import StackOutputs

DEPTH_ATTRIBUTES = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                    "ApproximateNumberOfMessagesDelayed", "RedrivePolicy"]


@dataclass(frozen=True)
class QueueRef:
    name: str
    url: str
    arn: str


@dataclass(frozen=True)
class Depth:
    visible: int
    in_flight: int
    delayed: int

    @property
    def total(self) -> int:
        return self.visible + self.in_flight + self.delayed


class QueueMissingError(Exception):
    pass


def resolve(sqs: Any, outputs: StackOutputs, pipeline: str, purpose: str) -> QueueRef:
    name = outputs.queue_name(pipeline, purpose)
    try:
        url = sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=outputs.account)["QueueUrl"]
    except sqs.exceptions.QueueDoesNotExist as error:
        raise QueueMissingError(f"queue {name} does not exist in {outputs.account}/{outputs.region}") from error
    return QueueRef(name, url, outputs.queue_arn(name))


def depth(sqs: Any, queue: QueueRef) -> Depth:
    values = sqs.get_queue_attributes(QueueUrl=queue.url, AttributeNames=DEPTH_ATTRIBUTES)["Attributes"]
    return Depth(int(values.get("ApproximateNumberOfMessages", 0)),
                 int(values.get("ApproximateNumberOfMessagesNotVisible", 0)),
                 int(values.get("ApproximateNumberOfMessagesDelayed", 0)))


def peek(sqs: Any, queue: QueueRef, count: int, *, wait_seconds: int = 1) -> list[dict[str, Any]]:
    """Up to ``count`` (at most 10) messages of ``queue``, left visible (see the module's note)."""
    if count <= 0:
        return []
    response = sqs.receive_message(QueueUrl=queue.url, MaxNumberOfMessages=min(count, 10), VisibilityTimeout=0,
                                   WaitTimeSeconds=wait_seconds, MessageSystemAttributeNames=["All"],
                                   MessageAttributeNames=["All"])
    return list(response.get("Messages", []))


def body_json(message: dict[str, Any]) -> Any:
    try:
        return json.loads(message.get("Body", ""))
    except (json.JSONDecodeError, TypeError):
        return None
