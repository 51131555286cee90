"""Faults injected at the botocore layer of the handler's clients, while moto answers everything else.

* ``PutEventsFaults``: EventBridge accepts some entries of a ``PutEvents`` and fails others, as it does under
  load (``FailedEntryCount`` > 0, ``ErrorCode`` per failed entry). The failed entries never reach moto, so no
  event is delivered for them; the rest are delivered normally.
* ``crash_on``: the function dies at a chosen call (a timeout, an out-of-memory kill): an exception the handler
  does not handle, so the whole invocation fails and SQS gets no answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from botocore.awsrequest import AWSResponse

Entry = dict[str, Any]


class FunctionCrashed(Exception):  # named for what it stands for, not as an error class
    """Stands for the execution environment dying mid-invocation."""


class PutEventsFaults:
    """``fails(entry)`` decides, per entry and attempt, whether EventBridge fails it."""

    def __init__(self, client: Any, fails: Callable[[Entry], bool], code: str = "InternalFailure") -> None:
        self.client = client
        self.fails = fails
        self.code = code
        self.failed: list[Entry] = []  # every entry failed, in order
        self._original: list[Entry] = []
        self._failing: list[bool] = []

    def __enter__(self) -> PutEventsFaults:
        events = self.client.meta.events
        events.register("provide-client-params.events.PutEvents", self._strip)
        events.register("before-call.events.PutEvents", self._all_failed)
        events.register("after-call.events.PutEvents", self._restore)
        return self

    def __exit__(self, *exc_info: object) -> None:
        events = self.client.meta.events
        events.unregister("provide-client-params.events.PutEvents", self._strip)
        events.unregister("before-call.events.PutEvents", self._all_failed)
        events.unregister("after-call.events.PutEvents", self._restore)

    def _strip(self, params: dict[str, Any], **_: Any) -> dict[str, Any] | None:
        self._original = list(params["Entries"])
        self._failing = [self.fails(entry) for entry in self._original]
        self.failed += [entry for entry, failing in zip(self._original, self._failing, strict=True) if failing]
        if all(self._failing) or not any(self._failing):
            return None  # unchanged: an all-failed request is answered in before-call, never reaching moto
        return {**params, "Entries": [e for e, failing in zip(self._original, self._failing, strict=True)
                                      if not failing]}

    def _all_failed(self, **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        if not all(self._failing):
            return None
        return AWSResponse(None, 200, {}, None), {"FailedEntryCount": 0, "Entries": []}  # type: ignore[arg-type]

    def _restore(self, parsed: dict[str, Any], **_: Any) -> None:
        accepted = iter(parsed.get("Entries", []))
        entries = [{"ErrorCode": self.code, "ErrorMessage": "fake partial failure"} if failing else next(accepted)
                   for failing in self._failing]
        parsed["Entries"] = entries
        parsed["FailedEntryCount"] = sum(self._failing)


def detail_of(entry: Entry) -> dict[str, Any]:
    return json.loads(entry["Detail"])


def crash_on(client: Any, event: str, *, times: int = 1) -> Callable[[], None]:
    """Make the function die at `event` (e.g. ``before-call.events.PutEvents``) `times` times; returns undo."""
    remaining = [times]

    def crash(**_: Any) -> None:
        if remaining[0] > 0:
            remaining[0] -= 1
            raise FunctionCrashed(f"the function died at {event}")

    client.meta.events.register(event, crash)
    return lambda: client.meta.events.unregister(event, crash)
