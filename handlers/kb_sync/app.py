"""Lambda adapter of the knowledge-base auto-sync pipeline: ``kb_sync.app.handler``.

Triggers
    * An SQS batch from the pipeline's queue: S3 ObjectCreated/ObjectRemoved notifications (keys URL-encoded),
      the ``s3:TestEvent`` S3 sends when notifications are configured, and this function's own follow-ups.
    * A direct invocation by EventBridge Scheduler with ``{"source": "schedule", "scheduledTime": "..."}``
      (see ``messages.SCHEDULE_PAYLOAD_TEMPLATE``).

One job per invocation
    Bedrock ingestion is incremental over the whole data source, so one ``StartIngestionJob`` covers every change
    in the batch. Its ``clientToken`` is a SHA-256 over the knowledge base, the data source and the identities of
    the messages it covers (SQS message ids; a follow-up's origin and generation; a schedule tick's time), so a
    retried invocation of the same batch repeats the token and Bedrock starts no second job.

Partial batch responses
    The event source mapping must enable ``ReportBatchItemFailures``. Classification runs each record through
    Powertools' ``BatchProcessor``: an unusable record (malformed JSON, invalid UTF-8, empty, oversized, unknown
    shape, wrong field type) is logged and reported as a batch item failure, so it alone is retried and then
    dead-lettered while the valid records still start the job. S3 test events and non-content S3 events are
    acknowledged and skipped. The job itself is all-or-nothing: if Bedrock throttles, denies access, cannot find
    the knowledge base or rejects the request, the invocation raises and SQS retries the whole batch, which after
    maxReceiveCount lands in the DLQ and raises its alarm.

A job already running
    ``ConflictException`` is not an error, but the running job may have listed the bucket before these changes
    landed, so it cannot be trusted to include them. The handler sends one follow-up to its own queue with
    ``FOLLOW_UP_DELAY_SECONDS`` of delay and acknowledges the batch; the follow-up is processed like any other
    message and starts a job later (coalescing with whatever else is in that batch). Follow-ups carry a
    generation counter; copies of one follow-up share a client token, so duplicates start at most one job.

The bound
    A message that has already been re-requested ``MAX_FOLLOW_UPS`` times and meets another conflict is not
    carried further: it is reported as a batch item failure and logged as an error. SQS then redelivers it after
    the visibility timeout (one more chance to start the job) and finally dead-letters it, paging someone,
    because a data source that refuses jobs for that long is stuck. Redriving the DLQ message later starts the
    sync it stands for. Fresh messages in the same batch are still carried by a new follow-up, never failed.

Direct ingestion, bursts and quotas (``routing``)
    Under ``SYNC_MODE`` auto (the default) a batch of at most ``BURST_THRESHOLD_DOCUMENTS`` changed documents is
    ingested and deleted directly (``direct``), without waiting behind the data source's running job; a larger
    batch is a burst, handed to a follow-up ``BURST_SETTLE_SECONDS`` later so that its one job sees the rest of
    the burst. A document is ingested or deleted as the bucket holds it when its batch runs, not as its
    notification says (``stored``), so notifications of one key applied out of order still leave the index as S3
    is. On a conflict, a running job that started after every change of the batch already covers it. A refusal
    for the account's concurrent-jobs quota is waited out like a conflict and never counts toward
    ``MAX_FOLLOW_UPS``.

Watched to the end (``watching``)
    Each started job and each direct ingestion is followed by delayed checks on the same queue, so no function
    waits; how each ended is counted, logged and alarmed.

Every input ends in exactly one outcome (``sync.Outcome``): covered by a started (or running) job, ingested
directly, carried by a follow-up, checked, skipped by design, or a batch item failure (rejected, follow-ups
exhausted, or a check that could not be made).
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.parser import ValidationError, parse
from aws_lambda_powertools.utilities.typing import LambdaContext

from common.redact import clip, digest
from kb_sync import bedrock, clients, direct, follow_up, stored, watching
from kb_sync.classify import Changed, CheckRequested, ObjectChange, Rejected, Skipped, Source, classify
from kb_sync.config import Settings
from kb_sync.exceptions import (
    FollowUpsExhaustedError,
    KbSyncError,
    RejectedMessageError,
    UnrecognisedInvocationError,
)
from kb_sync.messages import DocumentChange, FollowUpReason, ScheduledSync
from kb_sync.planning import QueuedMessage, SyncPlan, latest_changes, plan_batch, plan_scheduled_run
from kb_sync.routing import Route, choose_route
from kb_sync.sync import FAILED_OUTCOMES, Outcome, SyncResult, defer_burst, run_sync, settle

logger = Logger()
metrics = Metrics()
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

# Validated once per cold start: a misconfigured function fails at init with the variable's name.
settings = Settings.from_env()
source = Source(bucket=settings.document_bucket, prefix=settings.document_prefix)

# CloudWatch caps a log event at 256 KiB; a burst of changed keys is logged in bounded parts.
_KEYS_PER_LOG_ENTRY = 100
_IDS_PER_LOG_ENTRY = 100
# Rejection and skip details are bounded; key digests are short enough to scan, long enough not to collide.
_DETAIL_CHARS = 300
_KEY_DIGEST_CHARS = 16


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    logger.append_keys(knowledgeBaseId=settings.knowledge_base_id, dataSourceId=settings.data_source_id)
    try:
        if _is_sqs_batch(event):
            return _handle_batch(event["Records"], context)
        return _handle_direct(event, context)
    except Exception as error:
        # Logged here with the batch's context; the runtime's own report of the exception has none.
        metrics.add_metric(name="SyncFailures", unit=MetricUnit.Count, value=1)
        logger.exception(
            "Invocation failed; its source will retry it",
            extra={"errorType": type(error).__name__, "expected": isinstance(error, KbSyncError)},
        )
        raise


def _is_sqs_batch(event: Any) -> bool:
    records = event.get("Records") if isinstance(event, dict) else None
    return isinstance(records, list) and all(
        isinstance(record, dict) and record.get("eventSource") == "aws:sqs" for record in records
    )


def _handle_batch(records: list[dict[str, Any]], context: LambdaContext) -> dict[str, Any]:
    metrics.add_metric(name="MessagesReceived", unit=MetricUnit.Count, value=len(records))
    with processor(records=records, handler=_classify_record, lambda_context=context):
        processed = processor.process()
    queued: list[QueuedMessage] = [result for status, result, _ in processed if status == "success"]
    rejected_ids = [str(failure["itemIdentifier"]) for failure in processor.response()["batchItemFailures"]]

    _log_changes(queued)
    plan = plan_batch(queued, settings.knowledge_base_id, settings.data_source_id)
    result = _sync(plan, queued) if plan is not None else None

    outcomes = settle(queued, result)
    outcomes.update(dict.fromkeys(rejected_ids, Outcome.REJECTED))
    # Checks run once the batch's sync is done, so a sync that fails the invocation repeats no check.
    outcomes.update(_run_checks(queued))
    failures = [message_id for message_id, outcome in outcomes.items() if outcome in FAILED_OUTCOMES]
    logger.info(
        "Batch settled",
        extra={
            "records": len(records),
            "outcomes": dict(Counter(str(outcome) for outcome in outcomes.values())),
            "failed": len(failures),
            "batchItemFailures": failures[:_IDS_PER_LOG_ENTRY],
        },
    )
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failures]}


def _classify_record(record: SQSRecord) -> QueuedMessage:
    """Powertools record handler: classify one record; raise for an unusable one so it fails alone."""
    body = record.raw_event.get("body")
    verdict = classify(body, source)
    entry = {
        "messageId": record.message_id,
        "receiveCount": record.raw_event.get("attributes", {}).get("ApproximateReceiveCount"),
    }
    if isinstance(verdict, Rejected):
        metrics.add_metric(name="MessagesRejected", unit=MetricUnit.Count, value=1)
        logger.error(
            "Rejected message; reported as a batch item failure so it alone is retried, then dead-lettered",
            extra={**entry, "reason": str(verdict.reason), "detail": clip(verdict.detail, _DETAIL_CHARS),
                   **_fingerprint(body)},
        )
        raise RejectedMessageError(f"{verdict.reason}: {verdict.detail}")
    if isinstance(verdict, Skipped):
        metrics.add_metric(name="MessagesSkipped", unit=MetricUnit.Count, value=1)
        logger.info("Skipped message", extra={**entry, "reason": str(verdict.reason),
                                               "detail": clip(verdict.detail, _DETAIL_CHARS)})
    sent = record.raw_event.get("attributes", {}).get("SentTimestamp")
    return QueuedMessage(message_id=record.message_id, verdict=verdict,
                         sent_at=int(sent) if isinstance(sent, str) and sent.isdigit() else None)


def _run_checks(queued: Sequence[QueuedMessage]) -> dict[str, Outcome]:
    """Each check alone: one that cannot read Bedrock's status is a batch item failure, retried by SQS."""
    outcomes: dict[str, Outcome] = {}
    for message in queued:
        if not isinstance(message.verdict, CheckRequested):
            continue
        try:
            watching.check(settings, message.verdict.check)
        except KbSyncError as error:
            metrics.add_metric(name="ChecksFailed", unit=MetricUnit.Count, value=1)
            logger.warning("Check failed; reported as a batch item failure so SQS retries it",
                           extra={"messageId": message.message_id, "errorType": type(error).__name__,
                                  "detail": clip(str(error), _DETAIL_CHARS)})
            outcomes[message.message_id] = Outcome.CHECK_FAILED
    return outcomes


def _sync(plan: SyncPlan, queued: Sequence[QueuedMessage]) -> SyncResult:
    route = choose_route(plan, queued, mode=settings.sync_mode, burst_threshold=settings.burst_threshold_documents,
                         settle_seconds=settings.burst_settle_seconds)
    if route is Route.DIRECT:
        result = _ingest_directly(plan, queued)
        if result is not None:
            return result
    if route is Route.BURST:
        result = defer_burst(plan, send_follow_up=functools.partial(follow_up.send_follow_up, clients.sqs(), settings))
        metrics.add_metric(name="BurstsDeferred", unit=MetricUnit.Count, value=1)
        logger.info("Burst: its ingestion job waits for the rest of it", extra={
            "clientToken": plan.client_token, "documents": plan.documents,
            "followUpMessageId": result.follow_up_message_id, "delaySeconds": settings.burst_settle_seconds})
        return result
    return _run(plan)


def _ingest_directly(plan: SyncPlan, queued: Sequence[QueuedMessage]) -> SyncResult | None:
    """Ingest and delete the batch's documents directly; None when Bedrock refuses, so a job takes them.

    Each document as the bucket holds it now, not as its notification says (``stored``): another batch may carry a
    later change of the same key and have been applied already.
    """
    announced = [DocumentChange(kind=str(c.kind), uri=c.uri) for c in latest_changes(queued)]  # type: ignore[arg-type]
    changes = stored.as_stored(clients.s3(), settings, announced)
    superseded = sum(1 for was, now in zip(announced, changes, strict=True) if was.kind != now.kind)
    if superseded:
        metrics.add_metric(name="DocumentsSuperseded", unit=MetricUnit.Count, value=superseded)
    answer = direct.submit(clients.bedrock_agent(), settings, changes, seed=plan.client_token)
    if isinstance(answer, direct.Refused):
        metrics.add_metric(name="DirectIngestionRefused", unit=MetricUnit.Count, value=1)
        logger.warning("Direct ingestion refused; an ingestion job syncs the batch instead", extra={
            "clientToken": plan.client_token, "code": answer.code, "detail": clip(answer.message, _DETAIL_CHARS)})
        return None
    watching.documents_submitted(settings, changes, origin=plan.client_token, attempt=1)
    for kind in ("created", "removed"):
        count = sum(1 for c in changes if c.kind == kind)
        if count:
            metrics.add_metric(name=f"DocumentsSubmitted{kind.capitalize()}", unit=MetricUnit.Count, value=count)
    logger.info("Documents submitted directly", extra={
        "clientToken": plan.client_token, "documents": len(changes), "superseded": superseded,
        "statuses": dict(Counter(answer.statuses.values()))})
    return SyncResult(plan=plan, direct=True)


def _handle_direct(event: Any, context: LambdaContext) -> dict[str, Any]:
    try:
        request = parse(event=event, model=ScheduledSync)
    except ValidationError as error:
        keys = sorted(event)[:20] if isinstance(event, dict) else type(event).__name__
        raise UnrecognisedInvocationError(
            f"knowledge base {settings.knowledge_base_id}: invoked with neither an SQS batch nor "
            f'{{"source": "schedule"}} (got {keys}; {error.error_count()} validation errors)'
        ) from None
    metrics.add_metric(name="ScheduledRuns", unit=MetricUnit.Count, value=1)
    # scheduledTime is the same for every delivery of one tick; without it the request id is the best identity
    # left, shared only by retries that reuse it.
    run_id = request.scheduledTime or context.aws_request_id
    result = _run(plan_scheduled_run(run_id, settings.knowledge_base_id, settings.data_source_id))
    if result.exhausted:
        raise FollowUpsExhaustedError(
            f"knowledge base {settings.knowledge_base_id} is busy and MAX_FOLLOW_UPS={settings.max_follow_ups} "
            "allows no follow-up; failing the scheduled run so the schedule's retry policy and DLQ take over"
        )
    if result.job is not None:
        return {"outcome": str(Outcome.COVERED), "ingestionJobId": result.job.ingestion_job_id}
    return {"outcome": str(Outcome.FOLLOW_UP), "followUpMessageId": result.follow_up_message_id}


def _run(plan: SyncPlan) -> SyncResult:
    result = run_sync(
        plan,
        start_job=functools.partial(bedrock.start_ingestion_job, clients.bedrock_agent(), settings),
        send_follow_up=functools.partial(follow_up.send_follow_up, clients.sqs(), settings),
        max_follow_ups=settings.max_follow_ups,
        find_running_job=functools.partial(bedrock.find_running_job, clients.bedrock_agent(), settings),
    )
    if result.job is not None:
        # Sent before the batch is acknowledged: if it cannot be sent, the retried batch gets the same job back
        # (same client token) and sends it then.
        watching.job_started(settings, result.job.ingestion_job_id)
    _report(result)
    return result


def _report(result: SyncResult) -> None:
    context = {"clientToken": result.plan.client_token, "requests": len(result.plan.obligations)}
    if result.job is not None:
        metrics.add_metric(name="IngestionJobsStarted", unit=MetricUnit.Count, value=1)
        logger.info(
            "Ingestion job started",
            extra={**context, "ingestionJobId": result.job.ingestion_job_id, "status": result.job.status},
        )
        return
    if result.covered_by is not None:
        metrics.add_metric(name="CoveredByRunningJob", unit=MetricUnit.Count, value=1)
        logger.info("Ingestion job already running and started after every change of the batch; it covers them",
                    extra={**context, "ingestionJobId": result.covered_by.ingestion_job_id})
        return
    quota = result.conflict is not None and result.conflict.reason is FollowUpReason.QUOTA
    metrics.add_metric(name="IngestionQuotaWaits" if quota else "IngestionJobConflicts", unit=MetricUnit.Count,
                       value=1)
    conflict = {**context, "conflict": result.conflict.message if result.conflict else "", "quota": quota}
    if result.follow_up is not None:
        metrics.add_metric(name="FollowUpsSent", unit=MetricUnit.Count, value=1)
        logger.info(
            "Ingestion job already running (or the account's job quota taken); follow-up sent to guarantee a "
            "later sync",
            extra={
                **conflict,
                "followUpGeneration": result.follow_up.generation,
                "followUpMessageId": result.follow_up_message_id,
                "delaySeconds": settings.follow_up_delay_seconds,
            },
        )
    if result.exhausted:
        metrics.add_metric(name="FollowUpsExhausted", unit=MetricUnit.Count, value=len(result.exhausted))
        logger.error(
            f"Knowledge base has refused ingestion jobs through {settings.max_follow_ups} follow-ups in a row; "
            "failing these requests so they are retried and then dead-lettered",
            extra={
                **conflict,
                "maxFollowUps": settings.max_follow_ups,
                "exhausted": len(result.exhausted),
                "messageIds": [o.message_id for o in result.exhausted if o.message_id][:_IDS_PER_LOG_ENTRY],
            },
        )


def _log_changes(queued: Sequence[QueuedMessage]) -> None:
    changes = [change for m in queued if isinstance(m.verdict, Changed) for change in m.verdict.changes]
    if not changes:
        return
    counts = Counter(str(change.kind) for change in changes)
    for kind, count in counts.items():
        metrics.add_metric(name=f"Objects{kind.capitalize()}", unit=MetricUnit.Count, value=count)
    parts = range(0, len(changes), _KEYS_PER_LOG_ENTRY)
    for part, start in enumerate(parts, start=1):
        logger.info(
            "Documents changed",
            extra={
                "counts": dict(counts),
                "part": part,
                "parts": len(parts),
                "changes": [_describe(change) for change in changes[start : start + _KEYS_PER_LOG_ENTRY]],
            },
        )


def _describe(change: ObjectChange) -> dict[str, Any]:
    # Object keys name people and documents: logged as digests (SHA-256 of the decoded key, as an operator who
    # knows the key computes it), never as keys.
    described: dict[str, Any] = {"kind": str(change.kind), "keySha256": digest(change.key, _KEY_DIGEST_CHARS)}
    if change.key_is_raw:
        described["keyNotDecoded"] = True
    return described


def _fingerprint(body: Any) -> dict[str, Any]:
    """What a log entry says about a message body instead of its content: its size and SHA-256 digest."""
    if not isinstance(body, str):
        return {"bodyType": type(body).__name__}
    return {"bodyChars": len(body), "bodySha256": digest(body)}
