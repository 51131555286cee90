"""Every started job is followed to its end by delayed checks on the pipeline's own queue (no function waits), and
a quota refusal is waited out like a conflict, never dead-lettered."""

from __future__ import annotations

import json

import pytest

from tests.handlers.kb_sync.names import DELAY_SECONDS, MAX_RECEIVE_COUNT, PREFIX
from tests.handlers.kb_sync.test_kb_sync_direct import CHECK_DELAY, metric_sums, settled
from tests.support import faults

pytestmark = pytest.mark.usefixtures("jobs_mode")


def start_one_job(pipeline, event_source, bedrock) -> str:
    pipeline.put(f"{PREFIX}a.pdf")
    event_source.poll(raise_errors=True)
    (job,) = bedrock.jobs
    return job["ingestionJobId"]


def test_a_running_job_is_checked_again_until_it_completes(pipeline, event_source, bedrock, clock, logs, capsys):
    job_id = start_one_job(pipeline, event_source, bedrock)
    clock.advance(CHECK_DELAY + 1)

    check = event_source.poll(raise_errors=True)  # still running

    assert [json.loads(r["body"]) for r in check.event["Records"]] == [
        {"source": "job-check", "ingestionJobId": job_id, "check": 1}]
    assert settled(logs) == {"checked": 1}
    assert pipeline.attribute("ApproximateNumberOfMessagesDelayed") == 1  # check 2
    bedrock.finish_running_job()
    clock.advance(CHECK_DELAY + 1)
    event_source.poll(raise_errors=True)

    (done,) = logs.named("Ingestion job completed")
    assert (done["ingestionJobId"], done["outcome"], done["check"]) == (job_id, "COMPLETE", 2)
    sums = metric_sums(capsys)
    assert (sums["IngestionJobsStarted"], sums["IngestionJobsCompleted"]) == (1, 1)
    assert sums.get("IngestionJobsFailed", 0) == 0 and sums["IngestionDocumentsFailed"] == 0
    assert event_source.poll() is None and pipeline.attribute("ApproximateNumberOfMessagesDelayed") == 0
    assert len(bedrock.called("GetIngestionJob")) == 2


def test_a_complete_job_with_failed_documents_is_counted_and_logged_as_an_error(
        pipeline, event_source, bedrock, clock, logs, capsys):
    job_id = start_one_job(pipeline, event_source, bedrock)
    bedrock.finish_running_job("COMPLETE", failed_documents=3)
    clock.advance(CHECK_DELAY + 1)

    event_source.poll(raise_errors=True)

    (entry,) = logs.named("Ingestion job completed with failed documents")
    assert entry["level"] == "ERROR" and entry["ingestionJobId"] == job_id and entry["failedDocuments"] == 3
    assert metric_sums(capsys)["IngestionDocumentsFailed"] == 3  # alarmed: failed-ingestion-documents


@pytest.mark.parametrize("status", ["FAILED", "STOPPED"])
def test_a_failed_or_stopped_job_is_counted_and_logged_with_its_reasons(
        pipeline, event_source, bedrock, clock, logs, capsys, status):
    job_id = start_one_job(pipeline, event_source, bedrock)
    bedrock.finish_running_job(status, reasons=("The embedding model was throttled",))
    clock.advance(CHECK_DELAY + 1)

    event_source.poll(raise_errors=True)

    (entry,) = logs.named("Ingestion job did not complete")
    assert (entry["ingestionJobId"], entry["outcome"]) == (job_id, status)
    assert entry["failureReasons"] == ["The embedding model was throttled"]
    assert metric_sums(capsys)["IngestionJobsFailed"] == 1  # alarmed: failed-ingestion-jobs


def test_a_job_still_running_after_the_last_check_is_reported_unfinished(
        pipeline, event_source, bedrock, clock, logs, capsys, configure):
    configure(max_job_checks=2)
    start_one_job(pipeline, event_source, bedrock)
    for _ in range(2):
        clock.advance(CHECK_DELAY + 1)
        event_source.poll(raise_errors=True)

    (entry,) = logs.named("Ingestion job did not complete")
    assert entry["outcome"] == "UNFINISHED" and entry["check"] == 2
    assert metric_sums(capsys)["IngestionJobsFailed"] == 1
    assert pipeline.attribute("ApproximateNumberOfMessagesDelayed") == 0  # no longer watched


@faults.injects("missed completion event")
def test_a_check_that_cannot_read_the_job_fails_alone(pipeline, event_source, bedrock, clock, logs):
    start_one_job(pipeline, event_source, bedrock)
    bedrock.fail_next("ThrottlingException", 429, "Rate exceeded", operation="GetIngestionJob")
    faults.injected("missed completion event", "the job's status cannot be read at its check")
    clock.advance(CHECK_DELAY + 1)
    pipeline.put(f"{PREFIX}b.pdf")  # a change in the same batch still starts its job
    bedrock.finish_running_job()

    delivery = event_source.poll(raise_errors=True)

    checks = [r["messageId"] for r in delivery.event["Records"] if "job-check" in r["body"]]
    assert delivery.failed_ids == checks and len(bedrock.jobs) == 2
    assert settled(logs) == {"covered-by-job": 1, "check-failed": 1}


def test_a_quota_refusal_is_waited_out_and_never_dead_lettered(pipeline, event_source, bedrock, clock, logs, capsys):
    """The account's five concurrent jobs are held by other stacks for longer than MAX_FOLLOW_UPS conflicts allow."""
    bedrock.hold_account_quota()
    pipeline.put(f"{PREFIX}a.pdf")
    event_source.poll(raise_errors=True)
    waits = 10  # more than MAX_FOLLOW_UPS (6) and than the queue's maxReceiveCount
    assert waits > MAX_RECEIVE_COUNT
    for _ in range(waits):
        clock.advance(DELAY_SECONDS + 1)
        delivery = event_source.poll(raise_errors=True)
        assert delivery.failed_ids == []
        (body,) = [json.loads(r["body"]) for r in delivery.event["Records"]]
        assert (body["reason"], body["generation"]) == ("quota", 0)  # a quota wait is not a conflict

    bedrock.hold_account_quota(False)
    clock.advance(DELAY_SECONDS + 1)
    event_source.poll(raise_errors=True)

    assert len(bedrock.jobs) == 1 and pipeline.dead_letters() == []
    assert not logs.named("Knowledge base has refused ingestion jobs")  # never exhausted
    sums = metric_sums(capsys)
    assert sums["IngestionQuotaWaits"] == waits + 1 and sums.get("IngestionJobConflicts", 0) == 0
    assert sums.get("SyncFailures", 0) == 0
