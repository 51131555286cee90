"""A file's COPY text built column by column: the same rows psycopg's row-by-row formatting stores, or None (and
psycopg's formatting) whenever a value would need escaping."""

from __future__ import annotations

import json
from typing import Any

import pytest

from file_ingestion import load
from file_ingestion.copy_text import file_text
from file_ingestion.datasets import CATALOGUE
from file_ingestion.parse import parse_file
from tests.handlers.file_ingestion.conftest import Database, customer, order

ORDERS, CUSTOMERS = CATALOGUE["orders"], CATALOGUE["customers"]
DATA_COLUMNS = ", ".join(CUSTOMERS.data_columns)


def _customers(*overrides: dict[str, Any]) -> list[Any]:
    return parse_file(json.dumps([customer(f"C{n}", **o) for n, o in enumerate(overrides)]).encode(), CUSTOMERS)


def test_an_orders_file_is_one_tab_separated_line_per_record() -> None:
    records = parse_file(json.dumps([order("A-001"), order("A-002", total_amount=7, item_count=0)]).encode(), ORDERS)
    assert file_text(ORDERS, "bkt", "in/orders/a.json", "v1", records) == (
        "bkt\tin/orders/a.json\tv1\t0\tA-001\tC-001\t2024-05-17\tpaid\tEUR\t129.90\t3\n"
        "bkt\tin/orders/a.json\tv1\t1\tA-002\tC-002\t2024-05-17\tpaid\tEUR\t7\t0\n")


@pytest.mark.parametrize("value", ["Ada\tLovelace", "Ada\\nLovelace", "Ada\nLovelace", "Ada\rLovelace"])
def test_a_value_that_needs_escaping_leaves_the_file_to_psycopg(value: str) -> None:
    assert file_text(CUSTOMERS, "b", "k", "v", _customers({}, {"full_name": value})) is None


@pytest.mark.parametrize("key", ["in/a\tb.json", "in/a\\b.json", "in/a\nb.json"])
def test_an_object_key_that_needs_escaping_leaves_the_file_to_psycopg(key: str) -> None:
    assert file_text(CUSTOMERS, "b", key, "v", _customers({})) is None


def test_an_empty_file_is_no_text() -> None:
    assert file_text(CUSTOMERS, "b", "k", "v", []) == ""


def test_the_column_text_and_psycopgs_rows_store_the_same_values(database: Database, monkeypatch: Any) -> None:
    records = _customers(
        {"full_name": "Zoë Ø'Brien-Łukasz 李", "marketing_opt_in": True},
        {"created_at": "2024-05-17T10:15:00.123456+02:00"},
        {"created_at": "2024-02-29T23:59:59-09:30", "marketing_opt_in": False},
        {"created_at": "2024-05-17T10:15:00Z", "email": "o'hara+tag@example.co.uk"})
    assert file_text(CUSTOMERS, "b", "in/fast.json", "v1", records) is not None
    fast = load.ParsedFile(CUSTOMERS, "b", "in/fast.json", "v1", records)
    with database.connect() as connection, connection.transaction(), connection.cursor() as cursor:
        load.load_chunk(cursor, [fast], load.LoadResult())
    monkeypatch.setattr(load, "file_text", lambda *_: None)  # psycopg formats every row
    slow = load.ParsedFile(CUSTOMERS, "b", "in/slow.json", "v1", records)
    with database.connect() as connection, connection.transaction(), connection.cursor() as cursor:
        load.load_chunk(cursor, [slow], load.LoadResult())

    def stored(key: str) -> list[tuple[Any, ...]]:
        return database.query(f"SELECT record_index, {DATA_COLUMNS} FROM customers WHERE source_key = %s "
                              "ORDER BY record_index", key)

    assert stored("in/fast.json") == stored("in/slow.json")
    assert len(stored("in/fast.json")) == 4


def test_a_file_psycopg_formats_is_stored_exactly(database: Database) -> None:
    names = ["tab\there", "back\\slash", "new\nline", "carriage\rreturn"]
    records = _customers(*({"full_name": name} for name in names))
    with database.connect() as connection, connection.transaction(), connection.cursor() as cursor:
        load.load_chunk(cursor, [load.ParsedFile(CUSTOMERS, "b", "in/odd\tkey.json", "v1", records)],
                        load.LoadResult())
    assert database.query("SELECT source_key, full_name FROM customers ORDER BY record_index") == [
        ("in/odd\tkey.json", name) for name in names]
