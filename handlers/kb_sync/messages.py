"""Pydantic models of everything that may arrive, as an SQS message body or as a direct invocation.

A message on the pipeline's queue is one of:

* an S3 event notification (``{"Records": [...]}``) for ObjectCreated/ObjectRemoved under the prefix;
* the ``s3:TestEvent`` S3 sends once when the notification configuration is saved;
* a follow-up this function sent itself after a ``ConflictException`` (``{"source": "follow-up", ...}``);
* a scheduled sync request (``{"source": "schedule"}``), which the schedule normally sends by invoking the
  function directly but which is equally valid on the queue.

The S3 models are the handlers' shared ones (``common.s3_events``); like them, the models here are strict, so a
wrong field type is rejected rather than coerced.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag

from common.s3_events import S3EventNotification, S3TestEvent, Strict

# The schedule's payload, for the infrastructure: EventBridge Scheduler substitutes the context attribute, so a
# retried delivery of the same tick carries the same `scheduledTime` and cannot start a second job.
SCHEDULE_PAYLOAD_TEMPLATE = '{"source": "schedule", "scheduledTime": "<aws.scheduler.scheduled-time>"}'


class ScheduledSync(Strict):
    """Sent by the schedule; ``scheduledTime`` makes retries of one tick share a client token."""

    source: Literal["schedule"]
    scheduledTime: str | None = Field(default=None, min_length=1, max_length=64)


class FollowUp(Strict):
    """A delayed re-request this function sends itself when Bedrock answered ``ConflictException``.

    ``origin`` is the client token of the run that conflicted and ``generation`` counts the re-requests in a
    row. Together they identify the follow-up, so two copies of it (a retried invocation may send it twice on a
    standard queue) produce the same client token and start at most one job.
    """

    source: Literal["follow-up"] = "follow-up"
    generation: int = Field(ge=1, le=1000)
    origin: str = Field(pattern=r"^[0-9a-f]{64}$")


def _message_kind(value: Any) -> str | None:
    """Pick the model by shape, so a wrong field type is reported against the right model."""
    if not isinstance(value, dict):
        return None
    if "Records" in value:
        return "s3-notification"
    if "Event" in value and "Service" in value:
        return "s3-test-event"
    source = value.get("source")
    return source if source in ("schedule", "follow-up") else None


QueueMessage = Annotated[
    Annotated[S3EventNotification, Tag("s3-notification")]
    | Annotated[S3TestEvent, Tag("s3-test-event")]
    | Annotated[ScheduledSync, Tag("schedule")]
    | Annotated[FollowUp, Tag("follow-up")],
    Discriminator(
        _message_kind,
        custom_error_type="unrecognised_message",
        custom_error_message="not an S3 event notification, S3 test event, schedule or follow-up request",
    ),
]
