"""A file's rows in PostgreSQL's COPY text format, built a column at a time in C-level passes.

psycopg's ``Copy.write_row`` formats one row per Python call (about 3 microseconds a row, a sixth of a batch's
CPU); a file's rows share their source columns and every model field has one Python type (or None), so a whole
file is formatted column by column with ``map`` and ``str.join`` instead, on the thread that parsed it. The text
is then all a file keeps: its record objects are freed there and then, not all at once at the end of the batch.

COPY's text format (``FORMAT text``): columns separated by a tab, rows ended by a newline, NULL as ``\\N``, and a
backslash, tab, newline or carriage return inside a value escaped with a backslash. Values rarely hold one, so the
file is first joined as it is, and only when the separators do not add up (or a backslash or carriage return
appears) is it joined again with every value escaped.
"""

from __future__ import annotations

import datetime as dt
import decimal
import operator
from collections.abc import Callable, Sequence
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
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


class UnsupportedValueError(TypeError):
    """A record field holds a type with no COPY text here: the dataset's model needs a rendering in ``_TEXT``."""


def file_text(dataset: Dataset, bucket: str, key: str, version: str, records: Sequence[Record]) -> str:
    """The COPY text (``dataset.columns`` order) of one file's records."""
    count = len(records)
    if not count:
        return ""
    columns: list[list[str | None]] = [[bucket] * count, [key] * count, [version] * count,
                                       list(map(str, range(count)))]
    columns += (_column_text(name, list(map(operator.attrgetter(name), records))) for name in dataset.data_columns)
    text = _joined([_nulls_marked(column) for column in columns])
    # Only the separators written here may appear, and no backslash or CR: then no value needed an escape.
    if text.count("\t") != count * (len(columns) - 1) or text.count("\n") != count or "\\" in text or "\r" in text:
        text = _joined([[NULL if v is None else v.translate(_ESCAPES) for v in column] for column in columns])
    return text


def _column_text(name: str, values: list[Any]) -> list[str | None]:
    """The text of each of a field's values; None stays None (NULL)."""
    kinds = set(map(type, values))
    nullable = type(None) in kinds
    kinds.discard(type(None))
    if len(kinds) > 1 or not kinds <= _TEXT.keys():
        raise UnsupportedValueError(f"field {name!r} holds {', '.join(sorted(k.__name__ for k in kinds))}: "
                                    "one of str, int, Decimal, bool, date or datetime (or None) is expected")
    render = _TEXT[kinds.pop()] if kinds else str
    if nullable:
        return [value if value is None or render is None else render(value) for value in values]
    return values if render is None else list(map(render, values))


def _nulls_marked(column: list[str | None]) -> list[str]:
    return cast("list[str]", column) if None not in column else [NULL if v is None else v for v in column]


def _joined(columns: list[list[str]]) -> str:
    return "\n".join(map("\t".join, zip(*columns, strict=True))) + "\n"
