"""The fast path of a file whose content this transaction already wrote: skipped before any statement.

A second copy of a content in the same chunk, or in a later chunk of the same batch's transaction, is counted as
already loaded without a claim round trip; the unique content key of ``ingested_files`` would also refuse it, so
only the statements sent show the skip, and they are what these tests count.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from file_ingestion import load
from file_ingestion.datasets import CATALOGUE
from file_ingestion.parse import parse_file
from tests.handlers.file_ingestion.conftest import Database, orders_file

ORDERS = CATALOGUE["orders"]


class CountingCursor:
    """A cursor that keeps every statement ``execute`` sends and the file ids each claim offers."""

    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self._cursor = cursor
        self.claims: list[list[int]] = []

    def execute(self, query: Any, params: Any = None) -> Any:
        self.claims.append(list(params[1]))  # the claim's file ids (load._claim_files)
        return self._cursor.execute(query, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


def _orders(key: str, content_of: str, count: int = 5) -> load.ParsedFile:
    content = json.dumps(orders_file(content_of, count)).encode()
    return load.ParsedFile.of(ORDERS, "bucket", key, "v1", hashlib.sha256(content).digest(),
                              parse_file(content, ORDERS))


@pytest.fixture
def cursor(database: Database) -> Iterator[CountingCursor]:
    with psycopg.connect(**database.server.conninfo(database.name)) as connection, connection.cursor() as raw:
        yield CountingCursor(raw)
        connection.commit()


def test_a_content_written_by_an_earlier_chunk_of_the_transaction_is_skipped_without_a_claim(
        cursor: CountingCursor, database: Database) -> None:
    first, again = _orders("input/orders/a.json", "A"), _orders("input/orders/copy-of-a.json", "A")
    result = load.LoadResult()

    load.load_chunk(cursor, [first], result)  # type: ignore[arg-type]
    load.load_chunk(cursor, [again], result)  # type: ignore[arg-type]

    assert cursor.claims == [[first.file_id]]  # the second chunk sent nothing
    assert result.files_already_loaded == 1
    assert result.offered == {"orders": 10} and result.inserted == {"orders": 5}
    cursor.connection.commit()
    assert database.count("orders") == 5


def test_a_second_copy_in_one_chunk_is_skipped_before_the_claim(cursor: CountingCursor, database: Database) -> None:
    first, again, other = (_orders("input/orders/b.json", "B"), _orders("input/orders/copy-of-b.json", "B"),
                           _orders("input/orders/c.json", "C", 3))
    result = load.LoadResult()

    load.load_chunk(cursor, [first, again, other], result)  # type: ignore[arg-type]

    [claim] = cursor.claims
    assert sorted(claim) == sorted([first.file_id, other.file_id])  # one copy of B offered, never both
    assert result.files_already_loaded == 1
    assert result.offered == {"orders": 13} and result.inserted == {"orders": 8}
    cursor.connection.commit()
    assert database.count("orders") == 8


def test_a_chunk_whose_every_file_is_already_loaded_inserts_no_row(cursor: CountingCursor, database: Database) -> None:
    load.load_chunk(cursor, [_orders("input/orders/d.json", "D")], load.LoadResult())  # type: ignore[arg-type]
    cursor.connection.commit()
    result = load.LoadResult()

    load.load_chunk(cursor, [_orders("input/orders/again/d.json", "D")], result)  # type: ignore[arg-type]

    assert result.files_already_loaded == 1
    assert result.offered == {"orders": 5} and result.inserted == {"orders": 0}
    cursor.connection.commit()
    assert database.count("orders") == 5
