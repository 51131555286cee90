"""Pydantic models of everything that may arrive, as an SQS message body or as a direct invocation.

A message on the pipeline's queue is one of:

* an S3 event notification (``{"Records": [...]}``) for ObjectCreated/ObjectRemoved under the prefix;
* the ``s3:TestEvent`` S3 sends once when the notification configuration is saved;
* a follow-up this function sent itself after a ``ConflictException`` (``{"source": "follow-up", ...}``);
* a scheduled sync request (``{"source": "schedule"}``), which the schedule normally sends by invoking the
  function directly but which is equally valid on the queue;
* a ``BatchRunCompleted`` event of the batch-inference pipeline (``knowledgeBaseSync.batchResults``), delivered by
  an EventBridge rule: a run whose results are documents of this knowledge base;
* a delayed check of an ingestion job this function started (``{"source": "job-check", ...}``), or of documents
  it ingested or deleted directly (``{"source": "document-check", ...}``): how the function follows its work to
  the end without waiting.

The S3 models are the handlers' shared ones (``common.s3_events``); like them, the models here are strict, so a
wrong field type is rejected rather than coerced.
"""

from __future__ import annotations

from enum import StrEnum
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


class FollowUpReason(StrEnum):
    CONFLICT = "conflict"  # a job was already running on the data source
    QUOTA = "quota"  # the account's concurrent-jobs quota was taken, by this stack or another
    BURST = "burst"  # a burst's job waits for the rest of the burst
    HANDED_OVER = "handed-over"  # directly ingested documents failed: a job syncs them


class FollowUp(Strict):
    """A delayed re-request this function sends itself: the job it stands for could not, or should not, start now.

    ``origin`` is the client token of the run that sent it and ``generation`` counts the conflicts in a row (a
    quota refusal or a burst's wait does not count: neither means the data source is stuck). Together they
    identify the follow-up, so two copies of it (a retried invocation may send it twice on a standard queue)
    produce the same client token and start at most one job. ``changedBefore`` is the SQS sent time (epoch
    milliseconds) of the newest change it carries: a job started after it has seen every one of them.
    """

    source: Literal["follow-up"] = "follow-up"
    generation: int = Field(ge=0, le=1000)
    origin: str = Field(pattern=r"^[0-9a-f]{64}$")
    reason: FollowUpReason = FollowUpReason.CONFLICT
    changedBefore: int | None = Field(default=None, ge=0)


class JobCheck(Strict):
    """A delayed look at an ingestion job this function started; repeated until the job ends."""

    source: Literal["job-check"] = "job-check"
    ingestionJobId: str = Field(pattern=r"^[0-9a-zA-Z]{10}$")
    check: int = Field(ge=1, le=100_000)


class DocumentChange(Strict):
    kind: Literal["created", "removed"]
    uri: str = Field(min_length=6, max_length=1100, pattern=r"^s3://")


class DocumentCheck(Strict):
    """A delayed look at documents this function ingested or deleted directly.

    ``attempt`` counts the submissions so far (1 for the first); ``check`` the looks at this submission.
    """

    source: Literal["document-check"] = "document-check"
    origin: str = Field(pattern=r"^[0-9a-f]{64}$")
    attempt: int = Field(ge=1, le=100)
    check: int = Field(ge=1, le=100_000)
    documents: list[DocumentChange] = Field(min_length=1, max_length=100)


class BatchRunOutput(Strict):
    bucket: str = Field(min_length=1, max_length=63)
    resultsPrefix: str = Field(min_length=1, max_length=1024)


class BatchRunDetail(Strict):
    runId: str = Field(min_length=1, max_length=128)
    status: str = Field(min_length=1, max_length=32)
    output: BatchRunOutput


class BatchRunCompleted(Strict):
    """The EventBridge event the batch-inference pipeline publishes when a run ends (only the fields read here)."""

    detail_type: Literal["BatchRunCompleted"] = Field(alias="detail-type")
    source: str = Field(min_length=1, max_length=256)
    detail: BatchRunDetail


def _message_kind(value: Any) -> str | None:
    """Pick the model by shape, so a wrong field type is reported against the right model."""
    if not isinstance(value, dict):
        return None
    if "Records" in value:
        return "s3-notification"
    if "Event" in value and "Service" in value:
        return "s3-test-event"
    if value.get("detail-type") == "BatchRunCompleted":
        return "batch-run"  # any other EventBridge event is not one this pipeline subscribes to
    source = value.get("source")
    return source if source in ("schedule", "follow-up", "job-check", "document-check") else None


QueueMessage = Annotated[
    Annotated[S3EventNotification, Tag("s3-notification")]
    | Annotated[S3TestEvent, Tag("s3-test-event")]
    | Annotated[ScheduledSync, Tag("schedule")]
    | Annotated[FollowUp, Tag("follow-up")]
    | Annotated[JobCheck, Tag("job-check")]
    | Annotated[DocumentCheck, Tag("document-check")]
    | Annotated[BatchRunCompleted, Tag("batch-run")],
    Discriminator(
        _message_kind,
        custom_error_type="unrecognised_message",
        custom_error_message="not an S3 event notification, S3 test event, schedule, follow-up, check or batch run",
    ),
]
