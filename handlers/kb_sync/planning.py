"""Decide what one invocation asks of Bedrock: whether to sync, under which client token, and who is covered.

Pure: the adapter feeds it classified messages (or a schedule tick) and carries out the plan.

Every message that needs a sync becomes an ``Obligation``. A started job discharges all of them; on a conflict,
``resolve_conflict`` hands the ones still under the follow-up bound to a single follow-up and marks the rest
exhausted, so each obligation ends in exactly one of: covered by a job, carried by a follow-up, or exhausted
(failed loudly and retried by its source).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from kb_sync.classify import Changed, ChangeKind, ObjectChange, SyncRequested, Verdict
from kb_sync.messages import FollowUp, FollowUpReason

# Bedrock's `Description` shape allows 1-200 characters.
_MAX_DESCRIPTION = 200


@dataclass(frozen=True)
class QueuedMessage:
    """One SQS record after classification."""

    message_id: str
    verdict: Verdict
    sent_at: int | None = None  # SQS SentTimestamp (epoch ms): S3 sent the notification after the change


@dataclass(frozen=True)
class Obligation:
    """A request for a sync that must end up covered, carried forward or failed loudly.

    ``message_id`` is None for a direct (scheduled) invocation, which has no message to report as failed.
    """

    identity: str
    generation: int
    message_id: str | None
    changed_before: int | None = None  # a job started after this time (epoch ms) has seen the change


@dataclass(frozen=True)
class SyncPlan:
    client_token: str
    description: str
    obligations: tuple[Obligation, ...]
    documents: int = 0  # distinct documents changed in the batch

    @property
    def changed_before(self) -> int | None:
        """When the newest change of the plan was known to have happened; None if any obligation cannot say."""
        times = [o.changed_before for o in self.obligations]
        return None if not times or None in times else max(t for t in times if t is not None)


@dataclass(frozen=True)
class ConflictResolution:
    follow_up: FollowUp | None
    carried: tuple[Obligation, ...]
    exhausted: tuple[Obligation, ...]


def client_token(knowledge_base_id: str, data_source_id: str, identities: Iterable[str]) -> str:
    """Derive StartIngestionJob's ``clientToken`` from what the invocation covers.

    The same messages, whatever their order or duplicates, give the same token, so a retried invocation cannot
    start a second job. A lowercase SHA-256 hex digest (64 characters) fits Bedrock's ``ClientToken`` shape:
    33-256 characters matching ``[a-zA-Z0-9](-*[a-zA-Z0-9]){0,256}``.
    """
    digest = hashlib.sha256()
    for part in (knowledge_base_id, data_source_id, *sorted(set(identities))):
        digest.update(part.encode("utf-8"))
        digest.update(b"\n")  # a separator, so ("ab", "c") and ("a", "bc") differ
    return digest.hexdigest()


def plan_batch(messages: Sequence[QueuedMessage], knowledge_base_id: str, data_source_id: str) -> SyncPlan | None:
    """Plan one job for a batch, or None when nothing in it changes the knowledge base."""
    obligations = tuple(
        Obligation(_identity(message), _generation(message.verdict), message.message_id, _changed_before(message))
        for message in messages
        if isinstance(message.verdict, Changed | SyncRequested)
    )
    if not obligations:
        return None
    return SyncPlan(
        client_token=client_token(knowledge_base_id, data_source_id, (o.identity for o in obligations)),
        description=_describe_batch(messages),
        obligations=obligations,
        documents=len(latest_changes(messages)),
    )


def latest_changes(messages: Sequence[QueuedMessage]) -> tuple[ObjectChange, ...]:
    """The last change of each document in the batch, in batch order of first appearance.

    A standard queue may deliver a key's notifications out of order; S3's ``sequencer`` orders events on one key
    (compared as hexadecimal strings of equal length, as S3 documents). Without it, the later record wins.
    """
    latest: dict[str, ObjectChange] = {}
    for message in messages:
        if isinstance(message.verdict, Changed):
            for change in message.verdict.changes:
                kept = latest.get(change.key)
                if kept is None or not _earlier(change, kept):
                    latest[change.key] = change
    return tuple(latest.values())


def _earlier(change: ObjectChange, than: ObjectChange) -> bool:
    if change.sequencer is None or than.sequencer is None:
        return False
    width = max(len(change.sequencer), len(than.sequencer))
    return change.sequencer.rjust(width, "0").upper() < than.sequencer.rjust(width, "0").upper()


def plan_scheduled_run(run_id: str, knowledge_base_id: str, data_source_id: str) -> SyncPlan:
    """Plan the job of a schedule tick; ``run_id`` is the same for every retry of that tick."""
    obligation = Obligation(identity=f"schedule:{run_id}", generation=0, message_id=None)
    return SyncPlan(
        client_token=client_token(knowledge_base_id, data_source_id, [obligation.identity]),
        description=f"kb-sync: scheduled run {run_id}"[:_MAX_DESCRIPTION],
        obligations=(obligation,),
    )


def resolve_conflict(plan: SyncPlan, max_follow_ups: int,
                     reason: FollowUpReason = FollowUpReason.CONFLICT) -> ConflictResolution:
    """Decide what to do when the job cannot start now.

    A conflict: the running job may have listed the bucket before these changes landed, so it cannot be trusted
    to include them. Obligations under the bound move to one follow-up, one generation further; those at the bound
    are exhausted, because a knowledge base that has refused jobs for ``max_follow_ups`` delays in a row is stuck
    and someone should look. A quota refusal (other stacks hold the account's concurrent jobs) and a burst's wait
    say nothing about this data source: every obligation is carried, at its generation, and none is exhausted.
    """
    if reason is not FollowUpReason.CONFLICT:
        generation = max(o.generation for o in plan.obligations)
        waiting = FollowUp(generation=generation, origin=plan.client_token, reason=reason,
                           changedBefore=plan.changed_before)
        return ConflictResolution(follow_up=waiting, carried=plan.obligations, exhausted=())
    carried = tuple(o for o in plan.obligations if o.generation < max_follow_ups)
    exhausted = tuple(o for o in plan.obligations if o.generation >= max_follow_ups)
    follow_up: FollowUp | None = None
    if carried:
        times = [o.changed_before for o in carried]
        follow_up = FollowUp(generation=max(o.generation for o in carried) + 1, origin=plan.client_token,
                             changedBefore=None if None in times else max(t for t in times if t is not None))
    return ConflictResolution(follow_up=follow_up, carried=carried, exhausted=exhausted)


def _identity(message: QueuedMessage) -> str:
    verdict = message.verdict
    if isinstance(verdict, SyncRequested) and verdict.origin is not None:
        # Copies of one follow-up share its content, not its message id.
        return f"follow-up:{verdict.origin}:{verdict.generation}"
    if isinstance(verdict, SyncRequested) and verdict.run_id is not None:
        return f"batch-run:{verdict.run_id}"  # EventBridge may deliver a run's event twice
    return f"message:{message.message_id}"


def _changed_before(message: QueuedMessage) -> int | None:
    if isinstance(message.verdict, Changed):
        return message.sent_at
    if isinstance(message.verdict, SyncRequested):
        return message.verdict.changed_before
    return None


def _generation(verdict: Verdict) -> int:
    return verdict.generation if isinstance(verdict, SyncRequested) else 0


def _describe_batch(messages: Sequence[QueuedMessage]) -> str:
    changes = [change for m in messages if isinstance(m.verdict, Changed) for change in m.verdict.changes]
    created = sum(1 for change in changes if change.kind is ChangeKind.CREATED)
    follow_ups = sum(1 for m in messages if isinstance(m.verdict, SyncRequested))
    text = f"kb-sync: {created} created, {len(changes) - created} removed, {follow_ups} re-requests"
    return text[:_MAX_DESCRIPTION]
