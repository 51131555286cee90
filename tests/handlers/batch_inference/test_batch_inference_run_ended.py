"""Runs that end without reaching Finalize: Step Functions' execution status change event, delivered through the
run-endings queue, becomes the run's manifest and one BatchRunCompleted per unsuccessful attempt; a redrive that
then succeeds publishes its success, and a late ending of an earlier attempt does not contradict it."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from batch_inference import jobs, run_ended
from batch_inference.exceptions import InvalidTaskInputError
from tests.handlers.batch_inference.conftest import (
    JOBS_TABLE,
    OUTPUT_BUCKET,
    RUN_ENDINGS_URL,
    STATE_MACHINE_ARN,
    Invoke,
    Storage,
)
from tests.handlers.batch_inference.fakes import FakeBedrock, FakeStepFunctions
from tests.handlers.batch_inference.helpers import CORPUS, RUN
from tests.handlers.conftest import Delivery, SqsEventSource

MACHINE = "arn:aws:states:us-east-1:123456789012:stateMachine:ai-pipelines-dev-batchinf-runs"


def status_change(status: str, *, redrives: int = 0, error: str = "States.ExceedToleratedFailureThreshold",
                  cause: str = "The specified tolerated failure threshold was exceeded") -> dict[str, Any]:
    """Step Functions' event for an execution that ended, as it puts it on the default bus."""
    return {"version": "0", "id": "2f2a7c2e-0000-4000-8000-000000000000",
            "detail-type": "Step Functions Execution Status Change", "source": "aws.states",
            "account": "123456789012", "time": "2026-06-27T05:00:00Z", "region": "us-east-1",
            "resources": [f"{MACHINE.replace(':stateMachine:', ':execution:')}:{RUN}"],
            "detail": {"executionArn": f"{MACHINE.replace(':stateMachine:', ':execution:')}:{RUN}",
                       "stateMachineArn": MACHINE, "name": RUN, "status": status,
                       "startDate": 1782530000000, "stopDate": 1782537200000,
                       "input": json.dumps({"corpusKey": CORPUS}), "inputDetails": {"included": True},
                       "output": None, "outputDetails": None, "error": error, "cause": cause,
                       "redriveCount": redrives, "redriveStatus": "REDRIVABLE"}}


def deliver(storage: Storage, event: dict[str, Any]) -> None:
    storage.sqs.send_message(QueueUrl=RUN_ENDINGS_URL, MessageBody=json.dumps(event))


def test_a_failed_run_publishes_its_failure_once_per_attempt_until_a_redrive_succeeds(
        invoke: Invoke, storage: Storage, run_endings_source: SqsEventSource) -> None:
    deliver(storage, status_change("FAILED"))
    deliver(storage, status_change("FAILED"))  # EventBridge delivers at least once
    delivery = run_endings_source.poll()
    assert delivery is not None and delivery.failed_ids == []
    (event,) = storage.published()
    detail = event["detail"]
    assert (detail["runId"], detail["status"], detail["counts"]) == (RUN, "FAILED", None)
    assert detail["error"] == {"Error": "States.ExceedToleratedFailureThreshold",
                               "Cause": "The specified tolerated failure threshold was exceeded"}
    assert detail["corpus"]["key"] == CORPUS
    manifest = json.loads(storage.read(OUTPUT_BUCKET, f"runs/{RUN}/manifest.json"))
    assert manifest["status"] == "FAILED"

    deliver(storage, status_change("TIMED_OUT", redrives=1, error="States.Timeout", cause="timed out"))
    run_endings_source.poll()  # the redriven attempt ends another way: the next stage hears of it too
    assert [e["detail"]["status"] for e in storage.published()] == ["TIMED_OUT"]

    sharding = {"runId": RUN, "mode": "empty", "corpus": {"bucket": "x", "key": CORPUS}, "counts": {}}
    invoke("finalizer", {"status": "SUCCEEDED", "runId": RUN, "corpusKey": CORPUS, "sharding": sharding,
                         "map": {}})  # a second redrive succeeds
    assert [e["detail"]["status"] for e in storage.published()] == ["SUCCEEDED"]

    deliver(storage, status_change("ABORTED", redrives=2))  # late, or an operator's stop after the success
    run_endings_source.poll()
    assert storage.published() == []
    assert json.loads(storage.read(OUTPUT_BUCKET, f"runs/{RUN}/manifest.json"))["status"] == "SUCCEEDED"


def test_a_message_that_is_not_a_run_ending_fails_alone(invoke: Invoke, storage: Storage,
                                                        run_endings_source: SqsEventSource) -> None:
    storage.sqs.send_message(QueueUrl=RUN_ENDINGS_URL, MessageBody="not json")
    deliver(storage, status_change("SUCCEEDED"))  # the rule never routes a success; refused if one arrives
    deliver(storage, status_change("ABORTED", error="", cause=""))
    delivery = run_endings_source.poll()
    assert delivery is not None and len(delivery.failed_ids) == 2
    assert [e["detail"]["status"] for e in storage.published()] == ["ABORTED"]
    # What each refused message's error says (Powertools reports only the ids in the batch response).
    for body, says in (("not json", "run-ended message m-1 is not JSON"),
                       (json.dumps(status_change("SUCCEEDED")), "run-ended message m-1 is not an unsuccessful run "
                                                                "ending: 'Step Functions Execution Status Change' "
                                                                "with status 'SUCCEEDED'")):
        with pytest.raises(InvalidTaskInputError, match=re.escape(says)):
            run_ended._record(SQSRecord({"messageId": "m-1", "body": body}))


def _failure_waits_for(storage: Storage, source: SqsEventSource, held: str) -> Delivery:
    """A FAILED ending delivered while another copy holds the run's `held` publication claim: it fails alone
    (PublicationBusyError, retried later) and publishes nothing."""
    storage.ddb.put_item(TableName=JOBS_TABLE, Item={"jobKey": {"S": f"run#{RUN}#{held}"},
                                                     "claimedUntil": {"N": str(int(time.time()) + 60)}})
    deliver(storage, status_change("FAILED"))
    delivery = source.poll()
    assert delivery is not None and len(delivery.failed_ids) == 1 and storage.published() == []
    return delivery


def _redeliver(storage: Storage, delivery: Delivery) -> None:
    storage.sqs.change_message_visibility(QueueUrl=RUN_ENDINGS_URL, VisibilityTimeout=0,
                                          ReceiptHandle=delivery.event["Records"][0]["receiptHandle"])


def test_a_copy_that_finds_the_ending_being_published_is_retried_and_publishes_nothing_twice(
        invoke: Invoke, storage: Storage, run_endings_source: SqsEventSource) -> None:
    # Another copy of the event (two deliveries in concurrent invocations) holds the claim and is publishing.
    delivery = _failure_waits_for(storage, run_endings_source, "FAILED#0")
    # That copy crashed: its claim runs out, and the retried message publishes the ending, once.
    key = {"jobKey": {"S": f"run#{RUN}#FAILED#0"}}
    storage.ddb.update_item(TableName=JOBS_TABLE, Key=key, UpdateExpression="SET claimedUntil = :past",
                            ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}})
    _redeliver(storage, delivery)
    delivery = run_endings_source.poll()
    assert delivery is not None and delivery.failed_ids == []
    assert [e["detail"]["status"] for e in storage.published()] == ["FAILED"]
    item = storage.job_item(f"run#{RUN}#FAILED#0")
    assert item is not None and "publishedAt" in item and "claimedUntil" not in item


def test_an_ending_whose_event_was_missed_is_found_by_the_reconciler_and_reported_once(
        invoke: Invoke, storage: Storage, states: FakeStepFunctions, bedrock: FakeBedrock,
        run_endings_source: SqsEventSource) -> None:
    now = datetime.now(UTC)

    def execution(name: str, stopped_minutes_ago: float, redrives: int = 0) -> dict[str, Any]:
        return {"executionArn": f"{STATE_MACHINE_ARN.replace(':stateMachine:', ':execution:')}:{name}",
                "stateMachineArn": STATE_MACHINE_ARN, "name": name, "status": "FAILED",
                "startDate": now - timedelta(hours=2), "stopDate": now - timedelta(minutes=stopped_minutes_ago),
                "redriveCount": redrives}

    # EventBridge lost the event of RUN's failure; another run failed a minute ago (its event may be on its way).
    missed, recent = execution(RUN, 30), execution("run-2026-06-28", 1)
    bedrock.lists([])
    states.lists_ended_runs(STATE_MACHINE_ARN, "FAILED", [recent, missed])
    states.describes_execution(missed["executionArn"], status="FAILED", input=json.dumps({"corpusKey": CORPUS}),
                               error="States.ExceedToleratedFailureThreshold", cause="threshold exceeded")
    for status in ("TIMED_OUT", "ABORTED"):
        states.lists_ended_runs(STATE_MACHINE_ARN, status)
    assert invoke("reconciler", {"source": "schedule"})["endingsRequeued"] == 1
    delivery = run_endings_source.poll()
    assert delivery is not None and delivery.failed_ids == []
    (event,) = storage.published()
    assert (event["detail"]["runId"], event["detail"]["status"]) == (RUN, "FAILED")
    assert event["detail"]["error"] == {"Error": "States.ExceedToleratedFailureThreshold",
                                       "Cause": "threshold exceeded"}

    # The next tick finds it reported and requeues nothing; the late original event changes nothing either.
    bedrock.lists([])
    states.lists_ended_runs(STATE_MACHINE_ARN, "FAILED", [missed])
    for status in ("TIMED_OUT", "ABORTED"):
        states.lists_ended_runs(STATE_MACHINE_ARN, status)
    assert invoke("reconciler", {"source": "schedule"})["endingsRequeued"] == 0
    deliver(storage, status_change("FAILED"))
    run_endings_source.poll()
    assert storage.published() == []


def test_a_redriven_run_that_started_before_the_window_is_still_found_on_a_later_page(
        invoke: Invoke, storage: Storage, states: FakeStepFunctions, bedrock: FakeBedrock) -> None:
    now = datetime.now(UTC)
    arn = STATE_MACHINE_ARN.replace(":stateMachine:", ":execution:")
    old = {"executionArn": f"{arn}:run-old", "stateMachineArn": STATE_MACHINE_ARN, "name": "run-old",
           "status": "FAILED", "startDate": now - timedelta(days=30), "stopDate": now - timedelta(days=29)}
    # Redriven yesterday, failed again 30 minutes ago: listed by its first start, days before the window.
    redriven = {**old, "executionArn": f"{arn}:{RUN}", "name": RUN, "startDate": now - timedelta(days=9),
                "stopDate": now - timedelta(minutes=30), "redriveCount": 1}
    bedrock.lists([])
    states.lists_ended_runs(STATE_MACHINE_ARN, "FAILED", [old], next_page="page-2")
    states.lists_ended_runs(STATE_MACHINE_ARN, "FAILED", [redriven], page="page-2")
    states.describes_execution(redriven["executionArn"], input=json.dumps({"corpusKey": CORPUS}))
    for status in ("TIMED_OUT", "ABORTED"):
        states.lists_ended_runs(STATE_MACHINE_ARN, status)
    assert invoke("reconciler", {"source": "schedule"})["endingsRequeued"] == 1
    (message,) = storage.drain(RUN_ENDINGS_URL)
    detail = json.loads(message["Body"])["detail"]
    assert (detail["name"], detail["status"], detail["redriveCount"]) == (RUN, "FAILED", 1)


def test_a_failure_is_published_when_the_runs_success_was_claimed_but_never_published(
        invoke: Invoke, storage: Storage, run_endings_source: SqsEventSource) -> None:
    # Finalize claimed the success and is publishing it: the failure waits (retried), publishing nothing yet.
    delivery = _failure_waits_for(storage, run_endings_source, "SUCCEEDED")
    # Every attempt to publish the success failed (its claim released) and the run then failed: the next stage
    # hears of the failure.
    storage.ddb.put_item(TableName=JOBS_TABLE, Item={"jobKey": {"S": f"run#{RUN}#SUCCEEDED"}})
    _redeliver(storage, delivery)
    run_endings_source.poll()
    assert [e["detail"]["status"] for e in storage.published()] == ["FAILED"]
    assert json.loads(storage.read(OUTPUT_BUCKET, f"runs/{RUN}/manifest.json"))["status"] == "FAILED"


def test_a_copy_whose_claim_ran_out_cannot_release_or_mark_the_claim_another_copy_holds(storage: Storage) -> None:
    table = jobs.JobsTable(storage.ddb, JOBS_TABLE, 86400)
    assert table.claim_publication(RUN, "FAILED#0", "first") == jobs.CLAIMED
    key = {"jobKey": {"S": f"run#{RUN}#FAILED#0"}}
    storage.ddb.update_item(TableName=JOBS_TABLE, Key=key, UpdateExpression="SET claimedUntil = :past",
                            ExpressionAttributeValues={":past": {"N": str(int(time.time()) - 1)}})
    assert table.claim_publication(RUN, "FAILED#0", "second") == jobs.CLAIMED  # the first copy's claim ran out
    table.release_publication(RUN, "FAILED#0", "first")  # the first copy, late, gives up: not the second's claim
    table.mark_published(RUN, "FAILED#0", "first", "event-of-the-first")
    item = storage.job_item(f"run#{RUN}#FAILED#0")
    assert item is not None and item["claimToken"] == "second" and "claimedUntil" in item
    assert "publishedAt" not in item
    assert table.claim_publication(RUN, "FAILED#0", "third") == jobs.BUSY
    table.mark_published(RUN, "FAILED#0", "second", "event-of-the-second")
    assert table.claim_publication(RUN, "FAILED#0", "third") == jobs.PUBLISHED
