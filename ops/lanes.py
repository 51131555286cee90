"""Where each pipeline's messages wait, and where dead-lettered ones go back to (``components/pipelines``).

A lane is a queue holding messages that could not be delivered or processed and the queue they came from:

* ``dlq``: the dead-letter queue of a source queue's redrive policy; SQS's own message-move task moves its
  messages back (``StartMessageMoveTask``).
* ``undelivered``: the dead-letter queue of an EventBridge rule's target (events it could not deliver to the
  queue). It is no queue's redrive target, which the move task requires, so its messages are moved by receive,
  send and delete.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Lane:
    held: str  # purpose of the queue holding the messages
    source: str  # purpose of the queue they go back to
    kind: Literal["dlq", "undelivered"]
    consumer: str | None = None  # purpose of the function consuming ``source``: its log says why a message failed
    optional: bool = False  # exists only when the pipeline's config asks for it


# Queues per pipeline, sources before their lanes (status shows them in this order).
QUEUES: dict[str, tuple[str, ...]] = {
    "kbsync": ("changes", "changes-dlq", "failed-runs"),
    "eventproc": ("work", "work-dlq", "intake-undelivered", "subscriber", "subscriber-dlq", "completed-undelivered"),
    "fileingest": ("incoming", "incoming-dlq"),
    "batchinf": ("failures", "failures-dlq", "completions", "completions-dlq", "job-events-undelivered",
                 "run-endings", "run-endings-dlq", "run-endings-undelivered"),
}
# Exist only when the config asks: the example subscriber (eventproc), the scheduled trigger (kbsync's failed runs:
# Lambda's records of scheduled runs that failed inside the worker, answered by a resync, not a redrive).
SUBSCRIBER_QUEUES = frozenset({("eventproc", q) for q in ("subscriber", "subscriber-dlq", "completed-undelivered")})
OPTIONAL_QUEUES = SUBSCRIBER_QUEUES | {("kbsync", "failed-runs")}

LANES: dict[str, tuple[Lane, ...]] = {
    "kbsync": (Lane("changes-dlq", "changes", "dlq", consumer="worker"),),
    "eventproc": (Lane("work-dlq", "work", "dlq", consumer="worker"),
                  Lane("intake-undelivered", "work", "undelivered"),
                  Lane("subscriber-dlq", "subscriber", "dlq", optional=True),
                  Lane("completed-undelivered", "subscriber", "undelivered", optional=True)),
    "fileingest": (Lane("incoming-dlq", "incoming", "dlq", consumer="worker"),),
    "batchinf": (Lane("failures-dlq", "failures", "dlq"),
                 Lane("completions-dlq", "completions", "dlq", consumer="completion"),
                 Lane("job-events-undelivered", "completions", "undelivered"),
                 Lane("run-endings-dlq", "run-endings", "dlq", consumer="run-ended"),
                 Lane("run-endings-undelivered", "run-endings", "undelivered")),
}


def subscriber_enabled(section: dict[str, object] | object) -> bool:
    return isinstance(section, dict) and bool(section.get("subscriberQueueUrl"))
