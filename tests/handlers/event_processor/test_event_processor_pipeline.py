"""The handler end to end: input bus -> rule -> SQS in moto, Lambda's event source mapping, Bedrock behind a Stubber,
results in moto DynamoDB and completion events on the moto result bus (read through the example subscriber)."""

from __future__ import annotations

import json
import threading

import pytest

from event_processor.events import CompletedDetail
from event_processor.exceptions import EventProcessorError
from tests.handlers.event_processor.conftest import (
    DETAIL_TYPE,
    ENVIRONMENT,
    SOURCE,
    assert_each_exactly_once,
    drain,
)
from tests.support import aws_calls

CONTENT = "Invoice INV-7 for 3 widgets, due in 30 days. SECRET-MARKER-7f3a"


def settled(logs) -> dict:
    return logs.named("Batch settled")[-1]


def test_items_are_classified_stored_once_and_announced_with_a_reference(pipeline, event_source, model, logs):
    event_id = pipeline.submit("doc-1", CONTENT, reference="s3://docs/doc-1.pdf")
    pipeline.submit("doc-2", "A signed contract between ACME and Globex")

    delivery = event_source.poll(raise_errors=True)

    assert delivery.failed_ids == [] and model.calls == 2
    assert settled(logs)["outcomes"] == {"published": 2}
    events = {e["detail"]["input"]["itemId"]: e for e in pipeline.completed()}
    assert set(events) == {"doc-1", "doc-2"}
    first = events["doc-1"]
    assert first["source"] == ENVIRONMENT["RESULT_SOURCE"] and first["detail-type"] == "ProcessingCompleted"
    detail = CompletedDetail.model_validate(first["detail"])  # exactly the published schema, nothing more
    assert detail.result["structured"] == {"label": "invoice", "confidence": 0.9}
    assert events["doc-2"]["detail"]["result"]["structured"]["label"] == "contract"
    assert detail.input.model_dump() == {"eventId": event_id, "source": SOURCE, "detailType": DETAIL_TYPE,
                                         "itemId": "doc-1", "reference": "s3://docs/doc-1.pdf"}
    assert detail.task == "classify" and detail.modelId == ENVIRONMENT["MODEL_ID"]
    assert detail.resultsTable == ENVIRONMENT["RESULTS_TABLE"]
    stored = {item["input"]["M"]["itemId"]["S"]: item for item in pipeline.results()}
    assert stored["doc-1"]["resultId"]["S"] == detail.resultId and "publishedAt" in stored["doc-1"]
    assert "claimOwner" not in stored["doc-1"]  # the publication claim is dropped once announced
    assert_each_exactly_once(pipeline.ledger(["doc-1", "doc-2"]))


def test_result_events_and_stored_results_never_carry_the_raw_input(pipeline, event_source, model):
    pipeline.submit("doc-1", CONTENT)

    event_source.poll(raise_errors=True)

    (event,) = pipeline.completed()
    assert "SECRET-MARKER" not in json.dumps(event)
    assert "content" not in json.dumps(event["detail"]["input"])
    (item,) = pipeline.results()
    assert "SECRET-MARKER" not in json.dumps(item)
    # ...while the model did see it, inside the configured prompt.
    (prompt,) = model.prompts()
    assert "SECRET-MARKER" in prompt and "invoice, contract, complaint, other" in prompt


def test_a_batch_of_ten_has_all_ten_model_calls_in_flight_at_once(pipeline, event_source, model):
    """Proven with the fake's gate, not a clock: every call waits at the gate until the tenth has arrived. (How
    much wall time that saves is measured by benchmarks/event_processing.py, not asserted here.)"""
    for n in range(10):
        pipeline.submit(f"doc-{n}", f"invoice number {n}")
    model.hold()
    deliveries = []
    worker = threading.Thread(target=lambda: deliveries.append(event_source.poll(raise_errors=True)))
    worker.start()
    arrived = 0
    try:
        while arrived < 10 and model.waiting.acquire(timeout=30):
            arrived += 1
    finally:
        model.release()
        worker.join(timeout=60)

    assert arrived == 10 and model.max_in_flight == 10  # one call at a time would never get past the first
    [delivery] = deliveries
    assert len(delivery.message_ids) == 10 and delivery.failed_ids == []
    assert model.calls == 10
    assert len(pipeline.completed()) == 10


def test_one_put_events_request_announces_a_whole_batch(pipeline, event_source, model, ep_app):
    for n in range(10):
        pipeline.submit(f"doc-{n}", "a complaint about late delivery")
    messages = event_source.receive()

    with aws_calls.recording("event_processor", environment=ENVIRONMENT) as calls:
        ep_app.handler(event_source.event(messages), event_source.context_factory())

    operations = [(c.service, c.operation) for c in calls]
    assert operations.count(("events", "PutEvents")) == 1
    assert operations.count(("bedrock-runtime", "Converse")) == 10


def test_a_producer_retrying_put_events_gets_one_result_for_its_item(pipeline, event_source, model, clock):
    # Two events, two event ids, one item: the key hashes the configured fields (source, detail.itemId).
    first = pipeline.submit("doc-1", CONTENT)
    second = pipeline.submit("doc-1", CONTENT)
    assert first != second

    drain(event_source, pipeline, clock)

    assert len(model.answered) == 1
    assert_each_exactly_once(pipeline.ledger(["doc-1"]))


def test_without_key_fields_the_event_id_is_the_key(pipeline, event_source, model, configure):
    configure(idempotency_key_fields=())
    event_id = pipeline.submit("doc-1", CONTENT)

    event_source.poll(raise_errors=True)

    (item,) = pipeline.results()
    assert item["resultId"]["S"] == event_id


def test_the_model_is_asked_through_the_inference_profile_when_one_is_configured(
        pipeline, event_source, model, configure, ep_app, clock):
    profile = f"eu.{ENVIRONMENT['MODEL_ID']}"
    configure(model_id=profile)
    pipeline.submit("doc-1", CONTENT)
    messages = event_source.receive()

    ep_app.handler(event_source.event(messages), event_source.context_factory())  # not recorded: another stack

    assert [r["modelId"] for r in model.requests] == [profile]
    assert model.requests[0]["inferenceConfig"] == {"maxTokens": int(ENVIRONMENT["MAX_OUTPUT_TOKENS"]),
                                                    "temperature": float(ENVIRONMENT["TEMPERATURE"])}


def test_throttling_backs_off_with_jitter_then_succeeds(pipeline, event_source, model, clock, logs):
    model.fail_next("ThrottlingException", times=3)
    pipeline.submit("doc-1", CONTENT)

    delivery = event_source.poll(raise_errors=True)

    assert delivery.failed_ids == [] and model.calls == 4 and len(model.answered) == 1
    retries = logs.named("Model call failed; retrying after backoff")
    assert [r["attempt"] for r in retries] == [1, 2, 3] and {r["code"] for r in retries} == {"ThrottlingException"}
    # Full jitter: each delay is somewhere in [0, base * 2**attempt].
    assert all(0 <= r["delaySeconds"] <= 0.25 * 2 ** n for n, r in enumerate(retries))
    assert settled(logs)["tally"]["ModelThrottles"] == 3


def test_a_model_outage_fails_the_item_inside_the_time_budget_and_frees_it_for_the_retry(
        pipeline, event_source, model, clock, logs):
    model.outage("ServiceUnavailableException")
    pipeline.submit("doc-1", CONTENT)
    context = event_source.context_factory()
    started = clock.time()

    response = event_source.handler(event_source.event(event_source.receive()), context)

    assert len(response["batchItemFailures"]) == 1
    spent = clock.time() - started
    assert spent <= context.timeout - 10 and model.calls > 3  # retried, then gave up with bookkeeping time left
    (failure,) = logs.named("Processing failed")
    assert failure["errorType"] == "RetriesExhaustedError" and failure["code"] == "ServiceUnavailableException"
    assert pipeline.idempotency_records() == []  # the in-progress record is deleted, so the retry may ask again
    assert pipeline.results() == []


def test_access_denied_fails_the_item_at_once(pipeline, event_source, model, logs):
    model.fail_next("AccessDeniedException")
    pipeline.submit("doc-1", CONTENT)

    delivery = event_source.poll()

    assert len(delivery.failed_ids) == 1 and model.calls == 1
    (failure,) = logs.named("Processing failed")
    assert failure["errorType"] == "ModelCallError" and "bedrock:InvokeModel" in failure["error"]


def test_an_invocation_that_is_not_an_sqs_batch_is_refused(ep_app, context_factory):
    with pytest.raises(EventProcessorError, match="expected an SQS batch"):
        ep_app.handler({"source": "aws.events"}, context_factory())
