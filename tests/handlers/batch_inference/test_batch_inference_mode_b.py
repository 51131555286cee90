"""Mode B through the synchronous worker: Converse per record with backoff and jitter, Step Functions' Retry as the
second layer, a record that still fails sent to the failure lane without failing its batch, nothing twice."""

from __future__ import annotations

import json
from typing import Any

import pytest

from batch_inference import sync_worker
from batch_inference.exceptions import ModelAccessError, ThrottlingException
from batch_inference.records import InputFrame
from tests.handlers.batch_inference.conftest import MODEL_ID, Invoke, Storage
from tests.handlers.batch_inference.fakes import FakeConverse
from tests.handlers.batch_inference.helpers import RUN

FRAME = InputFrame.build(MODEL_ID, "Summarize: {{content}}", max_tokens=64, temperature=0.0)


@pytest.fixture(autouse=True)
def _no_sleeping(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    slept: list[float] = []
    monkeypatch.setattr(sync_worker.time, "sleep", slept.append)
    return slept


def batch(ids: list[str], retry: int = 0) -> dict[str, Any]:
    items = [json.loads(FRAME.line(record_id, f"text of {record_id}")) for record_id in ids]
    return {"Items": items, "BatchInput": {"runId": RUN}, "retryCount": retry}


IDS = ["DOC0001", "DOC0002", "DOC0003"]


def test_a_batch_is_answered_and_written_once(invoke: Invoke, storage: Storage, converse: FakeConverse) -> None:
    converse.answers("a summary", times=3)
    output = invoke("sync_worker", batch(IDS))
    assert output["counts"] == {"records": 3, "succeeded": 3, "failed": 0, "duplicates": 0, "lane_sent": 0}
    assert [(r["recordId"], r["output"]) for r in storage.results(RUN)] == [(r, "a summary") for r in IDS]

    # Replayed (a redrive of the Map Run): no model call, no write.
    invoke.calls.clear()
    again = invoke("sync_worker", batch(IDS))
    assert again["counts"]["succeeded"] == 3
    assert [op for op in invoke.operations("sync_worker") if op != "dynamodb:UpdateItem"] == ["s3:PutObject"]


def test_throttling_then_success_backs_off_per_record(invoke: Invoke, storage: Storage, converse: FakeConverse,
                                                      _no_sleeping: list[float]) -> None:
    converse.fails("ThrottlingException", times=2)
    converse.answers("after backoff")
    converse.fails("ModelTimeoutException")
    converse.answers("after a timeout", times=2)
    output = invoke("sync_worker", batch(IDS))
    assert output["counts"]["succeeded"] == 3 and storage.failure_lane() == []
    assert len(_no_sleeping) == 3 and all(0 <= s <= 20 for s in _no_sleeping)


def test_throttling_that_outlasts_the_attempts_is_retried_by_step_functions_then_sent_to_the_failure_lane(
        invoke: Invoke, storage: Storage, converse: FakeConverse) -> None:
    attempts = sync_worker.settings.max_attempts
    converse.answers("first answered")
    converse.fails("ThrottlingException", times=2 * attempts)
    with pytest.raises(ThrottlingException):
        invoke("sync_worker", batch(IDS, retry=0))
    # Step Functions' Retry runs the batch again: the answer kept in the ledger is not asked for again.
    final = sync_worker.settings.batch_retries
    converse.fails("ThrottlingException", times=2 * attempts)
    output = invoke("sync_worker", batch(IDS, retry=final))
    assert output["counts"] == {"records": 3, "succeeded": 1, "failed": 2, "duplicates": 0, "lane_sent": 2}
    assert sorted((m["recordId"], m["reason"]) for m in storage.failure_lane()) == [
        ("DOC0002", "throttled"), ("DOC0003", "throttled")]
    assert [r["recordId"] for r in storage.results(RUN)] == ["DOC0001"]


def test_a_record_the_model_rejects_goes_to_the_failure_lane_alone(invoke: Invoke, storage: Storage,
                                                                    converse: FakeConverse) -> None:
    converse.answers("ok")
    converse.fails("ValidationException")
    converse.answers("ok")
    output = invoke("sync_worker", batch(IDS))
    assert output["counts"]["succeeded"] == 2 and output["counts"]["failed"] == 1
    assert [(m["recordId"], m["reason"]) for m in storage.failure_lane()] == [("DOC0002", "model_rejected")]


def test_a_systemic_refusal_fails_the_batch_instead_of_flooding_the_failure_lane(
        invoke: Invoke, storage: Storage, converse: FakeConverse) -> None:
    converse.fails("AccessDeniedException", times=3)
    with pytest.raises(ModelAccessError, match="AccessDeniedException"):
        invoke("sync_worker", batch(IDS))
    assert storage.failure_lane() == [] and storage.results(RUN) == []


def test_a_record_another_batch_owns_is_skipped(invoke: Invoke, storage: Storage, converse: FakeConverse) -> None:
    converse.answers("ok", times=3)
    invoke("sync_worker", batch(IDS))
    converse.answers("ok")
    output = invoke("sync_worker", batch(["DOC0003", "DOC0004"]))  # DOC0003 again, in another batch
    assert output["counts"] == {"records": 2, "succeeded": 1, "failed": 0, "duplicates": 1, "lane_sent": 0}
    assert sorted(r["recordId"] for r in storage.results(RUN)) == ["DOC0001", "DOC0002", "DOC0003", "DOC0004"]
