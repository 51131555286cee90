"""Send a follow-up or a check to the pipeline's own queue; the only module that calls SQS.

IAM: ``sqs:SendMessage`` on the pipeline queue's ARN (the queue named by ``FOLLOW_UP_QUEUE_URL``). When the
queue is encrypted with a customer-managed KMS key, the role also needs ``kms:GenerateDataKey`` and
``kms:Decrypt`` on that key; with SQS-managed encryption it needs nothing more.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from kb_sync.config import Settings
from kb_sync.exceptions import FollowUpSendError
from kb_sync.messages import DocumentCheck, FollowUp, FollowUpReason, JobCheck


def follow_up_delay(settings: Settings, follow_up: FollowUp) -> int:
    """A burst waits for the rest of itself; anything else waits for the running job (or quota) to free up."""
    if follow_up.reason is FollowUpReason.BURST:
        return settings.burst_settle_seconds
    if follow_up.reason is FollowUpReason.HANDED_OVER:
        return 0
    return settings.follow_up_delay_seconds


def send_follow_up(client: Any, settings: Settings, follow_up: FollowUp) -> str:
    """Enqueue ``follow_up`` with its delay and return its SQS message id."""
    return _send(client, settings, follow_up, follow_up_delay(settings, follow_up), "guarantees a later sync")


def send_check(client: Any, settings: Settings, check: JobCheck | DocumentCheck) -> str:
    """Enqueue the next look at a job or at directly ingested documents, ``CHECK_DELAY_SECONDS`` from now."""
    return _send(client, settings, check, settings.check_delay_seconds, "follows the work to its end")


def _send(client: Any, settings: Settings, message: FollowUp | JobCheck | DocumentCheck, delay: int,
          purpose: str) -> str:
    try:
        response = client.send_message(
            QueueUrl=settings.follow_up_queue_url,
            MessageBody=message.model_dump_json(),
            DelaySeconds=delay,
        )
    except (ClientError, BotoCoreError) as error:
        raise FollowUpSendError(
            f"knowledge base {settings.knowledge_base_id}: the {message.source} message that {purpose} "
            f"could not be sent to {settings.follow_up_queue_url}: {error}"
        ) from error
    return str(response["MessageId"])
