"""Config of the event-processing pipeline."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from components import defaults
from components.config.model import WORKER_BOOKKEEPING_SECONDS, ModelSettings
from components.config.sections import EVENT_SOURCE_PATTERN, QueueSettings, Section, WorkerSettings, each_matching

# EventBridge sources and detail types, and the event fields an idempotency key may use.
_DETAIL_TYPE_PATTERN = r"^[\x20-\x7E]{1,128}$"
_KEY_FIELD_PATTERN = r"^(id|source|detail-type|detail(\.[A-Za-z0-9_-]{1,64}){1,5})$"

_EventSources = Annotated[tuple[str, ...], each_matching(EVENT_SOURCE_PATTERN, "event sources")]
_DetailTypes = Annotated[tuple[str, ...], each_matching(_DETAIL_TYPE_PATTERN, "detail types")]
_EventFields = Annotated[tuple[str, ...], each_matching(_KEY_FIELD_PATTERN, "event fields")]


class IntakeSettings(Section):
    """The rule on the input bus: which events the pipeline takes, and how EventBridge retries delivering them."""

    sources: _EventSources = Field(min_length=1, max_length=10,
                                     description="Event sources the rule matches (1..10), e.g. com.example.documents.")
    detail_types: _DetailTypes = Field(min_length=1, max_length=10,
                                          description="Detail types the rule matches (1..10), e.g. DocumentSubmitted.")
    retry_attempts: int = Field(defaults.TARGET_MAX_RETRY_ATTEMPTS, ge=0, le=185,
                                description="Times EventBridge retries delivering an event to the work queue.")
    max_event_age_seconds: int = Field(defaults.TARGET_MAX_EVENT_AGE_SECONDS, ge=60, le=86400,
                                       description="Seconds EventBridge keeps retrying before it dead-letters.")




class IdempotencySettings(Section):
    """How the worker recognises an item it has already processed."""

    key_fields: _EventFields = Field(
        (), max_length=5,
        description="Event fields hashed into the idempotency key (id, source, detail-type, detail.<path>); "
                    "empty: the event id.")
    ttl_seconds: int = Field(24 * 3600, ge=3600, le=7 * 24 * 3600,
                             description="How long an idempotency record lives (1 h..7 days).")



class EventProcessingSettings(Section):
    """Event-driven AI processing: input bus -> SQS -> worker -> Bedrock -> results table and result bus."""

    enabled: bool = Field(True, description="Build this pipeline in the stack.")
    intake: IntakeSettings = Field(description="The input bus rule and its delivery retries.")
    model: ModelSettings = Field(description="The model, its task and prompt.")
    idempotency: IdempotencySettings = Field(default_factory=IdempotencySettings,
                                             description="Idempotency keys and their lifetime.")
    queue: QueueSettings = Field(default_factory=QueueSettings, description="The work queue between bus and worker.")
    worker: WorkerSettings = Field(
        default_factory=lambda: WorkerSettings(timeout_seconds=120, memory_mb=512, reserved_concurrency=20,
                                               batch_size=10, batching_window_seconds=0, max_concurrency=20),
        description="The worker; reserved concurrency is the model's throughput budget in concurrent batches.")
    record_concurrency: int = Field(10, ge=1, le=10,
                                    description="Records of one batch processed at the same time (1..batchSize).")
    result_source: str = Field("ai-pipelines.event-processing", pattern=EVENT_SOURCE_PATTERN,
                               description="Source of the ProcessingCompleted events on the result bus.")
    result_subscriber: bool = Field(True, description="Add the example subscriber: a rule on the result bus "
                                                      "delivering ProcessingCompleted events to a queue.")
    results_retention_days: int = Field(
        90, ge=defaults.DLQ_RETENTION_SECONDS // 86400, le=3650,
        description="Days a stored result stays in the results table: the worker writes each item's expiry "
                    "(expiresAt, DynamoDB TTL, which deletes within about two days after it) from this. At least the "
                    "dead-letter queue's 14 days (its retention), so a redriven message still finds its result and "
                    "is not announced twice. Point-in-time recovery stays on for the table: within its 35-day window "
                    "a result lost to a bad write or a deletion can be restored (expired items are not brought back "
                    "by design).")
    model_calls_quota: int | None = Field(
        None, ge=1, le=1_000_000,
        description="Model calls the account's on-demand quota lets this pipeline have in flight at once. Bedrock "
        "states on-demand quotas per minute (Service Quotas: requests and tokens per minute, per model and "
        "Region): set it to requests per minute x the seconds one call takes / 60 (e.g. 200 requests per minute "
        "at 6 s a call: 20). The stack is refused when the worker's worst case, min(worker.reservedConcurrency, "
        "worker.maxConcurrency) x recordConcurrency calls in flight, exceeds it. Unset: not checked.")

    @model_validator(mode="after")
    def _coherent(self) -> EventProcessingSettings:
        worker = self.worker
        if not 5 <= worker.batch_size <= 10:
            raise ValueError(f"worker.batchSize {worker.batch_size} is outside 5..10: the worker reports partial "
                             "batch failures and processes a batch concurrently in about one model call's time")
        if self.record_concurrency > worker.batch_size:
            raise ValueError(f"recordConcurrency {self.record_concurrency} exceeds worker.batchSize "
                             f"{worker.batch_size}: a batch never has that many records")
        needed = self.model.request_timeout_seconds + WORKER_BOOKKEEPING_SECONDS
        if worker.timeout_seconds < needed:
            raise ValueError(f"worker.timeoutSeconds {worker.timeout_seconds} is below model.requestTimeoutSeconds "
                             f"{self.model.request_timeout_seconds} + {WORKER_BOOKKEEPING_SECONDS} s of bookkeeping "
                             f"= {needed}: one model request must fit in an invocation")
        invocations = min(worker.reserved_concurrency, worker.max_concurrency or worker.reserved_concurrency)
        in_flight = invocations * self.record_concurrency
        if self.model_calls_quota is not None and in_flight > self.model_calls_quota:
            raise ValueError(f"the worker may have {in_flight} model calls in flight (min(worker.reservedConcurrency "
                             f"{worker.reserved_concurrency}, worker.maxConcurrency {worker.max_concurrency}) x "
                             f"recordConcurrency {self.record_concurrency}), above modelCallsQuota "
                             f"{self.model_calls_quota}: lower worker.reservedConcurrency or recordConcurrency, or "
                             "raise the model's on-demand quota first")
        redelivery = worker.visibility_timeout_seconds * self.queue.max_receive_count
        if self.idempotency.ttl_seconds < redelivery:
            raise ValueError(f"idempotency.ttlSeconds {self.idempotency.ttl_seconds} is below the time SQS keeps "
                             f"redelivering a message ({worker.visibility_timeout_seconds} s visibility x "
                             f"{self.queue.max_receive_count} receives = {redelivery} s): a late copy would call "
                             "the model again")
        return self
