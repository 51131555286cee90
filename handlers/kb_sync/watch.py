"""How a started ingestion job, or a direct ingestion, ended: pure judgements over Bedrock's answers.

The function never waits for Bedrock. After it starts a job it sends itself a delayed ``JobCheck``, and after a
direct ingestion a delayed ``DocumentCheck``; each check reads the status once and either sends the next check
(still running) or reports the end. A COMPLETE job can still have failed documents, and a job may end STOPPED
(someone stopped it) or FAILED: each is counted, logged with the job id, and alarmed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from kb_sync.messages import DocumentChange

RUNNING_JOB_STATUSES = frozenset({"STARTING", "IN_PROGRESS", "STOPPING"})


class JobEnd(StrEnum):
    COMPLETE = "COMPLETE"
    FAILED = "FAILED"
    STOPPED = "STOPPED"
    UNFINISHED = "UNFINISHED"  # still running after MAX_JOB_CHECKS checks: reported, no longer watched


@dataclass(frozen=True)
class JobVerdict:
    end: JobEnd | None  # None: still running, check again
    failed_documents: int = 0
    failure_reasons: tuple[str, ...] = ()
    statistics: Mapping[str, int] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.end in (JobEnd.FAILED, JobEnd.STOPPED, JobEnd.UNFINISHED)


def judge_job(job: Mapping[str, Any], *, check: int, max_checks: int) -> JobVerdict:
    """Judge ``GetIngestionJob``'s ``ingestionJob`` at the ``check``-th look."""
    statistics = {k: int(v) for k, v in (job.get("statistics") or {}).items()}
    reasons = tuple(str(r) for r in job.get("failureReasons") or ())
    failed = statistics.get("numberOfDocumentsFailed", 0)
    status = str(job["status"])
    if status in RUNNING_JOB_STATUSES:
        if check < max_checks:
            return JobVerdict(end=None)
        return JobVerdict(JobEnd.UNFINISHED, failed, reasons, statistics)
    end = JobEnd(status) if status in JobEnd.__members__ else JobEnd.FAILED
    return JobVerdict(end, failed, reasons, statistics)


# Document statuses (botocore's DocumentStatus) by what they mean for a change of each kind.
_PENDING = frozenset({"PENDING", "STARTING", "IN_PROGRESS", "DELETING", "DELETE_IN_PROGRESS"})
_INDEXED = frozenset({"INDEXED", "PARTIALLY_INDEXED", "METADATA_PARTIALLY_INDEXED"})


@dataclass(frozen=True)
class DocumentVerdicts:
    done: tuple[DocumentChange, ...]
    pending: tuple[DocumentChange, ...]
    failed: tuple[tuple[DocumentChange, str], ...]  # with the status (and Bedrock's reason)


def judge_documents(changes: Sequence[DocumentChange], found: Mapping[str, tuple[str, str]]) -> DocumentVerdicts:
    """Sort each change by its document's status: an ingested document must be indexed, a deleted one gone.

    A created document Bedrock no longer knows (NOT_FOUND) failed: it may have been deleted since, or never been
    taken. The adapter (``watching``) then asks the bucket: a document deleted since is done, one still there is
    submitted again and, past its retries, handed to a job, which syncs the data source as it is.
    """
    done: list[DocumentChange] = []
    pending: list[DocumentChange] = []
    failed: list[tuple[DocumentChange, str]] = []
    for change in changes:
        status, reason = found.get(change.uri, ("NOT_FOUND", ""))
        if status in _PENDING:
            pending.append(change)
        elif (change.kind == "created" and status in _INDEXED) or (change.kind == "removed" and status == "NOT_FOUND"):
            done.append(change)
        else:
            failed.append((change, f"{status}: {reason}" if reason else status))
    return DocumentVerdicts(tuple(done), tuple(pending), tuple(failed))
