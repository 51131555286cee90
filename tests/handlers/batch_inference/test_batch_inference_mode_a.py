"""Mode A end to end through the handlers: shard, submit (one job per shard, however often), complete (joined on
recordId, settled through the ledger, the waiting child resumed), replay (nothing twice), reconcile (a missed
event finished, a running job heartbeated)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from batch_inference import clients, jobs, sharder, submitter
from batch_inference.exceptions import (
    DeadlineFallbackError,
    InvalidTaskInputError,
    JobQuotaFullError,
    SubmissionRejectedError,
    ThrottlingException,
)
from tests.handlers.batch_inference.conftest import (
    COMPLETION_QUEUE_URL,
    INPUT_BUCKET,
    JOB_PREFIX,
    JOBS_TABLE,
    MODEL_ID,
    OUTPUT_BUCKET,
    STACK_TAGS,
    STATE_MACHINE_ARN,
    Invoke,
    Storage,
    deliver_event,
)
from tests.handlers.batch_inference.fakes import (
    FakeBedrock,
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
    first_shard,
    job_of,
    records,
    shard,
    shard_ids,
    shard_list,
    small_jobs,
    submit,
    submitted_shard,
    uris,
)
from tests.handlers.conftest import SqsEventSource

BAD = {3: "not json {", 7: '{"id": "DOC-x", "body": "no text"}', 12: '["an", "array"]'}


def _corpus(valid: int) -> list[str | bytes]:
    lines: list[str | bytes] = list(records(valid))
    for number in sorted(BAD):
        lines.insert(number - 1, BAD[number])
    return lines


def test_the_sharder_writes_bounded_shards_and_sends_each_bad_line_with_its_number(
        invoke: Invoke, storage: Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    small_jobs(monkeypatch, 3, 6)
    output = shard(invoke, storage, _corpus(14))
    assert output["mode"] == "batch" and output["counts"] == {"lines": 17, "valid": 14, "rejected": 3, "blank": 0,
                                                             "shards": 3}
    listed = shard_list(storage, output)
    assert [s["records"] for s in listed] == [4, 4, 6]
    assert sorted(r for s in listed for r in shard_ids(storage, s)) == [f"DOC{i:04d}" for i in range(14)]
    lane = storage.failure_lane()
    assert sorted((m["lineNumber"], m["reason"]) for m in lane) == [(3, "not_json"), (7, "missing_text"),
                                                                     (12, "not_an_object")]
    assert all(m["source"] == {"bucket": INPUT_BUCKET, "key": CORPUS} and m["stage"] == "shard" for m in lane)

    # Step Functions retries the sharder: the same shards, and no bad line sent twice.
    again = invoke("sharder", {"runId": RUN, "corpusKey": CORPUS})
    assert shard_list(storage, again) == listed and storage.failure_lane() == []


@pytest.mark.parametrize(("lines", "mode"), [(records(5), "sync"), (["", "not json"], "empty")])
def test_a_corpus_below_the_per_job_minimum_runs_synchronously(invoke: Invoke, storage: Storage, lines: list[str],
                                                               mode: str) -> None:
    output = shard(invoke, storage, list(lines))  # the dev stack's minimum is 100 records
    assert output["mode"] == mode
    if mode == "sync":
        assert output["syncInput"] == {"bucket": INPUT_BUCKET, "key": f"shards/{RUN}/shard-00000.jsonl"}


def test_the_same_shard_submitted_twice_starts_one_job(invoke: Invoke, storage: Storage, bedrock: FakeBedrock,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    descriptor = first_shard(invoke, storage, monkeypatch)
    first = submit(invoke, bedrock, descriptor, "token-1")
    # A retried child (a lost Lambda response, a heartbeat timeout) submits again with a new task token: Bedrock
    # sees the same job name and clientRequestToken (the Stubber checks both) and answers with the same job.
    second = submit(invoke, bedrock, descriptor, "token-2")
    name, token, arn = job_of(descriptor)
    assert first == second == {"jobName": name, "jobArn": arn, "replayed": False}
    assert token == f"{RUN}-00000"
    item = storage.job_item(name)
    assert item is not None and item["taskToken"] == "token-2" and item["status"] == "SUBMITTED"


def test_shards_hold_converse_requests_and_jobs_are_created_as_converse_jobs(
        invoke: Invoke, storage: Storage, bedrock: FakeBedrock, monkeypatch: pytest.MonkeyPatch) -> None:
    descriptor = first_shard(invoke, storage, monkeypatch)
    line = json.loads(storage.read(INPUT_BUCKET, descriptor["key"]).splitlines()[0])
    # The stack's prompt template, rendered into Converse's request body: what mode B sends to Converse too.
    assert set(line["modelInput"]) == {"messages", "inferenceConfig"}
    [message] = line["modelInput"]["messages"]
    assert message["role"] == "user" and "Ticket 0: the parcel arrived late." in message["content"][0]["text"]
    assert set(message["content"][0]) == {"text"}
    submit(invoke, bedrock, descriptor, "token-1")  # the Stubber requires modelInvocationType Converse


def test_a_stack_with_native_request_bodies_creates_invoke_model_jobs(
        invoke: Invoke, storage: Storage, bedrock: FakeBedrock, monkeypatch: pytest.MonkeyPatch) -> None:
    small_jobs(monkeypatch)
    monkeypatch.setattr(sharder, "settings", replace(sharder.settings, prompt=replace(
        sharder.settings.prompt, request_format="native")))
    monkeypatch.setattr(submitter, "settings", replace(submitter.settings, request_format="native"))
    descriptor = shard_list(storage, shard(invoke, storage, records(8)))[0]
    line = json.loads(storage.read(INPUT_BUCKET, descriptor["key"]).splitlines()[0])
    assert line["modelInput"]["anthropic_version"] == "bedrock-2023-05-31"
    name, token, arn = job_of(descriptor)
    input_uri, output_uri = uris(descriptor)
    bedrock.creates(name=name, token=token, arn=arn, input_uri=input_uri, output_uri=output_uri,
                    invocation_type="InvokeModel")
    assert invoke("submitter", {"runId": RUN, "shard": descriptor, "taskToken": "token-1"})["jobArn"] == arn


def test_every_job_is_tagged_with_its_run_and_the_stacks_tags(
        invoke: Invoke, storage: Storage, bedrock: FakeBedrock, monkeypatch: pytest.MonkeyPatch) -> None:
    descriptor = first_shard(invoke, storage, monkeypatch)
    assert STACK_TAGS == {"project": "ai-pipelines", "stack": "dev", "pipeline": "batchinf", "owner": "platform-team"}
    name, token, arn = job_of(descriptor)
    input_uri, output_uri = uris(descriptor)
    # The Stubber requires these tags, in this order: owner (the stop grant's), run id, then the stack's own.
    bedrock.creates(name=name, token=token, arn=arn, input_uri=input_uri, output_uri=output_uri, run_id=RUN)
    invoke("submitter", {"runId": RUN, "shard": descriptor, "taskToken": "token-1"})


def test_job_output_is_encrypted_with_the_configured_key_and_jobs_run_in_the_configured_vpc(
        invoke: Invoke, storage: Storage, bedrock: FakeBedrock, monkeypatch: pytest.MonkeyPatch) -> None:
    small_jobs(monkeypatch)
    key = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    vpc = {"subnetIds": ["subnet-0a1b2c3d4e5f60718"], "securityGroupIds": ["sg-0a1b2c3d4e5f60718"]}
    monkeypatch.setattr(submitter, "settings", replace(submitter.settings, output_kms_key=key, vpc=vpc))
    descriptor = shard_list(storage, shard(invoke, storage, records(8)))[0]
    name, token, arn = job_of(descriptor)
    input_uri, output_uri = uris(descriptor)
    bedrock.creates(name=name, token=token, arn=arn, input_uri=input_uri, output_uri=output_uri, run_id=RUN,
                    output_key=key, vpc=vpc)
    assert invoke("submitter", {"runId": RUN, "shard": descriptor, "taskToken": "token-1"})["jobArn"] == arn


def test_a_job_name_that_exists_already_is_found_and_awaited(invoke: Invoke, storage: Storage,
                                                              bedrock: FakeBedrock,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    descriptor = first_shard(invoke, storage, monkeypatch)
    name, _, arn = job_of(descriptor)
    input_uri, output_uri = uris(descriptor)
    bedrock.refuses_create("ConflictException", f"A job named {name} already exists")
    bedrock.lists([bedrock.summary(arn=arn, name=name, status="InProgress", input_uri=input_uri,
                                   output_uri=output_uri)], expected={"nameContains": name})
    result = invoke("submitter", {"runId": RUN, "shard": descriptor, "taskToken": "token-1"})
    assert result["jobArn"] == arn


@pytest.mark.parametrize(("code", "error"), [("ThrottlingException", ThrottlingException),
                                             ("ServiceQuotaExceededException", JobQuotaFullError),
                                             ("ValidationException", SubmissionRejectedError)])
def test_a_refused_submission_fails_the_child_for_its_retry_or_its_catch(
        invoke: Invoke, storage: Storage, bedrock: FakeBedrock, monkeypatch: pytest.MonkeyPatch, code: str,
        error: type[Exception]) -> None:
    descriptor = first_shard(invoke, storage, monkeypatch)
    bedrock.refuses_create(code)
    with pytest.raises(error) as raised:
        invoke("submitter", {"runId": RUN, "shard": descriptor, "taskToken": "token-1"})
    # Step Functions matches the error by class name: SubmitAndWait retries ThrottlingException (8 attempts, up to
    # 900 s, jitter) and waits out JobQuotaFullError (as long as a job may take); anything else fails the shard.
    assert type(raised.value).__name__ == error.__name__


def test_a_full_concurrent_jobs_quota_is_waited_out_and_the_retry_submits_the_same_job(
        invoke: Invoke, storage: Storage, bedrock: FakeBedrock, monkeypatch: pytest.MonkeyPatch) -> None:
    descriptor = first_shard(invoke, storage, monkeypatch)
    name, _, arn = job_of(descriptor)
    # Another run holds every concurrent-job slot: Bedrock refuses the job for now, not for good.
    bedrock.refuses_create("ServiceQuotaExceededException", "concurrent model invocation jobs quota reached")
    with pytest.raises(JobQuotaFullError):
        invoke("submitter", {"runId": RUN, "shard": descriptor, "taskToken": "token-1"})
    item = storage.job_item(name)  # the token is kept for the retry; no job is recorded
    assert item is not None and item["taskToken"] == "token-1" and "jobArn" not in item and "status" not in item
    # SubmitAndWait's Retry invokes the submitter again once a slot is free: the same job name and token.
    assert submit(invoke, bedrock, descriptor, "token-1") == {"jobName": name, "jobArn": arn, "replayed": False}
    item = storage.job_item(name)
    assert item is not None and item["status"] == "SUBMITTED" and item["jobArn"] == arn


def test_a_shard_queued_past_the_deadline_switches_to_synchronous_calls_once(
        invoke: Invoke, storage: Storage, bedrock: FakeBedrock, monkeypatch: pytest.MonkeyPatch) -> None:
    descriptor = first_shard(invoke, storage, monkeypatch)
    name = job_of(descriptor)[0]
    soon = (datetime.now(UTC) + timedelta(hours=6)).isoformat()  # a job (24 h expected) would end after it
    child = {"runId": RUN, "shard": descriptor, "taskToken": "token-1", "deadline": soon}
    bedrock.refuses_create("ServiceQuotaExceededException", "concurrent model invocation jobs quota reached")
    with pytest.raises(DeadlineFallbackError) as raised:
        invoke("submitter", child)
    assert type(raised.value).__name__ == "DeadlineFallbackError"  # SubmitAndWait's Catch: to InferShard
    item = storage.job_item(name)
    assert item is not None and "switchedAt" in item and "jobArn" not in item
    # Once switched, for good: a retried or redriven child never asks Bedrock for a job again.
    invoke.calls.clear()
    with pytest.raises(DeadlineFallbackError):
        invoke("submitter", {**child, "taskToken": "token-2"})
    assert not any(op.startswith("bedrock:") for op in invoke.operations("submitter"))


def test_a_full_quota_is_waited_out_while_a_job_still_ends_before_the_deadline(
        invoke: Invoke, storage: Storage, bedrock: FakeBedrock, monkeypatch: pytest.MonkeyPatch) -> None:
    descriptor = first_shard(invoke, storage, monkeypatch)
    later = (datetime.now(UTC) + timedelta(hours=30)).isoformat()
    bedrock.refuses_create("ServiceQuotaExceededException", "concurrent model invocation jobs quota reached")
    with pytest.raises(JobQuotaFullError):
        invoke("submitter", {"runId": RUN, "shard": descriptor, "taskToken": "token-1", "deadline": later})
    item = storage.job_item(job_of(descriptor)[0])
    assert item is not None and "switchedAt" not in item


def test_a_shard_whose_job_was_submitted_never_switches(invoke: Invoke, storage: Storage, bedrock: FakeBedrock,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    descriptor = first_shard(invoke, storage, monkeypatch)
    name = job_of(descriptor)[0]
    submit(invoke, bedrock, descriptor, "token-1")
    table = jobs.JobsTable(clients.dynamodb(), JOBS_TABLE, 86400)
    assert not table.switch_to_sync(name)
    assert "switchedAt" not in storage.job_item(name)  # type: ignore[operator]


@pytest.mark.parametrize(("options", "hours", "expected"), [
    ({"deadline": "2026-06-28T06:00:00Z"}, 0, "2026-06-28T06:00:00+00:00"),
    ({"deadline": "2026-06-28T08:00:00+02:00"}, 12, "2026-06-28T06:00:00+00:00"),  # the run's own wins
    ({}, 12, "2026-06-27T15:00:00+00:00"),  # RUN_DEADLINE_HOURS after the execution started
    ({}, 0, None),
])
def test_the_sharder_gives_the_runs_deadline(invoke: Invoke, storage: Storage, monkeypatch: pytest.MonkeyPatch,
                                             options: dict[str, Any], hours: int, expected: str | None) -> None:
    monkeypatch.setattr(sharder, "settings", replace(sharder.settings, run_deadline_hours=hours))
    storage.put_corpus(CORPUS, records(3))
    output = invoke("sharder", {"runId": RUN, "corpusKey": CORPUS, "options": {"corpusKey": CORPUS, **options},
                                "startTime": "2026-06-27T03:00:00.000Z"})
    assert output["deadline"] == expected


def test_a_deadline_without_a_time_zone_fails_the_run_at_once(invoke: Invoke, storage: Storage) -> None:
    storage.put_corpus(CORPUS, records(3))
    with pytest.raises(InvalidTaskInputError, match="no time zone"):
        invoke("sharder", {"runId": RUN, "corpusKey": CORPUS, "options": {"deadline": "2026-06-28T06:00:00"}})


def complete(invoke: Invoke, storage: Storage, bedrock: FakeBedrock, descriptor: dict[str, Any],
             rows: list[dict[str, Any]]) -> None:
    """Bedrock finishes the shard's job: its output files, then its state-change event on the completion queue."""
    name, _, arn = job_of(descriptor)
    _, output_uri = uris(descriptor)
    write_job_output(storage.s3, output_uri, arn.rsplit("/", 1)[-1], descriptor["key"], rows,
                     total=descriptor["records"])
    deliver_event(storage, job_state_change(arn, name, "Completed", MODEL_ID))


def _rows(ids: list[str], errors: set[str]) -> list[dict[str, Any]]:
    rows = [error_line(r) if r in errors else output_line(r, f"summary of {r}") for r in ids]
    return rows[::-1]  # Bedrock does not keep the input order


def test_a_completed_job_is_joined_on_record_id_settled_and_its_shard_resumed(
        invoke: Invoke, storage: Storage, bedrock: FakeBedrock, states: FakeStepFunctions,
        completion_source: SqsEventSource, monkeypatch: pytest.MonkeyPatch) -> None:
    descriptor, ids = submitted_shard(invoke, storage, bedrock, monkeypatch)
    complete(invoke, storage, bedrock, descriptor, _rows(ids, errors={ids[1]}))

    describe(bedrock, descriptor, "Completed")
    # The job's tokens, from its manifest.json.out (inputTokenCount, outputTokenCount: 20 and 7 a line here).
    counts = {"records": 4, "succeeded": 3, "failed": 1, "duplicates": 0, "lane_sent": 1, "inputTokens": 80,
              "outputTokens": 28}
    name, _, arn = job_of(descriptor)
    states.expects_success("token-1", json.dumps({"shardId": "00000", "jobArn": arn, "status": "PROCESSED",
                                                  "counts": counts}))
    delivery = completion_source.poll()
    assert delivery is not None and delivery.failed_ids == []

    results = storage.results(RUN)
    assert sorted(r["recordId"] for r in results) == sorted(set(ids) - {ids[1]})
    assert all(r["output"] == f"summary of {r['recordId']}" for r in results)
    lane = storage.failure_lane()
    assert [(m["recordId"], m["reason"], m["stage"]) for m in lane] == [(ids[1], "model_error", "model")]
    ledger = storage.ledger()
    assert {r: ledger[r]["outcome"] for r in ids} == {r: "failed" if r == ids[1] else "succeeded" for r in ids}
    assert storage.job_item(name)["status"] == "PROCESSED"  # type: ignore[index]


def test_a_job_output_without_a_manifest_counts_the_tokens_of_its_answers(
        invoke: Invoke, storage: Storage, bedrock: FakeBedrock, states: FakeStepFunctions,
        completion_source: SqsEventSource, monkeypatch: pytest.MonkeyPatch) -> None:
    descriptor, ids = submitted_shard(invoke, storage, bedrock, monkeypatch)
    name, _, arn = job_of(descriptor)
    _, output_uri = uris(descriptor)
    write_job_output(storage.s3, output_uri, arn.rsplit("/", 1)[-1], descriptor["key"], _rows(ids, errors={ids[0]}),
                     total=descriptor["records"], manifest=False)
    deliver_event(storage, job_state_change(arn, name, "Completed", MODEL_ID))
    describe(bedrock, descriptor, "Completed")
    counts = {"records": 4, "succeeded": 3, "failed": 1, "duplicates": 0, "lane_sent": 1, "inputTokens": 60,
              "outputTokens": 21}  # each Converse answer's usage: 20 and 7
    states.expects_success("token-1", json.dumps({"shardId": "00000", "jobArn": arn, "status": "PROCESSED",
                                                  "counts": counts}))
    delivery = completion_source.poll()
    assert delivery is not None and delivery.failed_ids == []


def test_replaying_a_completed_shard_writes_nothing_twice(
        invoke: Invoke, storage: Storage, bedrock: FakeBedrock, states: FakeStepFunctions,
        completion_source: SqsEventSource, monkeypatch: pytest.MonkeyPatch) -> None:
    descriptor, ids = submitted_shard(invoke, storage, bedrock, monkeypatch)
    complete(invoke, storage, bedrock, descriptor, _rows(ids, errors={ids[0]}))
    describe(bedrock, descriptor, "Completed")
    states.expects_success("token-1")
    completion_source.poll()
    results, ledger, lane = storage.results(RUN), storage.ledger(), storage.failure_lane()
    assert len(lane) == 1

    # The same event again (EventBridge delivers at least once): nothing is written, the token is already used.
    name, _, arn = job_of(descriptor)
    deliver_event(storage, job_state_change(arn, name, "Completed", MODEL_ID))
    describe(bedrock, descriptor, "Completed")
    states.token_gone()
    invoke.calls.clear()
    delivery = completion_source.poll()
    assert delivery is not None and delivery.failed_ids == []
    writes = [op for op in invoke.operations("completion")
              if op in ("s3:PutObject", "sqs:SendMessageBatch", "dynamodb:UpdateItem")]
    assert writes == []
    assert storage.results(RUN) == results and storage.ledger() == ledger and storage.failure_lane() == []

    # A replay of the whole run (the same shard submitted again) resumes from the jobs table: no second job.
    states.expects_success("token-9")
    assert invoke("submitter", {"runId": RUN, "shard": descriptor, "taskToken": "token-9"})["replayed"] is True
    assert "bedrock:CreateModelInvocationJob" not in invoke.operations("submitter")[-3:]


def test_a_failed_job_sends_its_records_to_the_failure_lane_and_fails_its_shard(
        invoke: Invoke, storage: Storage, bedrock: FakeBedrock, states: FakeStepFunctions,
        completion_source: SqsEventSource, monkeypatch: pytest.MonkeyPatch) -> None:
    descriptor, ids = submitted_shard(invoke, storage, bedrock, monkeypatch)
    name, _, arn = job_of(descriptor)
    deliver_event(storage, job_state_change(arn, name, "Failed", MODEL_ID))
    describe(bedrock, descriptor, "Failed", message="The service role cannot read the input file")
    states.expects_failure("token-1", "BedrockJobFailed")
    completion_source.poll()
    lane = storage.failure_lane()
    assert sorted(m["recordId"] for m in lane) == sorted(ids)
    assert {(m["reason"], m["stage"]) for m in lane} == {("job_failed", "job")}
    assert "cannot read the input file" in lane[0]["detail"]
    assert storage.results(RUN) == [] and storage.job_item(name)["status"] == "FAILED"  # type: ignore[index]


def test_a_missed_completion_event_is_finished_by_the_reconciler(
        invoke: Invoke, storage: Storage, bedrock: FakeBedrock, states: FakeStepFunctions,
        completion_source: SqsEventSource, monkeypatch: pytest.MonkeyPatch) -> None:
    small_jobs(monkeypatch)
    first, second = shard_list(storage, shard(invoke, storage, records(8)))
    submit(invoke, bedrock, first, "token-1")
    submit(invoke, bedrock, second, "token-2")
    ids = shard_ids(storage, first)
    name, _, arn = job_of(first)
    _, output_uri = uris(first)
    write_job_output(storage.s3, output_uri, arn.rsplit("/", 1)[-1], first["key"], _rows(ids, set()), total=4)
    # EventBridge dropped the event. The next reconciler tick lists the jobs: the finished one is requeued, the
    # running one's waiting child gets a heartbeat.
    summaries = [bedrock.summary(arn=job_of(s)[2], name=job_of(s)[0], status=status, input_uri=uris(s)[0],
                                 output_uri=uris(s)[1]) for s, status in ((first, "Completed"),
                                                                          (second, "InProgress"))]
    bedrock.lists(summaries)
    states.expects_heartbeat("token-2")
    states.lists_ended_runs(STATE_MACHINE_ARN)
    done = invoke("reconciler", {"source": "schedule", "scheduledTime": "2026-06-27T04:00:00Z"})
    assert done == {"listed": 2, "requeued": 1, "heartbeats": 1, "settled": 0, "unknown": 0, "endingsRequeued": 0}

    describe(bedrock, first, "Completed")
    states.expects_success("token-1")
    delivery = completion_source.poll()
    assert delivery is not None and delivery.failed_ids == []
    assert sorted(r["recordId"] for r in storage.results(RUN)) == sorted(ids)
    assert storage.job_item(name)["status"] == "PROCESSED"  # type: ignore[index]

    # The next tick finds the shard settled and requeues nothing.
    bedrock.lists(summaries[:1])
    states.lists_ended_runs(STATE_MACHINE_ARN)
    assert invoke("reconciler", {"source": "schedule"})["requeued"] == 0


def _sqs_event(bodies: list[Any]) -> dict[str, Any]:
    return {"Records": [{"messageId": f"m{i}", "receiptHandle": f"h{i}", "body": body, "attributes": {
        "ApproximateReceiveCount": "1"}, "messageAttributes": {}, "md5OfBody": "x", "eventSource": "aws:sqs",
        "eventSourceARN": COMPLETION_QUEUE_URL, "awsRegion": "us-east-1"} for i, body in enumerate(bodies)]}


def test_bad_completion_messages_fail_alone_and_foreign_or_running_jobs_are_skipped(
        invoke: Invoke, storage: Storage, bedrock: FakeBedrock, monkeypatch: pytest.MonkeyPatch) -> None:
    foreign = "arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/zzzzzzzzzzzz"
    running = "arn:aws:bedrock:us-east-1:123456789012:model-invocation-job/rrrrrrrrrrrr"
    s3_test_event = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": INPUT_BUCKET})
    removal = json.dumps({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectRemoved:Delete",
                                       "s3": {"bucket": {"name": OUTPUT_BUCKET},
                                              "object": {"key": "bedrock-output/a+b%C3%A9.out"}}}]})
    bodies = ["{not json", "", "\udcff\udcfe", json.dumps({"detail": {"batchJobArn": 123}}), s3_test_event, removal,
              json.dumps({"detail-type": "Batch Inference Job State Change", "pad": "x" * 250_000}),
              json.dumps({"source": "reconciler", "jobArn": foreign}),
              json.dumps({"source": "reconciler", "jobArn": running})]
    bedrock.describes(arn=foreign, name="someone-elses-job", status="Completed", input_uri="s3://b/k",
                      output_uri="s3://b/o/")
    bedrock.describes(arn=running, name=f"{JOB_PREFIX}-abcdef123456-00000", status="InProgress",
                      input_uri="s3://b/k", output_uri="s3://b/o/")
    response = invoke("completion", _sqs_event(bodies))
    assert sorted(f["itemIdentifier"] for f in response["batchItemFailures"]) == [f"m{i}" for i in range(7)]
    assert storage.failure_lane() == [] and storage.results(RUN) == []


@pytest.mark.parametrize(("module", "event"), [
    ("sharder", {"corpusKey": "corpus/x.jsonl"}), ("sharder", {"runId": "bad id!", "corpusKey": "c"}),
    ("submitter", {"runId": RUN, "shard": {"shardId": 7}, "taskToken": "t"}),
    ("sync_worker", {"Items": "not a list", "BatchInput": {"runId": RUN}}),
    ("sync_worker", {"Records": [{"eventSource": "aws:s3"}]}),
    ("reconciler", {"source": "aws.events"}), ("finalizer", {"status": "DONE", "runId": RUN, "corpusKey": "c"}),
    ("finalizer", None),
])
def test_a_task_input_of_the_wrong_shape_fails_with_its_fields_named(invoke: Invoke, storage: Storage, module: str,
                                                                     event: Any) -> None:
    with pytest.raises(InvalidTaskInputError):
        invoke(module, event)


def test_the_job_name_prefix_and_the_rule_agree_with_the_stack() -> None:
    assert jobs.job_name(JOB_PREFIX, RUN, "00000").startswith(f"{JOB_PREFIX}-")
    assert COMPLETION_QUEUE_URL.endswith("-completions")


def test_replaying_a_failed_shard_fails_its_child_again_without_a_job(
        invoke: Invoke, storage: Storage, bedrock: FakeBedrock, states: FakeStepFunctions,
        completion_source: SqsEventSource, monkeypatch: pytest.MonkeyPatch) -> None:
    descriptor = first_shard(invoke, storage, monkeypatch)
    submit(invoke, bedrock, descriptor, "token-1")
    name, _, arn = job_of(descriptor)
    deliver_event(storage, job_state_change(arn, name, "Expired", MODEL_ID))
    describe(bedrock, descriptor, "Expired", message="The job was not scheduled before its timeout")
    states.expects_failure("token-1", "BedrockJobFailed")
    completion_source.poll()
    lane = storage.failure_lane()
    states.expects_failure("token-2", "BedrockJobFailed")
    assert invoke("submitter", {"runId": RUN, "shard": descriptor, "taskToken": "token-2"})["replayed"] is True
    assert len(lane) == 4 and storage.failure_lane() == []
