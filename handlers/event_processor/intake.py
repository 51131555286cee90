"""Turn one SQS message body into an accepted event with its idempotency key, or a rejection that says why.

Pure: no AWS calls, no logging. Every body gets exactly one verdict, so every bad input has a defined outcome.
A rejected record is reported as a batch item failure: SQS retries it alone, then dead-letters it (the DLQ alarm
pages someone, and the message waits there to be fixed and redriven). The rest of its batch carries on.

| input                                         | verdict                                  |
|-----------------------------------------------|------------------------------------------|
| an accepted event with a valid item           | ``Accepted`` (with its idempotency key)  |
| body that is not a string                     | ``Rejected(NOT_TEXT)``                   |
| empty or blank body                           | ``Rejected(EMPTY_BODY)``                 |
| body that is not valid UTF-8 text             | ``Rejected(INVALID_UTF8)``               |
| body over ``MAX_BODY_BYTES``                  | ``Rejected(OVERSIZED)``                  |
| malformed JSON                                | ``Rejected(MALFORMED_JSON)``             |
| a number of over 4,300 digits, nesting deeper | ``Rejected(MALFORMED_JSON)``             |
| than the parser's recursion limit             |                                          |
| ``source`` or ``detail-type`` not a string    | ``Rejected(INVALID_FIELDS)``, names it   |
| JSON that is not an EventBridge event         | ``Rejected(NOT_AN_EVENT)``               |
| an event of a source/detail type not accepted | ``Rejected(UNEXPECTED_EVENT)``           |
| a field of the wrong type or missing          | ``Rejected(INVALID_FIELDS)``, names it   |
| item text over ``max_input_chars``            | ``Rejected(OVERSIZED)``, field named     |
| a configured key field absent                 | ``Rejected(INVALID_FIELDS)``, names it   |
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import ValidationError

from common.message_body import BodyRejected, read_body
from common.redact import clip, digest
from event_processor.events import InputEvent
from event_processor.keys import MissingKeyFieldError, content_version, idempotency_key, versioned_key

# EventBridge caps an event at 256 KiB; a body beyond that did not come through the input bus.
MAX_BODY_BYTES = 256 * 1024
# An event id as a rejection names it: EventBridge's ids are 36 characters; a forged one may be any length.
MAX_LOGGED_ID_CHARS = 128
# Sources and detail types are named in a rejection up to this length (EventBridge allows 256).
MAX_NAMED_CHARS = 128


class RejectReason(StrEnum):
    NOT_TEXT = "body-not-text"
    EMPTY_BODY = "empty-body"
    INVALID_UTF8 = "invalid-utf-8"
    OVERSIZED = "oversized"
    MALFORMED_JSON = "malformed-json"
    NOT_AN_EVENT = "not-an-eventbridge-event"
    UNEXPECTED_EVENT = "unexpected-event"
    INVALID_FIELDS = "invalid-fields"


@dataclass(frozen=True)
class Accepted:
    event: InputEvent
    key: str  # deterministic: the same version of the same item always gets the same key
    identity: str = ""  # the item, whatever its content (the event id, or a digest of the key fields)
    version: str = ""  # SHA-256 of the item's content and reference


@dataclass(frozen=True)
class Rejected:
    reason: RejectReason
    detail: str
    event_id: str | None = None  # when the body had one, so the log entry can name the event
    field: str | None = None  # the first offending field, dotted (``detail.itemId``)


Verdict = Accepted | Rejected


@dataclass(frozen=True)
class IntakeRules:
    accepted_sources: frozenset[str]
    accepted_detail_types: frozenset[str]
    key_fields: Sequence[str] = ()
    max_input_chars: int = 20_000


def classify(body: object, rules: IntakeRules) -> Verdict:
    """Classify the ``body`` string of one SQS record."""
    text = read_body(body, max_bytes=MAX_BODY_BYTES)
    if isinstance(text, BodyRejected):
        return Rejected(RejectReason(text.problem), text.detail)
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        return Rejected(RejectReason.MALFORMED_JSON, f"body is not JSON: {error.msg} at character {error.pos}")
    except ValueError:  # Python refuses integers of more than 4,300 digits (sys.get_int_max_str_digits)
        return Rejected(RejectReason.MALFORMED_JSON, "body holds a number too long to parse")
    except RecursionError:  # nesting beyond the interpreter's recursion limit; the body cap bounds the work
        return Rejected(RejectReason.MALFORMED_JSON, "body is nested too deeply to parse")
    if not isinstance(raw, dict) or not {"source", "detail-type", "detail"} <= raw.keys():
        shape = [clip(key, 40) for key in sorted(raw)[:10]] if isinstance(raw, dict) else type(raw).__name__
        return Rejected(
            RejectReason.NOT_AN_EVENT, f"expected an EventBridge event with source, detail-type and detail; got {shape}"
        )
    event_id = raw["id"][:MAX_LOGGED_ID_CHARS] if isinstance(raw.get("id"), str) else None
    source, detail_type = raw["source"], raw["detail-type"]
    # A list or an object would not even be hashable for the lookups below.
    if not isinstance(source, str) or not isinstance(detail_type, str):
        name, value = ("source", source) if not isinstance(source, str) else ("detail-type", detail_type)
        return Rejected(RejectReason.INVALID_FIELDS, f"{name}: expected a string, got {type(value).__name__}",
                        event_id=event_id, field=name)
    if source not in rules.accepted_sources or detail_type not in rules.accepted_detail_types:
        return Rejected(
            RejectReason.UNEXPECTED_EVENT,
            f"source {_named(source)} with detail-type {_named(detail_type)} is not one this pipeline processes",
            event_id=event_id,
            field="source" if source not in rules.accepted_sources else "detail-type",
        )
    try:
        event = InputEvent.model_validate(raw)
    except ValidationError as error:
        return _invalid_fields(error, event_id)
    if len(event.detail.content) > rules.max_input_chars:
        return Rejected(
            RejectReason.OVERSIZED,
            f"content is {len(event.detail.content)} characters; the limit is {rules.max_input_chars}",
            event_id=event.id,
            field="detail.content",
        )
    try:
        identity = idempotency_key(raw, rules.key_fields)
    except MissingKeyFieldError as error:
        return Rejected(RejectReason.INVALID_FIELDS, str(error), event_id=event.id, field=error.field)
    version = content_version(event.detail.content, event.detail.reference)
    return Accepted(event=event, key=versioned_key(identity, version), identity=identity, version=version)


def _invalid_fields(error: ValidationError, event_id: str | None) -> Rejected:
    problems = error.errors(include_url=False, include_input=False)
    # Field locations and messages only: the offending values may be large, and they are in the message itself.
    fields = [".".join(str(part) for part in problem["loc"]) for problem in problems]
    text = "; ".join(f"{field}: {problem['msg']}" for field, problem in zip(fields, problems, strict=True))
    return Rejected(RejectReason.INVALID_FIELDS, text[:1000], event_id=event_id, field=fields[0] if fields else None)


def _named(value: str) -> str:
    """A source or detail type as a rejection names it: short ones as they are, others by size and digest."""
    if len(value) <= MAX_NAMED_CHARS and value.isprintable():
        return repr(value)
    return f"<{len(value)} characters, sha256 {digest(value, 16)}>"


def fingerprint(body: Any) -> dict[str, Any]:
    """What a log entry says about a body instead of its content: its size and SHA-256 digest."""
    if not isinstance(body, str):
        return {"bodyType": type(body).__name__}
    return {"bodyChars": len(body), "bodySha256": digest(body)}
