"""The handler end to end: S3 -> SQS in moto, Lambda's event source mapping, Bedrock behind a Stubber.

Each test also counts records: every message handed to the function ends in exactly one of covered by a started
job, carried by a follow-up, skipped by design, or a batch item failure (and then the DLQ).
"""

from __future__ import annotations

import hashlib
import json

import pytest
from botocore.stub import Stubber

from kb_sync.exceptions import FollowUpSendError, IngestionStartError
from tests.handlers.kb_sync.names import DELAY_SECONDS, KNOWLEDGE_BASE_ID, MAX_RECEIVE_COUNT, PREFIX, QUEUE
from tests.support import faults

# The job path: every change through StartIngestionJob (direct ingestion has its own tests).
pytestmark = pytest.mark.usefixtures("jobs_mode")

DELAY = DELAY_SECONDS


def bodies(delivery) -> list[dict]:
    return [json.loads(record["body"]) for record in delivery.event["Records"]]


def changed_keys(logs) -> set[tuple[str, str]]:
    """(kind, key digest) of every logged change: keys are logged as the digest of the decoded key, never as is."""
    return {(c["kind"], c["keySha256"]) for entry in logs.named("Documents changed") for c in entry["changes"]}


def key_digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def settled(logs) -> dict:
    (entry,) = logs.named("Batch settled")[-1:]
    return entry


def test_changes_under_the_prefix_start_one_job_with_decoded_keys(pipeline, event_source, bedrock, logs):
    pipeline.put(f"{PREFIX}red flower+final é.pdf")
    pipeline.put(f"{PREFIX}notes.txt")
    pipeline.put("outside/ignored.txt")  # outside the prefix: S3 never notifies
    pipeline.delete(f"{PREFIX}notes.txt")

    delivery = event_source.poll(raise_errors=True)

    assert len(delivery.message_ids) == 4  # S3's test event + 3 changes under the prefix
    assert delivery.failed_ids == []
    assert changed_keys(logs) == {
        ("created", key_digest(f"{PREFIX}red flower+final é.pdf")),
        ("created", key_digest(f"{PREFIX}notes.txt")),
        ("removed", key_digest(f"{PREFIX}notes.txt")),
    }
    (skipped,) = logs.named("Skipped message")
    assert skipped["reason"] == "s3-test-event"
    assert len(bedrock.jobs) == 1 and bedrock.requests[0]["knowledgeBaseId"] == KNOWLEDGE_BASE_ID
    assert settled(logs)["outcomes"] == {"covered-by-job": 3, "skipped": 1}
    assert pipeline.attribute("ApproximateNumberOfMessages") == 0
    assert event_source.poll() is None


def test_a_burst_becomes_one_batch_and_one_job(pipeline, event_source, bedrock, logs):
    for n in range(150):
        pipeline.put(f"{PREFIX}burst/{n:03d}.md")

    delivery = event_source.poll(raise_errors=True)

    assert len(delivery.message_ids) == 151 and delivery.failed_ids == []
    assert len(bedrock.requests) == 1 and len(bedrock.jobs) == 1
    parts = logs.named("Documents changed")
    assert [entry["part"] for entry in parts] == [1, 2] and parts[0]["counts"] == {"created": 150}
    assert len(changed_keys(logs)) == 150


def test_only_a_test_event_starts_nothing(pipeline, event_source, bedrock, logs):
    delivery = event_source.poll(raise_errors=True)

    assert bodies(delivery)[0]["Event"] == "s3:TestEvent"
    assert delivery.failed_ids == [] and bedrock.requests == []
    assert settled(logs)["outcomes"] == {"skipped": 1}


def test_removals_alone_start_a_job(pipeline, event_source, bedrock):
    pipeline.put(f"{PREFIX}gone.pdf")
    event_source.poll(raise_errors=True)
    bedrock.finish_running_job()

    pipeline.delete(f"{PREFIX}gone.pdf")
    event_source.poll(raise_errors=True)

    assert len(bedrock.jobs) == 2


@faults.injects("duplicate delivery")
def test_the_same_batch_delivered_twice_starts_one_job(pipeline, event_source, bedrock, invoke, clock, logs):
    pipeline.put(f"{PREFIX}a.pdf")
    pipeline.put(f"{PREFIX}b.pdf")
    messages = event_source.receive()

    invoke(
        event_source.event(messages)
    )  # the job starts, then the invocation times out before SQS hears back: nothing is deleted
    clock.advance(event_source.visibility_timeout + 1)
    faults.injected("duplicate delivery", "the batch, never acknowledged, is delivered again")
    redelivered = event_source.poll(raise_errors=True)

    assert sorted(redelivered.message_ids) == sorted(m["MessageId"] for m in messages)
    assert len(bedrock.requests) == 2 and bedrock.tokens[0] == bedrock.tokens[1]
    assert len(bedrock.jobs) == 1  # Bedrock ignored the repeated clientToken
    started = logs.named("Ingestion job started")
    assert {entry["ingestionJobId"] for entry in started} == {bedrock.jobs[0]["ingestionJobId"]}
    assert pipeline.attribute("ApproximateNumberOfMessages") == 0


def test_a_running_job_gets_a_delayed_follow_up_that_later_starts_the_job(pipeline, event_source, bedrock, clock, logs):
    bedrock.start_elsewhere()
    pipeline.put(f"{PREFIX}late.pdf")

    first = event_source.poll(raise_errors=True)

    assert first.failed_ids == [] and bedrock.jobs == [bedrock.running]  # nothing new started
    assert settled(logs)["outcomes"] == {"carried-by-follow-up": 1, "skipped": 1}
    (sent,) = logs.named("Ingestion job already running")
    assert sent["followUpGeneration"] == 1 and sent["delaySeconds"] == DELAY
    # The batch is acknowledged; the follow-up waits out its delay on the same queue.
    assert pipeline.attribute("ApproximateNumberOfMessagesDelayed") == 1
    clock.advance(DELAY - 1)
    assert event_source.poll() is None

    bedrock.finish_running_job()
    clock.advance(2)
    second = event_source.poll(raise_errors=True)

    (body,) = bodies(second)
    assert body == {"source": "follow-up", "generation": 1, "origin": bedrock.tokens[0], "reason": "conflict",
                    "changedBefore": body["changedBefore"]}
    assert second.failed_ids == [] and len(bedrock.jobs) == 2
    assert bedrock.tokens[1] != bedrock.tokens[0]
    assert settled(logs)["outcomes"] == {"covered-by-job": 1}
    assert pipeline.attribute("ApproximateNumberOfMessages") == 0
    # Only the new job's first check waits on the queue.
    assert pipeline.attribute("ApproximateNumberOfMessagesDelayed") == 1


@faults.injects("concurrent duplicate")
def test_copies_of_one_follow_up_start_at_most_one_job(pipeline, event_source, bedrock, clock):
    bedrock.start_elsewhere()
    pipeline.put(f"{PREFIX}doc.pdf")
    event_source.poll(raise_errors=True)
    clock.advance(DELAY + 1)
    # A retried invocation would send the same follow-up again; a standard queue keeps both copies.
    (original,) = event_source.receive()
    pipeline.send(original["Body"])
    faults.injected("concurrent duplicate", "a second copy of the follow-up on the queue")
    clock.advance(event_source.visibility_timeout + 1)
    bedrock.finish_running_job()

    event_source.batch_size = 1
    deliveries = [event_source.poll(raise_errors=True), event_source.poll(raise_errors=True)]

    assert [len(d.message_ids) for d in deliveries] == [1, 1]
    assert bedrock.tokens[1] == bedrock.tokens[2]
    assert len(bedrock.jobs) == 2  # the one started elsewhere, and one for both copies
    assert event_source.poll() is None


def test_the_follow_up_bound_fails_loudly_and_dead_letters_only_the_exhausted_request(
    pipeline, event_source, bedrock, clock, configure, logs
):
    configure(max_follow_ups=2)
    bedrock.start_elsewhere()  # and it never finishes
    pipeline.put(f"{PREFIX}stuck.pdf")

    generations = []
    for _ in range(3):
        delivery = event_source.poll(raise_errors=True)
        generations.append([body.get("generation", 0) for body in bodies(delivery) if "Event" not in body])
        clock.advance(DELAY + 1)

    assert generations == [[0], [1], [2]]
    assert delivery.failed_ids == delivery.message_ids  # generation 2 met the bound
    (exhausted,) = logs.named("Knowledge base has refused ingestion jobs")
    assert exhausted["level"] == "ERROR" and exhausted["messageIds"] == delivery.message_ids
    assert pipeline.attribute("ApproximateNumberOfMessagesDelayed") == 0  # no third follow-up

    # SQS retries the exhausted request (each a fresh chance to start the job), then dead-letters it.
    for _ in range(MAX_RECEIVE_COUNT - 1):
        clock.advance(event_source.visibility_timeout + 1)
        assert event_source.poll(raise_errors=True).failed_ids == delivery.message_ids
    clock.advance(event_source.visibility_timeout + 1)
    assert event_source.poll() is None
    (dead,) = pipeline.dead_letters()
    body = json.loads(dead["Body"])
    assert body == {"source": "follow-up", "generation": 2, "origin": bedrock.tokens[1], "reason": "conflict",
                    "changedBefore": body["changedBefore"]}
    assert len(bedrock.jobs) == 1  # only the one started elsewhere


def test_a_retry_after_the_bound_that_finds_the_data_source_free_starts_the_job(
    pipeline, event_source, bedrock, clock, configure
):
    configure(max_follow_ups=0)
    bedrock.start_elsewhere()
    pipeline.put(f"{PREFIX}doc.pdf")
    assert len(event_source.poll(raise_errors=True).failed_ids) == 1  # the change; the test event is skipped

    bedrock.finish_running_job()
    clock.advance(event_source.visibility_timeout + 1)
    retry = event_source.poll(raise_errors=True)

    assert retry.failed_ids == [] and len(bedrock.jobs) == 2
    assert pipeline.dead_letters() == []


@pytest.mark.parametrize(
    ("code", "status", "cause"),
    [
        ("ThrottlingException", 429, "Bedrock throttled the request"),
        ("AccessDeniedException", 403, "access denied"),
        ("ValidationException", 400, "rejected the request as invalid"),
        ("InternalServerException", 500, "failed internally"),
    ],
)
def test_bedrock_failures_fail_the_invocation_naming_the_knowledge_base(
    pipeline, event_source, bedrock, logs, code, status, cause
):
    pipeline.put(f"{PREFIX}doc.pdf")
    bedrock.fail_next(code, status, "scripted")

    delivery = event_source.poll()

    assert isinstance(delivery.error, IngestionStartError)
    message = str(delivery.error)
    assert KNOWLEDGE_BASE_ID in message and cause in message and code in message
    assert pipeline.attribute("ApproximateNumberOfMessagesNotVisible") == 2  # nothing acknowledged
    (failed,) = logs.named("Invocation failed")
    assert failed["level"] == "ERROR" and failed["errorType"] == "IngestionStartError"


@faults.injects("downstream outage")
def test_a_missing_knowledge_base_retries_then_dead_letters_the_whole_batch(pipeline, event_source, bedrock, clock):
    bedrock.exists = False
    faults.injected("downstream outage", "the knowledge base is gone")
    pipeline.put(f"{PREFIX}doc.pdf")

    errors = []
    for _ in range(MAX_RECEIVE_COUNT):
        delivery = event_source.poll()
        errors.append(delivery.error)
        clock.advance(event_source.visibility_timeout + 1)

    assert all(isinstance(error, IngestionStartError) for error in errors)
    assert "does not exist" in str(errors[0]) and KNOWLEDGE_BASE_ID in str(errors[0])
    assert event_source.poll() is None
    assert len(pipeline.dead_letters()) == 2  # the change and the test event, for someone to redrive
    assert bedrock.jobs == []


@faults.injects("downstream throttling")
def test_throttling_then_a_retry_starts_exactly_one_job(pipeline, event_source, bedrock, clock):
    pipeline.put(f"{PREFIX}doc.pdf")
    bedrock.fail_next("ThrottlingException", 429, "Rate exceeded")
    faults.injected("downstream throttling", "Bedrock throttles StartIngestionJob")

    assert isinstance(event_source.poll().error, IngestionStartError)
    clock.advance(event_source.visibility_timeout + 1)
    retry = event_source.poll(raise_errors=True)

    assert retry.failed_ids == [] and len(bedrock.jobs) == 1
    assert bedrock.tokens[0] == bedrock.tokens[1]  # same batch, same token


def test_a_follow_up_that_cannot_be_sent_fails_the_invocation(pipeline, event_source, bedrock, kb_app):
    bedrock.start_elsewhere()
    pipeline.put(f"{PREFIX}doc.pdf")

    with Stubber(kb_app.clients.sqs()) as sqs:
        sqs.add_client_error("send_message", "AccessDenied", "not authorized to perform sqs:SendMessage", 403)
        delivery = event_source.poll()

    assert isinstance(delivery.error, FollowUpSendError)
    assert KNOWLEDGE_BASE_ID in str(delivery.error) and QUEUE in str(delivery.error)
    assert pipeline.attribute("ApproximateNumberOfMessagesNotVisible") == 2  # retried, not lost


@faults.injects("poison message")
def test_an_unusable_message_fails_alone_and_the_rest_start_the_job(pipeline, event_source, bedrock, clock, logs):
    poison = pipeline.send("{this is not json")
    faults.injected("poison message", "a message body that is not JSON")
    pipeline.put(f"{PREFIX}doc.pdf")

    delivery = event_source.poll(raise_errors=True)

    assert delivery.failed_ids == [poison] and len(bedrock.jobs) == 1
    assert settled(logs)["outcomes"] == {"covered-by-job": 1, "skipped": 1, "rejected": 1}
    for _ in range(MAX_RECEIVE_COUNT):
        clock.advance(event_source.visibility_timeout + 1)
        event_source.poll(raise_errors=True)
    assert [m["MessageId"] for m in pipeline.dead_letters()] == [poison]
    assert len(bedrock.jobs) == 1  # the poison alone never starts a job
