"""Announce results on the result bus; the only module that calls EventBridge.

IAM: ``events:PutEvents`` on the result bus.

No attempt starts unless it fits the budget, which ends where the time kept for the publication marks begins.

``PutEvents`` takes at most 10 entries and 256 KiB per request and may accept some entries while failing others
(``FailedEntryCount``, an ``ErrorCode`` per failed entry). Entries go out in chunks within both limits; only the
failed entries are sent again, with backoff, while the budget allows and up to ``MAX_ATTEMPTS`` in all. Entries
failing for good (``MalformedDetail``, ``InvalidArgument``) are not retried. Whatever still failed is reported
per key, and its record fails: SQS retries it, the idempotency record keeps the model from being asked again,
and the stored result is announced by the retry.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from common.retry import PERMANENT_CODES as _PERMANENT
from common.retry import Backoff, Budget, BudgetExhaustedError, Draws, retry
from event_processor.config import PUBLISH_BACKOFF, PUBLISH_MAX_ATTEMPTS

MAX_ENTRIES = 10
MAX_REQUEST_BYTES = 256 * 1024
MAX_ATTEMPTS = PUBLISH_MAX_ATTEMPTS
PERMANENT_CODES = _PERMANENT["events"]  # the entry itself is wrong: a retry cannot fix it
# One PutEvents round trip at worst, for deciding whether another attempt fits the budget.
ATTEMPT_SECONDS = 2.0


@dataclass(frozen=True)
class Published:
    event_id: str


@dataclass(frozen=True)
class NotPublished:
    code: str
    message: str
    attempts: int


Delivery = Published | NotPublished


def entry_size(entry: Mapping[str, Any]) -> int:
    """EventBridge's size of an entry: source, detail type, detail, resources and a fixed 14 bytes for Time."""
    size = 14
    for key in ("Source", "DetailType", "Detail"):
        size += len(str(entry.get(key, "")).encode("utf-8"))
    size += sum(len(r.encode("utf-8")) for r in entry.get("Resources", []))
    return size


def chunks(keys: list[str], entries: Mapping[str, Mapping[str, Any]]) -> Iterator[list[str]]:
    """Keys grouped so that each group is one valid PutEvents request."""
    chunk: list[str] = []
    size = 0
    for key in keys:
        entry = entry_size(entries[key])
        if chunk and (len(chunk) == MAX_ENTRIES or size + entry > MAX_REQUEST_BYTES):
            yield chunk
            chunk, size = [], 0
        chunk.append(key)
        size += entry
    if chunk:
        yield chunk


class _Unsent(Exception):
    """Entries of one attempt that failed and may succeed when sent again."""

    def __init__(self, failed: dict[str, NotPublished]) -> None:
        super().__init__(f"{len(failed)} entries not yet published")
        self.failed = failed


def put_events(client: Any, entries: Mapping[str, Mapping[str, Any]], *, budget: Budget,
               backoff: Backoff = PUBLISH_BACKOFF, rng: Draws | None = None) -> dict[str, Delivery]:
    """Publish ``entries`` (key -> PutEvents entry); returns each key's delivery."""
    outcome: dict[str, Delivery] = {}
    pending = list(entries)
    attempts = 0

    def attempt() -> None:
        nonlocal pending, attempts
        attempts += 1
        failed: dict[str, NotPublished] = {}
        for chunk in chunks(pending, entries):
            failed.update(_send(client, chunk, entries, attempts, outcome))
        outcome.update({key: failure for key, failure in failed.items() if failure.code in PERMANENT_CODES})
        pending = [key for key, failure in failed.items() if failure.code not in PERMANENT_CODES]
        if pending:
            raise _Unsent({key: failed[key] for key in pending})

    try:
        retry(attempt, retryable=lambda error: isinstance(error, _Unsent), backoff=backoff, budget=budget,
              attempt_seconds=ATTEMPT_SECONDS, max_attempts=MAX_ATTEMPTS, rng=rng)
    except _Unsent as unsent:  # the attempts ran out
        outcome.update(unsent.failed)
    except BudgetExhaustedError as exhausted:
        if isinstance(exhausted.last, _Unsent):
            outcome.update(exhausted.last.failed)
        else:
            # Not even the first attempt starts without room to finish it: whatever goes out must still be marked
            # (the budget ends where the marks' time begins), or a redelivery would announce it again.
            left = NotPublished("NoTimeLeft", f"{max(budget.remaining(), 0):.1f} s left before the publication "
                                              f"marks are due; a PutEvents attempt needs {ATTEMPT_SECONDS:.1f} s", 0)
            return dict.fromkeys(pending, left)
    return outcome


def _send(client: Any, chunk: list[str], entries: Mapping[str, Mapping[str, Any]], attempt: int,
          outcome: dict[str, Delivery]) -> dict[str, NotPublished]:
    try:
        response = client.put_events(Entries=[dict(entries[key]) for key in chunk])
    except ClientError as error:
        details = error.response.get("Error", {})
        failure = NotPublished(str(details.get("Code", "Unknown")), str(details.get("Message", "")), attempt)
        return dict.fromkeys(chunk, failure)
    except BotoCoreError as error:
        return dict.fromkeys(chunk, NotPublished(type(error).__name__, str(error), attempt))
    failed: dict[str, NotPublished] = {}
    # Entries in the response are in request order.
    for key, result in zip(chunk, response.get("Entries", []), strict=False):
        if result.get("EventId") and not result.get("ErrorCode"):
            outcome[key] = Published(result["EventId"])
        else:
            failed[key] = NotPublished(str(result.get("ErrorCode", "Unknown")), str(result.get("ErrorMessage", "")),
                                       attempt)
    for key in chunk[len(response.get("Entries", [])):]:  # a short response: count the rest as failed
        failed[key] = NotPublished("MissingEntry", "PutEvents returned no result for this entry", attempt)
    return failed
