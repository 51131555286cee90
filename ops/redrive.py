"""``redrive``: move a pipeline's dead-lettered messages back to the queue they came from.

For each lane (``ops.lanes``) holding messages: its depth, a sample of what they are and why they failed, then,
once confirmed, SQS's message-move task for a dead-letter queue (one task per queue at a time; a running one is
reported, not doubled) or a receive/send/delete move for an EventBridge rule's undelivered queue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ops import lanes
from ops.aws import Clients
from ops.confirm import confirmed
from ops.logs import why
from ops.queues import Depth, QueueRef, depth, peek, resolve
from ops.samples import LAMBDA_FAILURE, describe
from ops.stack import StackOutputs

# The undelivered queues' messages are held this long while being copied; a crash leaves them to reappear.
MOVE_VISIBILITY_SECONDS = 120


@dataclass(frozen=True)
class Pending:
    lane: lanes.Lane
    held: QueueRef
    source: QueueRef
    depth: Depth


def run(outputs: StackOutputs, clients: Clients, *, pipeline: str, lane: str | None, sample: int, dry_run: bool,
        yes: bool, rate: int | None) -> int:
    sqs = clients("sqs")
    chosen = [c for c in lanes.LANES[pipeline] if lane in (None, c.held)]
    if not chosen:
        print(f"{pipeline} has no lane {lane!r}; its lanes: {', '.join(c.held for c in lanes.LANES[pipeline])}")
        return 2
    pending: list[Pending] = []
    for candidate in chosen:
        if candidate.optional and not lanes.subscriber_enabled(dict(outputs.section(pipeline))):
            continue
        held = resolve(sqs, outputs, pipeline, candidate.held)
        source = resolve(sqs, outputs, pipeline, candidate.source)
        found = depth(sqs, held)
        print(f"{held.name}: {found.visible} waiting, {found.in_flight} in flight -> {source.name}")
        if found.visible == 0:
            continue
        _show_sample(clients, outputs, pipeline, candidate, held, sample)
        pending.append(Pending(candidate, held, source, found))
    if not pending:
        print("nothing to redrive")
        return 0
    total = sum(p.depth.visible for p in pending)
    if dry_run:
        print(f"dry run: would move {total} message(s) back to their source queue(s)")
        return 0
    if not confirmed(f"Move {total} message(s) back to their source queue(s)", yes=yes):
        print("cancelled")
        return 1
    already_running = 0
    for item in pending:
        if item.lane.kind == "dlq":
            already_running += not start_move_task(sqs, item, rate)
        else:
            moved = move_by_hand(sqs, item.held, item.source, limit=item.depth.visible)
            print(f"{item.held.name}: moved {moved} message(s) to {item.source.name}")
    return 3 if already_running else 0


def _show_sample(clients: Clients, outputs: StackOutputs, pipeline: str, lane: lanes.Lane, held: QueueRef,
                 count: int) -> None:
    from_log: Callable[[str, int], str | None] | None = None
    if lane.consumer is not None:
        function = outputs.name(pipeline, lane.consumer)
        logs = clients("logs")

        def from_log(message_id: str, sent_ms: int) -> str | None:
            return why(logs, function, message_id, since_ms=sent_ms - 60_000)

    samples = [describe(m, from_log=from_log) for m in peek(clients("sqs"), held, count)]
    for item in samples:
        print(f"  {item.line()}")
    if any(s.kind == LAMBDA_FAILURE for s in samples):
        print("  note: failed scheduled runs are not work the source queue's consumer can redo; after the move it "
              "rejects them (they come back here). Answer them by hand instead (kbsync: `resync`; batchinf: the "
              "reconciler's next tick does the same work) and purge them.")


def start_move_task(sqs: Any, item: Pending, rate: int | None) -> bool:
    running = [t for t in sqs.list_message_move_tasks(SourceArn=item.held.arn, MaxResults=10).get("Results", [])
               if t.get("Status") in ("RUNNING", "CANCELLING")]
    if running:
        task = running[0]
        print(f"{item.held.name}: a move task is already {task['Status'].lower()} "
              f"({task.get('ApproximateNumberOfMessagesMoved', 0)} of "
              f"{task.get('ApproximateNumberOfMessagesToMove', '?')} moved); not starting another")
        return False
    arguments: dict[str, Any] = {"SourceArn": item.held.arn, "DestinationArn": item.source.arn}
    if rate is not None:
        arguments["MaxNumberOfMessagesPerSecond"] = rate
    handle = sqs.start_message_move_task(**arguments)["TaskHandle"]
    print(f"{item.held.name}: move task started ({item.depth.visible} message(s) -> {item.source.name}); "
          f"cancel with `aws sqs cancel-message-move-task --task-handle {handle}`")
    return True


def move_by_hand(sqs: Any, held: QueueRef, source: QueueRef, *, limit: int) -> int:
    """Receive, send to ``source`` (body only: the delivery-error attributes described the failure), delete."""
    moved = 0
    while moved < limit:
        messages = sqs.receive_message(QueueUrl=held.url, MaxNumberOfMessages=min(10, limit - moved),
                                       VisibilityTimeout=MOVE_VISIBILITY_SECONDS, WaitTimeSeconds=1).get("Messages", [])
        if not messages:
            break
        by_id = {str(i): m for i, m in enumerate(messages)}
        sent = sqs.send_message_batch(QueueUrl=source.url, Entries=[
            {"Id": i, "MessageBody": m["Body"]} for i, m in by_id.items()]).get("Successful", [])
        done = [by_id[s["Id"]] for s in sent]
        if done:
            sqs.delete_message_batch(QueueUrl=held.url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)])
        moved += len(done)
        if len(done) < len(messages):
            print(f"{held.name}: {len(messages) - len(done)} message(s) were refused by {source.name}; they stay "
                  f"and reappear in {MOVE_VISIBILITY_SECONDS} s")
            break
    return moved
