"""Synchronous worker: ``batch_inference.sync_worker.handler``, the mode B Map's child Task.

Input (Distributed Map with ItemBatcher) ``{"Items": [{"recordId", "modelInput"}...], "BatchInput": {"runId",
"shardId" (a switched shard's batch)}, "retryCount": <$$.State.RetryCount>}``. Each record is claimed in the ledger
for this batch (owner ``<runId>/b-<digest of the batch's ids>``, with the switched shard's id, so the finalizer can
settle a failed switched shard from its batches' claims); records held by another owner are skipped, and a record
this batch answered in an earlier attempt keeps that answer (stored in the ledger) instead of calling the model
again.

The rest call Converse, at most RECORD_CONCURRENCY at a time, each with exponential backoff and full jitter over
throttling, model timeouts and transient errors (`backoff`). Then:

* a record the model rejects (validation, model error) goes to the failure lane; the batch succeeds;
* a systemic refusal (access denied, unknown model) fails the batch (`ModelAccessError`), so the Map's tolerated
  failure threshold trips instead of the failure lane filling with a whole corpus;
* records still throttled after their attempts fail the batch as ``ThrottlingException`` while Step Functions
  has retries left (its Retry is the second, slower layer; the answers so far are kept), and on the last
  attempt go to the failure lane.

No attempt starts (and no backoff sleeps) unless the invocation's remaining time still holds that attempt run to
its timeout plus SETTLE_SECONDS for the settlement. A record left without that time is handled as a record still
throttled, so the batch ends with ``ThrottlingException`` for Step Functions' Retry (or, on the last attempt, the
record goes to the failure lane) instead of running into the function's timeout, which the Task does not retry as
throttling.

This batch's answers are written to ``<RESULTS_PREFIX><runId>/batch-<digest>.jsonl``; the output is the counts,
with the input and output tokens of the answers (Converse's ``usage``).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from batch_inference import backoff, clients, usage
from batch_inference.config import SyncSettings
from batch_inference.exceptions import ModelAccessError, ThrottlingException
from batch_inference.joining import batch_key, result_line
from batch_inference.lane import LaneRecord
from batch_inference.ledger import Claim, Ledger
from batch_inference.records import converse_request
from batch_inference.settle import settle_unit
from batch_inference.tasks import SyncBatch, SyncItem, task_input
from batch_inference.threads import map_in_context

logger = Logger()
metrics = Metrics()
settings = SyncSettings.from_env()

# Time kept free at the end of an invocation for settling the batch (ledger, failure lane, results object). The
# config budgets a batch's worst case within the function's timeout; this bites when a batch runs slower than that
# budget (a slow cold start or slow claims).
SETTLE_SECONDS = 20
OUT_OF_TIME = "OutOfTime"


@dataclass(frozen=True)
class Answer:
    text: str
    output: dict[str, Any]


@dataclass(frozen=True)
class Refused:
    kind: str  # throttled | timeout | transient | record | systemic
    code: str
    detail: str


class OutOfTimeError(Exception):
    """The invocation has no time left for another attempt and the settlement after it."""


@dataclass(frozen=True)
class Deadline:
    remaining: Callable[[], float]  # seconds left in the invocation
    attempt_seconds: float  # one attempt run to its timeout

    def check(self, wait: float = 0.0) -> None:
        """`OutOfTimeError` unless waiting `wait` seconds still leaves one attempt plus the settlement."""
        left = self.remaining()
        if left - wait < self.attempt_seconds + SETTLE_SECONDS:
            raise OutOfTimeError(f"{left:.0f} s left in the invocation; another attempt needs "
                                 f"{wait + self.attempt_seconds + SETTLE_SECONDS:.0f} s with the settlement")


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    batch = task_input(event, SyncBatch, "sync worker input is not a Map batch")
    run_id = batch.BatchInput.runId
    logger.append_keys(runId=run_id, records=len(batch.Items), retryCount=batch.retryCount)
    return process_batch(run_id, batch.Items, retry_count=batch.retryCount, shard=batch.BatchInput.shardId,
                         remaining=lambda: context.get_remaining_time_in_millis() / 1000)


def process_batch(run_id: str, items: list[SyncItem], *, retry_count: int, shard: str | None = None,
                  sleep: Callable[[float], None] | None = None,
                  remaining: Callable[[], float] | None = None) -> dict[str, Any]:
    """Settle one batch; `remaining` gives the seconds left in the invocation (no limit without it)."""
    storage, records = settings.storage, settings.records
    order = list(dict.fromkeys(item.recordId for item in items))
    inputs = {item.recordId: item.modelInput for item in reversed(items)}  # a repeated id: its first input
    key = batch_key(order)
    owner = f"{run_id}/b-{key}"
    ledger = Ledger(clients.dynamodb(), records.ledger_table, records.ledger_ttl_seconds, run_id)
    claims = ledger.claim_all(order, owner, shard)
    deadline = Deadline(remaining or (lambda: math.inf), settings.model_timeout_seconds)
    answers: dict[str, Answer] = {}
    to_call = []
    for record_id in order:
        claim = claims[record_id]
        if claim.mine and claim.outcome == "succeeded" and claim.output is not None:
            answers[record_id] = _stored(claim)
        elif claim.mine and claim.outcome is None:
            to_call.append(record_id)
    refused: dict[str, Refused] = {}
    if to_call:
        def infer(record_id: str) -> Answer | Refused:
            outcome = _infer(inputs[record_id], sleep, deadline)
            if isinstance(outcome, Answer):  # kept at once: a retry of this batch does not ask again
                ledger.settle(record_id, owner, "succeeded", json.dumps({"text": outcome.text,
                                                                         "output": outcome.output}))
            return outcome

        outcomes = map_in_context(infer, to_call, workers=settings.record_concurrency)
        for record_id, outcome in zip(to_call, outcomes, strict=True):
            if isinstance(outcome, Answer):
                answers[record_id] = outcome
            else:
                refused[record_id] = outcome
    systemic = [r for r, o in refused.items() if o.kind == "systemic"]
    if systemic:
        metrics.add_metric(name="BatchesFailedSystemic", unit=MetricUnit.Count, value=1)
        first = refused[systemic[0]]
        raise ModelAccessError(f"the model refused {len(systemic)} record(s) with {first.code}: {first.detail}")
    throttled = [r for r, o in refused.items() if o.kind in backoff.RETRYABLE]
    unfinished = sum(1 for r in throttled if refused[r].code == OUT_OF_TIME)
    if unfinished:
        metrics.add_metric(name="RecordsOutOfTime", unit=MetricUnit.Count, value=unfinished)
    if throttled and retry_count < settings.batch_retries:
        metrics.add_metric(name="BatchesThrottled", unit=MetricUnit.Count, value=1)
        raise ThrottlingException(f"{len(throttled)} of {len(order)} record(s) still throttled after "
                                  f"{settings.max_attempts} attempts ({unfinished} left without time for one); "
                                  f"{len(answers)} answered and kept")
    failures = {r: LaneRecord(run_id, "model", "throttled" if o.kind in backoff.RETRYABLE else "model_rejected",
                              f"{o.code}: {o.detail}"[:500], dedupe_key=r, record_id=r) for r, o in refused.items()}
    for record_id in order:  # failed in an earlier attempt of this batch: settled again, sent only if not yet
        if claims[record_id].mine and record_id not in answers and record_id not in failures:
            failures[record_id] = LaneRecord(run_id, "model", "model_rejected", "failed in an earlier attempt",
                                             dedupe_key=record_id, record_id=record_id)
    # every item, repeats included: a repeated id's later items are duplicates, sent to the failure lane
    settlement = settle_unit(ledger, clients.sqs(), records.failure_lane_url, owner=owner,
                             order=[item.recordId for item in items], succeeded=set(answers), failures=failures,
                             claims=_after_calls(claims, answers))
    if settlement.succeeded:
        body = b"".join(result_line(r, answers[r].output, answers[r].text) for r in settlement.succeeded)
        clients.s3().put_object(Bucket=storage.output_bucket, Key=f"{storage.results_prefix}{run_id}/batch-{key}.jsonl",
                                Body=body, ContentType="application/jsonl")
    # Converse's usage of each answer this batch settled (kept answers carry theirs): billed on demand.
    tokens = usage.total(answers[r].output for r in settlement.succeeded)
    counts = {**settlement.counts.as_dict(), **tokens.as_counts()}
    for name in ("succeeded", "failed", "duplicates"):
        metrics.add_metric(name=f"Records{name.capitalize()}", unit=MetricUnit.Count, value=counts[name])
    logger.info("Batch settled", extra={"counts": counts, "batchKey": key})
    return {"batchKey": key, "counts": counts}


def _after_calls(claims: dict[str, Claim], answers: dict[str, Answer]) -> dict[str, Claim]:
    """The claims as they stand after this attempt stored its answers (no second settle of those)."""
    return {r: (Claim(r, True, "succeeded", None, c.lane_sent) if c.mine and r in answers else c)
            for r, c in claims.items()}


def _stored(claim: Claim) -> Answer:
    stored = json.loads(claim.output or "{}")
    return Answer(text=str(stored.get("text", "")), output=dict(stored.get("output", {})))


def _infer(model_input: dict[str, Any], sleep: Callable[[float], None] | None, deadline: Deadline) -> Answer | Refused:
    client = clients.bedrock_runtime(settings.model_timeout_seconds, settings.record_concurrency)
    try:
        request = converse_request(model_input)
    except (KeyError, TypeError, IndexError) as error:
        return Refused("record", "InvalidModelInput", f"modelInput is not a supported native body: {error!r}")

    def call() -> Any:
        deadline.check()  # with_backoff raises it at once: it is not a retryable error
        return client.converse(modelId=settings.model_id, **request)

    def pause(seconds: float) -> None:
        deadline.check(seconds)  # no backoff sleep unless the attempt after it can still run to its timeout
        (sleep or time.sleep)(seconds)

    try:
        response = backoff.with_backoff(call, classify=backoff.classify, max_attempts=settings.max_attempts,
                                        sleep=pause)
    except OutOfTimeError as stop:
        last = stop.__context__  # the retryable error the record was waiting to retry, if any
        after = f" after {_code(last)}" if isinstance(last, Exception) else ""
        return Refused("timeout", OUT_OF_TIME, f"unfinished{after}: {stop}")
    except Exception as error:
        return Refused(backoff.classify(error), _code(error), str(error)[:300])
    content = response.get("output", {}).get("message", {}).get("content", [])
    text = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return Answer(text=text, output={"stopReason": response.get("stopReason"), "usage": response.get("usage", {})})


def _code(error: Exception) -> str:
    return str(error.response["Error"]["Code"]) if isinstance(error, ClientError) else type(error).__name__
