"""Turn one SQS message body into a verdict: what it asks of the knowledge base, or why it is unusable.

Pure: no AWS calls, no logging. Every body gets exactly one verdict, so every bad input in the catalogue has a
defined outcome:

| input                                   | verdict                                   |
|-----------------------------------------|-------------------------------------------|
| ObjectCreated / ObjectRemoved event     | ``Changed`` (needs a sync)                |
| a record of another bucket              | ``Rejected(FOREIGN_BUCKET)`` (forged or misrouted) |
| a key outside the document prefix       | ``Rejected(OUTSIDE_PREFIX)``              |
| key whose %-escapes are not UTF-8       | ``Changed``, raw key kept (still a change) |
| follow-up or schedule request           | ``SyncRequested``                          |
| job check or document check             | ``CheckRequested``                         |
| BatchRunCompleted, SUCCEEDED, results under the prefix | ``SyncRequested`` (one per run)  |
| BatchRunCompleted of another status     | ``Skipped``                               |
| BatchRunCompleted, results elsewhere    | ``Rejected(FOREIGN_BUCKET / OUTSIDE_PREFIX)`` |
| ``s3:TestEvent``                        | ``Skipped``                               |
| other S3 event types (tagging, restore) | ``Skipped``                               |
| empty body                              | ``Rejected(EMPTY_BODY)``                  |
| body that is not valid UTF-8 text       | ``Rejected(INVALID_UTF8)``                |
| body over ``MAX_BODY_BYTES``            | ``Rejected(OVERSIZED)``                   |
| malformed JSON                          | ``Rejected(MALFORMED_JSON)``              |
| JSON of an unknown shape                | ``Rejected(UNRECOGNISED)``                |
| known shape, wrong field type/value     | ``Rejected(INVALID_FIELDS)``              |
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import unquote_plus

from pydantic import TypeAdapter, ValidationError

from common.message_body import BodyProblem, BodyRejected, describe_validation_error, read_body
from common.redact import clip, digest
from common.s3_keys import decode_event_key
from kb_sync.messages import (
    BatchRunCompleted,
    DocumentCheck,
    FollowUp,
    FollowUpReason,
    JobCheck,
    QueueMessage,
    S3EventNotification,
    S3TestEvent,
    ScheduledSync,
)

# An S3 notification for the longest key (1,024 bytes, up to 3x when %-escaped) stays under 8 KiB. Anything far
# larger is not one, and refusing it before parsing keeps the work and the log entry bounded.
MAX_BODY_BYTES = 64 * 1024

_QUEUE_MESSAGE: TypeAdapter[QueueMessage] = TypeAdapter(QueueMessage)
# A skip names at most this many event types (a notification may carry many records).
_NAMES_SHOWN = 5


class ChangeKind(StrEnum):
    CREATED = "created"
    REMOVED = "removed"


# Event-name prefixes that change what the knowledge base should contain. Lifecycle expiry removes objects
# too; it only arrives if the notification configuration subscribes to it, and then it must not be ignored.
_CHANGE_KINDS = {
    "ObjectCreated:": ChangeKind.CREATED,
    "ObjectRemoved:": ChangeKind.REMOVED,
    "LifecycleExpiration:": ChangeKind.REMOVED,
}


class SkipReason(StrEnum):
    S3_TEST_EVENT = "s3-test-event"
    NOT_A_CHANGE = "not-a-content-change"
    RUN_NOT_SUCCEEDED = "batch-run-not-succeeded"


class SourceProblem(StrEnum):
    """A well-formed notification that this pipeline's bucket and prefix cannot have sent."""

    FOREIGN_BUCKET = "foreign-bucket"
    OUTSIDE_PREFIX = "outside-prefix"


RejectReason = BodyProblem  # what is wrong with a body; a notification from elsewhere is a SourceProblem


@dataclass(frozen=True)
class Source:
    """Where this pipeline's notifications come from: S3 notifies only for this bucket and prefix."""

    bucket: str
    prefix: str


@dataclass(frozen=True)
class ObjectChange:
    kind: ChangeKind
    bucket: str
    key: str
    key_is_raw: bool = False  # True when the key's %-escapes were not UTF-8 and it is shown as received
    sequencer: str | None = None  # S3's order of events on one key (hexadecimal, compared at equal length)

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.key}"


@dataclass(frozen=True)
class Changed:
    changes: tuple[ObjectChange, ...]


@dataclass(frozen=True)
class SyncRequested:
    """A follow-up (``origin`` set) or a schedule request on the queue (generation 0, no origin)."""

    generation: int
    origin: str | None = None
    reason: FollowUpReason | None = None
    changed_before: int | None = None
    run_id: str | None = None  # a batch run's end: copies of its event share it, and so one client token


@dataclass(frozen=True)
class CheckRequested:
    """A delayed look at a started job or at directly ingested documents: handled on its own, not synced."""

    check: JobCheck | DocumentCheck


@dataclass(frozen=True)
class Skipped:
    reason: SkipReason
    detail: str


@dataclass(frozen=True)
class Rejected:
    reason: BodyProblem | SourceProblem
    detail: str


Verdict = Changed | SyncRequested | CheckRequested | Skipped | Rejected


def classify(body: object, source: Source) -> Verdict:
    """Classify one message body (the ``body`` string of an SQS record) against the pipeline's bucket and prefix."""
    text = read_body(body, max_bytes=MAX_BODY_BYTES)
    if isinstance(text, BodyRejected):
        return Rejected(text.problem, text.detail)
    try:
        message = _QUEUE_MESSAGE.validate_json(text)
    except ValidationError as error:
        rejected = describe_validation_error(error)
        return Rejected(rejected.problem, rejected.detail)
    return _verdict(message, source)


def _verdict(message: QueueMessage, source: Source) -> Verdict:
    if isinstance(message, S3TestEvent):
        return Skipped(SkipReason.S3_TEST_EVENT, f"test event for bucket {clip(message.Bucket, 63)}")
    if isinstance(message, FollowUp):
        return SyncRequested(generation=message.generation, origin=message.origin, reason=message.reason,
                             changed_before=message.changedBefore)
    if isinstance(message, JobCheck | DocumentCheck):
        return CheckRequested(message)
    if isinstance(message, BatchRunCompleted):
        return _batch_run(message, source)
    if isinstance(message, ScheduledSync):
        return SyncRequested(generation=0)
    return _changes(message, source)


def _changes(notification: S3EventNotification, source: Source) -> Changed | Skipped | Rejected:
    changes = []
    for index, record in enumerate(notification.Records):
        # Checked before anything else: a forged record must not start a job whatever its event type. One bad
        # record rejects its whole message, as S3 never mixes buckets in one notification.
        if record.s3.bucket.name != source.bucket:
            return Rejected(SourceProblem.FOREIGN_BUCKET, f"record {index} is of bucket "
                            f"{clip(record.s3.bucket.name, 63)}; this pipeline syncs only {source.bucket}")
        change = _object_change(ChangeKind.CREATED, record.s3.bucket.name, record.s3.object.key)
        # A key whose escapes are not UTF-8 is compared as far as it decodes: its prefix may still be ours.
        readable = unquote_plus(change.key, errors="replace") if change.key_is_raw else change.key
        if not readable.startswith(source.prefix):
            return Rejected(SourceProblem.OUTSIDE_PREFIX,
                            f"record {index} names a key outside {source.prefix} (sha256 {digest(change.key, 16)})")
        kind = _change_kind(record.eventName)
        if kind is not None:
            changes.append(ObjectChange(kind, change.bucket, change.key, change.key_is_raw,
                                        record.s3.object.sequencer))
    if not changes:
        names = sorted({clip(record.eventName, 64) for record in notification.Records})[:_NAMES_SHOWN]
        return Skipped(SkipReason.NOT_A_CHANGE, f"event types {names} do not change documents")
    return Changed(tuple(changes))


def _batch_run(event: BatchRunCompleted, source: Source) -> SyncRequested | Skipped | Rejected:
    """A run's results are documents of this knowledge base only in its bucket, under its prefix; the rule matches
    only those, so anything else was forged or misrouted."""
    output = event.detail.output
    if output.bucket != source.bucket:
        return Rejected(SourceProblem.FOREIGN_BUCKET, f"batch run {clip(event.detail.runId, 128)} wrote to bucket "
                        f"{clip(output.bucket, 63)}; this pipeline syncs only {source.bucket}")
    if not output.resultsPrefix.startswith(source.prefix):
        return Rejected(SourceProblem.OUTSIDE_PREFIX, f"batch run {clip(event.detail.runId, 128)} wrote outside "
                        f"{source.prefix} (sha256 {digest(output.resultsPrefix, 16)})")
    if event.detail.status != "SUCCEEDED":
        return Skipped(SkipReason.RUN_NOT_SUCCEEDED, f"batch run {clip(event.detail.runId, 128)} ended "
                       f"{clip(event.detail.status, 32)}")
    return SyncRequested(generation=0, run_id=event.detail.runId)


def _change_kind(event_name: str) -> ChangeKind | None:
    for prefix, kind in _CHANGE_KINDS.items():
        if event_name.startswith(prefix):
            return kind
    return None


def _object_change(kind: ChangeKind, bucket: str, raw_key: str) -> ObjectChange:
    try:
        return ObjectChange(kind, bucket, decode_event_key(raw_key))
    except UnicodeDecodeError:
        # The object did change, and the job syncs the whole data source whatever the key says, so the event
        # still counts; only the log shows the key as received.
        return ObjectChange(kind, bucket, raw_key, key_is_raw=True)
