"""Mode auto end to end: a small change set ingested and deleted directly, followed to its end; a burst settled into
one job; a refusal of direct ingestion handed to a job. S3 -> SQS in moto, Bedrock behind a Stubber that validates
every request and answer against botocore's bedrock-agent model."""

from __future__ import annotations

import json

import pytest

from tests.handlers.kb_sync.names import BUCKET, ENVIRONMENT, PREFIX
from tests.support import faults

CHECK_DELAY = 120  # the function's CHECK_DELAY_SECONDS default
SETTLE = 60  # BURST_SETTLE_SECONDS default


def uri(key: str) -> str:
    return f"s3://{BUCKET}/{key}"


def metric_sums(capsys) -> dict[str, float]:
    sums: dict[str, float] = {}
    for line in capsys.readouterr().out.splitlines():
        if line.startswith('{"_aws"'):
            blob = json.loads(line)
            for definition in blob["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                sums[definition["Name"]] = sums.get(definition["Name"], 0) + sum(blob[definition["Name"]])
    return sums


def settled(logs) -> dict:
    return logs.named("Batch settled")[-1]["outcomes"]


def test_the_dev_stack_runs_in_auto_mode():
    assert ENVIRONMENT["SYNC_MODE"] == "auto" and ENVIRONMENT["BURST_THRESHOLD_DOCUMENTS"] == "25"


def test_a_small_change_set_is_ingested_and_deleted_directly_without_a_job(pipeline, event_source, bedrock, logs):
    pipeline.put(f"{PREFIX}old.pdf")
    for n in range(12):
        pipeline.put(f"{PREFIX}new/{n:02d}.pdf")
    pipeline.delete(f"{PREFIX}old.pdf")  # its last change wins: only deleted, never ingested

    delivery = event_source.poll(raise_errors=True)

    assert delivery.failed_ids == [] and bedrock.requests == []  # no StartIngestionJob
    ingests = bedrock.called("IngestKnowledgeBaseDocuments")
    deletes = bedrock.called("DeleteKnowledgeBaseDocuments")
    # The service model takes 10 documents a request: 12 creations are two requests, each with its own token.
    assert [len(r["documents"]) for r in ingests] == [10, 2]
    assert ingests[0]["documents"][0] == {"content": {"dataSourceType": "S3",
                                                      "s3": {"s3Location": {"uri": uri(f"{PREFIX}new/00.pdf")}}}}
    assert deletes[0]["documentIdentifiers"] == [{"dataSourceType": "S3", "s3": {"uri": uri(f"{PREFIX}old.pdf")}}]
    assert len({r["clientToken"] for r in ingests + deletes}) == 3
    assert sum(len(r["documents"]) for r in ingests) == 12
    assert settled(logs) == {"ingested-directly": 14, "skipped": 1}
    assert pipeline.attribute("ApproximateNumberOfMessagesDelayed") == 1  # the document check


def test_the_document_check_follows_direct_ingestion_to_its_end(pipeline, event_source, bedrock, clock, logs,
                                                                 capsys):
    pipeline.put(f"{PREFIX}a.pdf")
    event_source.poll(raise_errors=True)
    clock.advance(CHECK_DELAY + 1)

    event_source.poll(raise_errors=True)  # still STARTING: looked at again later
    (first,) = logs.named("Direct ingestion checked")
    assert (first["pending"], first["done"], first["check"]) == (1, 0, 1)

    bedrock.settle_documents()
    clock.advance(CHECK_DELAY + 1)
    event_source.poll(raise_errors=True)

    last = logs.named("Direct ingestion checked")[-1]
    assert (last["pending"], last["done"], last["check"]) == (0, 1, 2)
    assert event_source.poll() is None and pipeline.attribute("ApproximateNumberOfMessagesDelayed") == 0
    assert metric_sums(capsys)["DirectDocumentsDone"] == 1
    assert bedrock.requests == []


@pytest.mark.parametrize("retries", [0, 2])
def test_a_document_that_keeps_failing_is_retried_then_handed_to_a_job_and_pages(
        pipeline, event_source, bedrock, clock, logs, capsys, configure, retries):
    configure(max_document_retries=retries)
    broken = uri(f"{PREFIX}broken.pdf")
    pipeline.put(f"{PREFIX}broken.pdf")
    pipeline.put(f"{PREFIX}fine.pdf")
    event_source.poll(raise_errors=True)
    for _ in range(retries + 1):
        bedrock.document_fails.add(broken)
        bedrock.settle_documents()
        clock.advance(CHECK_DELAY + 1)
        event_source.poll(raise_errors=True)

    # Each retry re-submitted only the failed document, under a token of its own.
    submitted = [uris for _, uris in bedrock.submissions]
    assert submitted == [[uri(f"{PREFIX}broken.pdf"), uri(f"{PREFIX}fine.pdf")], *[[broken]] * retries]
    (handed,) = logs.named("Directly ingested documents failed")
    assert handed["level"] == "ERROR" and handed["documents"] == 1
    assert metric_sums(capsys)["DirectDocumentsFailed"] == 1  # alarmed: failed-direct-documents

    follow_up = event_source.poll(raise_errors=True)  # the hand-over has no delay
    assert [json.loads(r["body"])["reason"] for r in follow_up.event["Records"]] == ["handed-over"]
    assert len(bedrock.jobs) == 1 and settled(logs) == {"covered-by-job": 1}  # nothing lost: a job syncs it


def test_a_refused_direct_ingestion_falls_back_to_a_job(pipeline, event_source, bedrock, logs):
    bedrock.fail_next("ValidationException", 400, "The data source does not allow direct ingestion of this document",
                      operation="IngestKnowledgeBaseDocuments")
    pipeline.put(f"{PREFIX}a.pdf")

    delivery = event_source.poll(raise_errors=True)

    assert delivery.failed_ids == [] and len(bedrock.jobs) == 1
    (refused,) = logs.named("Direct ingestion refused")
    assert refused["code"] == "ValidationException"
    assert settled(logs) == {"covered-by-job": 1, "skipped": 1}


@faults.injects("downstream throttling")
def test_throttled_direct_ingestion_retries_the_batch_and_does_the_work_once(pipeline, event_source, bedrock, clock):
    bedrock.fail_next("ThrottlingException", 429, "Rate exceeded", operation="IngestKnowledgeBaseDocuments")
    faults.injected("downstream throttling", "IngestKnowledgeBaseDocuments answers ThrottlingException once")
    pipeline.put(f"{PREFIX}a.pdf")

    assert event_source.poll().error is not None  # the whole batch comes back
    clock.advance(event_source.visibility_timeout + 1)
    assert event_source.poll(raise_errors=True).failed_ids == []
    assert bedrock.submissions == [("IngestKnowledgeBaseDocuments", [uri(f"{PREFIX}a.pdf")])]


def test_a_burst_split_over_batches_settles_into_one_job(pipeline, event_source, bedrock, clock, logs):
    event_source.batch_size = 100  # the burst arrives in three batches
    for n in range(250):
        pipeline.put(f"{PREFIX}burst/{n:03d}.md")

    batches = [event_source.poll(raise_errors=True) for _ in range(3)]

    assert [len(b.message_ids) for b in batches] == [100, 100, 51]  # with S3's test event
    assert bedrock.requests == [] and len(logs.named("Burst: its ingestion job waits")) == 3
    clock.advance(SETTLE + 1)
    event_source.batch_size = 1
    for _ in range(3):  # the three settled follow-ups, one at a time (the worst case)
        assert event_source.poll(raise_errors=True).failed_ids == []

    # The first starts the job after the whole burst landed; it covers the other two, which start nothing.
    assert len(bedrock.jobs) == 1 and len(bedrock.requests) == 3
    assert len(logs.named("Ingestion job already running and started after every change")) == 2
    assert event_source.poll() is None  # no follow-up: only the job's check waits
    assert pipeline.attribute("ApproximateNumberOfMessagesDelayed") == 1


def test_a_running_job_that_started_before_the_change_does_not_cover_it(pipeline, event_source, bedrock, clock, logs):
    event_source.batch_size = 1000
    for n in range(30):
        pipeline.put(f"{PREFIX}burst/{n:02d}.md")
    event_source.poll(raise_errors=True)
    clock.advance(SETTLE + 1)
    event_source.poll(raise_errors=True)  # the burst's job starts
    clock.advance(30)
    for n in range(30):  # a second burst while the first job runs
        pipeline.put(f"{PREFIX}second/{n:02d}.md")
    event_source.poll(raise_errors=True)
    clock.advance(SETTLE + 1)

    event_source.poll(raise_errors=True)

    assert len(bedrock.jobs) == 1 and logs.named("Ingestion job already running (or")  # carried, not covered
    assert not logs.named("Ingestion job already running and started after every change")
