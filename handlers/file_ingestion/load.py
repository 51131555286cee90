"""Write a batch's valid files into PostgreSQL: one transaction, COPY into staging, one idempotent insert.

Per dataset, every row of the batch is streamed with ``COPY`` into a session-temporary staging table shaped like
the target (``LIKE <table>``, emptied at every commit), then moved with one ``INSERT ... SELECT ... ON CONFLICT
(<natural key>) DO NOTHING``. The natural key is the object key, its version (or ETag) and the record's own key,
so a file delivered again, in this batch or any later one, adds no row, and two environments loading the same
file at once add it once (the second insert waits for the first and then finds its rows). Everything runs in one
transaction: the batch is in the tables whole, or not at all.

Staging tables are temporary, so they belong to the connection, not to the schema: the schema (targets, unique
keys) comes only from the migrations.
"""

from __future__ import annotations

import operator
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg import Connection, Cursor, sql

from file_ingestion.datasets import Dataset
from file_ingestion.records import Record


@dataclass(frozen=True)
class ParsedFile:
    dataset: Dataset
    bucket: str
    key: str
    version: str
    records: Sequence[Record]


@dataclass
class LoadResult:
    """Rows offered and rows inserted per table; the difference were already there (redeliveries)."""

    offered: dict[str, int] = field(default_factory=dict)
    inserted: dict[str, int] = field(default_factory=dict)

    @property
    def rows_offered(self) -> int:
        return sum(self.offered.values())

    @property
    def rows_inserted(self) -> int:
        return sum(self.inserted.values())


def staging_table(dataset: Dataset) -> str:
    return f"staging_{dataset.table}"


def load_files(connection: Connection[Any], files: Sequence[ParsedFile]) -> LoadResult:
    """Load every file in one transaction; raises (and writes nothing) if any statement fails."""
    by_dataset: dict[str, list[ParsedFile]] = defaultdict(list)
    datasets: dict[str, Dataset] = {}
    for parsed in files:
        by_dataset[parsed.dataset.name].append(parsed)
        datasets[parsed.dataset.name] = parsed.dataset
    result = LoadResult()
    if not by_dataset:
        return result
    with connection.transaction(), connection.cursor() as cursor:
        for name in sorted(by_dataset):  # a fixed order, so concurrent batches take row locks in the same order
            dataset = datasets[name]
            result.offered[dataset.table] = _stage(cursor, dataset, by_dataset[name])
            result.inserted[dataset.table] = _insert_from_stage(cursor, dataset)
    return result


def _stage(cursor: Cursor[Any], dataset: Dataset, files: Sequence[ParsedFile]) -> int:
    stage = sql.Identifier(staging_table(dataset))
    cursor.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
                   .format(stage, sql.Identifier(dataset.table)))
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in dataset.columns)
    values = operator.attrgetter(*dataset.data_columns)
    single = len(dataset.data_columns) == 1
    rows = 0
    with cursor.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(stage, columns)) as copy:
        for parsed in files:
            for index, record in enumerate(parsed.records):
                data = (values(record),) if single else values(record)
                copy.write_row((parsed.bucket, parsed.key, parsed.version, index, *data))
                rows += 1
    return rows


def _insert_from_stage(cursor: Cursor[Any], dataset: Dataset) -> int:
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in dataset.columns)
    key = sql.SQL(", ").join(sql.Identifier(c) for c in dataset.key_columns)
    cursor.execute(sql.SQL("INSERT INTO {table} ({columns}) SELECT {columns} FROM {stage} "
                           "ON CONFLICT ({key}) DO NOTHING").format(
        table=sql.Identifier(dataset.table), columns=columns, stage=sql.Identifier(staging_table(dataset)), key=key))
    return max(cursor.rowcount, 0)
