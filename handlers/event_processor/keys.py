"""Idempotency keys: what makes two deliveries "the same item", and what makes them the same version of it.

The item's identity: with no key fields configured, the EventBridge event id, which every copy of one event shares
(SQS redelivery, a duplicate EventBridge delivery, a redrive from the DLQ). Producers that may put the same item
twice as two events (a retried ``PutEvents``) configure key fields instead, e.g. ``["source", "detail.itemId"]``:
the identity is then a SHA-256 over those fields' names and values, so both events are one item.

The item's version: a SHA-256 of what the model works on and what the result carries (``content``, ``reference``).
The key of a result (and of its idempotency record) is identity and version together, so a repeated id means:

* the same content: the same item, answered once (a retry, a duplicate, a redrive);
* other content: a new version (an edited document), processed and announced as its own result. The first sender
  of an id does not own it for ever. A warning names a known id that arrives with other content, since that is
  also what a second producer reusing someone else's ids looks like; which producers may use the pipeline's
  source is for their IAM policies to decide (``events:source``, see ``components/pipelines/event_processing.py``).

>>> idempotency_key({"id": "e-1", "source": "s", "detail": {"itemId": "42"}}, [])
'e-1'
>>> len(idempotency_key({"id": "e-1", "source": "s", "detail": {"itemId": "42"}}, ["source", "detail.itemId"]))
64
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any


class MissingKeyFieldError(ValueError):
    def __init__(self, field: str) -> None:
        super().__init__(f"idempotency key field {field} is missing from the event")
        self.field = field


def content_version(content: str, reference: str | None) -> str:
    """The SHA-256 hex digest of an item's content and reference: equal for equal items, whoever sends them."""
    canonical = json.dumps({"content": content, "reference": reference}, sort_keys=True, separators=(",", ":"),
                           ensure_ascii=False)
    return _sha256(canonical)


def versioned_key(identity: str, version: str) -> str:
    """The key of one version of one item: a SHA-256 over its identity and its content version."""
    return _sha256(f"{identity}\n{version}")


def idempotency_key(event: Mapping[str, Any], fields: Sequence[str]) -> str:
    """The item's identity: the event id, or a SHA-256 hex digest of ``fields`` (dotted paths into the event)."""
    if not fields:
        event_id = event.get("id")
        if not isinstance(event_id, str) or not event_id:
            raise MissingKeyFieldError("id")
        return event_id
    parts = [[field, _lookup(event, field)] for field in fields]
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return _sha256(canonical)


def _sha256(text: str) -> str:
    """The SHA-256 hex digest of `text`'s UTF-8. A lone surrogate (JSON can escape one, and a field the event model
    does not check can hold it) has no UTF-8 form: its escape is digested instead, and JSON's escaping of "\\"
    keeps that apart from the literal text."""
    return hashlib.sha256(text.encode("utf-8", "backslashreplace")).hexdigest()


def _lookup(event: Mapping[str, Any], path: str) -> Any:
    if path in ("id", "source", "detail-type"):
        if path not in event:
            raise MissingKeyFieldError(path)
        return event[path]
    value: Any = event
    for part in path.split("."):
        if not isinstance(value, Mapping) or part not in value:
            raise MissingKeyFieldError(path)
        value = value[part]
    if value is None:
        raise MissingKeyFieldError(path)
    return value
