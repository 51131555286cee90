"""Write a batch's valid files into PostgreSQL, idempotently, in the caller's transaction.

A file is loaded once per content: ``ingested_files`` holds one row per file (its short random id, dataset,
SHA-256 of its bytes, bucket, key, version, row count) and is unique on (dataset, content). A file's rows name it by
that id, never by its key, and are always written together with its file row, in one transaction with the whole
batch. So a file is either wholly loaded or not at all, and idempotency is decided per file:

1. Files whose content this batch already wrote are skipped (a second copy in the batch).
2. The rest are claimed in one statement: ``INSERT INTO ingested_files ... ON CONFLICT (dataset, content_sha256)
   DO NOTHING RETURNING file_id``. A file whose content is already loaded (a redelivery, an identical re-upload, a
   re-export under another key) returns nothing and is skipped: its rows count as offered, none as inserted. When
   another environment's open transaction is claiming the same content, PostgreSQL makes this one wait for it and
   then answers by its outcome: committed, skipped here; rolled back, claimed here.
3. The claimed files' rows are streamed with ``COPY`` straight into the table. The table's unique natural key
   (file id + record key) backs this up; it never fires, since a file's records have distinct keys (``parse``).

The caller holds one transaction around every chunk of a batch (``writer.BatchWriter``), so the batch is in the
tables whole, or not at all. File ids are random 63-bit numbers chosen where the file is parsed (no round trip):
a collision with a loaded file (about one in 10^13 per file with a million files loaded) fails the batch on the
primary key, and its retry draws new ids. The schema comes only from the migrations.
"""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg import Cursor, sql

from file_ingestion.copy_text import file_text
from file_ingestion.datasets import FILES_TABLE, Dataset
from file_ingestion.records import Record


@dataclass(frozen=True)
class ParsedFile:
    """One valid file, ready to load: its rows as COPY text (``copy_text.file_text``) and how many there are.

    Built where the file is parsed (a reading thread in the handler), so the batch's writer thread only sends the
    text, and the file's record objects are freed there, one file at a time. The writer drops it once written.
    """

    dataset: Dataset
    bucket: str
    key: str
    version: str
    content_sha256: bytes
    file_id: int
    rows: int
    # Never in a repr: rows may hold personal data, and a batch's reprs (asyncio builds one of the finished batch task
    # when it restores the SIGINT handler) would cost as much as validating the records.
    copy_text: str = field(repr=False)

    @classmethod
    def of(cls, dataset: Dataset, bucket: str, key: str, version: str, content_sha256: bytes,
           records: Sequence[Record]) -> ParsedFile:
        file_id = secrets.randbits(63)
        return cls(dataset, bucket, key, version, content_sha256, file_id, len(records),
                   file_text(dataset, file_id, records))

    @property
    def text_size(self) -> int:
        return len(self.copy_text)


@dataclass
class LoadResult:
    """Rows offered and rows inserted per table; the difference were already there (redeliveries, re-uploads)."""

    offered: dict[str, int] = field(default_factory=dict)
    inserted: dict[str, int] = field(default_factory=dict)
    files_already_loaded: int = 0
    # (dataset, content) of every file this transaction claimed: a second copy in the batch is skipped
    written: set[tuple[str, bytes]] = field(default_factory=set, repr=False)

    @property
    def rows_offered(self) -> int:
        return sum(self.offered.values())

    @property
    def rows_inserted(self) -> int:
        return sum(self.inserted.values())

    def add(self, table: str, offered: int, inserted: int) -> None:
        self.offered[table] = self.offered.get(table, 0) + offered
        self.inserted[table] = self.inserted.get(table, 0) + inserted


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
        new = _claim_files(cursor, dataset, dataset_files, result)
        result.add(dataset.table, sum(parsed.rows for parsed in dataset_files),
                   _insert_new(cursor, dataset, new) if new else 0)


def _claim_files(cursor: Cursor[Any], dataset: Dataset, files: Sequence[ParsedFile],
                 result: LoadResult) -> list[ParsedFile]:
    """The files of ``files`` whose content is loaded neither by this transaction nor before; their file rows are
    inserted (one round trip)."""
    candidates: dict[bytes, ParsedFile] = {}
    for parsed in files:
        if (dataset.name, parsed.content_sha256) in result.written or parsed.content_sha256 in candidates:
            result.files_already_loaded += 1
        else:
            candidates[parsed.content_sha256] = parsed
    if not candidates:
        return []
    ordered = [candidates[content] for content in sorted(candidates)]  # one lock order for concurrent batches
    cursor.execute(sql.SQL(
        "INSERT INTO {files} (file_id, dataset, content_sha256, source_bucket, source_key, source_version, row_count) "
        "SELECT f.file_id, %s, f.content_sha256, f.source_bucket, f.source_key, f.source_version, f.row_count "
        "FROM unnest(%s::bigint[], %s::bytea[], %s::text[], %s::text[], %s::text[], %s::integer[]) WITH ORDINALITY "
        "AS f(file_id, content_sha256, source_bucket, source_key, source_version, row_count, position) "
        "ORDER BY f.position ON CONFLICT (dataset, content_sha256) DO NOTHING RETURNING file_id").format(
        files=sql.Identifier(FILES_TABLE)),
        (dataset.name, [p.file_id for p in ordered], [p.content_sha256 for p in ordered],
         [p.bucket for p in ordered], [p.key for p in ordered], [p.version for p in ordered],
         [p.rows for p in ordered]))
    claimed = {row[0] for row in cursor.fetchall()}
    result.written.update((dataset.name, content) for content in candidates)
    result.files_already_loaded += len(candidates) - len(claimed)
    return [parsed for parsed in ordered if parsed.file_id in claimed]


def _insert_new(cursor: Cursor[Any], dataset: Dataset, files: Sequence[ParsedFile]) -> int:
    """Rows inserted: the claimed files' rows, COPYed straight into the table."""
    return _copy(cursor, sql.Identifier(dataset.table), dataset, files)


def _copy(cursor: Cursor[Any], table: sql.Identifier, dataset: Dataset, files: Sequence[ParsedFile]) -> int:
    columns = sql.SQL(", ").join(sql.Identifier(c) for c in dataset.columns)
    rows = 0
    with cursor.copy(sql.SQL("COPY {} ({}) FROM STDIN").format(table, columns)) as copy:
        for parsed in files:
            copy.write(parsed.copy_text)
            rows += parsed.rows
    return rows
