"""The loader keeps working across a rotation of its secret, on the real server: nothing lost, nothing doubled.

Two ways a password changes under a running loader, as AWS's rotation functions change it:

- alternating users (what the stack deploys for the loader): the rotation gives the other user a new password and
  makes it current; the user the loader is connected as keeps working, until the next rotation changes *its*
  password. A connection made after that with the old credentials is refused, and the loader reads the secret again.
- single user: the user's own password changes, and a connection lost at that moment (a failover, an idle timeout)
  comes back only with the new one: the batch fails whole, is redelivered, and loads once over a new connection.
"""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from file_ingestion import load
from tests.handlers.conftest import REGION, SqsEventSource
from tests.handlers.file_ingestion.conftest import LOADER_USER, SECRET_ID, Clock, Database, Pipeline, orders_file
from tests.support import aws_calls, faults

FILES, ROWS = 8, 25


def _put_files(pipeline: Pipeline, prefix: str) -> None:
    for index in range(FILES):
        pipeline.put(f"input/orders/{prefix}{index}.json", json.dumps(orders_file(f"{prefix}{index}", ROWS)))


def _run(database: Database, statement: str) -> None:
    with database.connect() as connection:
        connection.execute(statement)  # type: ignore[arg-type]  # test-controlled SQL


def _secret(value: dict[str, Any]) -> None:
    """The rotation's last step: the new credentials become the secret's current version (the rotation function's
    call, made while the handler runs: not the handler's)."""
    with aws_calls.paused():
        boto3.client("secretsmanager", region_name=REGION).put_secret_value(SecretId=SECRET_ID,
                                                                            SecretString=json.dumps(value))


def _current() -> dict[str, Any]:
    return dict(json.loads(boto3.client("secretsmanager", region_name=REGION).get_secret_value(
        SecretId=SECRET_ID)["SecretString"]))


def _drop_loader_connections(database: Database) -> int:
    """What a failover or an idle timeout does to the loader's connection."""
    return len(database.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename LIKE %s "
                              "AND datname = %s", f"{LOADER_USER}%", database.name))


def _mid_batch(monkeypatch: pytest.MonkeyPatch, action: Any) -> list[str]:
    """Run ``action`` right after the batch's first write (rows written, the transaction still open), once; the
    writes seen."""
    insert = load._insert_new
    calls: list[str] = []

    def write(cursor: Any, dataset: Any, files: Any) -> int:
        rows = insert(cursor, dataset, files)
        calls.append(dataset.table)
        if len(calls) == 1:
            action()
        return rows

    monkeypatch.setattr(load, "_insert_new", write)
    return calls


@faults.injects("credentials rotated mid-batch")
def test_reliability_credentials_rotated_mid_batch(pipeline: Pipeline, database: Database, clock: Clock,
                                                   event_source: SqsEventSource, ingest_app: Any,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Alternating users: two rotations, the first while a batch writes; every batch loads, none twice."""
    first = _current()
    clone = {**first, "username": f"{LOADER_USER}_clone", "password": "rotated-password-one-0123456789"}

    def rotate_to_the_clone() -> None:  # the rotation's setSecret and finishSecret, while the batch writes
        _run(database, f"DROP ROLE IF EXISTS {clone['username']}")
        _run(database, f"CREATE ROLE {clone['username']} LOGIN PASSWORD '{clone['password']}'")
        _run(database, f"GRANT file_ingestion_loader TO {clone['username']}")
        _secret(clone)
        faults.injected("credentials rotated mid-batch", "the loader's secret rotated to its second user mid-batch")

    _put_files(pipeline, "A")
    original = load._insert_new
    calls = _mid_batch(monkeypatch, rotate_to_the_clone)
    delivery = event_source.poll()
    assert delivery is not None and delivery.error is None and delivery.failed_ids == []
    assert calls and database.count("orders") == FILES * ROWS  # the open connection kept working

    # The next rotation changes the first user's password; the loader's connection is then lost.
    second = {**first, "password": "rotated-password-two-0123456789"}
    _run(database, f"ALTER ROLE {LOADER_USER} PASSWORD '{second['password']}'")
    _secret(second)
    assert _drop_loader_connections(database) == 1
    monkeypatch.setattr(load, "_insert_new", original)
    _put_files(pipeline, "B")
    delivery = event_source.poll()
    assert delivery is not None and delivery.error is None and delivery.failed_ids == []
    assert ingest_app.database.connects == 2  # one refused attempt with the cached password, then the secret again
    assert database.count("orders") == 2 * FILES * ROWS
    assert database.count("ingested_files") == 2 * FILES
    assert int(database.query("SELECT count(DISTINCT (file_id, order_id)) FROM orders")[0][0]) == 2 * FILES * ROWS
    assert pipeline.depth() == 0


def test_a_single_user_rotation_that_cuts_the_connection_mid_batch_loads_the_batch_once_on_redelivery(
        pipeline: Pipeline, database: Database, clock: Clock, event_source: SqsEventSource, ingest_app: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    new = {**_current(), "password": "single-user-rotated-0123456789"}

    def rotate_and_cut() -> None:
        _run(database, f"ALTER ROLE {LOADER_USER} PASSWORD '{new['password']}'")
        _secret(new)
        assert _drop_loader_connections(database) == 1

    _put_files(pipeline, "S")
    original = load._insert_new
    calls = _mid_batch(monkeypatch, rotate_and_cut)
    failed = event_source.poll()
    assert failed is not None and failed.error is not None  # the whole batch failed: nothing half-written
    assert calls and database.count("orders") == 0
    monkeypatch.setattr(load, "_insert_new", original)

    clock.expire_visibility()
    retried = event_source.poll()
    assert retried is not None and retried.error is None and retried.failed_ids == []
    assert sorted(retried.message_ids) == sorted(failed.message_ids)
    assert database.count("orders") == FILES * ROWS and database.count("ingested_files") == FILES
    assert ingest_app.database.connects == 2
    assert pipeline.depth() == 0
