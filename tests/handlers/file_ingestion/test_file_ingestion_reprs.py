"""A parsed file's rows and a load's claimed contents stay out of reprs (rows may hold personal data, and asyncio
builds a repr of a finished batch task)."""

from __future__ import annotations

import hashlib
import json

from file_ingestion import load
from file_ingestion.datasets import CATALOGUE
from file_ingestion.parse import parse_file
from tests.handlers.file_ingestion.conftest import orders_file


def test_rows_and_claimed_contents_are_never_in_a_repr() -> None:
    content = json.dumps(orders_file("PRIVATE", 3)).encode()
    parsed = load.ParsedFile.of(CATALOGUE["orders"], "bucket", "input/orders/p.json", "v1",
                                hashlib.sha256(content).digest(), parse_file(content, CATALOGUE["orders"]))
    result = load.LoadResult()
    result.written.add(("orders", parsed.content_sha256))

    assert "PRIVATE" in parsed.copy_text
    assert "PRIVATE" not in repr(parsed) and "copy_text" not in repr(parsed)
    assert "written" not in repr(result) and repr(parsed.content_sha256) not in repr(result)
