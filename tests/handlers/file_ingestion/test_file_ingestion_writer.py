"""The batch writer and the loads it runs, on the real server: one transaction per batch, fed while the batch is
still being read; files decided per (key, version); every failure leaves nothing written and never hangs."""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import psycopg
import pytest
from psycopg.pq import TransactionStatus

from common.postgres import ConnectionKeeper, Credentials, DatabaseSettings
from file_ingestion import load
from file_ingestion.datasets import CATALOGUE
from file_ingestion.parse import parse_file
from file_ingestion.writer import BatchWriter
from tests.handlers.file_ingestion.conftest import Database, customer, orders_file

ORDERS, CUSTOMERS = CATALOGUE["orders"], CATALOGUE["customers"]


def _parsed(dataset: Any, key: str, version: str, content: bytes) -> load.ParsedFile:
    return load.ParsedFile.of(dataset, "bucket", key, version, hashlib.sha256(content).digest(),
                              parse_file(content, dataset))


def _orders(key: str, count: int, version: str = "v1", *, content_of: str | None = None) -> load.ParsedFile:
    """``count`` orders; their content is that of the file named ``content_of`` (default: ``key``)."""
    content = json.dumps(orders_file((content_of or key).rsplit("/", 1)[-1], count)).encode()
    return _parsed(ORDERS, key, version, content)


def _customers(key: str, count: int) -> load.ParsedFile:
    return _parsed(CUSTOMERS, key, "v1", json.dumps([customer(f"{key[-2:]}C{n}") for n in range(count)]).encode())


@pytest.fixture(scope="module")
def thread() -> Iterator[ThreadPoolExecutor]:
    with ThreadPoolExecutor(max_workers=1) as executor:
        yield executor


@pytest.fixture
def connections(database: Database) -> Iterator[Any]:
    """A connection source as ``ConnectionKeeper.connection`` is one, counting how often it was entered."""
    connection = psycopg.connect(**database.server.conninfo(database.name))

    @contextlib.contextmanager
    def source() -> Iterator[psycopg.Connection[Any]]:
        source.entered += 1  # type: ignore[attr-defined]
        yield connection

    source.entered = 0  # type: ignore[attr-defined]
    yield source
    connection.close()


def test_offers_become_one_committed_batch(database: Database, connections: Any, thread: ThreadPoolExecutor) -> None:
    writer = BatchWriter(connections, thread)
    writer.offer([_orders("in/a", 30)])
    writer.offer([_orders("in/b", 20), _customers("in/c1", 5)])
    writer.offer([])  # a message with nothing to load
    result = writer.finish()

    assert (database.count("orders"), database.count("customers")) == (50, 5)
    assert result.offered == result.inserted == {"orders": 50, "customers": 5}
    assert writer.files == 3 and connections.entered == 1


def test_offers_from_many_reading_threads_become_one_transaction(database: Database, connections: Any,
                                                                  thread: ThreadPoolExecutor) -> None:
    files = [_orders(f"in/t{n:02d}", 5) for n in range(24)]
    writer = BatchWriter(connections, thread)
    start = threading.Barrier(8)

    def offer_each(batch: list[load.ParsedFile]) -> None:
        start.wait()  # all eight threads offer at once, as the handler's reading threads do
        for parsed in batch:
            writer.offer([parsed])

    with ThreadPoolExecutor(max_workers=8) as readers:
        list(readers.map(offer_each, [files[n::8] for n in range(8)]))
    result = writer.finish()

    assert connections.entered == 1 and writer.files == 24
    assert database.count("orders") == 120 and result.inserted == {"orders": 120}


def test_a_batch_without_files_never_touches_the_database(connections: Any, thread: ThreadPoolExecutor) -> None:
    writer = BatchWriter(connections, thread)
    writer.offer([])
    assert writer.finish().rows_offered == 0
    assert connections.entered == 0


def test_begin_opens_the_transaction_before_the_first_offer(database: Database, connections: Any,
                                                            thread: ThreadPoolExecutor) -> None:
    """The handler begins as soon as a message announces objects, so the database waits for the first file, not
    the other way round; a batch whose files all fail validation then commits an empty transaction."""
    for files in ([_orders("in/early", 4)], []):
        writer = BatchWriter(connections, thread)
        writer.begin()
        with connections() as connection:
            deadline = time.monotonic() + 10
            while connection.info.transaction_status != TransactionStatus.INTRANS and time.monotonic() < deadline:
                time.sleep(0.01)
            assert connection.info.transaction_status == TransactionStatus.INTRANS  # before any offer
        writer.offer(files)
        assert writer.finish().rows_inserted == len(files) * 4
        assert connection.info.transaction_status == TransactionStatus.IDLE
    assert database.count("orders") == 4 and connections.entered == 4  # twice per batch: the writer, and this test
    with pytest.raises(RuntimeError, match="finished"):
        writer.begin()


def test_a_begun_batch_with_nothing_to_write_does_not_depend_on_the_database(thread: ThreadPoolExecutor) -> None:
    """Every file gone or invalid: the messages settle one by one even while the database is down."""

    @contextlib.contextmanager
    def unreachable() -> Iterator[psycopg.Connection[Any]]:
        raise psycopg.OperationalError("connection refused")
        yield  # pragma: no cover

    writer = BatchWriter(unreachable, thread)
    writer.begin()
    writer.offer([])
    assert writer.finish().rows_offered == 0
    failing = BatchWriter(unreachable, thread)
    failing.begin()
    failing.offer([_orders("in/a", 2)])
    with pytest.raises(psycopg.OperationalError, match="refused"):
        failing.finish()


def test_a_file_already_loaded_or_twice_in_the_batch_adds_nothing(database: Database, connections: Any,
                                                                   thread: ThreadPoolExecutor) -> None:
    first = BatchWriter(connections, thread)
    first.offer([_orders("in/a", 10)])
    first.finish()

    again = BatchWriter(connections, thread)
    again.offer([_orders("in/a", 10)])  # redelivered: already in the table
    again.offer([_orders("in/b", 4)])
    again.offer([_orders("in/b", 4)])  # announced twice in one batch
    again.offer([_orders("in/a", 10, version="v2")])  # re-uploaded with the same bytes: nothing new
    again.offer([_orders("in/copy-of-a", 10, content_of="in/a")])  # the same bytes under another key: nothing new
    again.offer([_orders("in/a", 12, version="v3")])  # overwritten with other content: loads
    result = again.finish()

    assert database.count("orders") == 26
    assert result.offered == {"orders": 50} and result.inserted == {"orders": 16}
    assert result.files_already_loaded == 4 and database.count("ingested_files") == 3


def test_a_failed_write_raises_at_finish_and_writes_nothing(database: Database, connections: Any,
                                                            thread: ThreadPoolExecutor,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(cursor: Any, dataset: Any, files: Any) -> int:
        raise psycopg.errors.DiskFull("no space left on device")

    writer = BatchWriter(connections, thread)
    writer.offer([_customers("in/c1", 3)])
    monkeypatch.setattr(load, "_insert_new", broken)
    writer.offer([_orders("in/a", 10)])
    writer.offer([_orders("in/b", 10)])  # offered after the failure: taken, never waited on

    with pytest.raises(psycopg.errors.DiskFull):
        writer.finish()
    assert database.count("orders") == database.count("customers") == 0


def test_abort_rolls_back_what_was_written(database: Database, connections: Any, thread: ThreadPoolExecutor) -> None:
    writer = BatchWriter(connections, thread)
    writer.offer([_orders("in/a", 10)])
    writer.abort()
    assert database.count("orders") == 0
    assert writer.finish().rows_offered in (0, 10)  # finishing an aborted writer neither hangs nor commits
    assert database.count("orders") == 0


def test_a_race_lost_to_another_environment_adds_nothing(database: Database, connections: Any,
                                                         thread: ThreadPoolExecutor,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """Another environment commits the same file just before this one claims it."""
    original = load._claim_files
    raced: list[str] = []

    def commit_elsewhere_first(cursor: Any, dataset: Any, files: Any, result: Any) -> Any:
        if not raced:
            raced.append(dataset.table)
            with psycopg.connect(**database.server.conninfo(database.name)) as other, other.cursor() as elsewhere:
                load.load_chunk(elsewhere, [_orders("in/a", 10)], load.LoadResult())
        return original(cursor, dataset, files, result)

    monkeypatch.setattr(load, "_claim_files", commit_elsewhere_first)
    writer = BatchWriter(connections, thread)
    writer.offer([_orders("in/a", 10), _orders("in/b", 5)])
    result = writer.finish()

    assert database.count("orders") == 15
    assert result.offered == {"orders": 15} and result.inserted == {"orders": 5}


def test_an_offer_after_finish_or_abort_is_refused(connections: Any, thread: ThreadPoolExecutor) -> None:
    """A late offer would open a transaction nothing ever ends, and block the environment's next batch."""
    for stop in (BatchWriter.finish, BatchWriter.abort):
        writer = BatchWriter(connections, thread)
        writer.offer([_orders("in/a", 2)])
        stop(writer)
        for late in ([_orders("in/b", 2)], []):
            with pytest.raises(RuntimeError, match="finished"):
                writer.offer(late)


def test_a_kept_connection_left_inside_a_transaction_is_rolled_back_first(database: Database,
                                                                          thread: ThreadPoolExecutor) -> None:
    """Otherwise the batch's transaction would be a savepoint inside it, and its commit would commit nothing."""
    info = database.server.conninfo(database.name)
    keeper = ConnectionKeeper(lambda: Credentials(info["host"], info["port"], info["dbname"], info["user"],
                                                  info["password"]), DatabaseSettings("unused", sslmode="prefer"))
    with keeper.connection() as connection:
        connection.execute("SELECT 1")  # a failure escaped here once: the connection is left in a transaction
    writer = BatchWriter(keeper.connection, thread)
    writer.offer([_orders("in/a", 5)])
    assert writer.finish().inserted == {"orders": 5}
    assert database.count("orders") == 5  # committed: another session sees the rows
    keeper.close()

