"""Write a batch's valid files into PostgreSQL, idempotently, in the caller's transaction.

The natural key of every row is the object key, its version (or ETag) and the record's own key, and a file's rows
are always written together, in one transaction with its whole batch. So a file is either wholly in its table or
not at all, and idempotency can be decided per file:

1. Files already written by this batch, or whose (key, version) already has rows in the table (a redelivery), are
   skipped: their rows are counted as offered, none as inserted.
2. The rest are streamed with ``COPY`` straight into the target table, inside a savepoint.
3. If that COPY meets the unique natural key anyway (another environment committed one of the files between step
   1 and step 2, or was still writing it), the savepoint is rolled back and the same rows go the row-by-row
   idempotent way: ``COPY`` into a session-temporary staging table shaped like the target, then one ``INSERT ...
   SELECT ... ON CONFLICT (<natural key>) DO NOTHING``.

Step 2 is a plain COPY, as cheap as loading can be; step 3 keeps the races correct. The caller holds one
transaction around every chunk of a batch (``writer.BatchWriter``), so the batch is in the tables whole, or not at
all. Staging tables are temporary, so they belong to the connection, not to the schema: the schema (targets,
unique keys) comes only from the migrations.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg import Cursor, errors, sql

from file_ingestion.copy_text import file_text
from file_ingestion.datasets import Dataset
from file_ingestion.records import Record


@dataclass(frozen=True)
class ParsedFile:
    """One valid file, ready to load: its rows as COPY text (``copy_text.file_text``) and how many there are.

    Built where the file is parsed (a reading thread in the handler), so the batch's writer thread only sends the
    text, and the file's record objects are freed there, one file at a time.
    """

    dataset: Dataset
    bucket: str
    key: str
    version: str
    rows: int
    # Never in a repr: rows may hold personal data, and a batch's reprs (asyncio builds one of the finished batch task
    # when it restores the SIGINT handler) would cost as much as validating the records.
    copy_text: str = field(repr=False)

    @classmethod
    def of(cls, dataset: Dataset, bucket: str, key: str, version: str, records: Sequence[Record]) -> ParsedFile:
        return cls(dataset, bucket, key, version, len(records), file_text(dataset, bucket, key, version, records))


@dataclass
class LoadResult:
    """Rows offered and rows inserted per table; the difference were already there (redeliveries)."""

    offered: dict[str, int] = field(default_factory=dict)
    inserted: dict[str, int] = field(default_factory=dict)
    # (table, object key, version) of every file written by this transaction: a second copy in the batch is skipped
    written: set[tuple[str, str, str]] = field(default_factory=set, repr=False)
    # the transaction holds the savepoint of an earlier write (this chunk's other dataset, or an earlier chunk),
    # released by the next write's first statement
    savepoint_held: bool = field(default=False, repr=False)

    @property
    def rows_offered(self) -> int:
        return sum(self.offered.values())

    @property
    def rows_inserted(self) -> int:
        return sum(self.inserted.values())

    def add(self, table: str, offered: int, inserted: int) -> None:
        self.offered[table] = self.offered.get(table, 0) + offered
        self.inserted[table] = self.inserted.get(table, 0) + inserted


def staging_table(dataset: Dataset) -> str:
    return f"staging_{dataset.table}"


def load_chunk(cursor: Cursor[Any], files: Sequence[ParsedFile], result: LoadResult) -> None:
    """Write ``files`` inside the caller's transaction (one ``LoadResult`` per transaction), adding the rows offered
    and inserted to ``result``.

    Raises on any failed statement; the caller's transaction then writes nothing of the batch.
    """
    by_dataset: dict[str, list[ParsedFile]] = defaultdict(list)
    for parsed in files:
        by_dataset[parsed.dataset.name].append(parsed)
    for name in sorted(by_dataset):  # a fixed order, so concurrent batches take row locks in the same order
        dataset_files = by_dataset[name]
        dataset = dataset_files[0].dataset
        new = _unwritten(cursor, dataset, dataset_files, result)
        result.add(dataset.table, sum(parsed.rows for parsed in dataset_files),
                   _insert_new(cursor, dataset, new) if new else 0)


def _unwritten(cursor: Cursor[Any], dataset: Dataset, files: Sequence[ParsedFile],
               result: LoadResult) -> list[ParsedFile]:
    """The files of ``files`` with records whose rows are in neither this transaction nor the table; marks them.

    The same round trip sets the savepoint that ``_insert_new`` rolls back to (and releases the one before it):
    the writer thread waits for the interpreter after every round trip while the batch is still being read, so
    each one saved lets the database start sooner.
    """
    candidates: dict[tuple[str, str], ParsedFile] = {}
    for parsed in files:
        identity = (parsed.key, parsed.version)
        if parsed.rows and (dataset.table, *identity) not in result.written:
            candidates.setdefault(identity, parsed)
    if not candidates:
        return []
    keys, versions = zip(*candidates, strict=True)
    # Several statements in one simple query (no parameters: the values are quoted by psycopg's sql.Literal).
    cursor.execute(sql.SQL(
        "{release}SAVEPOINT {savepoint}; SELECT f.source_key, f.source_version FROM unnest({keys}::text[], "
        "{versions}::text[]) AS f(source_key, source_version) WHERE EXISTS (SELECT FROM {table} t "
        "WHERE t.source_key = f.source_key AND t.source_version = f.source_version)").format(
        release=sql.SQL("RELEASE SAVEPOINT {}; ").format(_SAVEPOINT) if result.savepoint_held else sql.SQL(""),
        savepoint=_SAVEPOINT, keys=sql.Literal(list(keys)), versions=sql.Literal(list(versions)),
        table=sql.Identifier(dataset.table)))
    result.savepoint_held = True
    while cursor.description is None and cursor.nextset():  # past the savepoint statements' empty results
        pass
    for identity in cursor.fetchall():
        candidates.pop((identity[0], identity[1]), None)
    result.written.update((dataset.table, *identity) for identity in candidates)
    return list(candidates.values())


_SAVEPOINT = sql.Identifier("file_ingestion_chunk")


def _insert_new(cursor: Cursor[Any], dataset: Dataset, files: Sequence[ParsedFile]) -> int:
    """Rows inserted: COPY straight into the table; the idempotent staging path if a race put a key there first.

    Runs after ``_unwritten`` set the savepoint, so a conflict undoes only this COPY.
    """
    try:
        return _copy(cursor, sql.Identifier(dataset.table), dataset, files)
    except errors.UniqueViolation:
        cursor.execute(sql.SQL("ROLLBACK TO SAVEPOINT {}").format(_SAVEPOINT))
        _copy(cursor, _staging(cursor, dataset), dataset, files)
        return _insert_from_stage(cursor, dataset)


def _copy(cursor: Cursor[Any], table: sql.Identifier, dataset: Dataset, files: Sequence[ParsedFile]) -> int:
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in dataset.columns)
    rows = 0
    with cursor.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(table, columns)) as copy:
        for parsed in files:
            copy.write(parsed.copy_text)
            rows += parsed.rows
    return rows


def _staging(cursor: Cursor[Any], dataset: Dataset) -> sql.Identifier:
    """The connection's empty staging table for ``dataset``, created on first use."""
    stage = sql.Identifier(staging_table(dataset))
    cursor.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} (LIKE {} INCLUDING DEFAULTS) ON COMMIT DELETE ROWS")
                   .format(stage, sql.Identifier(dataset.table)))
    cursor.execute(sql.SQL("TRUNCATE {}").format(stage))
    return stage


def _insert_from_stage(cursor: Cursor[Any], dataset: Dataset) -> int:
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in dataset.columns)
    key = sql.SQL(", ").join(sql.Identifier(c) for c in dataset.key_columns)
    cursor.execute(sql.SQL("INSERT INTO {table} ({columns}) SELECT {columns} FROM {stage} "
                           "ON CONFLICT ({key}) DO NOTHING").format(
        table=sql.Identifier(dataset.table), columns=columns, stage=sql.Identifier(staging_table(dataset)), key=key))
    return max(cursor.rowcount, 0)
