"""Where each record of a batch ended, and the invocation's tallies. Pure.

Every record ends in exactly one outcome. The first two are successes (SQS deletes the message); the others are
batch item failures (SQS redelivers the message, and dead-letters it after maxReceiveCount).
"""

from __future__ import annotations

import threading
from collections import Counter
from enum import StrEnum


class Outcome(StrEnum):
    PUBLISHED = "published"  # the result is stored and its completion event went out in this invocation
    ALREADY_DONE = "already-done"  # a copy of an item stored and announced before: acknowledged, nothing redone
    REJECTED = "rejected"  # not a usable event
    FAILED = "failed"  # the model or the results table failed; retried by SQS
    IN_PROGRESS = "in-progress"  # another copy holds the item right now; retried by SQS
    PUBLISH_FAILED = "publish-failed"  # stored, not announced; retried by SQS without asking the model again
    INVALID_ANSWER = "invalid-answer"  # the model's answer failed validation: not stored, not remembered; retried


FAILED_OUTCOMES = frozenset({Outcome.REJECTED, Outcome.FAILED, Outcome.IN_PROGRESS, Outcome.PUBLISH_FAILED,
                             Outcome.INVALID_ANSWER})


class Tally:
    """Counters shared by the threads of one invocation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def add(self, name: str, value: int = 1) -> None:
        with self._lock:
            self._counts[name] += value

    def counts(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)


class Outcomes:
    """Message id -> outcome, written from the record threads; the worse outcome wins for a repeated id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_message: dict[str, Outcome] = {}

    def set(self, message_id: str, outcome: Outcome) -> None:
        with self._lock:
            previous = self._by_message.get(message_id)
            if previous is None or outcome in FAILED_OUTCOMES:
                self._by_message[message_id] = outcome

    def get(self, message_id: str) -> Outcome | None:
        with self._lock:
            return self._by_message.get(message_id)

    def all(self) -> dict[str, Outcome]:
        with self._lock:
            return dict(self._by_message)
