"""Corpus lines as the batch-inference sharder reads them (``handlers/batch_inference``): split on ``\\n``, numbered
from 1, a line's recordId its id field or, without one, a hash of its bytes."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from typing import Any

HASH_PREFIX = "sha256-"
MAX_RECORD_ID_CHARS = 256
CHUNK_BYTES = 1 << 20


def numbered_lines(chunks: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    """(1-based line number, line without its line ending) of a stream of chunks, in constant memory per line."""
    number, tail = 0, b""
    for chunk in chunks:
        parts = (tail + chunk).split(b"\n")
        tail = parts.pop()
        for part in parts:
            number += 1
            yield number, part.rstrip(b"\r\n")
    if tail:
        yield number + 1, tail.rstrip(b"\r\n")


def record_id(line: bytes, id_field: str) -> str | None:
    """The line's recordId, or None when the line is not a JSON object or its id is unusable."""
    try:
        value: Any = json.loads(line)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(value, dict):
        return None
    raw = value.get(id_field)
    if raw is None:
        return HASH_PREFIX + hashlib.sha256(line).hexdigest()[:40]
    if isinstance(raw, bool) or not isinstance(raw, str | int):
        return None
    text = str(raw).strip()
    return text if text and len(text) <= MAX_RECORD_ID_CHARS else None
