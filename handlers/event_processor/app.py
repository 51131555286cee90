"""Lambda adapter of the event-processing pipeline: ``event_processor.app.handler``.

Trigger
    SQS batches (5-10 records) from the work queue, each body an EventBridge event from the input bus. The event
    source mapping must enable ``ReportBatchItemFailures``.

One record, in a worker thread (at most ``RECORD_CONCURRENCY`` at once, so a batch of 10 takes about as long as
one model call)
    1. ``intake.classify``: parse the body with the parser model; a bad record is logged with its event id and
       the offending field and fails alone (``Rejected``).
    2. Ask the model under Powertools idempotency, keyed on the item's idempotency key: the first copy stores an
       in-progress record, calls Bedrock (throttling and timeouts retried with backoff and jitter inside the time
       budget), and stores the answer; a later copy gets the stored answer without calling the model; a copy that
       arrives while the first is in flight fails with "already in progress" and is retried by SQS. When the
       call fails, Powertools deletes the in-progress record, so the retry may call again. The instructions go in
       Converse's ``system`` field, the escaped item alone in the user turn, and the answer is a forced call of a
       tool whose input schema is the task's; it is validated (``answers``) before it is remembered, and an answer
       that fails is counted (``InvalidModelAnswers``, alarmed) and fails the record (``Outcome.INVALID_ANSWER``).
    3. ``store.store``: a conditional put of the result, which also claims its publication; a copy that finds
       the result already published is acknowledged as done.

The batch, in the handler's thread
    4. ``publish.put_events``: one ``ProcessingCompleted`` event per new result (the result and a reference to
       the input, never its content), in chunks of at most 10, retrying only the failed entries.
    5. ``store.mark_published`` for each published result. A record whose event could not be published fails:
       SQS retries it, its idempotency record answers without the model, and its stored result is published.
       No ``PutEvents`` starts unless the marks still fit before the timeout (``MARK_SECONDS``): a batch that
       reaches its publication too late fails its records instead, and the retry announces them once.

Every record ends in exactly one ``outcomes.Outcome``; failures are returned as ``batchItemFailures``.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NoReturn

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.idempotency import IdempotencyConfig, idempotent_function
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyPersistenceLayerError,
)
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from common.redact import digest
from common.retry import Budget, Clock, SystemClock
from event_processor import answers, clients, model, prompt, publish, store
from event_processor.config import Settings
from event_processor.events import InputReference, ModelAnswer
from event_processor.exceptions import (
    EventProcessorError,
    InvalidModelAnswerError,
    ModelCallError,
    PublicationInProgressError,
    RejectedEventError,
    ResultStoreError,
    RetriesExhaustedError,
)
from event_processor.intake import Accepted, IntakeRules, Rejected, classify, fingerprint
from event_processor.outcomes import FAILED_OUTCOMES, Outcome, Outcomes, Tally
from event_processor.results import StoredResult
from event_processor.store import Claim, Stored

logger = Logger()
metrics = Metrics()

# Validated once per cold start: a misconfigured function fails at init with the variable's name.
settings = Settings.from_env()
rules = IntakeRules(accepted_sources=settings.accepted_sources, accepted_detail_types=settings.accepted_detail_types,
                    key_fields=settings.idempotency_key_fields, max_input_chars=settings.max_input_chars)
# The records of a batch run here; the bound is the batch's share of the model's throughput budget.
executor = ThreadPoolExecutor(max_workers=settings.record_concurrency, thread_name_prefix="record")
clock: Clock = SystemClock()

# Kept back from the model's retries for storing and publishing the batch's results (the stack config requires
# the function timeout to exceed one model request plus this).
BOOKKEEPING_SECONDS = 10
# Publication stops this long before the function's timeout, so the response still reaches SQS.
RESPONSE_SECONDS = 1
# Kept after the last PutEvents for the publication marks (one DynamoDB update per result, concurrently): a result
# announced and not marked would be announced again by a redelivery, so no PutEvents starts without this time.
MARK_SECONDS = 3


@dataclass
class Invocation:
    """What the records of one invocation share."""

    request_id: str
    deadline: float  # the function's timeout, epoch seconds
    budget: Budget  # for model retries: up to the deadline less the bookkeeping time
    idempotency: IdempotencyConfig  # knows this invocation's context, so an in-progress record expires with it
    outcomes: Outcomes
    tally: Tally


@dataclass(frozen=True)
class Pending:
    """A stored result this invocation holds the claim to publish."""

    message_id: str
    result: StoredResult
    claim: Claim
    stored_now: bool


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list):
        raise EventProcessorError(f"expected an SQS batch with Records; got {type(event).__name__}")
    now = clock.time()
    deadline = now + context.get_remaining_time_in_millis() / 1000
    idempotency = IdempotencyConfig(event_key_jmespath="key", raise_on_no_idempotency_key=True,
                                    expires_after_seconds=settings.idempotency_ttl_seconds, lambda_context=context)
    run = Invocation(request_id=context.aws_request_id, deadline=deadline,
                     budget=Budget(clock, deadline - BOOKKEEPING_SECONDS), idempotency=idempotency,
                     outcomes=Outcomes(), tally=Tally())
    run.tally.add("MessagesReceived", len(records))

    async def record_handler(record: SQSRecord) -> Pending | None:
        # Each record's thread runs in a copy of this context, so context-local state (tracing segments, whatever
        # instruments the clients) follows the record into it, as asyncio.to_thread would do.
        in_context = contextvars.copy_context().run
        return await asyncio.get_running_loop().run_in_executor(executor, in_context, _work_on, record, run)

    # One processor per invocation: nothing of one batch's bookkeeping can leak into another's. It fans the records
    # out; the response is _settle's, not processor.response(): the events are published together after every
    # record has run, and a record whose event is not published fails then, after the processor's own verdict.
    processor = AsyncBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    with processor(records=records, handler=record_handler, lambda_context=context):
        processed = processor.async_process()
    pending = [result for status, result, _ in processed if status == "success" and result is not None]
    _publish(pending, run)
    return _settle(records, run)


# --- one record (runs in a worker thread) --------------------------------------------------------------------


def _work_on(record: SQSRecord, run: Invocation) -> Pending | None:
    message_id = record.message_id
    where = {"messageId": message_id,
             "receiveCount": record.raw_event.get("attributes", {}).get("ApproximateReceiveCount")}
    verdict = classify(record.raw_event.get("body"), rules)
    if isinstance(verdict, Rejected):
        _reject(record, verdict, where, run)
    where |= {"eventId": verdict.event.id, "itemId": verdict.event.detail.itemId, "resultId": verdict.key}
    _note_version(verdict, where, run)
    try:
        answer, reused = _answer(verdict, run)
        result = StoredResult(result_id=verdict.key, task=settings.task, model_id=settings.model_id, answer=answer,
                              input=InputReference.of(verdict.event, verdict.version))
        claim = Claim(owner=f"{run.request_id}/{message_id}", expires_at_ms=int(run.deadline * 1000))
        now = clock.time()
        stored = store.store(clients.dynamodb(), settings.results_table, result, claim, now_ms=int(now * 1000),
                             expires_at=int(now) + settings.results_retention_days * 86_400)
    except (IdempotencyAlreadyInProgressError, PublicationInProgressError) as error:
        run.outcomes.set(message_id, Outcome.IN_PROGRESS)
        run.tally.add("InProgressDeferrals")
        logger.warning("Another copy of this item is in flight; this one is retried later",
                       extra={**where, "error": str(error)})
        raise
    except InvalidModelAnswerError as error:
        run.outcomes.set(message_id, Outcome.INVALID_ANSWER)
        run.tally.add("InvalidModelAnswers")
        logger.error("Model answer failed validation; not stored or published, SQS retries the item, then "
                     "dead-letters it", extra={**where, "error": str(error)})
        raise
    except (ModelCallError, RetriesExhaustedError, ResultStoreError, IdempotencyPersistenceLayerError) as error:
        run.outcomes.set(message_id, Outcome.FAILED)
        run.tally.add("RecordFailures")
        logger.error("Processing failed; SQS retries the item, then dead-letters it",
                     extra={**where, "errorType": type(error).__name__, "error": str(error),
                            "code": getattr(error, "code", None)})
        raise
    except Exception:
        run.outcomes.set(message_id, Outcome.FAILED)
        run.tally.add("RecordFailures")
        logger.exception("Unexpected error; SQS retries the item, then dead-letters it", extra=where)
        raise
    where |= {"modelAnswerReused": reused, "stored": str(stored.state)}
    if stored.state is Stored.PUBLISHED:
        run.outcomes.set(message_id, Outcome.ALREADY_DONE)
        run.tally.add("DuplicatesAcknowledged")
        logger.info("Item already processed and announced; acknowledged", extra=where)
        return None
    if stored.state is Stored.NEW:
        run.tally.add("ResultsStored")
    return Pending(message_id=message_id, result=stored.result, claim=claim, stored_now=stored.state is Stored.NEW)


def _reject(record: SQSRecord, verdict: Rejected, where: dict[str, Any], run: Invocation) -> NoReturn:
    run.outcomes.set(record.message_id, Outcome.REJECTED)
    run.tally.add("EventsRejected")
    logger.error(
        "Rejected event; reported as a batch item failure so it alone is retried, then dead-lettered",
        extra={**where, "eventId": verdict.event_id, "reason": str(verdict.reason), "field": verdict.field,
               "detail": verdict.detail, **fingerprint(record.raw_event.get("body"))},
    )
    raise RejectedEventError(f"{verdict.reason}: {verdict.detail}")


def _note_version(accepted: Accepted, where: dict[str, Any], run: Invocation) -> None:
    """Remember the item's latest version; warn when a known item arrives with other content.

    Best effort: the version is part of the result's key, so a new version is processed whatever happens here;
    this only makes the change visible (an edited document, or another producer reusing the item's id).
    """
    try:
        previous = store.note_version(clients.dynamodb(), settings.idempotency_table, accepted.identity,
                                      accepted.version,
                                      expires_at=int(clock.time()) + settings.idempotency_ttl_seconds)
    except Exception as error:  # the version is in the key anyway; a lost warning is all this costs
        logger.warning("Item version not recorded", extra={**where, "error": str(error)})
        return
    if previous is not None and previous != accepted.version:
        run.tally.add("ItemVersionsChanged")
        logger.warning("A known item id arrived with different content; processed as a new version",
                       extra={**where, "identitySha256": digest(accepted.identity, 16),
                              "previousContentSha256": previous, "contentSha256": accepted.version})


def _answer(accepted: Accepted, run: Invocation) -> tuple[ModelAnswer, bool]:
    """The model's answer for this item: asked once, then remembered by the idempotency record."""
    asked: list[bool] = []

    def ask_model(*, key: dict[str, str], content: str) -> dict[str, Any]:
        asked.append(True)
        run.tally.add("ModelCalls")
        schema, tool = _task_answers(settings.task, settings.labels)
        question = model.Question(system=_instructions(settings.prompt_template, settings.labels),
                                  user=prompt.user_turn(content), tool=tool)
        reply = model.ask(clients.model_client(settings), settings, question, budget=run.budget,
                          on_retry=lambda attempt, delay, error: _note_retry(accepted, attempt, delay, error, run))
        # Checked before it is returned: an answer that fails is raised, so the idempotency record is deleted and
        # nothing invalid is remembered, stored or published.
        checked = answers.check(schema, reply.tool_input)
        if isinstance(checked, answers.Invalid):
            raise InvalidModelAnswerError(f"model {settings.model_id}: {checked.reason}")
        return reply.answer.model_copy(update={"structured": checked}).model_dump()

    remembered = idempotent_function(
        data_keyword_argument="key", persistence_store=clients.idempotency_store(settings.idempotency_table),
        config=run.idempotency, key_prefix=f"event-processor#{settings.processing_profile}",
    )(ask_model)
    data = remembered(key={"key": accepted.key}, content=accepted.event.detail.content)
    if not asked:
        run.tally.add("ModelCallsAvoided")
    return ModelAnswer.model_validate(data), not asked


@functools.cache
def _task_answers(task: str, labels: tuple[str, ...]) -> tuple[type[BaseModel], dict[str, Any]]:
    """The task's answer model and the tool built from it, once per configuration."""
    schema = answers.answer_model(task, labels)
    return schema, answers.tool_spec(schema)


@functools.cache
def _instructions(template: str, labels: tuple[str, ...]) -> str:
    return prompt.system(template, labels)


def _note_retry(accepted: Accepted, attempt: int, delay: float, error: BaseException, run: Invocation) -> None:
    code = model.error_code(error)
    run.tally.add("ModelRetries")
    if code == "ThrottlingException":
        run.tally.add("ModelThrottles")
    logger.warning("Model call failed; retrying after backoff",
                   extra={"eventId": accepted.event.id, "attempt": attempt, "delaySeconds": round(delay, 3),
                          "code": code})


# --- the batch (handler thread) ------------------------------------------------------------------------------


def _publish(pending: list[Pending], run: Invocation) -> None:
    if not pending:
        return
    by_message = {p.message_id: p for p in pending}
    entries = {message_id: p.result.entry(bus=settings.result_bus_name, source=settings.result_source,
                                          results_table=settings.results_table)
               for message_id, p in by_message.items()}
    deliveries = publish.put_events(clients.events(), entries,
                                    budget=Budget(clock, run.deadline - RESPONSE_SECONDS - MARK_SECONDS))
    published = [(by_message[m], d) for m, d in deliveries.items() if isinstance(d, publish.Published)]
    for p, delivery in deliveries.items():
        if isinstance(delivery, publish.NotPublished):
            _publication_failed(by_message[p], delivery, run)
    published_at = datetime.now(UTC).isoformat(timespec="milliseconds")
    context = contextvars.copy_context()
    list(executor.map(lambda item: context.copy().run(_mark, item[0], item[1], published_at, run), published))


def _mark(pending: Pending, delivery: publish.Published, published_at: str, run: Invocation) -> None:
    run.outcomes.set(pending.message_id, Outcome.PUBLISHED)
    run.tally.add("ResultsPublished")
    where = {"messageId": pending.message_id, "resultId": pending.result.result_id,
             "eventId": pending.result.input.eventId, "completionEventId": delivery.event_id,
             "storedNow": pending.stored_now}
    try:
        store.mark_published(clients.dynamodb(), settings.results_table, pending.result.result_id, pending.claim,
                             event_id=delivery.event_id, published_at=published_at)
    except Exception as error:  # the event is out; failing the record now would only announce it twice
        run.tally.add("PublishMarksFailed")
        logger.warning("Result published but not marked; a redelivered copy would announce it again",
                       extra={**where, "error": str(error)})
        return
    logger.info("Result stored and announced", extra=where)


def _publication_failed(pending: Pending, failure: publish.NotPublished, run: Invocation) -> None:
    run.outcomes.set(pending.message_id, Outcome.PUBLISH_FAILED)
    run.tally.add("PublishFailures")
    where = {"messageId": pending.message_id, "resultId": pending.result.result_id,
             "eventId": pending.result.input.eventId, "code": failure.code, "error": failure.message,
             "attempts": failure.attempts}
    try:
        store.release(clients.dynamodb(), settings.results_table, pending.result.result_id, pending.claim)
    except Exception as error:  # the claim expires with this invocation anyway
        where["releaseError"] = str(error)
    logger.error("Completion event not published; SQS retries the item, which announces the stored result "
                 "without asking the model again", extra=where)


def _settle(records: list[dict[str, Any]], run: Invocation) -> dict[str, Any]:
    outcomes = run.outcomes.all()
    for record in records:  # a record without an outcome would be a bug; never acknowledge it silently
        message_id = str(record.get("messageId"))
        if message_id not in outcomes:
            outcomes[message_id] = Outcome.FAILED
            logger.error("Record ended without an outcome; failing it", extra={"messageId": message_id})
    failures = [message_id for message_id, outcome in outcomes.items() if outcome in FAILED_OUTCOMES]
    tally = run.tally.counts()
    for name, value in sorted(tally.items()):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    logger.info("Batch settled", extra={"records": len(records),
                                        "outcomes": dict(Counter(str(o) for o in outcomes.values())),
                                        "tally": tally, "batchItemFailures": failures})
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failures]}
