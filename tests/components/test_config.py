"""Every config rule gives the promised message: stack file, key, bad value and rule."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from botocore.exceptions import ClientError

from batch_inference import backoff
from components.config import ConfigError, StackConfig, WorkerSettings, parse_stack_config
from components.config.batch_inference import (
    SYNC_BATCH_MAX_INPUT_BYTES,
    SYNC_WORKER_BUDGET_SECONDS,
    SYNC_WORKER_TIMEOUT_SECONDS,
    backoff_pauses_seconds,
    worst_record_seconds,
)
from components.pipelines.batch_inference import LONG_TASK_SECONDS

KB = {"knowledgeBaseId": "KB12345678", "dataSourceId": "DS12345678"}


def error_for(raw: dict) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_stack_config({"owner": "data", **raw}, stack="prod")
    message = str(caught.value)
    assert message.startswith("Pulumi.prod.yaml: invalid configuration")
    return message


def kb(**overrides: object) -> dict:
    return {"knowledgeBaseSync": {**KB, **overrides}}


def test_defaults_are_valid_and_safe() -> None:
    config = parse_stack_config({"owner": "data", "knowledgeBaseSync": KB}, stack="dev")
    worker = config.knowledge_base_sync.worker  # type: ignore[union-attr]
    assert worker.visibility_timeout_seconds == 6 * 60 + 20  # the 20 s batching window
    assert config.knowledge_base_sync.queue.max_receive_count == 5  # type: ignore[union-attr]
    assert config.enabled_pipelines == ["knowledgeBaseSync"]


def test_structured_values_arrive_as_json_strings_like_the_runtime_holds_them() -> None:
    config = parse_stack_config({"owner": "data", "knowledgeBaseSync": '{"knowledgeBaseId": "KB12345678", '
                                 '"dataSourceId": "DS12345678"}', "protectData": "true"}, stack="dev")
    assert config.protect_data is True and config.knowledge_base_sync is not None


@pytest.mark.parametrize(("raw", "expected"), [
    ({"knowledgeBaseSyncs": KB}, "ai-pipelines:knowledgeBaseSyncs: unknown key; did you mean 'knowledgeBaseSync'?"),
    (kb(queue={"maxRecieveCount": 5}),
     "ai-pipelines:knowledgeBaseSync.queue.maxRecieveCount: unknown key; did you mean 'maxReceiveCount'?"),
    (kb(worker={"timeout": 30}), "ai-pipelines:knowledgeBaseSync.worker.timeout: unknown key; did you mean "
                                 "'timeoutSeconds'?"),
])
def test_unknown_key_names_the_closest_valid_one(raw: dict, expected: str) -> None:
    assert expected in error_for(raw)


def test_visibility_timeout_is_derived_not_asked_for() -> None:
    message = error_for(kb(queue={"visibilityTimeoutSeconds": 30}))
    assert "visibilityTimeoutSeconds: unknown key" in message
    assert WorkerSettings(timeout_seconds=100, memory_mb=256, reserved_concurrency=2, batch_size=10,
                          batching_window_seconds=20).visibility_timeout_seconds == 620


def test_batch_size_above_ten_needs_a_batching_window() -> None:
    message = error_for(kb(worker={"batchSize": 11, "batchingWindowSeconds": 0}))
    assert "ai-pipelines:knowledgeBaseSync.worker: batchSize 11 is above 10, which needs batchingWindowSeconds >= 1" \
        in message


def test_batch_size_is_bounded_by_standard_queue_limit() -> None:
    message = error_for(kb(worker={"batchSize": 10_001, "batchingWindowSeconds": 5}))
    assert "ai-pipelines:knowledgeBaseSync.worker.batchSize = 10001: Input should be less than or equal to 10000" \
        in message


@pytest.mark.parametrize("delay", [-1, 901])
def test_delay_seconds_is_bounded(delay: int) -> None:
    message = error_for(kb(queue={"delaySeconds": delay}))
    assert f"ai-pipelines:knowledgeBaseSync.queue.delaySeconds = {delay}" in message


def test_max_receive_count_is_at_least_one() -> None:
    assert "queue.maxReceiveCount = 0: Input should be greater than or equal to 1" in error_for(
        kb(queue={"maxReceiveCount": 0}))


@pytest.mark.parametrize("concurrency", [1, 1001])
def test_event_source_max_concurrency_range(concurrency: int) -> None:
    assert f"worker.maxConcurrency = {concurrency}" in error_for(
        kb(worker={"maxConcurrency": concurrency, "reservedConcurrency": 1000}))


def test_max_concurrency_may_not_exceed_reserved_concurrency() -> None:
    message = error_for(kb(worker={"maxConcurrency": 5, "reservedConcurrency": 3, "batchSize": 10}))
    assert "maxConcurrency 5 exceeds reservedConcurrency 3" in message


def test_dlq_must_outlive_its_source() -> None:
    assert "queue.retentionSeconds = 1209600" in error_for(kb(queue={"retentionSeconds": 1_209_600}))


def test_ids_schedules_and_retention_are_validated() -> None:
    message = error_for({"logRetentionDays": 31, **kb(knowledgeBaseId="kb", scheduleExpression="every hour")})
    assert "ai-pipelines:logRetentionDays = 31: must be one of CloudWatch Logs' retention values" in message
    assert 'knowledgeBaseSync.knowledgeBaseId = "kb"' in message
    assert 'knowledgeBaseSync.scheduleExpression = "every hour"' in message


def test_every_problem_is_reported_at_once() -> None:
    assert "(3 problem(s))" in error_for({"logRetentionDays": 2, **kb(trigger="sometimes", documentPrefix="/x")})


def test_owner_is_required() -> None:
    with pytest.raises(ConfigError, match="ai-pipelines:owner"):
        parse_stack_config({}, stack="dev")


def test_every_field_is_documented() -> None:
    def walk(model: type) -> list[str]:
        missing = []
        for name, field in model.model_fields.items():
            if not field.description:
                missing.append(f"{model.__name__}.{name}")
            for arg in getattr(field.annotation, "__args__", (field.annotation,)):
                if isinstance(arg, type) and hasattr(arg, "model_fields"):
                    missing += walk(arg)
        return missing

    assert walk(StackConfig) == []


BATCH = {"model": {"modelId": "anthropic.claude-3-haiku-20240307-v1:0", "task": "summarize"}}
ROOT = Path(__file__).resolve().parents[2]


def batch_inference(**overrides: object) -> dict:
    return {"batchInference": {**BATCH, **overrides}}


def test_the_sync_time_budget_counts_every_attempt_and_its_backoff() -> None:
    # A timeout storm: 5 rounds of 4 records, each 5 attempts of 30 s and 2 + 4 + 8 + 16 s of backoff, is 900 s.
    message = error_for(batch_inference(itemsPerBatch=20, recordConcurrency=4, maxAttempts=5))
    assert ("ai-pipelines:batchInference: itemsPerBatch 20 / recordConcurrency 4 = 5 round(s) of up to (maxAttempts "
            "5 x model.requestTimeoutSeconds 30 s + 30 s of backoff) = 900 s exceeds the worker's 840 s (900 s "
            "timeout less 60 s to settle): lower itemsPerBatch, maxAttempts or model.requestTimeoutSeconds, or raise "
            "recordConcurrency") in message


def test_the_sync_time_budget_matches_the_worker_s_timeout_and_backoff() -> None:
    assert SYNC_WORKER_TIMEOUT_SECONDS == LONG_TASK_SECONDS
    slept: list[float] = []

    def throttled() -> None:
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow down"}}, "Converse")

    with pytest.raises(ClientError):  # every delay drawn at its ceiling: the worst case the budget assumes
        backoff.with_backoff(throttled, classify=backoff.classify, max_attempts=8, sleep=slept.append,
                             rand=lambda: 1.0)
    assert sum(slept) == backoff_pauses_seconds(8) == 2 + 4 + 8 + 16 + 20 + 20 + 20
    assert worst_record_seconds(8, 30) == 8 * 30 + 90


@pytest.mark.parametrize("mode", ["sync", "auto"])
def test_a_synchronous_batch_must_fit_in_a_step_functions_payload(mode: str) -> None:
    message = error_for(batch_inference(mode=mode, maxRecordBytes=300_000))
    assert (f"ai-pipelines:batchInference: maxRecordBytes 300000 exceeds the 261120 bytes a synchronous batch may "
            f"hold in mode {mode} (Step Functions' 262144-byte payload less 1024 for the batch's envelope): lower "
            "maxRecordBytes to at most 261120, or use mode batch") in message
    assert "maxRecordBytes 261121 exceeds" in error_for(batch_inference(mode=mode, maxRecordBytes=261_121))
    config = parse_stack_config({"owner": "data", **batch_inference(mode=mode, itemsPerBatch=20,
                                                                    maxRecordBytes=261_120)}, stack="prod")
    assert config.batch_inference is not None and config.batch_inference.max_record_bytes == 261_120


def test_batch_mode_keeps_records_up_to_a_mebibyte() -> None:
    config = parse_stack_config({"owner": "data", **batch_inference(mode="batch", maxRecordBytes=1 << 20)},
                                stack="prod")
    assert config.batch_inference is not None and config.batch_inference.max_record_bytes == 1 << 20


@pytest.mark.parametrize("stack", [None, "dev", "prod"])
def test_the_defaults_and_the_shipped_stacks_fit_the_sync_worker(stack: str | None) -> None:
    if stack is None:
        raw = {"owner": "data", **batch_inference()}
    else:
        values = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
        raw = {key.removeprefix("ai-pipelines:"): value for key, value in values.items()
               if key.startswith("ai-pipelines:")}
    settings = parse_stack_config(raw, stack=stack or "dev").batch_inference
    assert settings is not None
    rounds = -(-settings.items_per_batch // settings.record_concurrency)
    assert rounds * worst_record_seconds(settings.max_attempts, settings.model.request_timeout_seconds) \
        <= SYNC_WORKER_BUDGET_SECONDS
    assert settings.mode == "batch" or settings.max_record_bytes <= SYNC_BATCH_MAX_INPUT_BYTES


@pytest.mark.parametrize(("retention", "timeout_hours", "expected"), [
    (18, 24, "ledgerRetentionDays 18 must be longer than a run may last (the reconciler's look-back, 96 h = 2 x "
             "(jobTimeoutHours 24 + 24)) plus the 14 days in which it can be redriven, 432 h in all"),
    (30, 168, "ledgerRetentionDays 30 must be longer than a run may last (the reconciler's look-back, 384 h = 2 x "
              "(jobTimeoutHours 168 + 24)) plus the 14 days in which it can be redriven, 720 h in all"),
])
def test_the_ledger_outlives_a_run_and_its_redrive_period(retention: int, timeout_hours: int, expected: str) -> None:
    assert expected in error_for(batch_inference(ledgerRetentionDays=retention, jobTimeoutHours=timeout_hours))
    config = parse_stack_config({"owner": "data", **batch_inference(ledgerRetentionDays=31, jobTimeoutHours=168)},
                                stack="prod")
    assert config.batch_inference is not None and config.batch_inference.reconcile_lookback_hours == 384


@pytest.mark.parametrize(("value", "days"), [("forever", None), (1, 1), ("1", 1), (90, 90), ("90", 90), (36500, 36500)])
def test_a_retention_is_days_or_forever(value: object, days: int | None) -> None:
    from components.config.sections import retention_days

    config = parse_stack_config({"owner": "data", **kb(bucket={"objectRetentionDays": value})}, stack="dev")
    assert retention_days(config.knowledge_base_sync.bucket.object_retention_days) == days  # type: ignore[union-attr]


@pytest.mark.parametrize("value", [0, -1, 36501, "never", "", True, 1.5])
def test_a_retention_that_is_neither_is_refused_naming_the_key(value: object) -> None:
    message = error_for(kb(bucket={"objectRetentionDays": value}))
    assert 'ai-pipelines:knowledgeBaseSync.bucket.objectRetentionDays = ' in message
    assert 'must be a number of days from 1 to 36500, or "forever"' in message


def test_every_store_has_a_retention_with_a_safe_default() -> None:
    config = parse_stack_config({"owner": "data", **kb(), **batch_inference()}, stack="dev")
    bucket = config.knowledge_base_sync.bucket  # type: ignore[union-attr]
    assert (bucket.noncurrent_version_days, bucket.object_retention_days) == (30, "forever")
    batch = config.batch_inference
    assert batch is not None
    assert (batch.corpus_retention_days, batch.result_retention_days, batch.intermediate_retention_days,
            batch.noncurrent_version_days, batch.ledger_retention_days) == (90, 365, 31, 30, 90)
    # 31 days outlast the longest run (jobTimeoutHours 168) plus its 14-day redrive window.
    assert parse_stack_config({"owner": "data", **batch_inference(jobTimeoutHours=168, ledgerRetentionDays=31)},
                              stack="dev").batch_inference is not None
