"""Reliability under faults, counted end to end: every input record ends in exactly one of {stored once and
announced once, in the work queue's DLQ once}, never both, never doubled, and the model answers each item at most
once. Each test drives the real handler through one fault with moto (EventBridge -> SQS, DynamoDB) and Bedrock
behind a Stubber.

| fault                                  | outcome                                                              |
|----------------------------------------|----------------------------------------------------------------------|
| poison message                         | fails alone, retried, dead-lettered; the rest of its batch is stored |
| duplicate delivery                     | acknowledged as done; no second model call, result or event          |
| concurrent duplicate                   | deferred while the first copy is in flight, then acknowledged        |
| crash after the side effect, before ack | redelivered and acknowledged; nothing redone                        |
| crash between write and publish        | redelivered; the stored result is announced, the model not asked     |
| throttling                             | backs off inside the budget, then SQS retries; stored once           |
| model outage                           | retried, dead-lettered; a redrive after the outage stores once       |
| results table down mid-batch           | the affected items retried without asking the model again            |
| partial PutEvents failure              | only the failed entry's item is retried, announced once, no new call |
| expired visibility during a slow batch | the second copy is deferred; stored and announced once               |
| crash between PutEvents and the mark   | no PutEvents without time for its mark; the retry announces it once  |
"""

from __future__ import annotations

import contextlib
import json
import threading
from typing import Any

import pytest
from botocore.awsrequest import AWSResponse

from event_processor import clients
from tests.handlers.conftest import SqsEventSource
from tests.handlers.event_processor.conftest import (
    DEAD_LETTERED,
    MAX_RECEIVE_COUNT,
    RESULTS_TABLE,
    STORED_ONCE,
    assert_each_exactly_once,
    drain,
)
from tests.handlers.event_processor.faults import FunctionCrashed, PutEventsFaults, crash_on, detail_of
from tests.support import aws_calls, faults

ITEMS = [f"doc-{n}" for n in range(5)]


def submit_all(pipeline, items=ITEMS) -> None:
    for item in items:
        pipeline.submit(item, f"invoice {item}")


def deliver(event_source: SqsEventSource, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """Invoke with `messages` and acknowledge what the handler did not report as failed, like the mapping does."""
    response = event_source.handler(event_source.event(messages), event_source.context_factory())
    failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
    for message in messages:
        if message["MessageId"] not in failed:
            event_source._sqs.delete_message(QueueUrl=event_source.queue_url, ReceiptHandle=message["ReceiptHandle"])
    return response


def answered_items(model) -> list[str]:
    return [prompt.rsplit("<item>", 1)[-1].split("invoice ", 1)[-1].strip().split("\n")[0]
            for prompt in (r["messages"][0]["content"][0]["text"] for r in model.answered)]


@faults.injects("poison message")
def test_reliability_poison_message(pipeline, event_source, model, clock, logs):
    submit_all(pipeline)
    pipeline.submit("poison", "x", reference=42)  # reference must be a string: fails the schema
    faults.injected("poison message", "an event whose reference is not a string")

    drain(event_source, pipeline, clock)

    rejections = logs.named("Rejected event")
    assert len(rejections) == MAX_RECEIVE_COUNT  # retried alone, then dead-lettered
    assert {(r["reason"], r["field"]) for r in rejections} == {("invalid-fields", "detail.reference")}
    assert sorted(answered_items(model)) == ITEMS
    ledger = pipeline.ledger([*ITEMS, "poison"])
    assert ledger["poison"] == DEAD_LETTERED
    assert_each_exactly_once(ledger)


@faults.injects("duplicate delivery")
def test_reliability_duplicate_delivery(pipeline, event_source, model, clock, logs):
    submit_all(pipeline)
    copies = [m["Body"] for m in pipeline.sqs.receive_message(QueueUrl=pipeline.queue_url, MaxNumberOfMessages=10,
                                                              VisibilityTimeout=0)["Messages"]]
    for body in copies:  # EventBridge and SQS are at-least-once: every event arrives a second time
        pipeline.send_raw(body)
        faults.injected("duplicate delivery", "the event delivered a second time")

    drain(event_source, pipeline, clock)

    assert sorted(answered_items(model)) == ITEMS  # one model call per item
    assert len(logs.named("Item already processed and announced")) + len(logs.named("Another copy")) >= len(ITEMS)
    assert_each_exactly_once(pipeline.ledger(ITEMS))


@faults.injects("concurrent duplicate")
def test_reliability_concurrent_duplicate(pipeline, event_source, model, clock, logs):
    pipeline.submit("doc-1", "invoice doc-1")
    (first,) = event_source.receive()
    pipeline.send_raw(first["Body"])  # the same event, delivered again
    (second,) = event_source.receive()
    model.hold()  # the first copy's model call is in flight...
    worker = threading.Thread(target=deliver, args=(event_source, [first]))
    worker.start()
    assert model.waiting.acquire(timeout=10)

    faults.injected("concurrent duplicate", "the second copy arrives while the first one's model call is in flight")
    response = deliver(event_source, [second])  # ...when the second copy arrives

    assert response["batchItemFailures"] == [{"itemIdentifier": second["MessageId"]}]
    (deferred,) = logs.named("Another copy of this item is in flight")
    assert "already in progress" in deferred["error"]
    model.release()
    worker.join(timeout=10)
    drain(event_source, pipeline, clock)  # the second copy comes back after its visibility timeout
    assert len(model.answered) == 1 and model.calls == 1
    assert logs.named("Item already processed and announced")
    assert_each_exactly_once(pipeline.ledger(["doc-1"]))


@faults.injects("crash after the side effect, before the acknowledgement")
def test_reliability_crash_after_side_effect_before_ack(pipeline, event_source, model, clock, logs):
    submit_all(pipeline)
    messages = event_source.receive()
    # Stored and announced, then the environment dies before SQS hears back: nothing is deleted.
    event_source.handler(event_source.event(messages), event_source.context_factory())
    faults.injected("crash after the side effect, before the acknowledgement",
                    "stored and announced, then nothing acknowledged")

    drain(event_source, pipeline, clock)

    assert sorted(answered_items(model)) == ITEMS
    assert len(logs.named("Item already processed and announced")) == len(ITEMS)
    assert_each_exactly_once(pipeline.ledger(ITEMS))


@faults.injects("missed completion event")
def test_reliability_crash_between_write_and_publish(pipeline, event_source, model, clock, logs):
    submit_all(pipeline)
    undo = crash_on(clients.events(), "before-call.events.PutEvents")
    faults.injected("missed completion event", "the invocation dies before PutEvents")
    messages = event_source.receive()
    with pytest.raises(FunctionCrashed):
        event_source.handler(event_source.event(messages), event_source.context_factory())
    undo()
    stored_before = {item["resultId"]["S"]: item["answer"]["S"] for item in pipeline.results()}
    assert len(stored_before) == len(ITEMS) and pipeline.completed() == []  # written, not announced

    drain(event_source, pipeline, clock)

    assert sorted(answered_items(model)) == ITEMS  # the retry reuses the remembered answers
    assert {item["resultId"]["S"]: item["answer"]["S"] for item in pipeline.results()} == stored_before
    assert len(logs.named("Result stored and announced")) == len(ITEMS)
    assert_each_exactly_once(pipeline.ledger(ITEMS))


@faults.injects("downstream throttling")
def test_reliability_throttling(pipeline, event_source, model, clock, logs):
    submit_all(pipeline)
    model.outage("ThrottlingException")  # throttled for longer than one invocation's budget
    faults.injected("downstream throttling", "the model throttles every call")
    first = event_source.poll()
    assert sorted(first.failed_ids) == sorted(first.message_ids)
    retries = logs.named("Model call failed; retrying after backoff")
    assert len(retries) > len(ITEMS)  # each item backed off more than once before giving up
    first_delays = {entry["delaySeconds"] for entry in retries if entry["attempt"] == 1}
    assert len(first_delays) > 1  # with jitter: the items do not retry in lockstep
    assert pipeline.idempotency_records() == []  # nothing holds the items for the retry
    model.outage(None)

    drain(event_source, pipeline, clock)

    assert sorted(answered_items(model)) == ITEMS
    assert_each_exactly_once(pipeline.ledger(ITEMS))


@faults.injects("downstream outage")
def test_reliability_model_outage(pipeline, event_source, model, clock, logs):
    submit_all(pipeline)
    model.outage("ServiceUnavailableException")
    faults.injected("downstream outage", "the model is unavailable")

    drain(event_source, pipeline, clock)

    ledger = pipeline.ledger(ITEMS)
    assert all(ledger[item] == DEAD_LETTERED for item in ITEMS)
    assert_each_exactly_once(ledger)
    assert model.answered == [] and pipeline.idempotency_records() == []
    # After the outage, an operator redrives the DLQ: each item is then stored and announced once.
    model.outage(None)
    for body in pipeline.dead_letters():
        pipeline.send_raw(body)
    pipeline._dead.clear()
    drain(event_source, pipeline, clock)
    assert sorted(answered_items(model)) == ITEMS
    assert all(counts == STORED_ONCE for counts in pipeline.ledger(ITEMS).values())


@faults.injects("database down mid-batch")
def test_reliability_results_table_down_mid_batch(pipeline, event_source, model, clock, logs):
    submit_all(pipeline)
    down = {"doc-1", "doc-3"}

    def results_table_down(params: dict[str, Any], **_: Any) -> tuple[AWSResponse, dict[str, Any]] | None:
        request = json.loads(params["body"])  # the serialized request, as it would go over the wire
        if request.get("TableName") != RESULTS_TABLE["name"]:
            return None
        item_id = request["Item"]["input"]["M"]["itemId"]["S"]
        if item_id not in down:
            return None
        faults.injected("database down mid-batch", "the results table fails a write")
        down.discard(item_id)
        return AWSResponse(None, 500, {}, None), {  # type: ignore[arg-type]
            "Error": {"Code": "InternalServerError", "Message": "fake outage"}, "ResponseMetadata": {}}

    clients.dynamodb().meta.events.register("before-call.dynamodb.PutItem", results_table_down)
    try:
        drain(event_source, pipeline, clock)
    finally:
        clients.dynamodb().meta.events.unregister("before-call.dynamodb.PutItem", results_table_down)

    assert sorted(f["errorType"] for f in logs.named("Processing failed")) == ["ResultStoreError"] * 2
    assert sorted(answered_items(model)) == ITEMS  # the two retried items reused their remembered answers
    assert_each_exactly_once(pipeline.ledger(ITEMS))


@faults.injects("partial PutEvents failure")
def test_reliability_partial_put_events_failure(pipeline, event_source, model, clock, logs):
    submit_all(pipeline)
    attempts: list[str] = []

    def fails(entry: dict[str, Any]) -> bool:
        if detail_of(entry)["input"]["itemId"] != "doc-2":
            return False
        attempts.append("doc-2")
        faults.injected("partial PutEvents failure", "EventBridge fails one entry of PutEvents")
        return len(attempts) <= 3  # every attempt of the first invocation

    with PutEventsFaults(clients.events(), fails):
        first = event_source.poll()
        assert len(first.failed_ids) == 1  # only the record whose entry failed
        (failure,) = logs.named("Completion event not published")
        assert failure["code"] == "InternalFailure" and failure["attempts"] == 3
        assert len(pipeline.completed()) == len(ITEMS) - 1

        drain(event_source, pipeline, clock)

    assert sorted(answered_items(model)) == ITEMS  # the retry announced the stored result without the model
    (doc2,) = [i for i in pipeline.results() if i["input"]["M"]["itemId"]["S"] == "doc-2"]
    assert "publishedAt" in doc2
    assert_each_exactly_once(pipeline.ledger(ITEMS))


@faults.injects("expired visibility during a slow batch")
def test_reliability_expired_visibility_during_slow_batch(pipeline, event_source, model, clock, logs):
    submit_all(pipeline)
    # A queue whose visibility timeout is shorter than a slow batch (30 s against a 120 s function).
    short = SqsEventSource(pipeline.queue_url, event_source.handler, context_factory=event_source.context_factory,
                           batch_size=10, visibility_timeout=30)
    slow_batch = short.receive()
    model.hold()
    worker = threading.Thread(target=deliver, args=(short, slow_batch))
    worker.start()
    for _ in ITEMS:
        assert model.waiting.acquire(timeout=10)
    clock.advance(31)  # the batch is still running when its messages become visible again
    faults.injected("expired visibility during a slow batch",
                    "the visibility ran out while the batch's model calls were in flight")

    with aws_calls.paused():  # the test's own receive and delete, while the first copy's recording is open
        second = short.poll()

    assert sorted(second.message_ids) == sorted(m["MessageId"] for m in slow_batch)
    assert sorted(second.failed_ids) == sorted(second.message_ids)  # deferred: the first copies are in flight
    model.release()
    worker.join(timeout=10)
    drain(event_source, pipeline, clock)
    assert sorted(answered_items(model)) == ITEMS
    assert_each_exactly_once(pipeline.ledger(ITEMS))
    assert json.dumps(pipeline.completed()).count('"doc-0"') == 1


class Killed(BaseException):  # not an Exception: nothing in the handler may catch it
    """Lambda ending the invocation at its timeout: nothing in the function catches it, nothing after it runs."""


@faults.injects("crash between PutEvents and the publication mark")
def test_reliability_crash_between_put_events_and_the_publication_mark(pipeline, event_source, model, clock, logs):
    submit_all(pipeline, ["doc-1"])
    context = event_source.context_factory()
    deadline = clock.time() + context.get_remaining_time_in_millis() / 1000
    slow, first = {"write": True}, {"invocation": True}

    def slow_results_write(params: dict[str, Any], **_: Any) -> None:
        # The batch reaches its publication with 3 s left (a slow model and a slow write took the rest).
        if json.loads(params["body"]).get("TableName") == RESULTS_TABLE["name"] and slow.pop("write", False):
            clock.advance(deadline - 3 - clock.time())
            faults.injected("crash between PutEvents and the publication mark",
                            "the batch reaches its publication 3 s before the invocation's timeout")

    def slow_put_events(**_: Any) -> None:
        if first["invocation"]:
            clock.advance(2.5)

    def mark(params: dict[str, Any], **_: Any) -> None:
        if first["invocation"] and "publishedAt" in json.loads(params["body"]).get("UpdateExpression", ""):
            clock.advance(1)  # one DynamoDB round trip
            if clock.time() > deadline:
                raise Killed("the invocation timed out between PutEvents and the publication mark")

    hooks = [(clients.dynamodb(), "before-call.dynamodb.PutItem", slow_results_write),
             (clients.events(), "before-call.events.PutEvents", slow_put_events),
             (clients.dynamodb(), "before-call.dynamodb.UpdateItem", mark)]
    for client, name, hook in hooks:
        client.meta.events.register(name, hook)
    try:
        with contextlib.suppress(Killed):  # killed: SQS hears nothing and redelivers the whole batch
            event_source.handler(event_source.event(event_source.receive()), context)
        first["invocation"] = False
        drain(event_source, pipeline, clock)
    finally:
        for client, name, hook in hooks:
            client.meta.events.unregister(name, hook)

    assert len(model.answered) == 1
    assert_each_exactly_once(pipeline.ledger(["doc-1"]))  # announced once: no PutEvents without time to mark it
