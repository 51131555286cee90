"""One SQS message body -> the objects it asks to load, or why it is skipped or rejected. Pure.

A message on the queue is an S3 event notification (one or more records, keys URL-encoded as S3 sends them) or
the ``s3:TestEvent`` S3 sends when the notification configuration is saved. Every body gets exactly one verdict:

| input                                                 | verdict                              |
|-------------------------------------------------------|--------------------------------------|
| ObjectCreated record(s) under the configured rules    | ``Objects`` (to load)                |
| ``s3:TestEvent``                                      | ``Skipped`` (acknowledged, logged)   |
| only removals, other event types, or keys outside the rules | ``Skipped`` (acknowledged, logged) |
| empty body, not text, invalid UTF-8, oversized        | ``Rejected``                         |
| malformed JSON, unknown shape, wrong field types      | ``Rejected``                         |
| a key whose %-escapes are not UTF-8                   | ``Rejected`` (S3 never sends one)     |
| a record of another bucket than the pipeline's        | ``Rejected`` (a misrouted producer)   |

A message mixing loadable records with ignored ones loads the former; each ignored record is reported with it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Discriminator, Tag, TypeAdapter, ValidationError

from common.message_body import BodyProblem, BodyRejected, describe_validation_error, read_body
from common.s3_events import S3EventNotification, S3TestEvent
from common.s3_keys import decode_event_key
from file_ingestion.logsafe import clip

# An S3 notification with a few records of the longest keys stays far below this; SQS allows 256 KiB.
MAX_BODY_BYTES = 64 * 1024


def _kind(value: Any) -> str | None:
    if not isinstance(value, dict):
        return None
    if "Records" in value:
        return "notification"
    if "Event" in value and "Service" in value:
        return "test-event"
    return None


_MESSAGE: TypeAdapter[Any] = TypeAdapter(Annotated[
    Annotated[S3EventNotification, Tag("notification")] | Annotated[S3TestEvent, Tag("test-event")],
    Discriminator(_kind, custom_error_type="unrecognised_message",
                  custom_error_message="not an S3 event notification or S3 test event"),
])


class SkipReason(StrEnum):
    S3_TEST_EVENT = "s3-test-event"
    NOT_A_CREATION = "not-an-object-creation"
    OUTSIDE_RULES = "outside-input-rules"


class KeyProblem(StrEnum):
    UNDECODABLE_KEY = "undecodable-key"
    FOREIGN_BUCKET = "foreign-bucket"


RejectReason = BodyProblem | KeyProblem


@dataclass(frozen=True)
class InputRule:
    prefix: str
    suffix: str = ""

    def matches(self, key: str) -> bool:
        return key.startswith(self.prefix) and key.endswith(self.suffix)


@dataclass(frozen=True)
class InputRules:
    rules: tuple[InputRule, ...]

    @classmethod
    def from_config(cls, entries: Iterable[Mapping[str, Any]]) -> InputRules:
        return cls(tuple(InputRule(str(e["prefix"]), str(e.get("suffix", ""))) for e in entries))

    def matches(self, key: str) -> bool:
        return any(rule.matches(key) for rule in self.rules)


@dataclass(frozen=True)
class ObjectRef:
    """An object a notification says was created; ``version_id``/``etag`` pin the content it announced."""

    bucket: str
    key: str
    size: int | None = None
    etag: str | None = None
    version_id: str | None = None


@dataclass(frozen=True)
class Ignored:
    key: str
    reason: SkipReason
    detail: str


@dataclass(frozen=True)
class Objects:
    objects: tuple[ObjectRef, ...]
    ignored: tuple[Ignored, ...] = ()


@dataclass(frozen=True)
class Skipped:
    reason: SkipReason
    detail: str
    ignored: tuple[Ignored, ...] = ()


@dataclass(frozen=True)
class Rejected:
    reason: RejectReason
    detail: str


Verdict = Objects | Skipped | Rejected


def classify(body: object, rules: InputRules, bucket: str) -> Verdict:
    """Classify one SQS message body against the pipeline's bucket and its input rules."""
    text = read_body(body, max_bytes=MAX_BODY_BYTES)
    if isinstance(text, BodyRejected):
        return Rejected(text.problem, text.detail)
    try:
        message = _MESSAGE.validate_json(text)
    except ValidationError as error:
        rejected = describe_validation_error(error)
        return Rejected(rejected.problem, rejected.detail)
    if isinstance(message, S3TestEvent):
        return Skipped(SkipReason.S3_TEST_EVENT, f"test event for bucket {message.Bucket}")
    return _objects(message, rules, bucket)


def _objects(notification: S3EventNotification, rules: InputRules, bucket: str) -> Verdict:
    objects: list[ObjectRef] = []
    ignored: list[Ignored] = []
    for record in notification.Records:
        if record.s3.bucket.name != bucket:
            return Rejected(KeyProblem.FOREIGN_BUCKET,
                            f"record of bucket {clip(record.s3.bucket.name, 63)}; this pipeline loads only {bucket}")
        try:
            key = decode_event_key(record.s3.object.key)
        except UnicodeDecodeError:
            return Rejected(KeyProblem.UNDECODABLE_KEY,
                            f"key {clip(record.s3.object.key)!r} has %-escapes that are not UTF-8; S3 never sends one")
        if not record.eventName.startswith("ObjectCreated:"):
            ignored.append(Ignored(key, SkipReason.NOT_A_CREATION, f"event {record.eventName} loads nothing"))
        elif not rules.matches(key):
            ignored.append(Ignored(key, SkipReason.OUTSIDE_RULES, "key matches no configured prefix and suffix"))
        else:
            obj = record.s3.object
            objects.append(ObjectRef(record.s3.bucket.name, key, obj.size, obj.eTag or None, obj.versionId or None))
    if not objects:
        first = ignored[0]
        return Skipped(first.reason, first.detail, tuple(ignored))
    return Objects(tuple(objects), tuple(ignored))
