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

from kb_sync.classify import Changed, ChangeKind, SyncRequested, Verdict
from kb_sync.messages import FollowUp

# Bedrock's `Description` shape allows 1-200 characters.
_MAX_DESCRIPTION = 200


@dataclass(frozen=True)
class QueuedMessage:
    """One SQS record after classification."""

    message_id: str
    verdict: Verdict


@dataclass(frozen=True)
class Obligation:
    """A request for a sync that must end up covered, carried forward or failed loudly.

    ``message_id`` is None for a direct (scheduled) invocation, which has no message to report as failed.
    """

    identity: str
    generation: int
    message_id: str | None


@dataclass(frozen=True)
class SyncPlan:
    client_token: str
    description: str
    obligations: tuple[Obligation, ...]


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
        Obligation(_identity(message), _generation(message.verdict), message.message_id)
        for message in messages
        if isinstance(message.verdict, Changed | SyncRequested)
    )
    if not obligations:
        return None
    return SyncPlan(
        client_token=client_token(knowledge_base_id, data_source_id, (o.identity for o in obligations)),
        description=_describe_batch(messages),
        obligations=obligations,
    )


def plan_scheduled_run(run_id: str, knowledge_base_id: str, data_source_id: str) -> SyncPlan:
    """Plan the job of a schedule tick; ``run_id`` is the same for every retry of that tick."""
    obligation = Obligation(identity=f"schedule:{run_id}", generation=0, message_id=None)
    return SyncPlan(
        client_token=client_token(knowledge_base_id, data_source_id, [obligation.identity]),
        description=f"kb-sync: scheduled run {run_id}"[:_MAX_DESCRIPTION],
        obligations=(obligation,),
    )


def resolve_conflict(plan: SyncPlan, max_follow_ups: int) -> ConflictResolution:
    """Decide what to do when Bedrock refuses the job because another one is running.

    The running job may have listed the bucket before these changes landed, so it cannot be trusted to include
    them. Obligations under the bound move to one follow-up, one generation further; those at the bound are
    exhausted, because a knowledge base that has refused jobs for ``max_follow_ups`` delays in a row is stuck
    and someone should look.
    """
    carried = tuple(o for o in plan.obligations if o.generation < max_follow_ups)
    exhausted = tuple(o for o in plan.obligations if o.generation >= max_follow_ups)
    follow_up = None
    if carried:
        follow_up = FollowUp(generation=max(o.generation for o in carried) + 1, origin=plan.client_token)
    return ConflictResolution(follow_up=follow_up, carried=carried, exhausted=exhausted)


def _identity(message: QueuedMessage) -> str:
    verdict = message.verdict
    if isinstance(verdict, SyncRequested) and verdict.origin is not None:
        # Copies of one follow-up share its content, not its message id.
        return f"follow-up:{verdict.origin}:{verdict.generation}"
    return f"message:{message.message_id}"


def _generation(verdict: Verdict) -> int:
    return verdict.generation if isinstance(verdict, SyncRequested) else 0


def _describe_batch(messages: Sequence[QueuedMessage]) -> str:
    changes = [change for m in messages if isinstance(m.verdict, Changed) for change in m.verdict.changes]
    created = sum(1 for change in changes if change.kind is ChangeKind.CREATED)
    follow_ups = sum(1 for m in messages if isinstance(m.verdict, SyncRequested))
    text = f"kb-sync: {created} created, {len(changes) - created} removed, {follow_ups} re-requests"
    return text[:_MAX_DESCRIPTION]
