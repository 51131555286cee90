"""A file's bytes -> validated records of its dataset, or the one reason the file is rejected. Pure.

A file holds one JSON document (one record), a JSON array of records, or JSON Lines (one record per non-blank
line). Every rejection names the record index (0-based, in file order; None when the file as a whole is bad) and
a reason without the offending values, which may be personal data:

| input                                        | reason             |
|----------------------------------------------|--------------------|
| bytes that are not UTF-8                     | ``invalid-utf-8``  |
| nothing but whitespace                       | ``empty-file``     |
| not JSON (or a JSON Lines line that is not)  | ``malformed-json`` |
| a scalar at the top, or a record not an object | ``wrong-shape``  |
| a record failing its model                   | ``invalid-record`` |
| two records with the same key in one file    | ``duplicate-key``  |
| a text holding a NUL character (``\\u0000``)  | ``invalid-record`` |

>>> from file_ingestion.datasets import CATALOGUE
>>> parse_file(b"[]", CATALOGUE["orders"])
[]
"""

from __future__ import annotations

import functools
import operator
from enum import StrEnum
from typing import Any

from pydantic import TypeAdapter, ValidationError

from file_ingestion.datasets import Dataset
from file_ingestion.records import Record

_BOM = b"\xef\xbb\xbf"
_DETAIL_ERRORS = 3  # validation problems named per rejection
_NUL_ESCAPE = b"\\u0000"  # how JSON writes a NUL character; PostgreSQL text cannot hold one


class InvalidReason(StrEnum):
    INVALID_UTF8 = "invalid-utf-8"
    EMPTY_FILE = "empty-file"
    MALFORMED_JSON = "malformed-json"
    WRONG_SHAPE = "wrong-shape"
    INVALID_RECORD = "invalid-record"
    DUPLICATE_KEY = "duplicate-key"
    OVERSIZED = "oversized"


class InvalidFileError(ValueError):
    """The file cannot be loaded; ``record_index`` is the first bad record, None when the whole file is bad."""

    def __init__(self, reason: InvalidReason, detail: str, record_index: int | None = None) -> None:
        super().__init__(f"{reason}: {detail}" + (f" (record {record_index})" if record_index is not None else ""))
        self.reason = reason
        self.detail = detail
        self.record_index = record_index


@functools.cache
def _list_adapter(model: type[Record]) -> TypeAdapter[list[Any]]:
    return TypeAdapter(list[model])  # type: ignore[valid-type]


def parse_file(data: bytes, dataset: Dataset) -> list[Record]:
    """Validate every record of ``data`` against ``dataset``'s model; raise ``InvalidFileError`` for a bad file."""
    if data.startswith(_BOM):
        data = data[len(_BOM):]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidFileError(InvalidReason.INVALID_UTF8, f"byte {error.start} is not valid UTF-8") from None
    stripped = text.lstrip()
    if not stripped:
        raise InvalidFileError(InvalidReason.EMPTY_FILE, "the file holds no JSON")
    first = stripped[0]
    if first == "[":
        records = _array(data, dataset.model)
    elif first == "{":
        records = _document_or_lines(data, text, dataset.model)
    else:
        raise InvalidFileError(InvalidReason.WRONG_SHAPE if _is_json(stripped) else InvalidReason.MALFORMED_JSON,
                               "the top level is neither an object, an array of objects nor JSON Lines")
    _reject_duplicate_keys(records, dataset)
    if _NUL_ESCAPE in data:  # rare: only then look at the values (a literal backslash-u0000 text also lands here)
        _reject_nul_characters(records)
    return records


def _array(data: bytes, model: type[Record]) -> list[Record]:
    try:
        return _list_adapter(model).validate_json(data)
    except ValidationError as error:
        raise _rejection(error, index_in_loc=True) from None


def _document_or_lines(data: bytes, text: str, model: type[Record]) -> list[Record]:
    try:
        return [model.model_validate_json(data)]
    except ValidationError as error:
        if not _trailing_content(error):
            raise _rejection(error, index_in_loc=False, index=0) from None
    records: list[Record] = []
    for line_number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            records.append(model.model_validate_json(line))
        except ValidationError as error:
            raise _rejection(error, index_in_loc=False, index=len(records), line=line_number) from None
    return records


def _trailing_content(error: ValidationError) -> bool:
    problems = error.errors(include_url=False, include_input=False)
    return len(problems) == 1 and problems[0]["type"] == "json_invalid" and "trailing characters" in problems[0]["msg"]


def _rejection(error: ValidationError, *, index_in_loc: bool, index: int | None = None,
               line: int | None = None) -> InvalidFileError:
    problems = error.errors(include_url=False, include_input=False)
    where = f"line {line}: " if line is not None else ""
    first = problems[0]
    if first["type"] == "json_invalid":
        return InvalidFileError(InvalidReason.MALFORMED_JSON, where + first["msg"], index if line else None)
    loc = list(first["loc"])
    if index_in_loc:
        if not loc:  # the top level: not a list
            return InvalidFileError(InvalidReason.WRONG_SHAPE, first["msg"])
        index = int(loc[0])
        problems = [p for p in problems if p["loc"][:1] == (index,)]
    fields_at = 1 if index_in_loc else 0
    if first["type"] in ("model_type", "model_attributes_type") and len(loc) == fields_at:
        return InvalidFileError(InvalidReason.WRONG_SHAPE, where + "the record is not a JSON object", index)
    described = "; ".join(
        f"{'.'.join(str(part) for part in p['loc'][fields_at:]) or '(record)'}: {p['msg']}"
        for p in problems[:_DETAIL_ERRORS])
    more = f" (+{len(problems) - _DETAIL_ERRORS} more)" if len(problems) > _DETAIL_ERRORS else ""
    return InvalidFileError(InvalidReason.INVALID_RECORD, where + described + more, index)


def _is_json(text: str) -> bool:
    import json

    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _reject_duplicate_keys(records: list[Record], dataset: Dataset) -> None:
    fields = dataset.model.key_fields
    keys = list(map(operator.attrgetter(*fields), records))  # one C-level pass; the common case has no repeat
    if len(set(keys)) == len(keys):
        return
    seen: set[Any] = set()
    for index, key in enumerate(keys):
        if key in seen:
            raise InvalidFileError(InvalidReason.DUPLICATE_KEY,
                                   f"{', '.join(fields)} repeats a key of an earlier record of the file", index)
        seen.add(key)


def _reject_nul_characters(records: list[Record]) -> None:
    """A NUL in a text field would fail the whole batch's COPY; it fails only this file, naming the record."""
    for index, record in enumerate(records):
        for name, value in record:
            if isinstance(value, str) and "\x00" in value:
                raise InvalidFileError(InvalidReason.INVALID_RECORD,
                                       f"{name}: holds a NUL character, which PostgreSQL text cannot store", index)
