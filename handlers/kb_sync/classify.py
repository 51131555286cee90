"""Turn one SQS message body into a verdict: what it asks of the knowledge base, or why it is unusable.

Pure: no AWS calls, no logging. Every body gets exactly one verdict, so every bad input in the catalogue has a
defined outcome:

| input                                   | verdict                                   |
|-----------------------------------------|-------------------------------------------|
| ObjectCreated / ObjectRemoved event     | ``Changed`` (needs a sync)                |
| key whose %-escapes are not UTF-8       | ``Changed``, raw key kept (still a change) |
| follow-up or schedule request           | ``SyncRequested``                          |
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

from pydantic import TypeAdapter, ValidationError

from common.message_body import BodyProblem, BodyRejected, describe_validation_error, read_body
from common.redact import clip
from common.s3_keys import decode_event_key
from kb_sync.messages import FollowUp, QueueMessage, S3EventNotification, S3TestEvent, ScheduledSync

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


RejectReason = BodyProblem  # every reason a kb-sync message is rejected for is a problem of its body


@dataclass(frozen=True)
class ObjectChange:
    kind: ChangeKind
    bucket: str
    key: str
    key_is_raw: bool = False  # True when the key's %-escapes were not UTF-8 and it is shown as received


@dataclass(frozen=True)
class Changed:
    changes: tuple[ObjectChange, ...]


@dataclass(frozen=True)
class SyncRequested:
    """A follow-up (``generation`` >= 1, ``origin`` set) or a schedule request on the queue (generation 0)."""

    generation: int
    origin: str | None = None


@dataclass(frozen=True)
class Skipped:
    reason: SkipReason
    detail: str


@dataclass(frozen=True)
class Rejected:
    reason: RejectReason
    detail: str


Verdict = Changed | SyncRequested | Skipped | Rejected


def classify(body: object) -> Verdict:
    """Classify one message body (the ``body`` string of an SQS record)."""
    text = read_body(body, max_bytes=MAX_BODY_BYTES)
    if isinstance(text, BodyRejected):
        return Rejected(text.problem, text.detail)
    try:
        message = _QUEUE_MESSAGE.validate_json(text)
    except ValidationError as error:
        rejected = describe_validation_error(error)
        return Rejected(rejected.problem, rejected.detail)
    return _verdict(message)


def _verdict(message: QueueMessage) -> Verdict:
    if isinstance(message, S3TestEvent):
        return Skipped(SkipReason.S3_TEST_EVENT, f"test event for bucket {clip(message.Bucket, 63)}")
    if isinstance(message, FollowUp):
        return SyncRequested(generation=message.generation, origin=message.origin)
    if isinstance(message, ScheduledSync):
        return SyncRequested(generation=0)
    return _changes(message)


def _changes(notification: S3EventNotification) -> Changed | Skipped:
    changes = []
    for record in notification.Records:
        kind = _change_kind(record.eventName)
        if kind is not None:
            changes.append(_object_change(kind, record.s3.bucket.name, record.s3.object.key))
    if not changes:
        names = sorted({clip(record.eventName, 64) for record in notification.Records})[:_NAMES_SHOWN]
        return Skipped(SkipReason.NOT_A_CHANGE, f"event types {names} do not change documents")
    return Changed(tuple(changes))


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
