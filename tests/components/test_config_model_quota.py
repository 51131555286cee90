"""Event processing's worst case of model calls in flight against the model's configured on-demand quota."""

from __future__ import annotations

from components.config import parse_stack_config
from tests.components.test_config import error_for

EVENTS = {"intake": {"sources": ["com.example.documents"], "detailTypes": ["DocumentSubmitted"]},
          "model": {"modelId": "anthropic.claude-3-haiku-20240307-v1:0", "task": "summarize"}}
WORKER = {"timeoutSeconds": 120, "memoryMb": 512, "reservedConcurrency": 20, "batchSize": 10}


def event_processing(**overrides: object) -> dict:
    return {"eventProcessing": {**EVENTS, **overrides}}


def accepted(raw: dict) -> bool:
    return parse_stack_config({"owner": "data", **raw}, stack="prod").event_processing is not None


def test_the_defaults_put_200_calls_in_flight_which_a_quota_of_199_refuses_by_name() -> None:
    message = error_for(event_processing(modelCallsQuota=199))
    assert ("the worker may have 200 model calls in flight (min(worker.reservedConcurrency 20, worker.maxConcurrency "
            "20) x recordConcurrency 10), above modelCallsQuota 199") in message
    assert "eventProcessing" in message


def test_a_quota_at_the_worst_case_or_unset_passes() -> None:
    assert accepted(event_processing(modelCallsQuota=200))
    assert accepted(event_processing())


def test_the_event_source_s_maximum_concurrency_bounds_the_worst_case() -> None:
    assert accepted(event_processing(modelCallsQuota=40, worker={**WORKER, "maxConcurrency": 4}))
    assert "may have 50 model calls in flight" in error_for(
        event_processing(modelCallsQuota=40, worker={**WORKER, "maxConcurrency": 5}))
    assert "may have 60 model calls in flight" in error_for(
        event_processing(modelCallsQuota=40, worker={**WORKER, "maxConcurrency": 20}, recordConcurrency=3))
