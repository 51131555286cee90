"""Mode B through the synchronous worker: Converse per record with backoff and jitter, Step Functions' Retry as the
second layer, a record that still fails sent to the failure lane without failing its batch, nothing twice."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from batch_inference import clients, sync_worker
from batch_inference.exceptions import ModelAccessError, ThrottlingException
from batch_inference.records import InputFrame
from components.pipelines.batch_inference_asl import MODEL_THROTTLING
from tests.handlers.batch_inference.conftest import MODEL_ID, Invoke, Storage
from tests.handlers.batch_inference.fakes import FakeConverse
from tests.handlers.batch_inference.helpers import RUN
from tests.handlers.conftest import FakeLambdaContext

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
    assert output["counts"] == {"records": 3, "succeeded": 3, "failed": 0, "duplicates": 0, "lane_sent": 0,
                                "inputTokens": 36, "outputTokens": 15}  # Converse's usage of each answer
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
    # Each record backs off on its own: the first waits below 2 s, then below 4 s; the second starts again below
    # 2 s. Full jitter draws in [0, 1), so a delay that reaches its ceiling means no jitter.
    assert len(_no_sleeping) == 3
    assert all(0 <= s < ceiling for s, ceiling in zip(_no_sleeping, [2, 4, 2], strict=True)), _no_sleeping


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
    assert output["counts"] == {"records": 3, "succeeded": 1, "failed": 2, "duplicates": 0, "lane_sent": 2,
                                "inputTokens": 12, "outputTokens": 5}
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


def test_a_record_id_another_batch_holds_is_processed_once_and_its_repeat_goes_to_the_failure_lane(
        invoke: Invoke, storage: Storage, converse: FakeConverse) -> None:
    converse.answers("ok", times=3)
    invoke("sync_worker", batch(IDS))
    converse.answers("ok")
    repeated = batch(["DOC0003", "DOC0004", "DOC0004"])  # DOC0003 again, in another batch; DOC0004 twice in this one
    output = invoke("sync_worker", repeated)
    assert output["counts"] == {"records": 3, "succeeded": 1, "failed": 0, "duplicates": 2, "lane_sent": 2,
                                "inputTokens": 12, "outputTokens": 5}
    converse.stubber.assert_no_pending_responses()  # DOC0004 asked once; DOC0003 not again (no answer was left)
    assert sorted(r["recordId"] for r in storage.results(RUN)) == ["DOC0001", "DOC0002", "DOC0003", "DOC0004"]
    lane = storage.failure_lane()
    assert sorted((m["recordId"], m["reason"]) for m in lane) == [("DOC0003", "duplicate_record_id"),
                                                                 ("DOC0004", "duplicate_record_id")]
    invoke("sync_worker", repeated)  # the Map retries the batch: no call (none is stubbed), nothing sent again
    assert storage.failure_lane() == []


# --- The invocation's time: no attempt starts that could not finish before the function's timeout ---------------


@dataclass
class RunningDown(FakeLambdaContext):
    """A Lambda context whose remaining time runs down as the worker works: each Converse attempt takes the whole
    request timeout (a timeout storm), each backoff sleep its delay."""

    seconds_left: float = 0.0
    attempts: int = 0
    slept: list[float] = field(default_factory=list)

    def get_remaining_time_in_millis(self) -> int:
        return int(self.seconds_left * 1000)

    def attempt(self, **_: Any) -> None:
        self.attempts += 1
        self.seconds_left -= sync_worker.settings.model_timeout_seconds

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.seconds_left -= seconds

    def start(self, seconds_left: float) -> RunningDown:
        """A new invocation with `seconds_left` before the function's timeout."""
        self.seconds_left, self.attempts, self.slept = seconds_left, 0, []
        return self


@pytest.fixture
def running_down(converse: FakeConverse, monkeypatch: pytest.MonkeyPatch) -> RunningDown:
    context = RunningDown(function_name="batchinf-sync_worker")
    client = clients.bedrock_runtime(sync_worker.settings.model_timeout_seconds, 1)
    client.meta.events.register("before-parameter-build.bedrock-runtime.Converse", context.attempt)
    monkeypatch.setattr(sync_worker.time, "sleep", context.sleep)
    return context


def test_a_timeout_storm_stops_before_the_function_times_out_and_keeps_every_record(
        storage: Storage, converse: FakeConverse, running_down: RunningDown) -> None:
    timeout = sync_worker.settings.model_timeout_seconds
    one_more = timeout + sync_worker.SETTLE_SECONDS  # an attempt run to its timeout, then the settlement
    converse.answers("kept")  # DOC0001
    converse.fails("ModelTimeoutException")  # DOC0002, whose retry would not fit; DOC0003 gets no time at all
    with pytest.raises(ThrottlingException, match=r"2 of 3 record\(s\) still throttled .*\(2 left without time") \
            as raised:
        sync_worker.handler(batch(IDS), running_down.start(one_more + timeout + 1))
    # Step Functions' Retry catches it (a Lambda timeout it would not), and the settlement still had its time.
    assert type(raised.value).__name__ in MODEL_THROTTLING
    assert running_down.attempts == 2 and running_down.slept == []
    assert running_down.seconds_left >= sync_worker.SETTLE_SECONDS
    assert storage.failure_lane() == []

    # The last retry: DOC0001's kept answer is not asked for again, DOC0002 is answered, DOC0003 still gets no time
    # and goes to the failure lane as a throttled record.
    converse.answers("answered on the retry")
    output = sync_worker.handler(batch(IDS, retry=sync_worker.settings.batch_retries), running_down.start(one_more + 1))
    assert running_down.attempts == 1
    assert output["counts"] == {"records": 3, "succeeded": 2, "failed": 1, "duplicates": 0, "lane_sent": 1,
                                "inputTokens": 24, "outputTokens": 10}
    lane = storage.failure_lane()
    assert [(m["recordId"], m["reason"]) for m in lane] == [("DOC0003", "throttled")]
    assert lane[0]["detail"].startswith("OutOfTime: unfinished")
    assert sorted((r["recordId"], r["output"]) for r in storage.results(RUN)) == [
        ("DOC0001", "kept"), ("DOC0002", "answered on the retry")]


def test_a_backoff_that_would_leave_no_time_for_its_attempt_is_not_slept(
        storage: Storage, converse: FakeConverse, running_down: RunningDown) -> None:
    timeout = sync_worker.settings.model_timeout_seconds
    converse.fails("ThrottlingException")  # with just one attempt's time: no sleep, no second attempt
    output = sync_worker.handler(batch(["DOC0001"], retry=sync_worker.settings.batch_retries),
                                 running_down.start(timeout + sync_worker.SETTLE_SECONDS))
    assert running_down.attempts == 1 and running_down.slept == []
    assert output["counts"]["failed"] == 1
    lane = storage.failure_lane()
    assert [(m["recordId"], m["reason"]) for m in lane] == [("DOC0001", "throttled")]
    assert lane[0]["detail"].startswith("OutOfTime: unfinished after ThrottlingException")
