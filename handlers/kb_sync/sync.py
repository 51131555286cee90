"""Carry out a ``SyncPlan`` through two ports, and account for every message of the batch.

Pure orchestration: the adapter passes in the functions that call Bedrock and SQS, so the decisions here are
tested without AWS. Errors from the ports (throttling, access denied, a missing knowledge base, a failed
follow-up send) propagate: the invocation fails and its source retries it whole.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from kb_sync.classify import CheckRequested, Rejected, Skipped
from kb_sync.messages import FollowUp, FollowUpReason
from kb_sync.planning import Obligation, QueuedMessage, SyncPlan, resolve_conflict

# A running job covers a change only if it started this long after S3 sent the change's notification: the job
# lists the bucket after it starts (S3 lists strongly consistently), and the margin absorbs any clock difference
# between SQS's SentTimestamp and Bedrock's startedAt.
COVER_MARGIN_MS = 5_000


@dataclass(frozen=True)
class JobStarted:
    ingestion_job_id: str
    status: str


@dataclass(frozen=True)
class JobConflict:
    """The job cannot start now: another job runs on the data source, or the account's job quota is taken."""

    message: str
    reason: FollowUpReason = FollowUpReason.CONFLICT


@dataclass(frozen=True)
class RunningJob:
    ingestion_job_id: str
    started_at: int  # epoch milliseconds


StartJob = Callable[[SyncPlan], JobStarted | JobConflict]
SendFollowUp = Callable[[FollowUp], str]
FindRunningJob = Callable[[], RunningJob | None]


class Outcome(StrEnum):
    """Where one input ended; the last three are reported to SQS as batch item failures."""

    COVERED = "covered-by-job"
    DIRECT = "ingested-directly"
    FOLLOW_UP = "carried-by-follow-up"
    CHECKED = "checked"
    SKIPPED = "skipped"
    REJECTED = "rejected"
    EXHAUSTED = "follow-ups-exhausted"
    CHECK_FAILED = "check-failed"


FAILED_OUTCOMES = frozenset({Outcome.REJECTED, Outcome.EXHAUSTED, Outcome.CHECK_FAILED})


@dataclass(frozen=True)
class SyncResult:
    plan: SyncPlan
    job: JobStarted | None = None
    conflict: JobConflict | None = None
    follow_up: FollowUp | None = None
    follow_up_message_id: str | None = None
    exhausted: tuple[Obligation, ...] = ()
    covered_by: RunningJob | None = None  # the running job that started after every change of the plan
    direct: bool = False  # the plan's documents were ingested or deleted directly, without a job

    @property
    def covered(self) -> bool:
        return self.job is not None or self.covered_by is not None or self.direct


def run_sync(plan: SyncPlan, *, start_job: StartJob, send_follow_up: SendFollowUp, max_follow_ups: int,
             find_running_job: FindRunningJob | None = None) -> SyncResult:
    """Start the planned job; if it cannot start, guarantee a later sync or give up loudly at the bound.

    On a conflict, a running job that started after every change of the plan already covers them, so nothing
    more is needed: this is what keeps a burst split over several batches to one job.
    """
    answer = start_job(plan)
    if isinstance(answer, JobStarted):
        return SyncResult(plan=plan, job=answer)
    newest = plan.changed_before
    if answer.reason is FollowUpReason.CONFLICT and find_running_job is not None and newest is not None:
        running = find_running_job()
        if running is not None and running.started_at >= newest + COVER_MARGIN_MS:
            return SyncResult(plan=plan, conflict=answer, covered_by=running)
    return carry(plan, answer, send_follow_up=send_follow_up, max_follow_ups=max_follow_ups)


def defer_burst(plan: SyncPlan, *, send_follow_up: SendFollowUp) -> SyncResult:
    """Hand a burst's batch to one delayed follow-up, so the job starts once the rest of the burst has landed."""
    return carry(plan, JobConflict("burst: waiting for the rest of it", FollowUpReason.BURST),
                 send_follow_up=send_follow_up, max_follow_ups=0)


def carry(plan: SyncPlan, answer: JobConflict, *, send_follow_up: SendFollowUp, max_follow_ups: int) -> SyncResult:
    resolution = resolve_conflict(plan, max_follow_ups, answer.reason)
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
        elif isinstance(message.verdict, CheckRequested):
            outcome = Outcome.CHECKED
        elif result is None:  # cannot happen: a batch with an obligation always has a plan
            raise ValueError(f"message {message.message_id} needs a sync but the batch has no plan")
        elif message.message_id in exhausted:
            outcome = Outcome.EXHAUSTED
        elif result.direct:
            outcome = Outcome.DIRECT
        elif result.covered:
            outcome = Outcome.COVERED
        else:
            outcome = Outcome.FOLLOW_UP
        # A standard queue may hand the same message over twice in one batch; the worst outcome wins so a
        # failure is never hidden behind a success.
        previous = outcomes.get(message.message_id)
        if previous is None or outcome in FAILED_OUTCOMES:
            outcomes[message.message_id] = outcome
    return outcomes
