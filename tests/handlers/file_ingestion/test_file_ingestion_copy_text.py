"""A file's COPY text built column by column: exactly the rows psycopg's row-by-row formatting stores, escapes and
NULLs included."""

from __future__ import annotations

import datetime as dt
import json
import types
import typing
from typing import Any

import pytest

from file_ingestion import load
from file_ingestion.copy_text import SUPPORTED_TYPES, UnsupportedValueError, file_text
from file_ingestion.datasets import CATALOGUE, Dataset
from file_ingestion.parse import parse_file
from file_ingestion.records import Record
from tests.handlers.file_ingestion.conftest import Database, customer, order

ORDERS, CUSTOMERS = CATALOGUE["orders"], CATALOGUE["customers"]
DATA_COLUMNS = ", ".join(CUSTOMERS.data_columns)
AWKWARD_NAMES = ["tab\there", "back\\slash", "new\nline", "carriage\rreturn", "\\N", "Zoë Ø'Brien-Łukasz 李"]


def _customers(*overrides: dict[str, Any]) -> list[Any]:
    return parse_file(json.dumps([customer(f"C{n}", **o) for n, o in enumerate(overrides)]).encode(), CUSTOMERS)


class _Note(Record):
    note_id: str
    body: str | None = None
    due: dt.date | None = None


class _Measurement(Record):
    reading: float


def test_an_orders_file_is_one_tab_separated_line_per_record() -> None:
    records = parse_file(json.dumps([order("A-001"), order("A-002", total_amount=7, item_count=0)]).encode(), ORDERS)
    assert file_text(ORDERS, 42, records) == (
        "42\t0\tA-001\tC-001\t2024-05-17\tpaid\tEUR\t129.90\t3\n"
        "42\t1\tA-002\tC-002\t2024-05-17\tpaid\tEUR\t7\t0\n")


@pytest.mark.parametrize(("value", "text"), [
    ("Ada\tLovelace", "Ada\\tLovelace"), ("Ada\\nLovelace", "Ada\\\\nLovelace"), ("Ada\nLovelace", "Ada\\nLovelace"),
    ("Ada\rLovelace", "Ada\\rLovelace"), ("\\N", "\\\\N")])
def test_a_value_that_needs_escaping_is_escaped(value: str, text: str) -> None:
    lines = file_text(CUSTOMERS, 7, _customers({}, {"full_name": value})).splitlines()
    assert len(lines) == 2 and lines[1].split("\t")[4] == text


def test_a_row_names_its_file_by_id_whatever_its_object_key() -> None:
    assert file_text(CUSTOMERS, 9_223_372_036_854_775_807, _customers({})).startswith("9223372036854775807\t0\tC0\t")


def test_none_is_null_and_a_field_of_an_unsupported_type_is_refused() -> None:
    notes = Dataset("notes", _Note, "notes")
    records = [_Note(note_id="n1"), _Note(note_id="n2", body="\\N", due="2024-05-17"), _Note(note_id="n3", body="x")]
    assert file_text(notes, 1, records) == (
        "1\t0\tn1\t\\N\t\\N\n1\t1\tn2\t\\\\N\t2024-05-17\n1\t2\tn3\tx\t\\N\n")
    with pytest.raises(UnsupportedValueError, match="field 'reading' holds float"):
        file_text(Dataset("measurements", _Measurement, "measurements"), 1, [_Measurement(reading=1.5)])


def test_every_dataset_of_the_catalogue_has_copy_text_for_each_field() -> None:
    """A dataset whose model holds a field of a type with no COPY text would fail its files at run time."""
    supported = SUPPORTED_TYPES | {type(None)}
    for dataset in CATALOGUE.values():
        for name, info in dataset.model.model_fields.items():
            assert _python_types(info.annotation) <= supported, f"{dataset.name}.{name}: {info.annotation}"


def _python_types(annotation: Any) -> set[type]:
    if typing.get_origin(annotation) is typing.Literal:
        return {type(value) for value in typing.get_args(annotation)}
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return set().union(*map(_python_types, typing.get_args(annotation)))
    return {annotation}


def test_an_empty_file_is_no_text() -> None:
    assert file_text(CUSTOMERS, 1, []) == ""


def test_the_column_text_stores_what_psycopgs_rows_store(database: Database) -> None:
    records = _customers(
        *({"full_name": name, "marketing_opt_in": n % 2 == 0} for n, name in enumerate(AWKWARD_NAMES)),
        {"created_at": "2024-05-17T10:15:00.123456+02:00"},
        {"created_at": "2024-02-29T23:59:59-09:30", "marketing_opt_in": True},
        {"created_at": "2024-05-17T10:15:00Z", "email": "o'hara+tag@example.co.uk"})
    with database.connect() as connection, connection.transaction(), connection.cursor() as cursor:
        parsed = load.ParsedFile.of(CUSTOMERS, "b", "in/odd\tkey\\.json", "v1", b"\x01" * 32, records)
        load.load_chunk(cursor, [parsed], load.LoadResult())
        columns = ", ".join(CUSTOMERS.columns)
        with cursor.copy(f"COPY customers ({columns}) FROM STDIN") as copy:
            for index, record in enumerate(records):
                copy.write_row((-1, index, *(getattr(record, name) for name in CUSTOMERS.data_columns)))

    def stored(file_id: int) -> list[tuple[Any, ...]]:
        return database.query(f"SELECT record_index, {DATA_COLUMNS} FROM customers WHERE file_id = %s "
                              "ORDER BY record_index", file_id)

    assert stored(parsed.file_id) == stored(-1)
    assert [row[3] for row in stored(-1)][:len(AWKWARD_NAMES)] == AWKWARD_NAMES
    assert len(stored(-1)) == len(records)
    assert database.query("SELECT source_key FROM ingested_files") == [("in/odd\tkey\\.json",)]
