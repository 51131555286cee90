"""The finalizer: the Map's ResultWriter files (as Step Functions writes them) added up, failed children's records
settled, the run's manifest written and BatchRunCompleted published once."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

from batch_inference import clients, finalizer, jobs, sync_worker
from batch_inference.exceptions import ThrottlingException
from tests.handlers.batch_inference.conftest import (
    INPUT_BUCKET,
    JOB_PREFIX,
    JOBS_TABLE,
    OUTPUT_BUCKET,
    RESULT_BUS,
    Invoke,
    Storage,
)
from tests.handlers.batch_inference.fakes import FakeConverse
from tests.handlers.batch_inference.helpers import CORPUS, RUN, records, shard, shard_ids, shard_list, small_jobs
from tests.handlers.batch_inference.test_batch_inference_mode_b import batch

MAP_RUN = "arn:aws:states:us-east-1:123456789012:mapRun:ai-pipelines-dev-batchinf-runs/SubmitShards:7d4ffabb"


def _entry(status: str, index: int, payload: dict[str, Any], output: dict[str, Any] | None = None,
           error: tuple[str, str] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "ExecutionArn": f"{MAP_RUN.replace(':mapRun:', ':execution:')}:{index}", "Input": json.dumps(payload),
        "InputDetails": {"Included": True}, "Name": f"child-{index}", "RedriveCount": 0,
        "RedriveStatus": "NOT_REDRIVABLE", "StartDate": "2026-06-27T03:00:00.000Z",
        "StateMachineArn": MAP_RUN, "Status": status, "StopDate": "2026-06-27T05:00:00.000Z"}
    if output is not None:
        entry |= {"Output": json.dumps(output), "OutputDetails": {"Included": True}}
    if error is not None:
        entry |= {"Error": error[0], "Cause": error[1]}
    return entry


def write_map_results(storage: Storage, succeeded: list[dict[str, Any]], failed: list[dict[str, Any]],
                      run: str = "7d4ffabb") -> dict[str, Any]:
    """What ResultWriter leaves under its prefix: manifest.json and one file per status."""
    prefix = f"runs/map-results/{run}"
    files: dict[str, list[dict[str, Any]]] = {"SUCCEEDED": [], "FAILED": [], "PENDING": []}
    for status, entries in (("SUCCEEDED", succeeded), ("FAILED", failed)):
        if entries:
            key = f"{prefix}/{status}_0.json"
            body = json.dumps(entries).encode()
            storage.s3.put_object(Bucket=OUTPUT_BUCKET, Key=key, Body=body)
            files[status].append({"Key": key, "Size": len(body)})
    storage.s3.put_object(Bucket=OUTPUT_BUCKET, Key=f"{prefix}/manifest.json", Body=json.dumps(
        {"DestinationBucket": OUTPUT_BUCKET, "MapRunArn": MAP_RUN, "ResultFiles": files}).encode())
    return {"MapRunArn": MAP_RUN, "ResultWriterDetails": {"Bucket": OUTPUT_BUCKET, "Key": f"{prefix}/manifest.json"}}


def counts(records: int, succeeded: int, failed: int, tokens: tuple[int, int] = (0, 0)) -> dict[str, int]:
    return {"records": records, "succeeded": succeeded, "failed": failed, "duplicates": 0, "lane_sent": failed,
            "inputTokens": tokens[0], "outputTokens": tokens[1]}


def test_a_run_completes_with_its_childrens_counts_and_a_failed_shards_records_in_the_failure_lane(
        invoke: Invoke, storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    small_jobs(monkeypatch)
    sharding = shard(invoke, storage, [*records(12), "not json"])
    first, second, third = shard_list(storage, sharding)
    storage.failure_lane()  # the sharder's rejected line
    map_output = write_map_results(storage, succeeded=[
        _entry("SUCCEEDED", 0, {"runId": RUN, "shard": first},
               {"shardId": "00000", "counts": counts(4, 3, 1, (1_200_000, 300_000))}),
        _entry("SUCCEEDED", 1, {"runId": RUN, "shard": second},
               {"shardId": "00001", "counts": counts(4, 4, 0, (800_000, 100_000))}),
    ], failed=[_entry("FAILED", 2, {"runId": RUN, "shard": third},
                      error=("SubmissionRejectedError", "Bedrock refused job: ValidationException"))])
    request = {"status": "SUCCEEDED", "runId": RUN, "corpusKey": CORPUS, "sharding": sharding, "map": map_output}
    result = invoke("finalizer", request)

    assert result["counts"] == {"records": 12, "succeeded": 7, "failed": 5, "duplicates": 0, "rejected": 1,
                                "failedUnits": 1, "inputTokens": 2_000_000, "outputTokens": 400_000}
    lane = storage.failure_lane()
    assert sorted(m["recordId"] for m in lane) == sorted(shard_ids(storage, third))
    assert {(m["reason"], m["stage"]) for m in lane} == {("unit_failed", "unit")}
    published = storage.published()
    assert len(published) == 1
    event = published[0]
    assert (event["source"], event["detail-type"]) == ("ai-pipelines.batch-inference", "BatchRunCompleted")
    assert event["detail"]["runId"] == RUN and event["detail"]["status"] == "SUCCEEDED"
    assert event["detail"]["output"] == {"bucket": OUTPUT_BUCKET, "resultsPrefix": f"results/{RUN}/",
                                         "manifestKey": f"runs/{RUN}/manifest.json"}
    assert event["detail"]["corpus"] == {"bucket": INPUT_BUCKET, "key": CORPUS}
    manifest = json.loads(storage.read(OUTPUT_BUCKET, f"runs/{RUN}/manifest.json"))
    assert manifest["counts"] == result["counts"] and manifest["sharding"]["rejected"] == 1
    # Tokens and cost: the jobs' tokens at the dev stack's price of its model (eu-west-1, Claude 3 Haiku: $0.25 and
    # $1.25 per million input and output tokens on demand, batch at half of that).
    tokens = {"inputTokens": 2_000_000, "outputTokens": 400_000,
              "batch": {"inputTokens": 2_000_000, "outputTokens": 400_000},
              "onDemand": {"inputTokens": 0, "outputTokens": 0}}
    assert manifest["tokens"] == event["detail"]["tokens"] == tokens
    cost = event["detail"]["cost"]
    assert manifest["cost"] == cost
    assert (cost["estimatedUsd"], cost["atBatchPricesUsd"], cost["atOnDemandPricesUsd"]) == (0.5, 0.5, 1.0)
    assert cost["currency"] == "USD" and cost["model"] == "anthropic.claude-3-haiku-20240307-v1:0"
    assert cost["prices"] == {"inputPerMillionTokens": 0.25, "outputPerMillionTokens": 1.25, "batchDiscount": 0.5}

    # Step Functions retries the finalizer (a lost response): the same counts, no second event, no second send.
    assert invoke("finalizer", request)["counts"] == result["counts"]
    assert storage.published() == [] and storage.failure_lane() == []


def test_a_failed_sync_batch_keeps_its_answers_and_sends_the_rest(invoke: Invoke, storage: Storage,
                                                                  converse: FakeConverse) -> None:
    converse.answers("kept")
    converse.fails("ServiceUnavailableException", times=sync_worker.settings.max_attempts)
    with pytest.raises(ThrottlingException, match="still throttled"):
        invoke("sync_worker", batch(["DOC0001", "DOC0002"]))  # the child then fails for good (Lambda timeout...)
    unit = batch(["DOC0001", "DOC0002"])
    map_output = write_map_results(storage, succeeded=[], failed=[
        _entry("FAILED", 0, {"Items": unit["Items"], "BatchInput": unit["BatchInput"]},
               error=("States.Timeout", "Task timed out"))])
    sharding = {"runId": RUN, "mode": "sync", "corpus": {"bucket": INPUT_BUCKET, "key": CORPUS},
                "counts": {"valid": 2, "rejected": 0}}
    result = invoke("finalizer", {"status": "SUCCEEDED", "runId": RUN, "corpusKey": CORPUS, "sharding": sharding,
                                  "map": map_output})
    assert result["counts"]["succeeded"] == 1 and result["counts"]["failed"] == 1
    # The kept answer's Converse usage, billed on demand.
    assert (result["counts"]["inputTokens"], result["counts"]["outputTokens"]) == (12, 5)
    manifest = json.loads(storage.read(OUTPUT_BUCKET, f"runs/{RUN}/manifest.json"))
    assert manifest["tokens"]["onDemand"] == {"inputTokens": 12, "outputTokens": 5}
    assert manifest["cost"]["estimatedUsd"] == manifest["cost"]["atOnDemandPricesUsd"] == round(
        (12 * 0.25 + 5 * 1.25) / 1e6, 8)
    assert [r["recordId"] for r in storage.results(RUN)] == ["DOC0001"]
    assert [m["recordId"] for m in storage.failure_lane()] == ["DOC0002"]


def test_a_shard_switched_for_the_deadline_is_counted_from_its_batches_and_the_manifest_says_so(
        invoke: Invoke, storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    small_jobs(monkeypatch)
    sharding = {**shard(invoke, storage, records(8)), "deadline": "2026-06-28T06:00:00+00:00"}
    first, second = shard_list(storage, sharding)
    ids = shard_ids(storage, second)
    # The second shard's child caught DeadlineFallbackError and ran InferShard: its own Map's results, one batch
    # answered (its tokens on demand) and one that failed for good (its records to the failure lane).
    unit = batch(ids[2:])
    inner = write_map_results(storage, succeeded=[
        _entry("SUCCEEDED", 0, batch(ids[:2]), {"batchKey": "k", "counts": counts(2, 2, 0, (24, 10))})],
        failed=[_entry("FAILED", 1, {"Items": unit["Items"], "BatchInput": unit["BatchInput"]},
                       error=("States.Timeout", "Task timed out"))], run="inner")
    switched = {"runId": RUN, "shard": second, "deadline": sharding["deadline"],
                "fallback": {"Error": "DeadlineFallbackError", "Cause": "queued past the deadline"},
                "switched": inner}
    map_output = write_map_results(storage, succeeded=[
        _entry("SUCCEEDED", 0, {"runId": RUN, "shard": first},
               {"shardId": "00000", "counts": counts(4, 4, 0, (80, 28))}),
        _entry("SUCCEEDED", 1, {"runId": RUN, "shard": second}, switched)], failed=[])
    result = invoke("finalizer", {"status": "SUCCEEDED", "runId": RUN, "corpusKey": CORPUS, "sharding": sharding,
                                  "map": map_output})
    assert {k: result["counts"][k] for k in ("records", "succeeded", "failed", "failedUnits")} == {
        "records": 8, "succeeded": 6, "failed": 2, "failedUnits": 1}
    assert sorted(m["recordId"] for m in storage.failure_lane()) == sorted(ids[2:])
    manifest = json.loads(storage.read(OUTPUT_BUCKET, f"runs/{RUN}/manifest.json"))
    assert manifest["deadline"] == {"at": "2026-06-28T06:00:00+00:00", "shardsSwitchedToSync": ["00001"]}
    assert manifest["tokens"]["batch"] == {"inputTokens": 80, "outputTokens": 28}
    assert manifest["tokens"]["onDemand"] == {"inputTokens": 24, "outputTokens": 10}
    (event,) = storage.published()
    assert event["detail"]["deadline"] == manifest["deadline"]


def _shard_batch(ids: list[str], shard_id: str) -> dict[str, Any]:
    """A batch of InferShard's (a switched shard's synchronous Map): its BatchInput names the shard."""
    unit = batch(ids)
    return {**unit, "BatchInput": {**unit["BatchInput"], "shardId": shard_id}}


def test_a_switched_shard_whose_child_failed_is_settled_from_its_batches_claims(
        invoke: Invoke, storage: Storage, converse: FakeConverse, monkeypatch: pytest.MonkeyPatch) -> None:
    small_jobs(monkeypatch, minimum=4, maximum=7)
    # Two shards, both switched to synchronous calls; the second repeats DOC0001, which the first one's batch holds.
    corpus = [*records(4), *records(5, start=4), *records(1, start=1)]
    sharding = {**shard(invoke, storage, corpus), "deadline": "2026-06-28T06:00:00+00:00"}
    first, second = shard_list(storage, sharding)
    assert shard_ids(storage, second) == ["DOC0004", "DOC0005", "DOC0006", "DOC0007", "DOC0008", "DOC0001"]
    for descriptor in (first, second):  # the submitter marked both switched (DeadlineFallbackError)
        name = jobs.job_name(JOB_PREFIX, RUN, descriptor["shardId"])
        storage.ddb.put_item(TableName=JOBS_TABLE, Item={"jobKey": {"S": name}, "runId": {"S": RUN},
                                                         "shardId": {"S": descriptor["shardId"]}})
        assert jobs.JobsTable(clients.dynamodb(), JOBS_TABLE, 86400).switch_to_sync(name)
    # The first shard's InferShard: two batches answered, its child succeeded.
    converse.answers("first", times=4)
    first_batches = [invoke("sync_worker", _shard_batch(ids, "00000")) for ids in (["DOC0000", "DOC0001"],
                                                                                    ["DOC0002", "DOC0003"])]
    inner = write_map_results(storage, succeeded=[_entry("SUCCEEDED", i, _shard_batch([], "00000"), output)
                                                  for i, output in enumerate(first_batches)], failed=[], run="inner")
    # The second's: one batch answered and wrote its results; one answered DOC0006 (kept in the ledger), then
    # stayed throttled on DOC0007 and failed; one (DOC0008, DOC0001) never ran: the inner Map exceeded its tolerated
    # failures and the outer child FAILED, its inner results gone with it.
    converse.answers("second", times=3)
    written = invoke("sync_worker", _shard_batch(["DOC0004", "DOC0005"], "00001"))
    converse.fails("ThrottlingException", times=sync_worker.settings.max_attempts)
    with pytest.raises(ThrottlingException):
        invoke("sync_worker", _shard_batch(["DOC0006", "DOC0007"], "00001"))
    results_key = f"results/{RUN}/batch-{written['batchKey']}.jsonl"
    storage.s3.put_object(Bucket=OUTPUT_BUCKET, Key=results_key, Body=b"{\"note\": \"as the batch wrote it\"}\n")
    map_output = write_map_results(storage, succeeded=[
        _entry("SUCCEEDED", 0, {"runId": RUN, "shard": first},
               {"runId": RUN, "shard": first, "fallback": {"Error": "DeadlineFallbackError"}, "switched": inner})],
        failed=[_entry("FAILED", 1, {"runId": RUN, "shard": second},
                       error=("States.ExceedToleratedFailureThreshold", "The specified tolerated failure threshold "
                                                                        "was exceeded"))])
    request = {"status": "SUCCEEDED", "runId": RUN, "corpusKey": CORPUS, "sharding": sharding, "map": map_output}
    result = invoke("finalizer", request)

    assert result["counts"] == {"records": 10, "succeeded": 7, "failed": 2, "duplicates": 1, "rejected": 0,
                                "failedUnits": 1, "inputTokens": 7 * 12, "outputTokens": 7 * 5}
    assert sorted((m["recordId"], m["reason"]) for m in storage.failure_lane()) == [
        ("DOC0001", "duplicate_record_id"), ("DOC0007", "unit_failed"), ("DOC0008", "unit_failed")]
    # DOC0006's kept answer is written; the results the batch wrote itself are left as they are.
    assert storage.read(OUTPUT_BUCKET, results_key) == b"{\"note\": \"as the batch wrote it\"}\n"
    assert sorted(r["recordId"] for r in storage.results(RUN) if "recordId" in r) == [
        "DOC0000", "DOC0001", "DOC0002", "DOC0003", "DOC0006"]
    manifest = json.loads(storage.read(OUTPUT_BUCKET, f"runs/{RUN}/manifest.json"))
    assert manifest["tokens"]["onDemand"] == {"inputTokens": 84, "outputTokens": 35}
    assert manifest["deadline"]["shardsSwitchedToSync"] == ["00000", "00001"]
    (event,) = storage.published()
    assert event["detail"]["counts"] == result["counts"]

    # Replayed (a lost response, a redelivery): the same counts, nothing sent or written again.
    objects = {key: storage.read(OUTPUT_BUCKET, key) for key in storage.keys(OUTPUT_BUCKET, f"results/{RUN}/")}
    invoke.calls.clear()
    assert invoke("finalizer", request)["counts"] == result["counts"]
    assert storage.failure_lane() == [] and storage.published() == []
    assert {key: storage.read(OUTPUT_BUCKET, key) for key in storage.keys(OUTPUT_BUCKET, f"results/{RUN}/")} == objects


class _RacedS3:
    """S3 answering a conditional write with the given error codes in turn (None: written)."""

    def __init__(self, *codes: str | None) -> None:
        self.codes, self.writes = list(codes), 0

    def put_object(self, **request: Any) -> dict[str, Any]:
        assert request["IfNoneMatch"] == "*"
        self.writes += 1
        code = self.codes.pop(0)
        if code is None:
            return {}
        raise ClientError({"Error": {"Code": code, "Message": code}}, "PutObject")


@pytest.mark.parametrize(("codes", "writes"), [
    ((None,), 1), (("PreconditionFailed",), 1), (("ConditionalRequestConflict", None), 2),
    (("ConditionalRequestConflict", "PreconditionFailed"), 2)])
def test_kept_answers_are_written_once_whoever_writes_first(storage: Storage, codes: tuple[str | None, ...],
                                                            writes: int) -> None:
    s3 = _RacedS3(*codes)
    with pytest.MonkeyPatch.context() as patch:  # undone before the storage fixture clears the clients
        patch.setattr(finalizer.clients, "s3", lambda: s3)
        finalizer._write_once("results/run/batch-k.jsonl", b"{}\n")
    assert s3.writes == writes


@pytest.mark.parametrize("codes", [("AccessDenied",), ("ConditionalRequestConflict", "ConditionalRequestConflict")])
def test_a_results_write_that_fails_otherwise_fails_the_finalizer(storage: Storage, codes: tuple[str, ...]) -> None:
    with pytest.MonkeyPatch.context() as patch, pytest.raises(ClientError, match=codes[-1]):
        patch.setattr(finalizer.clients, "s3", lambda: _RacedS3(*codes))
        finalizer._write_once("results/run/batch-k.jsonl", b"{}\n")


@pytest.mark.parametrize("sharded", [True, False])
def test_a_failed_run_publishes_its_failure(invoke: Invoke, storage: Storage, sharded: bool) -> None:
    error = {"Error": "States.ExceedToleratedFailureThreshold", "Cause": "The specified tolerated failure "
                                                                         "threshold was exceeded"}
    request: dict[str, Any] = {"status": "FAILED", "runId": RUN, "corpusKey": CORPUS, "error": error}
    if sharded:
        request["sharding"] = {"runId": RUN, "mode": "batch", "corpus": {"bucket": INPUT_BUCKET, "key": CORPUS},
                               "counts": {"valid": 10}}
    result = invoke("finalizer", request)
    assert result["status"] == "FAILED"
    (event,) = storage.published()
    assert event["detail"]["status"] == "FAILED" and event["detail"]["counts"] is None
    assert event["detail"]["tokens"] is None and event["detail"]["cost"] is None
    assert event["detail"]["error"] == error and event["detail"]["mode"] == ("batch" if sharded else "none")
    assert RESULT_BUS.endswith("-results")
