"""The bad-input catalogue: every input gets a defined outcome and a structured log entry; none crashes the batch.

Each case is delivered in one batch with a valid file, which must still load.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from file_ingestion.datasets import CATALOGUE, Routes
from file_ingestion.events import InputRules, Objects, Rejected, Skipped, classify
from file_ingestion.parse import InvalidFileError, InvalidReason, parse_file
from tests.handlers.conftest import SqsEventSource
from tests.handlers.file_ingestion.conftest import BUCKET, Database, Invoker, LogCapture, Pipeline, order, orders_file

RULES = InputRules.from_config([{"prefix": "input/", "suffix": ".json"}])


def notification(key: str, event: str = "ObjectCreated:Put", bucket: str = BUCKET, **object_fields: Any) -> str:
    return json.dumps({"Records": [{"eventSource": "aws:s3", "eventName": event, "s3": {
        "bucket": {"name": bucket}, "object": {"key": key, "size": 10, **object_fields}}}]})


BODIES = {
    "malformed JSON": ("{not json", "rejected", "malformed-json"),
    "invalid UTF-8": ('{"Records": "\udcff"}', "rejected", "invalid-utf-8"),
    "empty body": ("  ", "rejected", "empty-body"),
    "wrong event type": (json.dumps({"source": "aws.events", "detail": {}}), "rejected", "unrecognised-message"),
    "wrong field type": (notification("input/orders/a.json", size="ten"), "rejected", "invalid-fields"),
    "oversized body": (json.dumps({"Records": [], "padding": "x" * 70_000}), "rejected", "oversized"),
    "foreign bucket": (notification("input/orders/a.json", bucket="someone-elses"), "rejected", "foreign-bucket"),
    "undecodable key": (notification("input/orders/%FF.json"), "rejected", "undecodable-key"),
    "S3 test event": (json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BUCKET}), "skipped",
                      "s3-test-event"),
    "removal event": (notification("input/orders/a.json", event="ObjectRemoved:Delete"), "skipped",
                      "not-an-object-creation"),
    "key outside the rules": (notification("input/orders/a.csv"), "skipped", "outside-input-rules"),
}


@pytest.mark.parametrize("case", sorted(BODIES))
def test_every_message_gets_a_defined_outcome_and_the_batch_still_loads(
        case: str, pipeline: Pipeline, database: Database, event_source: SqsEventSource, invoke: Invoker,
        logs: LogCapture) -> None:
    body, outcome, reason = BODIES[case]
    pipeline.put("input/orders/valid.json", json.dumps(orders_file("V", 5)))
    bad_id = pipeline.send("placeholder" if "\udcff" in body else body)
    event = event_source.event(event_source.receive())
    for record in event["Records"]:  # SQS refuses invalid UTF-8, but Lambda can hand a broken body over
        if record["messageId"] == bad_id:
            record["body"] = body
    response = invoke(event)

    failed = [item["itemIdentifier"] for item in response["batchItemFailures"]]
    assert failed == ([bad_id] if outcome == "rejected" else [])
    assert database.count("orders") == 5
    entries = [e for e in logs.entries if e.get("messageId") == bad_id and e.get("reason") == reason]
    assert entries, f"no structured log entry with reason {reason}"
    assert entries[0]["level"] == ("ERROR" if outcome == "rejected" else "INFO")


FILES: dict[str, tuple[bytes, str, int | None]] = {
    "malformed JSON": (b'[{"order_id": "A-1"', "malformed-json", None),
    "invalid UTF-8": (b'[{"order_id": "\xff"}]', "invalid-utf-8", None),
    "empty file": (b"\n  \n", "empty-file", None),
    "a scalar": (b"42", "wrong-shape", None),
    "a record that is not an object": (json.dumps([order("A-1"), "A-2"]).encode(), "wrong-shape", 1),
    "a record failing its model": (json.dumps([order("A-1"), order("A-2", currency="euro")]).encode(),
                                   "invalid-record", 1),
    "a wrong field type in JSON Lines": (
        (json.dumps(order("A-1")) + "\n" + json.dumps(order("A-2", item_count="3")) + "\n").encode(),
        "invalid-record", 1),
    "a repeated record key": (json.dumps([order("A-1"), order("A-1")]).encode(), "duplicate-key", 1),
}


@pytest.mark.parametrize("case", sorted(FILES))
def test_a_bad_file_fails_alone_with_bucket_key_index_and_reason(
        case: str, pipeline: Pipeline, database: Database, event_source: SqsEventSource, invoke: Invoker,
        logs: LogCapture) -> None:
    content, reason, index = FILES[case]
    pipeline.put("input/orders/valid.json", json.dumps(orders_file("V", 5)))
    pipeline.put("input/orders/bad file.json", content)
    response = invoke(event_source.event(event_source.receive()))

    assert len(response["batchItemFailures"]) == 1
    assert database.count("orders") == 5
    [entry] = logs.named("Rejected file")
    assert (entry["bucket"], entry["key"], entry["reason"], entry.get("recordIndex")) == (
        BUCKET, "input/orders/bad file.json", reason, index)


def test_an_oversized_file_fails_clearly_without_being_read(pipeline: Pipeline, database: Database,
                                                            event_source: SqsEventSource, invoke: Invoker,
                                                            ingest_app: Any, logs: LogCapture) -> None:
    limit = ingest_app.settings.max_object_bytes
    pipeline.put("input/orders/huge.json", json.dumps(orders_file("B", 1 + limit // 150)))
    response = invoke(event_source.event(event_source.receive()))
    assert len(response["batchItemFailures"]) == 1
    [entry] = logs.named("Rejected file")
    assert entry["reason"] == "oversized" and str(limit) in entry["detail"]


def test_keys_with_spaces_plus_signs_and_non_ascii_load(pipeline: Pipeline, database: Database,
                                                        event_source: SqsEventSource, invoke: Invoker) -> None:
    keys = ["input/orders/with space.json", "input/orders/a+b.json", "input/orders/café/日本.json"]
    for index, key in enumerate(keys):
        pipeline.put(key, json.dumps(orders_file(f"K{index}", 2)))
    response = invoke(event_source.event(event_source.receive()))
    assert response == {"batchItemFailures": []}
    assert database.source_keys("orders") == set(keys)


def test_each_announced_version_of_an_overwritten_object_loads_once(pipeline: Pipeline, database: Database,
                                                                    event_source: SqsEventSource,
                                                                    invoke: Invoker) -> None:
    """A versioned bucket keeps the first content: its notification loads exactly that version, not the current."""
    pipeline.put("input/orders/v.json", json.dumps(orders_file("First", 2)))
    first = pipeline.notifications(event_source)
    pipeline.put("input/orders/v.json", json.dumps(orders_file("Second", 3)))
    assert invoke(event_source.event(first)) == {"batchItemFailures": []}
    assert sorted(row[1] for row in database.keys("orders", "order_id")) == ["First-0000", "First-0001"]
    assert invoke(event_source.event(pipeline.notifications(event_source))) == {"batchItemFailures": []}
    assert database.count("orders") == 5


def test_an_object_overwritten_since_an_unversioned_notification_is_skipped(
        pipeline: Pipeline, database: Database, event_source: SqsEventSource, invoke: Invoker,
        logs: LogCapture) -> None:
    """Without a version (a bucket without versioning) the read is conditional on the announced ETag."""
    pipeline.put("input/orders/v.json", json.dumps(orders_file("First", 2)))
    [first] = pipeline.notifications(event_source)
    pipeline.acknowledge([first])
    body = json.loads(first["Body"])
    body["Records"][0]["s3"]["object"].pop("versionId", None)
    pipeline.send(json.dumps(body))
    pipeline.put("input/orders/v.json", json.dumps(orders_file("Second", 3)))
    stale = [m for m in pipeline.notifications(event_source) if "versionId" not in m["Body"]]
    assert invoke(event_source.event(stale)) == {"batchItemFailures": []}  # the old content is gone: skipped
    assert database.count("orders") == 0
    assert logs.named("Skipped file")[0]["reason"] == "overwritten since it was announced"


def test_a_key_under_the_rules_without_a_dataset_is_dead_lettered(pipeline: Pipeline, event_source: SqsEventSource,
                                                                  invoke: Invoker, logs: LogCapture) -> None:
    pipeline.put("input/invoices/i.json", json.dumps([order("I-1")]))
    response = invoke(event_source.event(event_source.receive()))
    assert len(response["batchItemFailures"]) == 1
    assert logs.named("File not loaded")[0]["reason"] == "UnroutedKeyError"


# --- the pure core --------------------------------------------------------------------------------------------


def test_classify_collects_loadable_objects_and_reports_ignored_ones() -> None:
    body = json.dumps({"Records": [
        json.loads(notification("input/orders/a+b%C3%A9.json", eTag="abc"))["Records"][0],
        json.loads(notification("input/orders/gone.json", event="ObjectRemoved:Delete"))["Records"][0]]})
    verdict = classify(body, RULES, BUCKET)
    assert isinstance(verdict, Objects)
    assert [(o.key, o.etag) for o in verdict.objects] == [("input/orders/a bé.json", "abc")]
    assert [i.reason for i in verdict.ignored] == ["not-an-object-creation"]
    assert isinstance(classify(notification("x/a.json"), RULES, BUCKET), Skipped)
    assert isinstance(classify(None, RULES, BUCKET), Rejected)


def test_parse_reads_a_document_an_array_and_json_lines() -> None:
    orders = CATALOGUE["orders"]
    one, two = order("A-1"), order("A-2")
    assert len(parse_file(json.dumps(one).encode(), orders)) == 1
    assert len(parse_file(b"\xef\xbb\xbf" + json.dumps([one, two]).encode(), orders)) == 2
    assert len(parse_file(f"{json.dumps(one)}\n\n{json.dumps(two)}\n".encode(), orders)) == 2
    with pytest.raises(InvalidFileError) as error:
        parse_file(f"{json.dumps(one)}\n{{broken\n".encode(), orders)
    assert (error.value.reason, error.value.record_index) == (InvalidReason.MALFORMED_JSON, 1)


def test_routes_pick_the_longest_prefix_and_refuse_undeclared_datasets() -> None:
    routes = Routes.from_config([{"prefix": "input/", "dataset": "customers"},
                                 {"prefix": "input/orders/", "dataset": "orders"}])
    assert routes.route("input/orders/x.json") is CATALOGUE["orders"]
    assert routes.route("input/x.json") is CATALOGUE["customers"]
    assert routes.route("other/x.json") is None
    with pytest.raises(ValueError, match="not declared"):
        Routes.from_config([{"prefix": "input/", "dataset": "invoices"}])
