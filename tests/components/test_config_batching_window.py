"""The batching window's bounds (0..300 s, Lambda's maximum) and its share of the derived visibility timeout, at
values other than the 20 s the other tests use."""

from __future__ import annotations

import pytest

from components.config import WorkerSettings
from tests.components.test_config import error_for, kb


@pytest.mark.parametrize("window", [0, 1, 21, 299, 300])
def test_every_window_up_to_lambdas_maximum_is_accepted_and_counted_whole(window: int) -> None:
    worker = WorkerSettings(timeout_seconds=100, batching_window_seconds=window)
    assert worker.batching_window_seconds == window
    assert worker.visibility_timeout_seconds == 6 * 100 + window


@pytest.mark.parametrize(("window", "bound"), [(301, "less than or equal to 300"), (-1, "greater than or equal to 0")])
def test_a_window_past_its_bounds_is_refused(window: int, bound: str) -> None:
    message = error_for(kb(worker={"batchingWindowSeconds": window}))
    assert f"ai-pipelines:knowledgeBaseSync.worker.batchingWindowSeconds = {window}: Input should be {bound}" \
        in message
