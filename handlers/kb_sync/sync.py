"""Carry out a ``SyncPlan`` through two ports, and account for every message of the batch.

Pure orchestration: the adapter passes in the functions that call Bedrock and SQS, so the decisions here are
tested without AWS. Errors from the ports (throttling, access denied, a missing knowledge base, a failed
follow-up send) propagate: the invocation fails and its source retries it whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from kb_sync.classify import Rejected, Skipped
from kb_sync.messages import FollowUp
from kb_sync.planning import Obligation, QueuedMessage, SyncPlan, resolve_conflict


@dataclass(frozen=True)
class JobStarted:
    ingestion_job_id: str
    status: str


@dataclass(frozen=True)
class JobConflict:
    message: str


StartJob = Callable[[SyncPlan], JobStarted | JobConflict]
SendFollowUp = Callable[[FollowUp], str]


class Outcome(StrEnum):
    """Where one input ended; the last two are reported to SQS as batch item failures."""

    COVERED = "covered-by-job"
    FOLLOW_UP = "carried-by-follow-up"
    SKIPPED = "skipped"
    REJECTED = "rejected"
    EXHAUSTED = "follow-ups-exhausted"


FAILED_OUTCOMES = frozenset({Outcome.REJECTED, Outcome.EXHAUSTED})


@dataclass(frozen=True)
class SyncResult:
    plan: SyncPlan
    job: JobStarted | None = None
    conflict: JobConflict | None = None
    follow_up: FollowUp | None = None
    follow_up_message_id: str | None = None
    exhausted: tuple[Obligation, ...] = ()


def run_sync(plan: SyncPlan, *, start_job: StartJob, send_follow_up: SendFollowUp, max_follow_ups: int) -> SyncResult:
    """Start the planned job; on a conflict, guarantee a later sync or give up loudly at the bound."""
    answer = start_job(plan)
    if isinstance(answer, JobStarted):
        return SyncResult(plan=plan, job=answer)
    resolution = resolve_conflict(plan, max_follow_ups)
    message_id = send_follow_up(resolution.follow_up) if resolution.follow_up is not None else None
    return SyncResult(
        plan=plan,
        conflict=answer,
        follow_up=resolution.follow_up,
        follow_up_message_id=message_id,
        exhausted=resolution.exhausted,
    )


def settle(messages: Sequence[QueuedMessage], result: SyncResult | None) -> dict[str, Outcome]:
    """Map every message id of a batch to exactly one outcome.

    ``messages`` are the records that classified without error; records whose classification raised are the
    batch processor's failures already, and appear here only if passed in as ``Rejected``.
    """
    exhausted = {o.message_id for o in result.exhausted} if result else set()
    outcomes: dict[str, Outcome] = {}
    for message in messages:
        if isinstance(message.verdict, Rejected):
            outcome = Outcome.REJECTED
        elif isinstance(message.verdict, Skipped):
            outcome = Outcome.SKIPPED
        elif result is None:  # cannot happen: a batch with an obligation always has a plan
            raise ValueError(f"message {message.message_id} needs a sync but the batch has no plan")
        elif message.message_id in exhausted:
            outcome = Outcome.EXHAUSTED
        elif result.job is not None:
            outcome = Outcome.COVERED
        else:
            outcome = Outcome.FOLLOW_UP
        # A standard queue may hand the same message over twice in one batch; the worst outcome wins so a
        # failure is never hidden behind a success.
        previous = outcomes.get(message.message_id)
        if previous is None or outcome in FAILED_OUTCOMES:
            outcomes[message.message_id] = outcome
    return outcomes
