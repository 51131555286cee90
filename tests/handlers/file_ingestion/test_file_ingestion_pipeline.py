"""End to end on a real PostgreSQL server: S3 notifications -> SQS -> batches of up to 100 -> handler -> rows.

Every test counts records: each valid record is in its table exactly once, each invalid file's message ends in the
DLQ after maxReceiveCount, filtered files never reach the queue. The ``test_reliability_*`` tests drive the
handler through the faults of the reliability table (docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

import pytest
from botocore.exceptions import ClientError

from file_ingestion import load
from tests.handlers.conftest import Delivery, SqsEventSource
from tests.handlers.file_ingestion.conftest import (
    BATCH_SIZE,
    MAX_RECEIVE_COUNT,
    Clock,
    Database,
    Invoker,
    Pipeline,
    customer,
    order,
    orders_file,
)
from tests.support import aws_calls, faults


def drain(source: SqsEventSource, clock: Clock, *, rounds: int = MAX_RECEIVE_COUNT + 1) -> list[Delivery]:
    """Poll until the queue is empty, letting failed messages come back after the visibility timeout."""
    deliveries: list[Delivery] = []
    for _ in range(rounds):
        while (delivery := source.poll()) is not None:
            deliveries.append(delivery)
        clock.expire_visibility()
    return deliveries


def key_of(message: dict[str, Any]) -> str:
    """The object key a notification names (S3 URL-encodes it)."""
    return unquote_plus(json.loads(message["Body"])["Records"][0]["s3"]["object"]["key"])


def jsonl(records: list[dict[str, Any]]) -> str:
    return "\n".join(json.dumps(record) for record in records) + "\n"


def test_250_files_load_every_valid_record_exactly_once(pipeline: Pipeline, database: Database, clock: Clock,
                                                        event_source: SqsEventSource, ingest_app: Any) -> None:
    expected_orders: set[tuple[str, str]] = set()
    expected_customers: set[tuple[str, str]] = set()
    for index in range(150):  # orders: arrays, JSON Lines and single documents
        key = f"input/orders/2024/05/17/batch-{index:03d}.json"
        records = [order(f"O{index:03d}-{n:03d}") for n in range(1 if index % 10 == 0 else 20)]
        body = json.dumps(records[0]) if len(records) == 1 else jsonl(records) if index % 3 else json.dumps(records)
        pipeline.put(key, body)
        expected_orders |= {(key, r["order_id"]) for r in records}
    for index in range(95):
        key = f"input/customers/export {index:02d}+é.json"  # a space, a plus and non-ASCII, URL-encoded by S3
        records = [customer(f"C{index:02d}{n:02d}") for n in range(10)]
        pipeline.put(key, json.dumps(records))
        expected_customers |= {(key, r["customer_id"]) for r in records}
    invalid = {"input/orders/broken.json": '[{"order_id": "X-1",',
               "input/orders/bad-record.json": json.dumps([order("X-2"), order("X-3", status="lost")]),
               "input/orders/latin1.json": '[{"order_id": "Ä"}]'.encode("latin-1")}
    for key, body in invalid.items():
        pipeline.put(key, body)
    pipeline.put("input/orders/readme.txt", "not json")  # outside the suffix rule
    pipeline.put("archive/orders/old.json", json.dumps([order("A-1")]))  # outside the prefix rule

    deliveries = drain(event_source, clock)

    assert set(database.keys("orders", "order_id")) == expected_orders
    assert set(database.keys("customers", "customer_id")) == expected_customers
    assert database.count("orders") == len(expected_orders) == 135 * 20 + 15  # none doubled
    assert database.count("customers") == len(expected_customers) == 950
    dead = pipeline.dead_letters()
    dead_keys = sorted(key_of(m) for m in dead)
    assert dead_keys == sorted(["input/orders/broken.json", "input/orders/bad-record.json", "input/orders/latin1.json"])
    assert pipeline.depth() == 0
    received = {record["body"] for d in deliveries for record in d.event["Records"]}
    assert not any("readme.txt" in body or "archive/" in body for body in received)  # filtered at the source
    assert len(received) == 248 + 1  # 248 notifications and S3's test event
    assert max(len(d.message_ids) for d in deliveries) == BATCH_SIZE == 100
    assert ingest_app.database.connects == 1  # one connection, kept across every warm invocation


def test_one_transaction_per_batch_and_a_redelivered_batch_adds_no_rows(pipeline: Pipeline, database: Database,
                                                                         event_source: SqsEventSource,
                                                                         invoke: Invoker) -> None:
    for index in range(5):
        pipeline.put(f"input/orders/f{index}.json", json.dumps(orders_file(f"R{index}", 30)))
    messages = event_source.receive()
    event = event_source.event(messages)
    first = invoke(event)
    again = invoke(event)  # the same batch delivered twice

    assert first == again == {"batchItemFailures": []}
    assert database.count("orders") == 150
    assert len({row[0] for row in database.query("SELECT xmin::text FROM orders")}) == 1  # one transaction


@faults.injects("crash after the side effect, before the acknowledgement")
def test_reliability_crash_after_commit_before_acknowledgement(pipeline: Pipeline, database: Database, clock: Clock,
                                                               event_source: SqsEventSource, ingest_app: Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    for index in range(3):
        pipeline.put(f"input/orders/c{index}.json", json.dumps(orders_file(f"K{index}", 10)))
    report = ingest_app._report

    def crash(*args: Any, **kwargs: Any) -> None:
        faults.injected("crash after the side effect, before the acknowledgement",
                        "the invocation dies after its commit")
        raise RuntimeError("execution environment lost after the commit")

    monkeypatch.setattr(ingest_app, "_report", crash)
    crashed = event_source.poll()
    assert crashed is not None and crashed.error is not None
    assert database.count("orders") == 30  # committed, but nothing was acknowledged

    monkeypatch.setattr(ingest_app, "_report", report)
    clock.expire_visibility()
    retried = event_source.poll()
    assert retried is not None and retried.failed_ids == []
    assert sorted(retried.message_ids) == sorted(crashed.message_ids)
    assert database.count("orders") == 30  # the redelivered batch added nothing
    assert pipeline.depth() == 0


@faults.injects("database down mid-batch")
def test_reliability_database_down_mid_batch(pipeline: Pipeline, database: Database, clock: Clock,
                                             event_source: SqsEventSource, ingest_app: Any,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    for index in range(4):
        pipeline.put(f"input/orders/d{index}.json", json.dumps(orders_file(f"D{index}", 25)))
        pipeline.put(f"input/customers/d{index}.json", json.dumps([customer(f"D{index}C{n}") for n in range(5)]))
    insert = load._insert_new
    calls = []

    def stop_after_first_write(cursor: Any, dataset: Any, files: Any) -> int:
        calls.append(dataset.table)
        if len(calls) == 2:  # some files are in; the server goes down before the next write
            database.server.stop("immediate")
            faults.injected("database down mid-batch", "the server stopped between two writes of the batch")
        return insert(cursor, dataset, files)

    monkeypatch.setattr(load, "_insert_new", stop_after_first_write)
    failed = event_source.poll()
    assert failed is not None and failed.error is not None  # the whole batch failed
    assert len(calls) >= 2
    monkeypatch.setattr(load, "_insert_new", insert)
    database.server.run()
    assert database.count("customers") == database.count("orders") == 0  # nothing half-written

    clock.expire_visibility()
    retried = event_source.poll()
    assert retried is not None and retried.failed_ids == []
    assert sorted(retried.message_ids) == sorted(failed.message_ids)
    assert database.count("orders") == 100 and database.count("customers") == 20
    assert ingest_app.database.connects == 2  # the broken connection was replaced
    assert pipeline.depth() == 0


@faults.injects("poison message")
def test_reliability_poison_message(pipeline: Pipeline, database: Database, clock: Clock,
                                    event_source: SqsEventSource) -> None:
    pipeline.put("input/orders/good.json", json.dumps(orders_file("G", 10)))
    pipeline.put("input/orders/poison.json", json.dumps([order("P-1"), order("P-2", total_amount="-5")]))
    faults.injected("poison message", "a file with a negative total")

    first = event_source.poll()
    assert first is not None and len(first.failed_ids) == 1
    assert database.count("orders") == 10  # the poison file failed alone
    drain(event_source, clock)
    [dead] = pipeline.dead_letters()
    assert key_of(dead) == "input/orders/poison.json"
    assert int(dead["Attributes"]["ApproximateReceiveCount"]) >= MAX_RECEIVE_COUNT
    assert database.count("orders") == 10


@faults.injects("duplicate delivery")
def test_reliability_duplicate_delivery(pipeline: Pipeline, database: Database, clock: Clock,
                                        event_source: SqsEventSource) -> None:
    pipeline.put("input/orders/dup.json", json.dumps(orders_file("U", 12)))
    [notification] = pipeline.notifications(event_source)
    pipeline.sqs.change_message_visibility(QueueUrl=pipeline.queue_url, ReceiptHandle=notification["ReceiptHandle"],
                                           VisibilityTimeout=0)
    pipeline.send(notification["Body"])  # S3 delivered the event twice: both copies in one batch ...
    faults.injected("duplicate delivery", "the notification sent twice")
    drain(event_source, clock)
    pipeline.send(notification["Body"])  # ... and a third copy much later
    drain(event_source, clock)

    assert database.count("orders") == 12
    assert pipeline.depth() == 0 and pipeline.dead_letters() == []


@dataclass
class _Environment:
    """What an execution environment keeps between invocations: its connection and its writer thread."""

    database: Any
    writes: ThreadPoolExecutor

    def close(self) -> None:
        self.writes.shutdown()
        self.database.close()


def _second_environment(ingest_app: Any) -> _Environment:
    return _Environment(ingest_app.ConnectionKeeper(
        lambda: ingest_app.fetch_credentials(ingest_app.clients.secretsmanager(), ingest_app.settings.database),
        ingest_app.settings.database), ThreadPoolExecutor(max_workers=1))


@contextlib.contextmanager
def _running_in(environment: _Environment, ingest_app: Any) -> Iterator[None]:
    """Invocations started inside the block run in ``environment``."""
    kept = _Environment(ingest_app.database, ingest_app.writes)
    ingest_app.database, ingest_app.writes = environment.database, environment.writes
    try:
        yield
    finally:
        ingest_app.database, ingest_app.writes = kept.database, kept.writes


@faults.injects("concurrent duplicate")
def test_reliability_concurrent_duplicate(pipeline: Pipeline, database: Database, event_source: SqsEventSource,
                                          invoke: Invoker, ingest_app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two copies of one notification, loaded by two execution environments whose transactions overlap."""
    pipeline.put("input/orders/twice.json", json.dumps(orders_file("T", 40)))
    [first] = pipeline.notifications(event_source)
    second_id = pipeline.send(first["Body"])
    [second] = pipeline.notifications(event_source)
    assert second["MessageId"] == second_id
    claim = load._claim_files
    other = _second_environment(ingest_app)
    results: dict[str, Any] = {}
    claimed: list[int] = []

    def overlap(cursor: Any, dataset: Any, files: Any, result: Any) -> Any:
        if "second" not in results:  # A has read the file and not claimed it yet; B runs its whole batch now
            faults.injected("concurrent duplicate",
                            "a second environment loads the other copy while the first has not claimed it")
            results["second"] = None
            with _running_in(other, ingest_app):
                worker = threading.Thread(target=lambda: results.update(second=invoke(event_source.event([second]))))
                worker.start()
                worker.join(timeout=30)  # B never waits for A: A has written nothing yet, so B commits first
        new = claim(cursor, dataset, files, result)
        claimed.append(len(new))
        return new

    monkeypatch.setattr(load, "_claim_files", overlap)
    results["first"] = invoke(event_source.event([first]))
    other.close()

    assert results["first"] == results["second"] == {"batchItemFailures": []}
    assert claimed == [1, 0]  # B claimed the file and wrote it; then A found B's committed content, wrote nothing
    assert database.count("orders") == 40


@faults.injects("expired visibility during a slow batch")
def test_reliability_expired_visibility_during_slow_batch(pipeline: Pipeline, database: Database, clock: Clock,
                                                          event_source: SqsEventSource, invoke: Invoker,
                                                          ingest_app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The batch outlives its visibility timeout: SQS hands the same messages to a second environment."""
    for index in range(3):
        pipeline.put(f"input/orders/slow{index}.json", json.dumps(orders_file(f"S{index}", 15)))
    claim = load._claim_files
    other = _second_environment(ingest_app)
    redelivered: list[list[dict[str, Any]]] = []

    def slow(cursor: Any, dataset: Any, files: Any, result: Any) -> Any:
        if not redelivered:  # environment A is still busy when the visibility timeout expires
            clock.expire_visibility()
            faults.injected("expired visibility during a slow batch",
                            "the visibility ran out while the first environment was still loading")
            with aws_calls.paused():  # the test plays SQS here, not the function
                redelivered.append(pipeline.notifications(event_source))
            with _running_in(other, ingest_app):
                assert invoke(event_source.event(redelivered[0])) == {"batchItemFailures": []}
            with aws_calls.paused():
                pipeline.acknowledge(redelivered[0])
        return claim(cursor, dataset, files, result)

    monkeypatch.setattr(load, "_claim_files", slow)
    messages = pipeline.notifications(event_source)
    assert invoke(event_source.event(messages)) == {"batchItemFailures": []}
    pipeline.acknowledge(messages)
    other.close()

    assert sorted(m["MessageId"] for m in redelivered[0]) == sorted(m["MessageId"] for m in messages)
    assert database.count("orders") == 45
    assert pipeline.depth() == 0


@faults.injects("downstream throttling")
def test_reliability_downstream_throttling(pipeline: Pipeline, database: Database, clock: Clock,
                                           event_source: SqsEventSource, ingest_app: Any,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """S3 answers SlowDown for one object (past the client's own retries): that file alone is retried."""
    for index in range(4):
        pipeline.put(f"input/orders/t{index}.json", json.dumps(orders_file(f"H{index}", 5)))
    s3 = ingest_app.clients.s3(ingest_app.settings.read_concurrency)
    get_object = s3.get_object
    throttled: list[str] = []

    def slow_down(**params: Any) -> Any:
        if params["Key"] == "input/orders/t2.json" and not throttled:
            throttled.append(params["Key"])
            faults.injected("downstream throttling", "S3 answers SlowDown")
            raise ClientError({"Error": {"Code": "SlowDown", "Message": "Please reduce your request rate."}},
                              "GetObject")
        return get_object(**params)

    monkeypatch.setattr(s3, "get_object", slow_down)
    first = event_source.poll()
    assert first is not None and len(first.failed_ids) == 1
    assert database.count("orders") == 15
    drain(event_source, clock)
    assert database.count("orders") == 20 and pipeline.dead_letters() == []


@faults.injects("downstream outage")
def test_reliability_downstream_outage(pipeline: Pipeline, database: Database, clock: Clock,
                                       event_source: SqsEventSource) -> None:
    """The database is unreachable for the whole retry budget: every message is retried, then dead-lettered."""
    for index in range(3):
        pipeline.put(f"input/orders/o{index}.json", json.dumps(orders_file(f"Q{index}", 5)))
    database.server.stop()
    faults.injected("downstream outage", "the database server is down")
    try:
        deliveries = drain(event_source, clock)
    finally:
        database.server.run()

    assert all(d.error is not None for d in deliveries if any("input/orders" in r["body"]
                                                                for r in d.event["Records"]))
    assert database.count("orders") == 0
    dead = [m for m in pipeline.dead_letters() if "Records" in json.loads(m["Body"])]
    assert len(dead) == 3  # every file is in the DLQ, none lost, and redriving it loads them
    for message in dead:
        pipeline.send(message["Body"])
    drain(event_source, clock)
    assert database.count("orders") == 15
