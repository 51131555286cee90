"""Follow started jobs and direct ingestions to their end: the adapter side of ``watch``.

Each check is one delayed message on the pipeline's own queue, read once and then either repeated or reported:

* ``JobCheck``: ``GetIngestionJob``. Still running: the next check is sent. Ended: ``IngestionJobsCompleted`` or
  ``IngestionJobsFailed`` (FAILED, STOPPED, or still running after ``MAX_JOB_CHECKS`` looks) and
  ``IngestionDocumentsFailed`` (a COMPLETE job's failed documents), logged with the job id and outcome; both
  failure metrics are alarmed.
* ``DocumentCheck``: ``GetKnowledgeBaseDocuments``. Pending documents are looked at again (up to
  ``MAX_JOB_CHECKS`` looks); failed ones are submitted again, up to ``MAX_DOCUMENT_RETRIES`` times; past that
  they take the failure lane: ``DirectDocumentsFailed`` (alarmed) and a follow-up that starts an ingestion job,
  which syncs the data source as it is, so nothing is lost. Before either, a failed document is judged again
  against the bucket as it is now (``stored``): one whose key changed again since is done if the index already
  matches S3, and is otherwise submitted as S3 holds it.

An error reading a status raises; the adapter reports that check alone as a batch item failure, so SQS retries
it and finally dead-letters it (the DLQ alarm pages).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from common.redact import digest
from kb_sync import bedrock, clients, direct, follow_up, stored
from kb_sync.config import Settings
from kb_sync.messages import DocumentChange, DocumentCheck, FollowUp, FollowUpReason, JobCheck
from kb_sync.watch import judge_documents, judge_job

logger = Logger(child=True)
metrics = Metrics()

# A document check message names at most this many documents (SQS bounds a message's size).
DOCUMENTS_PER_CHECK = 100
_URIS_LOGGED = 25


def job_started(settings: Settings, ingestion_job_id: str) -> str:
    """Start watching a job this function started; returns the check's SQS message id."""
    return follow_up.send_check(clients.sqs(), settings, JobCheck(ingestionJobId=ingestion_job_id, check=1))


def documents_submitted(settings: Settings, changes: Sequence[DocumentChange], *, origin: str, attempt: int) -> None:
    for start in range(0, len(changes), DOCUMENTS_PER_CHECK):
        check = DocumentCheck(origin=origin, attempt=attempt, check=1,
                              documents=list(changes[start:start + DOCUMENTS_PER_CHECK]))
        follow_up.send_check(clients.sqs(), settings, check)


def check(settings: Settings, request: JobCheck | DocumentCheck) -> None:
    if isinstance(request, JobCheck):
        _check_job(settings, request)
    else:
        _check_documents(settings, request)


def _check_job(settings: Settings, request: JobCheck) -> None:
    job = bedrock.get_ingestion_job(clients.bedrock_agent(), settings, request.ingestionJobId)
    verdict = judge_job(job, check=request.check, max_checks=settings.max_job_checks)
    entry = {"ingestionJobId": request.ingestionJobId, "check": request.check, "status": job["status"]}
    if verdict.end is None:
        follow_up.send_check(clients.sqs(), settings, JobCheck(ingestionJobId=request.ingestionJobId,
                                                               check=request.check + 1))
        logger.debug("Ingestion job still running; checking again later", extra=entry)
        return
    outcome = {**entry, "outcome": str(verdict.end), "failedDocuments": verdict.failed_documents,
               "statistics": dict(verdict.statistics), "failureReasons": list(verdict.failure_reasons[:10])}
    metrics.add_metric(name="IngestionDocumentsFailed", unit=MetricUnit.Count, value=verdict.failed_documents)
    if verdict.failed:
        metrics.add_metric(name="IngestionJobsFailed", unit=MetricUnit.Count, value=1)
        logger.error("Ingestion job did not complete", extra=outcome)
        return
    metrics.add_metric(name="IngestionJobsCompleted", unit=MetricUnit.Count, value=1)
    if verdict.failed_documents:
        logger.error("Ingestion job completed with failed documents", extra=outcome)
    else:
        logger.info("Ingestion job completed", extra=outcome)


def _check_documents(settings: Settings, request: DocumentCheck) -> None:
    found = direct.statuses(clients.bedrock_agent(), settings, request.documents)
    verdicts = judge_documents(request.documents, found)
    entry = {"origin": request.origin, "attempt": request.attempt, "check": request.check,
             "done": len(verdicts.done), "pending": len(verdicts.pending), "failed": len(verdicts.failed)}
    metrics.add_metric(name="DirectDocumentsDone", unit=MetricUnit.Count, value=len(verdicts.done))
    failed = [change for change, _ in verdicts.failed]
    if verdicts.pending:
        if request.check < settings.max_job_checks:
            follow_up.send_check(clients.sqs(), settings, DocumentCheck(
                origin=request.origin, attempt=request.attempt, check=request.check + 1,
                documents=list(verdicts.pending)))
        else:
            failed += verdicts.pending
    failed, superseded = _against_the_bucket(settings, failed, found)
    logger.info("Direct ingestion checked", extra={
        **entry, "superseded": superseded,
        "failures": [{"keySha256": _key_digest(c), "kind": c.kind, "status": status}
                     for c, status in verdicts.failed[:_URIS_LOGGED]]})
    if not failed:
        return
    if request.attempt <= settings.max_document_retries:
        seed = f"{request.origin}:{request.attempt + 1}"
        answer = direct.submit(clients.bedrock_agent(), settings, failed, seed=seed)
        if isinstance(answer, direct.Submitted):
            metrics.add_metric(name="DirectDocumentsRetried", unit=MetricUnit.Count, value=len(failed))
            documents_submitted(settings, failed, origin=request.origin, attempt=request.attempt + 1)
            return
        logger.warning("Direct ingestion refused on retry; handing the documents to an ingestion job",
                       extra={**entry, "code": answer.code, "detail": answer.message[:300]})
    _hand_to_job(settings, request, failed)


def _against_the_bucket(settings: Settings, failed: Sequence[DocumentChange],
                        found: Mapping[str, tuple[str, str]]) -> tuple[list[DocumentChange], int]:
    """The failed documents still to submit, as the bucket holds them now, and how many it shows are done.

    A document fails its check when a later change of its key was applied after its own (``stored``: two workers
    at once): a deletion finds its document INDEXED again, an ingestion finds it gone. Judged again against the
    bucket, such a document is done when the index already matches S3; otherwise it is submitted as S3 holds it,
    never as the superseded change said, and only then do retries and the failure lane apply.
    """
    if not failed:
        return [], 0
    again = judge_documents(stored.as_stored(clients.s3(), settings, failed), found)
    if again.done:
        metrics.add_metric(name="DirectDocumentsDone", unit=MetricUnit.Count, value=len(again.done))
        metrics.add_metric(name="DocumentsSuperseded", unit=MetricUnit.Count, value=len(again.done))
    return [*again.pending, *(change for change, _ in again.failed)], len(again.done)


def _hand_to_job(settings: Settings, request: DocumentCheck, failed: Sequence[DocumentChange]) -> None:
    """The failure lane: page (the metric is alarmed) and make sure an ingestion job syncs these documents."""
    metrics.add_metric(name="DirectDocumentsFailed", unit=MetricUnit.Count, value=len(failed))
    origin = hashlib.sha256(f"{request.origin}:{request.attempt}:handed-over".encode()).hexdigest()
    message_id = follow_up.send_follow_up(clients.sqs(), settings, FollowUp(
        generation=0, origin=origin, reason=FollowUpReason.HANDED_OVER))
    logger.error("Directly ingested documents failed; an ingestion job will sync them", extra={
        "origin": request.origin, "attempt": request.attempt, "documents": len(failed),
        "followUpMessageId": message_id,
        "keySha256": [_key_digest(c) for c in failed[:_URIS_LOGGED]]})


def _key_digest(change: DocumentChange) -> str:
    """The key's digest as the other log entries give it (SHA-256 of the key, 16 characters), never the key."""
    return digest(change.uri.split("/", 3)[3], 16)
