"""The bad-input catalogue: every kind of unusable message gets a defined outcome and a structured log entry naming
the event (when it has an id) and the offending field, and none of them stops the valid item delivered in the same
batch from being processed.

Most bodies are built here rather than sent through SQS because some (invalid UTF-8, a non-string body) cannot
travel through a real queue yet must still not crash the function if they ever arrive; the last test sends the
ones that can travel through moto and follows them to the DLQ.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

import pytest

from tests.handlers.event_processor.conftest import (
    DEAD_LETTERED,
    DETAIL_TYPE,
    ENVIRONMENT,
    MAX_RECEIVE_COUNT,
    SOURCE,
    assert_each_exactly_once,
    drain,
)

MAX_INPUT_CHARS = int(ENVIRONMENT["MAX_INPUT_CHARS"])


def event(detail: Any, *, source: str = SOURCE, detail_type: str = DETAIL_TYPE, event_id: str | None = None) -> str:
    """An EventBridge event as the input bus delivers it to the queue."""
    return json.dumps({"version": "0", "id": event_id or str(uuid.uuid4()), "detail-type": detail_type,
                       "source": source, "account": "123456789012", "time": "2025-01-01T00:00:00Z",
                       "region": "us-east-1", "resources": [], "detail": detail})


def record(body: object) -> dict[str, Any]:
    return {"messageId": str(uuid.uuid4()), "receiptHandle": "receipt", "body": body,
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1700000000000"},
            "messageAttributes": {}, "md5OfBody": "0" * 32, "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:work", "awsRegion": "us-east-1"}


S3_TEST_EVENT = json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "docs"})

# (case, body, reason, field)
CATALOGUE = [
    ("malformed JSON", '{"version": "0", "id": "e-1", "detail": {', "malformed-json", None),
    ("invalid UTF-8", '{"detail": "caf\udce9"}', "invalid-utf-8", None),
    ("empty body", "", "empty-body", None),
    ("blank body", "  \n ", "empty-body", None),
    ("not a string", {"detail": {}}, "body-not-text", None),
    ("JSON that is not an object", "[1, 2, 3]", "not-an-eventbridge-event", None),
    ("an S3 test event", S3_TEST_EVENT, "not-an-eventbridge-event", None),
    ("wrong event type", event({"itemId": "doc-9", "content": "x"}, detail_type="InvoicePaid"), "unexpected-event",
     "detail-type"),
    ("wrong source", event({"itemId": "doc-9", "content": "x"}, source="com.example.other"), "unexpected-event",
     "source"),
    ("wrong field type", event({"itemId": 42, "content": "x"}), "invalid-fields", "detail.itemId"),
    ("wrong field type in a list", event({"itemId": "doc-9", "content": ["x"]}), "invalid-fields",
     "detail.content"),
    ("missing field", event({"content": "x"}), "invalid-fields", "detail.itemId"),
    ("detail not an object", event("just text"), "invalid-fields", "detail"),
    ("oversized content", event({"itemId": "doc-9", "content": "x" * (MAX_INPUT_CHARS + 1)}), "oversized",
     "detail.content"),
    ("oversized body", event({"itemId": "doc-9", "content": "x", "padding": "y" * 270_000}), "oversized", None),
]


@pytest.mark.parametrize(("case", "body", "reason", "field"), CATALOGUE, ids=[c[0] for c in CATALOGUE])
def test_each_bad_input_fails_alone_with_a_log_entry_naming_it(case, body, reason, field, pipeline, model, invoke,
                                                                 logs):
    good_id = str(uuid.uuid4())
    good, bad = record(event({"itemId": "doc-1", "content": "an invoice"}, event_id=good_id)), record(body)

    response = invoke({"Records": [good, bad]})

    assert response == {"batchItemFailures": [{"itemIdentifier": bad["messageId"]}]}, case
    (entry,) = logs.named("Rejected event")
    assert entry["level"] == "ERROR" and entry["messageId"] == bad["messageId"]
    assert entry["reason"] == reason and entry.get("field") == field
    assert "bodyPreview" not in entry and ("bodySha256" in entry or entry["bodyType"] == "dict")  # no content
    if reason in ("unexpected-event", "invalid-fields") or case == "oversized content":
        assert entry["eventId"] == json.loads(body)["id"]  # a parsed event is named in the log
    assert [item["input"]["M"]["eventId"]["S"] for item in pipeline.results()] == [good_id]
    assert logs.named("Batch settled")[-1]["outcomes"] == {"published": 1, "rejected": 1}
    assert model.calls == 1  # a rejected record never reaches the model


def test_unusual_but_valid_items_are_processed(pipeline, model, invoke):
    detail = {"itemId": "doc/ü 1+2", "content": "Facture n° 7 — 3 widgets 🚚, total 12 €", "reference": "s3://b/k"}
    response = invoke({"Records": [record(event(detail))]})

    assert response == {"batchItemFailures": []}
    (prompt,) = model.prompts()
    assert detail["content"] in prompt
    (completed,) = pipeline.completed()
    assert completed["detail"]["input"]["itemId"] == "doc/ü 1+2"


def test_extra_fields_in_the_item_are_ignored_and_never_published(pipeline, model, invoke):
    detail = {"itemId": "doc-1", "content": "an invoice", "customerEmail": "someone@example.com"}
    invoke({"Records": [record(event(detail))]})

    (completed,) = pipeline.completed()
    assert "someone@example.com" not in json.dumps(completed)


def test_bad_inputs_that_travel_through_sqs_end_in_the_dlq_after_their_retries(pipeline, event_source, model,
                                                                                clock, logs):
    raw = [body for _, body, _, _ in CATALOGUE if isinstance(body, str) and body.strip() and "\udce9" not in body
           and len(body) < 250_000]
    for body in raw:
        pipeline.send_raw(body)
    pipeline.submit("doc-1", "an invoice")

    drain(event_source, pipeline, clock)

    assert len(logs.named("Rejected event")) == len(raw) * MAX_RECEIVE_COUNT
    ledger = pipeline.ledger(["doc-1"], raw_bodies=raw)
    assert all(ledger[body] == DEAD_LETTERED for body in raw)
    assert_each_exactly_once(ledger)


# Inputs a producer controls that once ended with "record ended without an outcome": each is now a rejection with
# a reason, in bounded time and memory (the body cap bounds the work).
def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


HOSTILE = [
    ("source of the wrong type", event({"itemId": "doc-9", "content": "x"}).replace(
        f'"source": "{SOURCE}"', '"source": ["a", "list"]'), "invalid-fields", "source"),
    ("detail-type of the wrong type", event({"itemId": "doc-9", "content": "x"}).replace(
        f'"detail-type": "{DETAIL_TYPE}"', '"detail-type": {"an": "object"}'), "invalid-fields", "detail-type"),
    ("a 5,000-digit number", event({"itemId": "doc-9", "content": "x", "n": 0}).replace(
        '"n": 0', '"n": ' + "7" * 5000), "malformed-json", None),
    ("50,000-deep nesting", '{"source": ' + _deep(50_000) + "}", "malformed-json", None),
    ("50,000-deep nesting in the detail", event({"itemId": "doc-9", "content": "x", "n": 0}).replace(
        '"n": 0', '"n": ' + _deep(50_000)), "malformed-json", None),
]


@pytest.mark.parametrize(("case", "body", "reason", "field"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_hostile_shapes_are_rejected_with_a_reason_not_left_without_an_outcome(case, body, reason, field, pipeline,
                                                                               model, invoke, logs):
    bad = record(body)

    response = invoke({"Records": [record(event({"itemId": "doc-1", "content": "an invoice"})), bad]})

    assert response == {"batchItemFailures": [{"itemIdentifier": bad["messageId"]}]}, case
    (entry,) = logs.named("Rejected event")
    assert (entry["reason"], entry.get("field")) == (reason, field), case
    assert logs.named("Record ended without an outcome") == []
    assert logs.named("Batch settled")[-1]["outcomes"] == {"published": 1, "rejected": 1}


def test_a_huge_source_and_the_producers_data_never_reach_the_logs(pipeline, model, invoke, logs):
    huge = record(event({"itemId": "doc-9", "content": "SECRET-MARKER-1"}, source="s" * 200_000))
    foreign = record(event({"itemId": "doc-8", "content": "SECRET-MARKER-2"}, detail_type="InvoicePaid"))
    malformed = record('{"detail": {"content": "SECRET-MARKER-3", ')

    response = invoke({"Records": [huge, foreign, malformed]})

    assert len(response["batchItemFailures"]) == 3
    written = json.dumps(logs.entries)
    assert "s" * 1000 not in written and "SECRET-MARKER" not in written
    rejections = {entry["messageId"]: entry for entry in logs.named("Rejected event")}
    assert all(len(json.dumps(entry)) < 2000 for entry in rejections.values())
    # What identifies the body instead: its size and a digest an operator can match against the dead letter.
    assert rejections[huge["messageId"]]["bodySha256"] == hashlib.sha256(huge["body"].encode()).hexdigest()
    assert rejections[huge["messageId"]]["bodyChars"] == len(huge["body"])
