"""The reliability table's faults, driven through the batch-inference handlers. Every test counts records end to
end: each input ends in exactly one of {results once, failure lane once}, none doubled (docs/reliability.md)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

import pytest
from botocore.exceptions import ClientError
from botocore.stub import ANY, Stubber

from batch_inference import clients, completion, jobs, sync_worker
from batch_inference.exceptions import PublicationFailedError, ThrottlingException
from batch_inference.ledger import Claim
from batch_inference.ledger import Ledger as RecordLedger
from tests.handlers.batch_inference.conftest import (
    COMPLETION_QUEUE_URL,
    JOBS_TABLE,
    LEDGER_TABLE,
    MODEL_ID,
    STATE_MACHINE_ARN,
    Invoke,
    Storage,
    deliver_event,
)
from tests.handlers.batch_inference.fakes import (
    FakeBedrock,
    FakeConverse,
    FakeStepFunctions,
    error_line,
    job_state_change,
    output_line,
    write_job_output,
)
from tests.handlers.batch_inference.helpers import (
    CORPUS,
    RUN,
    describe,
    job_of,
    records,
    shard,
    shard_ids,
    shard_list,
    small_jobs,
    submit,
    uris,
)
from tests.handlers.batch_inference.test_batch_inference_finalizer import _entry, write_map_results
from tests.handlers.batch_inference.test_batch_inference_mode_b import batch
from tests.handlers.conftest import Delivery, SqsEventSource
from tests.support import aws_calls, faults


class Ledger:
    """Where every input ended: result rows and failure-lane messages, per record id (or corpus line)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.lane: list[dict[str, Any]] = []

    def collect_lane(self) -> None:
        self.lane += self.storage.failure_lane()

    def assert_each_exactly_once(self, ids: list[str], bad_lines: tuple[int, ...] = ()) -> None:
        self.collect_lane()
        stored = Counter(r["recordId"] for r in self.storage.results(RUN))
        laned = Counter(m["recordId"] for m in self.lane if m["recordId"] is not None)
        lines = Counter(m["lineNumber"] for m in self.lane if m["recordId"] is None)
        assert {r: stored[r] + laned[r] for r in ids} == dict.fromkeys(ids, 1)
        assert set(stored) | set(laned) <= set(ids)
        assert dict(lines) == dict.fromkeys(bad_lines, 1)


@pytest.fixture
def ledger(storage: Storage) -> Ledger:
    return Ledger(storage)


def _finish(storage: Storage, descriptor: dict[str, Any], errors: set[str] = frozenset()) -> None:  # type: ignore[assignment]
    ids = shard_ids(storage, descriptor)
    name, _, arn = job_of(descriptor)
    rows = [error_line(r) if r in errors else output_line(r, f"summary of {r}") for r in ids][::-1]
    write_job_output(storage.s3, uris(descriptor)[1], arn.rsplit("/", 1)[-1], descriptor["key"], rows,
                     total=len(ids))
    deliver_event(storage, job_state_change(arn, name, "Completed", MODEL_ID))


def _redeliver(storage: Storage, delivery: Delivery) -> None:
    """The visibility timeout of an unacknowledged message runs out: SQS makes it visible again."""
    for record in delivery.event["Records"]:
        storage.sqs.change_message_visibility(QueueUrl=COMPLETION_QUEUE_URL, ReceiptHandle=record["receiptHandle"],
                                              VisibilityTimeout=0)


def _mode_a(invoke: Invoke, storage: Storage, bedrock: FakeBedrock, monkeypatch: pytest.MonkeyPatch,
            lines: list[str | bytes]) -> list[dict[str, Any]]:
    small_jobs(monkeypatch)
    descriptors = shard_list(storage, shard(invoke, storage, lines))
    for index, descriptor in enumerate(descriptors):
        submit(invoke, bedrock, descriptor, f"token-{index}")
    return descriptors


@faults.injects("poison message")
def test_reliability_poison_message(invoke: Invoke, storage: Storage, bedrock: FakeBedrock,
                                    states: FakeStepFunctions, completion_source: SqsEventSource,
                                    ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    # A corpus line that is not JSON, and a record the model rejects: each alone to the failure lane.
    lines: list[str | bytes] = [*records(4), b"\x00\xff poison", *records(4, start=4)]
    faults.injected("poison message", "a corpus line that is not JSON")
    (descriptor, second) = _mode_a(invoke, storage, bedrock, monkeypatch, lines)
    poison = shard_ids(storage, descriptor)[2]
    for index, (item, errors) in enumerate(((descriptor, {poison}), (second, set()))):
        _finish(storage, item, errors)
        describe(bedrock, item, "Completed")
        states.expects_success(f"token-{index}")
        completion_source.poll()
    ledger.assert_each_exactly_once([f"DOC{i:04d}" for i in range(8)], bad_lines=(5,))
    assert [m["recordId"] for m in ledger.lane if m["recordId"]] == [poison]


@faults.injects("duplicate delivery")
def test_reliability_duplicate_delivery(invoke: Invoke, storage: Storage, bedrock: FakeBedrock,
                                        states: FakeStepFunctions, completion_source: SqsEventSource,
                                        ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    (descriptor, _) = _mode_a(invoke, storage, bedrock, monkeypatch, records(8))
    ids = shard_ids(storage, descriptor)
    _finish(storage, descriptor, {ids[0]})
    _finish(storage, descriptor, {ids[0]})  # EventBridge delivers the same event twice
    faults.injected("duplicate delivery", "the job's completion event delivered twice")
    describe(bedrock, descriptor, "Completed")
    states.expects_success("token-0")
    describe(bedrock, descriptor, "Completed")
    states.token_gone()
    for _ in range(2):
        delivery = completion_source.poll()
        assert delivery is not None and delivery.failed_ids == []
    ledger.assert_each_exactly_once(ids)


@faults.injects("concurrent duplicate")
def test_reliability_concurrent_duplicate(invoke: Invoke, storage: Storage, bedrock: FakeBedrock,
                                          states: FakeStepFunctions, completion_source: SqsEventSource,
                                          ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    (descriptor, _) = _mode_a(invoke, storage, bedrock, monkeypatch, records(8))
    ids = shard_ids(storage, descriptor)
    _finish(storage, descriptor, {ids[1]})
    _finish(storage, descriptor, {ids[1]})
    # Two copies of the event in flight at once: the second finds the first one's lease on the shard.
    faults.injected("concurrent duplicate", "two copies of the completion event settle the shard at once")
    describe(bedrock, descriptor, "Completed")
    describe(bedrock, descriptor, "Completed")
    states.expects_success("token-0")
    name = job_of(descriptor)[0]
    table = jobs.JobsTable(clients.dynamodb(), JOBS_TABLE, 86400)
    entered, release = threading.Event(), threading.Event()
    real_settle = completion._settle

    def slow_settle(*args: Any) -> str:
        entered.set()
        assert release.wait(10)
        return real_settle(*args)

    monkeypatch.setattr(completion, "_settle", slow_settle)
    first = SqsEventSource(COMPLETION_QUEUE_URL, completion_source.handler, batch_size=1, visibility_timeout=600)
    results: list[Delivery | None] = []
    worker = threading.Thread(target=lambda: results.append(first.poll()))
    worker.start()
    assert entered.wait(10)
    with aws_calls.paused():  # the test's own SQS receive, while the first copy's recording is in force
        second = completion_source.poll()  # the duplicate, while the first still settles
    assert second is not None and second.failed_ids == second.message_ids  # ShardBusyError: retried later
    release.set()
    worker.join(10)
    assert results[0] is not None and results[0].failed_ids == []
    assert table.get(name).status == jobs.PROCESSED  # type: ignore[union-attr]
    ledger.assert_each_exactly_once(ids)


@faults.injects("crash after the side effect, before the acknowledgement")
def test_reliability_crash_after_the_side_effect_before_the_acknowledgement(
        invoke: Invoke, storage: Storage, bedrock: FakeBedrock, states: FakeStepFunctions,
        completion_source: SqsEventSource, ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    (descriptor, _) = _mode_a(invoke, storage, bedrock, monkeypatch, records(8))
    ids = shard_ids(storage, descriptor)
    _finish(storage, descriptor, {ids[3]})
    describe(bedrock, descriptor, "Completed")
    # Results written, failures sent, shard settled; then resuming the child fails (the invocation dies).
    states.stubber.add_client_error("send_task_success", service_error_code="InternalServerError",
                                    service_message="try again", http_status_code=500)
    faults.injected("crash after the side effect, before the acknowledgement",
                    "resuming the child fails after the shard was settled")
    delivery = completion_source.poll()
    assert delivery is not None and delivery.failed_ids == delivery.message_ids
    _redeliver(storage, delivery)
    describe(bedrock, descriptor, "Completed")
    states.expects_success("token-0")
    invoke.calls.clear()
    redelivered = completion_source.poll()
    assert redelivered is not None and redelivered.failed_ids == []
    assert [op for op in invoke.operations("completion") if op in ("s3:PutObject", "sqs:SendMessageBatch")] == []
    ledger.assert_each_exactly_once(ids)


@faults.injects("downstream throttling")
def test_reliability_downstream_throttling(invoke: Invoke, storage: Storage, converse: FakeConverse,
                                           ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sync_worker.time, "sleep", lambda seconds: None)
    ids = ["DOC0001", "DOC0002", "DOC0003", "DOC0004"]
    attempts = sync_worker.settings.max_attempts
    converse.answers("ok")
    converse.fails("ThrottlingException", times=attempts)  # DOC0002 outlasts its attempts
    faults.injected("downstream throttling", "Converse throttles past a record's attempts")
    converse.fails("ThrottlingException", times=2)
    converse.answers("ok after backoff", times=2)  # DOC0003 after two, DOC0004 at once
    with pytest.raises(ThrottlingException):
        invoke("sync_worker", batch(ids, retry=0))
    converse.fails("ThrottlingException")  # Step Functions' retry: only DOC0002 is asked again
    converse.answers("ok at last")
    output = invoke("sync_worker", batch(ids, retry=1))
    assert output["counts"]["succeeded"] == 4
    ledger.assert_each_exactly_once(ids)


@faults.injects("downstream outage")
def test_reliability_downstream_outage(invoke: Invoke, storage: Storage, bedrock: FakeBedrock,
                                       states: FakeStepFunctions, completion_source: SqsEventSource,
                                       ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    (first, second) = _mode_a(invoke, storage, bedrock, monkeypatch, records(8))
    name, _, arn = job_of(first)
    deliver_event(storage, job_state_change(arn, name, "Failed", MODEL_ID))
    describe(bedrock, first, "Failed", message="Internal error: the batch service was unavailable")
    faults.injected("downstream outage", "the batch job fails")
    states.expects_failure("token-0", "BedrockJobFailed")
    completion_source.poll()
    _finish(storage, second)
    describe(bedrock, second, "Completed")
    states.expects_success("token-1")
    completion_source.poll()
    ledger.assert_each_exactly_once([f"DOC{i:04d}" for i in range(8)])
    assert {m["reason"] for m in ledger.lane} == {"job_failed"}


@faults.injects("database down mid-batch")
def test_reliability_database_down_mid_batch(invoke: Invoke, storage: Storage, converse: FakeConverse,
                                             ledger: Ledger) -> None:
    ids = ["DOC0001", "DOC0002", "DOC0003"]
    client = clients.dynamodb()
    writes = {"count": 0}

    def outage(**kwargs: Any) -> None:
        writes["count"] += 1
        if writes["count"] == 6:  # three claims and two answers kept, then the table is unreachable
            faults.injected("database down mid-batch", "the ledger table is unreachable mid-batch")
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "down"}}, "UpdateItem")

    client.meta.events.register("before-call.dynamodb.UpdateItem", outage)
    converse.answers("ok", times=3)
    with pytest.raises(ClientError, match="InternalServerError"):
        invoke("sync_worker", batch(ids))
    client.meta.events.unregister("before-call.dynamodb.UpdateItem", outage)
    converse.answers("ok")  # the retried batch asks again only for the record whose answer was not kept
    assert invoke("sync_worker", batch(ids, retry=1))["counts"]["succeeded"] == 3
    ledger.assert_each_exactly_once(ids)


@faults.injects("partial PutEvents failure")
def test_reliability_partial_put_events_failure(invoke: Invoke, storage: Storage) -> None:
    sharding = {"runId": RUN, "mode": "empty", "corpus": {"bucket": "x", "key": CORPUS}, "counts": {}}
    request = {"status": "SUCCEEDED", "runId": RUN, "corpusKey": CORPUS, "sharding": sharding, "map": {}}
    with Stubber(clients.events()) as events:
        expected = {"Entries": [{"Source": "ai-pipelines.batch-inference", "DetailType": "BatchRunCompleted",
                                 "EventBusName": ANY, "Detail": ANY}]}
        events.add_response("put_events", {"FailedEntryCount": 1, "Entries": [
            {"ErrorCode": "InternalFailure", "ErrorMessage": "try again"}]}, expected)
        faults.injected("partial PutEvents failure", "EventBridge refuses the BatchRunCompleted entry")
        with pytest.raises(PublicationFailedError, match="InternalFailure"):
            invoke("finalizer", request)
        events.add_response("put_events", {"FailedEntryCount": 0, "Entries": [{"EventId": "event-1"}]}, expected)
        invoke("finalizer", request)  # Step Functions' Retry of PublicationFailedError
        invoke("finalizer", request)  # and a lost response retried once more: no third event
        events.assert_no_pending_responses()
    item = storage.job_item(f"run#{RUN}#SUCCEEDED")
    assert item is not None and item["eventId"] == "event-1"


@faults.injects("missed completion event")
def test_reliability_missed_completion_event(invoke: Invoke, storage: Storage, bedrock: FakeBedrock,
                                             states: FakeStepFunctions, completion_source: SqsEventSource,
                                             ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    (first, second) = _mode_a(invoke, storage, bedrock, monkeypatch, records(8))
    for descriptor in (first, second):
        _finish(storage, descriptor)
    storage.drain(COMPLETION_QUEUE_URL)  # EventBridge lost both events
    faults.injected("missed completion event", "both completion events lost")
    bedrock.lists([bedrock.summary(arn=job_of(d)[2], name=job_of(d)[0], status="Completed", input_uri=uris(d)[0],
                                   output_uri=uris(d)[1]) for d in (first, second)])
    states.lists_ended_runs(STATE_MACHINE_ARN)
    assert invoke("reconciler", {"source": "schedule"})["requeued"] == 2
    for index, descriptor in enumerate((first, second)):
        describe(bedrock, descriptor, "Completed")
        states.expects_success(f"token-{index}")
        completion_source.poll()
    ledger.assert_each_exactly_once([f"DOC{i:04d}" for i in range(8)])


@faults.injects("expired visibility during a slow batch")
def test_reliability_expired_visibility_during_a_slow_batch(
        invoke: Invoke, storage: Storage, bedrock: FakeBedrock, states: FakeStepFunctions,
        completion_source: SqsEventSource, ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    (descriptor, _) = _mode_a(invoke, storage, bedrock, monkeypatch, records(8))
    ids = shard_ids(storage, descriptor)
    _finish(storage, descriptor)
    table = jobs.JobsTable(clients.dynamodb(), JOBS_TABLE, 86400)
    name = job_of(descriptor)[0]
    assert table.lease(name, "slow-copy", 900)  # a slow invocation is settling the shard...
    faults.injected("expired visibility during a slow batch",
                    "the message is delivered anew while a slow invocation holds the shard")
    describe(bedrock, descriptor, "Completed")
    delivery = completion_source.poll()  # ...when its message becomes visible again and is delivered anew
    assert delivery is not None and delivery.failed_ids == delivery.message_ids
    assert storage.results(RUN) == []  # the copy settled nothing
    assert table.release(name, "slow-copy")  # the slow invocation dies without settling; its lease is given up
    _redeliver(storage, delivery)
    describe(bedrock, descriptor, "Completed")
    states.expects_success("token-0")
    assert completion_source.poll() is not None
    ledger.assert_each_exactly_once(ids)
    assert json.loads(json.dumps(table.get(name).counts))["succeeded"] == 4  # type: ignore[union-attr]


# --- A child that gives up, the same id twice, runs that reuse ids -------------------------------------------------


def _finalize_with_a_failed_child(invoke: Invoke, storage: Storage, sharding: dict[str, Any],
                                  descriptor: dict[str, Any]) -> dict[str, Any]:
    """The Map ends with this shard's child failed for good (its wait ran out); the finalizer settles it."""
    map_output = write_map_results(storage, succeeded=[], failed=[_entry(
        "FAILED", 0, {"runId": RUN, "shard": descriptor}, error=("States.Timeout", "the job wait ran out"))])
    result: dict[str, Any] = invoke("finalizer", {"status": "SUCCEEDED", "runId": RUN, "corpusKey": CORPUS,
                                                  "sharding": sharding, "map": map_output})
    return result


def _one_submitted_shard(invoke: Invoke, storage: Storage, bedrock: FakeBedrock, monkeypatch: pytest.MonkeyPatch
                         ) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """A corpus sharded, its first shard's job submitted: (the sharder's output, the shard, its record ids)."""
    small_jobs(monkeypatch)
    sharding = shard(invoke, storage, records(8))
    descriptor = shard_list(storage, sharding)[0]
    submit(invoke, bedrock, descriptor, "token-0")
    return sharding, descriptor, shard_ids(storage, descriptor)


def test_a_job_that_completes_after_its_child_gave_up_writes_nothing_the_lane_holds(
        invoke: Invoke, storage: Storage, bedrock: FakeBedrock, states: FakeStepFunctions,
        completion_source: SqsEventSource, ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    sharding, descriptor, ids = _one_submitted_shard(invoke, storage, bedrock, monkeypatch)
    _, _, arn = job_of(descriptor)
    bedrock.stops(arn)  # the job still runs when its child gives up: stopped, its output would be nobody's
    result = _finalize_with_a_failed_child(invoke, storage, sharding, descriptor)
    bedrock.stubber.assert_no_pending_responses()
    assert result["counts"]["failed"] == len(ids) and result["counts"]["succeeded"] == 0
    assert storage.job_item(job_of(descriptor)[0])["status"] == jobs.FAILED

    _finish(storage, descriptor)  # the job had finished before the stop took: its completion arrives anyway
    describe(bedrock, descriptor, "Completed")
    states.token_gone("send_task_failure")
    delivery = completion_source.poll()
    assert delivery is not None and delivery.failed_ids == []
    ledger.assert_each_exactly_once(ids)
    assert storage.results(RUN) == []


def test_a_child_that_gave_up_after_its_job_was_settled_keeps_the_successes(
        invoke: Invoke, storage: Storage, bedrock: FakeBedrock, states: FakeStepFunctions,
        completion_source: SqsEventSource, ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    sharding, descriptor, ids = _one_submitted_shard(invoke, storage, bedrock, monkeypatch)
    _finish(storage, descriptor, {ids[0]})
    describe(bedrock, descriptor, "Completed")
    states.token_gone()  # the child's wait had just run out
    completion_source.poll()
    result = _finalize_with_a_failed_child(invoke, storage, sharding, descriptor)
    assert (result["counts"]["succeeded"], result["counts"]["failed"]) == (len(ids) - 1, 1)
    ledger.assert_each_exactly_once(ids)
    assert [m["recordId"] for m in ledger.lane] == [ids[0]]


def test_an_id_twice_in_a_shard_is_processed_once_and_its_repeat_sent_to_the_failure_lane(
        invoke: Invoke, storage: Storage, bedrock: FakeBedrock, states: FakeStepFunctions,
        completion_source: SqsEventSource, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = [*records(4), json.dumps({"id": "DOC0001", "text": "another ticket under a reused id"})]
    (descriptor,) = _mode_a(invoke, storage, bedrock, monkeypatch, lines)
    assert shard_ids(storage, descriptor).count("DOC0001") == 2
    for _ in range(2):  # a redelivered completion changes nothing
        _finish(storage, descriptor)
        describe(bedrock, descriptor, "Completed")
        states.expects_success("token-0")
        completion_source.poll()
    results = Counter(r["recordId"] for r in storage.results(RUN))
    lane = storage.failure_lane()
    assert results == Counter({f"DOC{i:04d}": 1 for i in range(4)})
    assert [(m["recordId"], m["reason"]) for m in lane] == [("DOC0001", "duplicate_record_id")]
    assert sum(results.values()) + len(lane) == len(lines)  # every corpus line ends somewhere, once


def test_a_second_run_that_reuses_the_ids_processes_them_again(
        invoke: Invoke, storage: Storage, converse: FakeConverse) -> None:
    ids = ["1", "2"]
    converse.answers("first run", times=2)
    invoke("sync_worker", batch(ids))
    second = {**batch(ids), "BatchInput": {"runId": "run-2026-06-28"}}
    converse.answers("second run", times=2)
    output = invoke("sync_worker", second)
    assert output["counts"] == {"records": 2, "succeeded": 2, "failed": 0, "duplicates": 0, "lane_sent": 0,
                                "inputTokens": 24, "outputTokens": 10}
    assert sorted(r["output"] for r in storage.results("run-2026-06-28")) == ["second run", "second run"]
    assert sorted(r["output"] for r in storage.results(RUN)) == ["first run", "first run"]
    assert storage.failure_lane() == []


def test_a_record_id_that_spells_a_marker_is_still_a_record(
        invoke: Invoke, storage: Storage, bedrock: FakeBedrock, states: FakeStepFunctions,
        completion_source: SqsEventSource, monkeypatch: pytest.MonkeyPatch) -> None:
    # Line 1 is bad (its failure-lane marker is "line#1"); line 2's record is called "line#1" too.
    lines: list[str | bytes] = ["not json", json.dumps({"id": "line#1", "text": "a record named like a marker"}),
                                *records(4)]
    (descriptor,) = _mode_a(invoke, storage, bedrock, monkeypatch, lines)
    _finish(storage, descriptor)
    describe(bedrock, descriptor, "Completed")
    states.expects_success("token-0")
    completion_source.poll()
    assert sorted(r["recordId"] for r in storage.results(RUN)) == sorted(["line#1", *(f"DOC{i:04d}" for i in
                                                                                       range(4))])
    assert [(m["lineNumber"], m["reason"]) for m in storage.failure_lane()] == [(1, "not_json")]


def test_a_switched_shards_batch_names_its_shard_to_whoever_else_claims_its_records(storage: Storage) -> None:
    """The finalizer tells a failed switched shard's own batches from the same ids held elsewhere by this."""
    ledger = RecordLedger(clients.dynamodb(), LEDGER_TABLE, 86400, RUN)
    batch_owner, shard_owner = f"{RUN}/b-key", f"{RUN}/00001"
    assert ledger.claim("DOC0001", batch_owner, "00001").mine
    assert ledger.claim("DOC0001", batch_owner, "00002").mine  # the same batch again: its shard stays the first
    assert ledger.claim("DOC0002", f"{RUN}/b-other").mine  # a batch of the corpus's own Map: no shard
    assert ledger.claim("DOC0001", shard_owner) == Claim("DOC0001", mine=False, holder=batch_owner, shard="00001")
    assert ledger.claim("DOC0002", shard_owner) == Claim("DOC0002", mine=False, holder=f"{RUN}/b-other")
    assert storage.ledger()["DOC0001"]["shardId"] == "00001" and "shardId" not in storage.ledger()["DOC0002"]
