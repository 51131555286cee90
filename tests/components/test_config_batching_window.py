"""The batching window's bounds (0..300 s, Lambda's maximum) and its share of the derived visibility timeout, at
values other than the 20 s the other tests use."""

from __future__ import annotations

import pytest

from components.config import WorkerSettings
from tests.components.test_config import error_for, kb


@pytest.mark.parametrize("window", [0, 1, 21, 299, 300])
def test_every_window_up_to_lambdas_maximum_is_accepted_and_counted_whole(window: int) -> None:
    worker = WorkerSettings(timeout_seconds=100, memory_mb=256, reserved_concurrency=2, batch_size=10,
                            batching_window_seconds=window)
    assert worker.batching_window_seconds == window
    assert worker.visibility_timeout_seconds == 6 * 100 + window


@pytest.mark.parametrize(("window", "bound"), [(301, "less than or equal to 300"), (-1, "greater than or equal to 0")])
def test_a_window_past_its_bounds_is_refused(window: int, bound: str) -> None:
    message = error_for(kb(worker={"batchingWindowSeconds": window}))
    assert f"ai-pipelines:knowledgeBaseSync.worker.batchingWindowSeconds = {window}: Input should be {bound}" \
        in message


def test_a_worker_built_without_a_window_waits_for_none() -> None:
    # The run-ended worker is built in code without a window; its queue's visibility is set to 6 x its timeout,
    # which is the derived visibility only while the window it takes from WorkerSettings is 0.
    from components.pipelines.batch_inference import RUN_ENDED_WORKER

    assert RUN_ENDED_WORKER.batching_window_seconds == 0
    assert RUN_ENDED_WORKER.visibility_timeout_seconds == 6 * RUN_ENDED_WORKER.timeout_seconds
