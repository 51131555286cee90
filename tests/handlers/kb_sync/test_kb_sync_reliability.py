"""kb-sync through the faults of docs/reliability.md that its other tests do not inject: the invocation dies after
Bedrock started the job, the redelivery regroups the batch, the visibility runs out while the batch is still
being worked on. Each counts jobs and messages: every message ends covered by a job, carried by a follow-up, or
dead-lettered."""

from __future__ import annotations

from typing import Any

import pytest

from tests.handlers.kb_sync.names import DELAY_SECONDS, PREFIX
from tests.support import aws_calls, faults

# The job path: every change through StartIngestionJob (direct ingestion has its own tests).
pytestmark = pytest.mark.usefixtures("jobs_mode")

CRASH = "crash after the side effect, before the acknowledgement"
_STARTED = "after-call.bedrock-agent.StartIngestionJob"
_STARTING = "provide-client-params.bedrock-agent.StartIngestionJob"


class FunctionCrashed(Exception):
    """Stands for the execution environment dying mid-invocation (a timeout, an out-of-memory kill)."""


def crash_once_the_job_started(bedrock: Any) -> None:
    """The next invocation dies as soon as Bedrock has answered StartIngestionJob: the job runs, SQS hears nothing."""
    events = bedrock.client.meta.events

    def crash(**_: Any) -> None:
        events.unregister(_STARTED, crash)
        faults.injected(CRASH, "the invocation died right after StartIngestionJob returned")
        raise FunctionCrashed("execution environment lost after the job started")

    events.register(_STARTED, crash)


def invoke_and_crash(invoke: Any, event_source: Any, bedrock: Any) -> list[dict[str, Any]]:
    """Deliver one batch to an invocation that dies after starting the job; the batch's messages, not deleted."""
    messages = event_source.receive()
    crash_once_the_job_started(bedrock)
    try:
        invoke(event_source.event(messages))
    except FunctionCrashed:
        pass
    else:
        raise AssertionError("the invocation did not reach StartIngestionJob")
    return messages


@faults.injects("crash after the side effect, before the acknowledgement")
def test_reliability_the_same_batch_redelivered_after_a_crash_starts_no_second_job(
        pipeline, event_source, bedrock, invoke, clock, logs):
    pipeline.put(f"{PREFIX}a.pdf")
    pipeline.put(f"{PREFIX}b.pdf")
    messages = invoke_and_crash(invoke, event_source, bedrock)
    assert len(bedrock.jobs) == 1 and pipeline.attribute("ApproximateNumberOfMessagesNotVisible") == 3

    clock.advance(event_source.visibility_timeout + 1)
    redelivered = event_source.poll(raise_errors=True)

    assert sorted(redelivered.message_ids) == sorted(m["MessageId"] for m in messages)
    assert bedrock.tokens[0] == bedrock.tokens[1] and len(bedrock.jobs) == 1  # Bedrock ignored the repeated token
    assert redelivered.failed_ids == []
    assert pipeline.attribute("ApproximateNumberOfMessages") == 0 and pipeline.dead_letters() == []


@faults.injects("crash after the side effect, before the acknowledgement")
def test_reliability_a_redelivery_regrouped_into_other_batches_is_carried_to_one_more_job(
        pipeline, event_source, bedrock, invoke, clock, logs):
    pipeline.put(f"{PREFIX}a.pdf")
    pipeline.put(f"{PREFIX}b.pdf")
    messages = invoke_and_crash(invoke, event_source, bedrock)  # S3's test event, a, b: job 1 runs, nothing acked
    assert len(bedrock.jobs) == 1

    # The redelivery comes back split: one message per batch, each deriving a token of its own.
    clock.advance(event_source.visibility_timeout + 1)
    event_source.batch_size = 1
    regrouped = [event_source.poll(raise_errors=True) for _ in messages]

    assert sorted(d.message_ids[0] for d in regrouped) == sorted(m["MessageId"] for m in messages)
    assert len(set(bedrock.tokens)) == 3  # the crashed batch's token, then one per regrouped batch with a change
    assert len(bedrock.jobs) == 1  # job 1 still runs: Bedrock refused both new tokens (ConflictException)
    assert all(d.failed_ids == [] for d in regrouped)
    assert pipeline.attribute("ApproximateNumberOfMessagesDelayed") == 2  # a follow-up for each refused batch

    bedrock.finish_running_job()
    clock.advance(DELAY_SECONDS + 1)
    event_source.batch_size = 1000
    follow_ups = event_source.poll(raise_errors=True)

    assert len(follow_ups.message_ids) == 2 and follow_ups.failed_ids == []
    assert len(bedrock.jobs) == 2  # one more job covers both follow-ups; nothing else starts
    assert event_source.poll() is None
    # Only job 2's first check waits (job 1's was never sent: the crash came first).
    assert pipeline.attribute("ApproximateNumberOfMessagesDelayed") == 1 and pipeline.dead_letters() == []


@faults.injects("expired visibility during a slow batch")
def test_reliability_a_batch_redelivered_while_its_first_invocation_still_runs_starts_one_job(
        pipeline, event_source, bedrock, invoke, clock, logs):
    pipeline.put(f"{PREFIX}slow.pdf")
    messages = event_source.receive()
    events = bedrock.client.meta.events
    second: list[Any] = []

    def visibility_runs_out(**_: Any) -> None:
        """The first invocation is about to call Bedrock when its messages become visible to another consumer."""
        events.unregister(_STARTING, visibility_runs_out)
        clock.advance(event_source.visibility_timeout + 1)
        faults.injected("expired visibility during a slow batch",
                        "the visibility timeout ran out while the first invocation was still working")
        with aws_calls.paused():
            again = event_source.receive()
        second.append((again, invoke(event_source.event(again))))
        with aws_calls.paused():
            for message in again:
                event_source._sqs.delete_message(QueueUrl=event_source.queue_url,
                                                 ReceiptHandle=message["ReceiptHandle"])

    events.register_first(_STARTING, visibility_runs_out)
    first = invoke(event_source.event(messages))

    [(again, answer)] = second
    assert sorted(m["MessageId"] for m in again) == sorted(m["MessageId"] for m in messages)
    assert first == answer == {"batchItemFailures": []}
    assert len(bedrock.requests) == 2 and bedrock.tokens[0] == bedrock.tokens[1]
    assert len(bedrock.jobs) == 1  # both copies of the batch name the same job
    assert pipeline.attribute("ApproximateNumberOfMessages") == 0
    assert pipeline.attribute("ApproximateNumberOfMessagesNotVisible") == 0 and pipeline.dead_letters() == []
