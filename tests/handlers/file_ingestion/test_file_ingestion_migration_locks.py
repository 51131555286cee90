"""A migration that locks the loader's tables on a busy database: it never stalls the loads behind it.

0004 takes ACCESS EXCLUSIVE on customers and orders for its whole transaction (it rewrites both tables). While it
waits for a running batch, every later load queues behind its request; once it has the locks, loads wait until it
commits. The runner bounds both: ``lock_timeout`` (the wait for the locks, then a rollback and a retry after a pause,
until a deadline) and ``statement_timeout`` (how long it can hold them).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from file_ingestion_migrate import runner
from tests.handlers.file_ingestion.conftest import Database

SHIPPED = runner.discover()
BEFORE_0004 = SHIPPED[:3]
UP_TO_0004 = SHIPPED[:4]


@pytest.fixture
def before_0004(empty_database: Database) -> Database:
    with empty_database.connect() as connection:
        runner.migrate(connection, BEFORE_0004)
    return empty_database


@pytest.fixture
def running_batch(before_0004: Database) -> Iterator[psycopg.Connection[Any]]:
    """A batch's open transaction holding the lock a COPY into orders takes (ROW EXCLUSIVE)."""
    with before_0004.connect() as connection:
        connection.execute("BEGIN")
        connection.execute("LOCK TABLE orders IN ROW EXCLUSIVE MODE")
        yield connection
        if connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            connection.execute("ROLLBACK")


def _tables(database: Database) -> set[str]:
    return {row[0] for row in database.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def test_a_migration_behind_a_running_batch_gives_up_by_its_deadline_and_changes_nothing(
        before_0004: Database, running_batch: psycopg.Connection[Any]) -> None:
    with before_0004.connect() as connection:
        started = time.monotonic()
        with pytest.raises(runner.MigrationError, match=r"0004_ingested_files could not take its locks within 200 ms"):
            runner.migrate(connection, UP_TO_0004, lock_timeout_ms=200, deadline=time.monotonic() + 1.5,
                           pause_seconds=0.2)
        assert time.monotonic() - started < 10  # bounded by the deadline, not by the batch
    assert "ingested_files" not in _tables(before_0004)
    assert before_0004.count("schema_migrations") == len(BEFORE_0004)


def test_loads_arriving_while_the_migration_waits_are_held_at_most_its_lock_timeout(
        before_0004: Database, running_batch: psycopg.Connection[Any]) -> None:
    """Without the lock timeout, the second load would wait behind the queued ACCESS EXCLUSIVE request for as long as
    the first batch runs (here: until its own statement timeout of 20 s fails it)."""
    failure: list[BaseException] = []

    def migrate() -> None:
        with before_0004.connect() as connection:
            try:
                runner.migrate(connection, UP_TO_0004, lock_timeout_ms=300, deadline=time.monotonic() + 3,
                               pause_seconds=1.0)
            except runner.MigrationError as error:
                failure.append(error)

    migration = threading.Thread(target=migrate)
    migration.start()
    with before_0004.connect() as load:
        load.execute("SET statement_timeout = 20000")
        deadline = time.monotonic() + 5
        while not before_0004.query("SELECT 1 FROM pg_locks WHERE NOT granted AND mode = 'AccessExclusiveLock'"):
            assert time.monotonic() < deadline, "the migration never queued for its locks"
            time.sleep(0.01)
        started = time.monotonic()
        with load.transaction():
            load.execute("LOCK TABLE customers IN ROW EXCLUSIVE MODE")  # what the next batch's COPY takes
        held = time.monotonic() - started
    migration.join()
    assert held < 3  # released when the migration's 300 ms lock timeout rolled it back, not 20 s later
    assert failure and "could not take its locks" in str(failure[0])


def test_a_migration_retries_until_the_running_batch_commits_then_applies(
        before_0004: Database, running_batch: psycopg.Connection[Any]) -> None:
    threading.Timer(0.8, lambda: running_batch.execute("COMMIT")).start()
    with before_0004.connect() as connection:
        report = runner.migrate(connection, UP_TO_0004, lock_timeout_ms=200, deadline=time.monotonic() + 20,
                                pause_seconds=0.3)
    assert report.applied == ("0004_ingested_files",)
    assert "ingested_files" in _tables(before_0004)


def test_each_migration_runs_with_its_bounds_set_locally(empty_database: Database) -> None:
    probe = runner.Migration(1, "0001_probe", "CREATE TABLE probe AS SELECT current_setting('lock_timeout') AS lock, "
                                              "current_setting('statement_timeout') AS statement")
    with empty_database.connect() as connection:
        runner.migrate(connection, [probe], lock_timeout_ms=1234, statement_timeout_ms=56789)
        assert connection.execute("SHOW lock_timeout").fetchone() == ("0",)  # SET LOCAL: gone after the migration
    assert empty_database.query("SELECT lock, statement FROM probe") == [("1234ms", "56789ms")]


def test_a_statement_longer_than_the_statement_timeout_fails_the_migration(empty_database: Database) -> None:
    slow = runner.Migration(1, "0001_slow", "SELECT pg_sleep(2)")
    with empty_database.connect() as connection, pytest.raises(runner.MigrationError,
                                                                match=r"0001_slow failed.*statement timeout"):
        runner.migrate(connection, [slow], statement_timeout_ms=200)
