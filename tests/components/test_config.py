"""Every config rule gives the promised message: stack file, key, bad value and rule."""

from __future__ import annotations

import pytest

from components.config import ConfigError, StackConfig, WorkerSettings, parse_stack_config

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
    assert worker.visibility_timeout_seconds == 6 * 60 + 300
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
    assert WorkerSettings(timeout_seconds=100, batching_window_seconds=20).visibility_timeout_seconds == 620


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
