"""Idempotency keys: what makes two deliveries "the same item".

With no key fields configured the key is the EventBridge event id, which every copy of one event shares (SQS
redelivery, a duplicate EventBridge delivery, a redrive from the DLQ). Producers that may put the same item twice
as two events (a retried ``PutEvents``) configure key fields instead, e.g. ``["source", "detail.itemId"]``: the
key is then a SHA-256 over those fields' names and values, so both events are one item.

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


def idempotency_key(event: Mapping[str, Any], fields: Sequence[str]) -> str:
    """The item's key: the event id, or a SHA-256 hex digest of ``fields`` (dotted paths into the event)."""
    if not fields:
        event_id = event.get("id")
        if not isinstance(event_id, str) or not event_id:
            raise MissingKeyFieldError("id")
        return event_id
    parts = [[field, _lookup(event, field)] for field in fields]
    canonical = json.dumps(parts, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


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
