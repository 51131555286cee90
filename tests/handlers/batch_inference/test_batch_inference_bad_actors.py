"""Inputs a producer controls, fed to the batch-inference handlers: corpus lines built to make the sharder slow,
lines with Unicode line separators, huge values that end up in logs. Each test counts the outcome (every line in
one place) and bounds the time it takes."""

from __future__ import annotations

import itertools
import json
import logging
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from hypothesis import given
from hypothesis import strategies as st
from policy_sentry.querying.actions import get_action_data

from batch_inference import run_ended, sharder
from batch_inference.exceptions import InvalidTaskInputError
from batch_inference.joining import jsonl_lines
from batch_inference.records import InputFrame
from batch_inference.sharding import MAX_DEPTH, MemorySink, ShardLimits, shard_corpus
from benchmarks.sharder_linearity import adversarial_lines
from common.redact import digest
from components.pipelines.batch_inference import JOB_OWNER_TAG
from tests.handlers.batch_inference.conftest import (
    COMPLETION_QUEUE_URL,
    HANDLERS,
    MODEL_ID,
    RUN,
    Invoke,
    Storage,
    deliver_event,
)
from tests.handlers.batch_inference.fakes import (
    FakeBedrock,
    FakeStepFunctions,
    job_state_change,
    output_line,
    write_job_output,
)
from tests.handlers.batch_inference.helpers import (
    describe,
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
from tests.support.stacks import SHIPPED_STACKS, function_environment, function_roles, shipped_stack

FRAME = InputFrame.build("amazon.nova-lite-v1:0", "{{content}}", max_tokens=8, temperature=0.0)
RECORD_LIMIT = sharder.settings.max_record_bytes  # the stack's maxRecordBytes (100,000 bytes)


@contextmanager
def _deadline(seconds: float) -> Iterator[None]:
    """Fail the test when the block has used more than `seconds` of CPU time (a quadratic judge would run for
    hours); CPU time, so that other processes on a busy machine do not count."""
    def expire(signum: int, frame: object) -> None:
        pytest.fail(f"still running after {seconds} s of CPU time")

    previous = signal.signal(signal.SIGPROF, expire)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def test_a_corpus_of_adversarial_lines_at_the_record_limit_is_judged_in_linear_time(invoke: Invoke,
                                                                                     storage: Storage) -> None:
    lines = adversarial_lines(RECORD_LIMIT - 10)
    assert {len(line) for line in lines} == {RECORD_LIMIT - 10}
    corpus: list[str | bytes] = [*records(3), *lines, *records(2, start=3)]
    # a backtracking pattern took minutes per line (past the sharder's 900 s timeout, on every retry)
    with _deadline(20):
        output = shard(invoke, storage, corpus)
    lane = storage.failure_lane()
    assert sorted(m["lineNumber"] for m in lane) == list(range(4, 4 + len(lines)))
    assert output["counts"] == {"lines": len(corpus), "valid": 5, "rejected": len(lines), "blank": 0, "shards": 1}


def test_lines_at_the_largest_record_limit_are_judged_within_a_hang_guard() -> None:
    """Adversarial lines at the largest record limit the config allows (1 MiB), on both paths, all rejected within a
    CPU-time guard far above the milliseconds they take; how the cost grows with the length (linear, not quadratic)
    is measured side by side by `python -m benchmarks.sharder_linearity`."""
    limits = ShardLimits(1, 10, 4 << 20, 1 << 20)
    lines = adversarial_lines(1 << 20)
    with _deadline(20):
        for per_line in (False, True):
            result = shard_corpus(lines, FRAME, limits, MemorySink(), text_field="text", id_field="id",
                                  per_line=per_line)
            assert len(result.rejected) == len(lines)


def test_an_adversarial_line_is_rejected_for_its_depth_with_its_line_number() -> None:
    line = adversarial_lines(RECORD_LIMIT - 10)[0]
    limits = ShardLimits(1, 10, 1 << 22, RECORD_LIMIT)
    with _deadline(20):
        for per_line in (False, True):
            result = shard_corpus([json.dumps({"text": "ok"}).encode(), line], FRAME, limits, MemorySink(),
                                  text_field="text", id_field="id", per_line=per_line)
            assert [(r.line_number, r.reason, r.detail) for r in result.rejected] == [
                (2, "not_json", f"nested more than {MAX_DEPTH} levels deep")]
            assert result.valid == 1


# Every character str.splitlines ends a line at, besides \n: JSON Lines ends a line only at \n (or \r\n).
SEPARATORS = "\u2028\u2029\x85\x1c\x1d\x1e\x0b\x0c\r"


def test_texts_holding_unicode_line_separators_are_records_end_to_end(
        invoke: Invoke, storage: Storage, bedrock: FakeBedrock, states: FakeStepFunctions,
        completion_source: SqsEventSource, monkeypatch: pytest.MonkeyPatch) -> None:
    small_jobs(monkeypatch, minimum=3, maximum=20)
    texts = {f"SEP{i}": f"before{separator}after" for i, separator in enumerate(SEPARATORS)}
    # raw in the corpus where JSON allows it (U+2028, U+2029, U+0085), escaped where it must be (controls)
    corpus: list[str | bytes] = [json.dumps({"id": r, "text": t}, ensure_ascii=False).encode()
                                 for r, t in texts.items()]
    assert b"\xe2\x80\xa8" in corpus[0] and b"\xc2\x85" in corpus[2]
    descriptor, = shard_list(storage, shard(invoke, storage, corpus))
    assert descriptor["records"] == len(texts) and storage.failure_lane() == []
    assert shard_ids(storage, descriptor) == list(texts)
    submit(invoke, bedrock, descriptor, "token-1")

    # Bedrock's output echoes the separators raw; a line may also hold a \r between tokens (JSON whitespace) and
    # end in \r\n
    name, _, arn = job_of(descriptor)
    _, output_uri = uris(descriptor)
    rows = [output_line(r, f"summary: {t}") for r, t in texts.items()]
    write_job_output(storage.s3, output_uri, arn.rsplit("/", 1)[-1], descriptor["key"], rows, total=len(texts))
    bucket, _, prefix = output_uri.removeprefix("s3://").partition("/")
    body = b"".join(json.dumps(row, ensure_ascii=False).replace(", ", ",\r", 1).encode() + b"\r\n" for row in rows)
    assert b"\xe2\x80\xa8" in body and b"\xc2\x85" in body
    storage.s3.put_object(Bucket=bucket, Key=f"{prefix}{arn.rsplit('/', 1)[-1]}/{descriptor['key'].rsplit('/', 1)[-1]}"
                          ".out", Body=body)
    deliver_event(storage, job_state_change(arn, name, "Completed", MODEL_ID))
    describe(bedrock, descriptor, "Completed")
    states.expects_success("token-1")
    delivery = completion_source.poll()
    assert delivery is not None and delivery.failed_ids == []

    assert {r["recordId"]: r["output"] for r in storage.results(RUN)} == {r: f"summary: {t}" for r, t in texts.items()}
    assert storage.failure_lane() == []


@given(lines=st.lists(st.binary(max_size=30).map(lambda b: b.replace(b"\n", b"")), max_size=20),
       cuts=st.lists(st.integers(min_value=0, max_value=700), max_size=12), crlf=st.booleans())
def test_jsonl_lines_end_at_newlines_alone_wherever_the_stream_is_cut(lines: list[bytes], cuts: list[int],
                                                                      crlf: bool) -> None:
    lines = [line.rstrip(b"\r") for line in lines]  # a \r is kept inside a line, dropped before its \n
    data = b"".join(line + (b"\r\n" if crlf else b"\n") for line in lines)
    points = sorted({min(c, len(data)) for c in cuts} | {0, len(data)})
    assert list(jsonl_lines(data[a:b] for a, b in itertools.pairwise(points))) == lines
    assert list(jsonl_lines([b"last line without a newline"])) == [b"last line without a newline"]


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_only_jobs_tagged_as_the_pipelines_at_creation_may_be_stopped(stack: str) -> None:
    """The finalizer stops a job only if it carries the pipeline's owner tag, which the submitter must set on every
    job it creates (the submit tests' Bedrock refuses a request without it); the condition keys are ones AWS's
    service authorization reference lists for the actions."""
    roles = {role.package: role for role in function_roles(shipped_stack(stack))}
    prefix = function_environment("batch_inference.finalizer", stack)["JOB_NAME_PREFIX"]
    assert function_environment("batch_inference.submitter", stack)["JOB_NAME_PREFIX"] == prefix

    def conditions(package: str, action: str) -> list[Any]:
        return [s.get("Condition") for s in roles[package].statements if action in s["Action"]]

    assert conditions("batch_inference.finalizer", "bedrock:StopModelInvocationJob") == [
        {"StringEquals": {f"aws:ResourceTag/{JOB_OWNER_TAG}": prefix}}]
    assert conditions("batch_inference.submitter", "bedrock:CreateModelInvocationJob") == [
        {"StringEquals": {f"aws:RequestTag/{JOB_OWNER_TAG}": prefix}}]
    for action, key in (("StopModelInvocationJob", "aws:ResourceTag/${TagKey}"),
                        ("CreateModelInvocationJob", "aws:RequestTag/${TagKey}")):
        rows = get_action_data("bedrock", action)["bedrock"]
        assert rows and all(key in row["condition_keys"] for row in rows), action


def test_a_job_output_deleted_before_its_completion_is_read_is_empty_not_denied(
        invoke: Invoke, storage: Storage, bedrock: FakeBedrock, states: FakeStepFunctions,
        completion_source: SqsEventSource, monkeypatch: pytest.MonkeyPatch) -> None:
    """Someone deletes a finished job's output (and its manifest): S3 tells the completion handler the keys are
    missing (its role may list the job-output prefix), so the shard settles with every record in the failure lane
    as missing output instead of the message failing on AccessDenied until it is dead-lettered."""
    descriptor, ids = submitted_shard(invoke, storage, bedrock, monkeypatch, 4)
    name, _, arn = job_of(descriptor)
    _, output_uri = uris(descriptor)
    write_job_output(storage.s3, output_uri, arn.rsplit("/", 1)[-1], descriptor["key"],
                     [output_line(r, "kept") for r in ids], total=len(ids))
    bucket, _, prefix = output_uri.removeprefix("s3://").partition("/")
    for key in storage.keys(bucket, prefix):
        storage.s3.delete_object(Bucket=bucket, Key=key)
    deliver_event(storage, job_state_change(arn, name, "Completed", MODEL_ID))
    describe(bedrock, descriptor, "Completed")
    states.expects_success("token-1")
    delivery = completion_source.poll()
    assert delivery is not None and delivery.failed_ids == []

    assert storage.results(RUN) == []
    assert sorted((m["recordId"], m["reason"]) for m in storage.failure_lane()) == [
        (r, "missing_output") for r in sorted(ids)]
    assert "s3:ListObjectsV2" not in invoke.operations("completion")  # S3 consults the grant; no listing is made


HUGE = "PRODUCER-TEXT-" + "x" * 200_000  # a 200 KB value a producer controls


@contextmanager
def _log_lines(module: str) -> Iterator[list[str]]:
    """The log lines `module`'s Powertools logger writes in the block, as they reach CloudWatch."""
    logger = HANDLERS[module].logger
    lines: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    keep = Keep()
    keep.setFormatter(logger.registered_formatter)
    logger.addHandler(keep)
    try:
        yield lines
    finally:
        logger.handlers.remove(keep)


def _bounded(text: str, *, clipped: bool = False) -> bool:
    """Short, and without the value (`clipped`: at most its clipped head, as a short identifier is shown)."""
    return len(text) < 2_000 and (clipped or "PRODUCER-TEXT" not in text)


def test_a_huge_completion_message_is_logged_by_size_and_digest_never_whole(invoke: Invoke, storage: Storage,
                                                                           completion_source: SqsEventSource) -> None:
    storage.sqs.send_message(QueueUrl=COMPLETION_QUEUE_URL, MessageBody=HUGE)  # not JSON
    storage.sqs.send_message(QueueUrl=COMPLETION_QUEUE_URL, MessageBody=json.dumps(
        {"source": HUGE, "detail-type": HUGE, HUGE: 1, "detail": {"batchJobArn": HUGE}}))
    with _log_lines("completion") as lines:
        for _ in range(2):
            delivery = completion_source.poll()
            assert delivery is not None and len(delivery.failed_ids) == 1  # retried, then dead-lettered
    assert len(lines) == 2, lines
    assert _bounded(lines[0]) and digest(HUGE, 16) in lines[0]  # the body: its size and digest only
    assert _bounded(lines[1], clipped=True)  # the envelope's source and detail-type, clipped


@pytest.mark.parametrize(("module", "event"), [
    ("sharder", {"runId": "run-1", "corpusKey": HUGE}),
    ("sharder", {"runId": HUGE, "corpusKey": "corpus/a.jsonl"}),
    ("submitter", {"runId": "run-1", "taskToken": "t", "shard": {"shardId": "00000", "bucket": "b" * 3,
                                                                 "key": HUGE, "records": 1}}),
    ("finalizer", {"status": "FAILED", "runId": "run-1", "corpusKey": HUGE}),
])
def test_a_huge_task_input_fails_with_a_bounded_error_that_does_not_repeat_it(invoke: Invoke, storage: Storage,
                                                                              module: str,
                                                                              event: dict[str, Any]) -> None:
    """The error becomes the Lambda's error log and the Step Functions cause: it names the field, not its value."""
    with _log_lines(module) as lines, pytest.raises(InvalidTaskInputError) as raised:
        invoke(module, event)
    assert _bounded(str(raised.value)) and all(_bounded(line) for line in lines)
    assert "corpusKey" in str(raised.value) or "runId" in str(raised.value) or "key" in str(raised.value)


def test_a_huge_run_ending_is_refused_with_a_bounded_error(invoke: Invoke, storage: Storage) -> None:
    body = json.dumps({"detail-type": HUGE, "detail": {"name": "run-1", "status": HUGE}})
    event = {"Records": [{"messageId": "m-1", "receiptHandle": "r", "body": body, "attributes": {},
                          "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                          "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q", "awsRegion": "us-east-1"}]}
    with _log_lines("run_ended") as lines:
        response = invoke("run_ended", event)
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert all(_bounded(line, clipped=True) for line in lines)
    with pytest.raises(InvalidTaskInputError) as raised:
        run_ended._record(SQSRecord(event["Records"][0]))
    assert _bounded(str(raised.value), clipped=True)
