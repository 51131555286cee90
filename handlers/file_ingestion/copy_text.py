"""A file's rows in PostgreSQL's COPY text format, built a column at a time in C-level passes.

psycopg's ``Copy.write_row`` formats one row per Python call (about 3 microseconds a row, a sixth of a batch's
CPU); a file's rows share their source columns and every model field has one Python type (or None), so a whole
file is formatted column by column with ``map`` and ``str.join`` instead, on the thread that parsed it. The text
is then all a file keeps: its record objects are freed there and then, not all at once at the end of the batch.

COPY's text format (``FORMAT text``): columns separated by a tab, rows ended by a newline, NULL as ``\\N``, and a
backslash, tab, newline or carriage return inside a value escaped with a backslash. Values rarely hold one, so the
file is first joined as it is, and only when the separators or backslashes do not add up to the ones written
(or a carriage return appears) is it joined again with every value escaped.
"""

from __future__ import annotations

import datetime as dt
import decimal
import operator
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from file_ingestion.datasets import Dataset
from file_ingestion.records import Record

NULL = "\\N"
# Each type's text, read by PostgreSQL as the value psycopg would send (ISO 8601 dates and times, boolean literals).
_TEXT: dict[type, Callable[[Any], str] | None] = {
    str: None,  # as it is
    int: str,
    decimal.Decimal: str,
    bool: {True: "t", False: "f"}.__getitem__,
    dt.date: dt.date.isoformat,
    dt.datetime: dt.datetime.isoformat,
}
# The types a record field may hold (or None, written as NULL).
SUPPORTED_TYPES = frozenset(_TEXT)
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
# Types whose equal values always have the same text: a column of them is rendered once per distinct value.
_SAME_TEXT_WHEN_EQUAL = frozenset({int, bool, dt.date})
_index_texts: list[str] = []  # "0", "1", ...: record indexes as text, grown (under the lock) as files need
_index_texts_growing = threading.Lock()


class UnsupportedValueError(TypeError):
    """A record field holds a type with no COPY text here: the dataset's model needs a rendering in ``_TEXT``."""


def file_text(dataset: Dataset, file_id: int, records: Sequence[Record]) -> str:
    """The COPY text (``dataset.columns`` order) of one file's records.

    Each row starts with the file's id, a number, never with its bucket, key or version: those are stored once, in
    the file's own row (``load``), so the text of a file is as large as its values, whatever its object key.
    """
    count = len(records)
    if not count:
        return ""
    fields = list(map(_FIELDS, records))  # a record's fields, as the model validated them
    columns = [_Column(_index_text(count), nullable=False)]
    columns += (_column_text(name, list(map(operator.itemgetter(name), fields))) for name in dataset.data_columns)
    # The file's id is the same on every row: one prefix, digits only (nothing to escape).
    prefix = f"{int(file_id)}\t"
    text = _rows(prefix, [column.marked() for column in columns])
    # Only the separators and backslashes written here (the prefix's and one per NULL) may appear, and no CR: then
    # no value needed an escape.
    backslashes = count * prefix.count("\\") + sum(column.nulls() for column in columns)
    if (text.count("\t") != count * len(columns) or text.count("\n") != count
            or text.count("\\") != backslashes or "\r" in text):
        text = _rows(prefix, [column.escaped() for column in columns])
    return text


_FIELDS = operator.attrgetter("__dict__")


def _index_text(count: int) -> list[str]:
    if count > len(_index_texts):
        with _index_texts_growing:
            _index_texts.extend(map(str, range(len(_index_texts), count)))
    return _index_texts[:count]


@dataclass(frozen=True)
class _Column:
    """A field's values as text, None for NULL (only where ``nullable``)."""

    texts: Sequence[str | None]
    nullable: bool

    def nulls(self) -> int:
        return self.texts.count(None) if self.nullable else 0

    def marked(self) -> list[str]:
        """The texts with NULL written as COPY writes it."""
        if self.nullable:
            return [NULL if text is None else text for text in self.texts]
        return cast("list[str]", self.texts)

    def escaped(self) -> list[str]:
        """The texts with COPY's escapes (a literal ``\\N`` is escaped, a NULL is not)."""
        return [NULL if text is None else text.translate(_ESCAPES) for text in self.texts]


def _column_text(name: str, values: list[Any]) -> _Column:
    kinds = set(map(type, values))
    nullable = type(None) in kinds
    kinds.discard(type(None))
    if len(kinds) > 1 or not kinds <= SUPPORTED_TYPES:
        raise UnsupportedValueError(f"field {name!r} holds {', '.join(sorted(k.__name__ for k in kinds))}: one of "
                                    f"{', '.join(k.__name__ for k in _TEXT)} (or None) is expected")
    kind = kinds.pop() if kinds else type(None)
    render = _TEXT.get(kind)
    if render is None:  # str, or only None
        return _Column(values, nullable)
    if kind in _SAME_TEXT_WHEN_EQUAL:
        text = {value: None if value is None else render(value) for value in set(values)}
        return _Column(list(map(text.__getitem__, values)), nullable)
    return _Column([None if value is None else render(value) for value in values], nullable)


def _rows(prefix: str, columns: list[list[str]]) -> str:
    return prefix + ("\n" + prefix).join(map("\t".join, zip(*columns, strict=True))) + "\n"
