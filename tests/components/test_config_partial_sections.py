"""A section given in part keeps every key it leaves out at the default the config reference documents for it: the
pipeline's own default of that section, not the section class's."""

from __future__ import annotations

from components.config import parse_stack_config
from tests.components.test_config import KB, error_for
from tests.components.test_config_validators import DATABASE, batch_inference


def test_a_worker_given_its_memory_alone_keeps_the_pipelines_batching() -> None:
    for memory in ({"memoryMb": 512}, {"memory_mb": 512}):  # keys by their camelCase name or by the field's
        config = parse_stack_config({"owner": "data", "knowledgeBaseSync": {**KB, "worker": memory}}, stack="dev")
        assert config.knowledge_base_sync is not None
        worker = config.knowledge_base_sync.worker
        assert (worker.timeout_seconds, worker.memory_mb, worker.reserved_concurrency, worker.batch_size,
                worker.batching_window_seconds, worker.max_concurrency) == (60, 512, 2, 1000, 20, 2), memory


def test_a_key_given_beats_the_pipelines_default() -> None:
    for size in ({"batchSize": 500}, {"batch_size": 500}):
        config = parse_stack_config({"owner": "data", "knowledgeBaseSync": {**KB, "worker": size}}, stack="dev")
        assert config.knowledge_base_sync is not None
        assert (config.knowledge_base_sync.worker.batch_size,
                config.knowledge_base_sync.worker.batching_window_seconds) == (500, 20), size


def test_a_loader_given_its_batch_size_alone_keeps_its_timeout_and_window() -> None:
    # With the class's 60 s timeout this was refused: below 2 x (5 s connect + 30 s statement).
    config = parse_stack_config({"owner": "data", "fileIngestion": {"database": DATABASE, "worker": {"batchSize": 50}}},
                                stack="dev")
    assert config.file_ingestion is not None
    worker = config.file_ingestion.worker
    assert (worker.timeout_seconds, worker.batch_size, worker.batching_window_seconds) == (120, 50, 55)


def test_the_completion_handler_given_its_memory_alone_keeps_one_output_per_invocation() -> None:
    config = parse_stack_config({"owner": "data", **batch_inference(completion={"memoryMb": 4096})}, stack="dev")
    assert config.batch_inference is not None
    completion = config.batch_inference.completion
    assert (completion.memory_mb, completion.batch_size, completion.timeout_seconds) == (4096, 1, 900)
    assert "completion.batchSize 10 must be 1" in error_for(batch_inference(completion={"batchSize": 10}))


def test_the_failure_lane_given_its_receives_alone_keeps_its_week() -> None:
    config = parse_stack_config({"owner": "data", **batch_inference(failureLane={"maxReceiveCount": 3})},
                                stack="dev")
    assert config.batch_inference is not None
    lane = config.batch_inference.failure_lane
    assert (lane.max_receive_count, lane.retention_seconds) == (3, 7 * 24 * 3600)
