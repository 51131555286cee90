"""Send a follow-up to the pipeline's own queue; the only module that calls SQS.

IAM: ``sqs:SendMessage`` on the pipeline queue's ARN (the queue named by ``FOLLOW_UP_QUEUE_URL``). When the
queue is encrypted with a customer-managed KMS key, the role also needs ``kms:GenerateDataKey`` and
``kms:Decrypt`` on that key; with SQS-managed encryption it needs nothing more.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from kb_sync.config import Settings
from kb_sync.exceptions import FollowUpSendError
from kb_sync.messages import FollowUp


def send_follow_up(client: Any, settings: Settings, follow_up: FollowUp) -> str:
    """Enqueue ``follow_up`` with the configured delay and return its SQS message id."""
    try:
        response = client.send_message(
            QueueUrl=settings.follow_up_queue_url,
            MessageBody=follow_up.model_dump_json(),
            DelaySeconds=settings.follow_up_delay_seconds,
        )
    except (ClientError, BotoCoreError) as error:
        raise FollowUpSendError(
            f"knowledge base {settings.knowledge_base_id} is busy and the follow-up that guarantees a later sync "
            f"could not be sent to {settings.follow_up_queue_url}: {error}"
        ) from error
    return str(response["MessageId"])
