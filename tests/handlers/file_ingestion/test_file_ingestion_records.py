"""The record models' edge rules, through the parser the handler uses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from file_ingestion.datasets import CATALOGUE
from file_ingestion.parse import InvalidFileError, parse_file
from tests.handlers.file_ingestion.conftest import customer, order


def _amount(value: Any) -> str:
    [record] = parse_file(json.dumps([order("A-1", total_amount=value)]).encode(), CATALOGUE["orders"])
    return str(record.total_amount)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("written", "kept"), [
    ("129.90", "129.90"), ("0", "0"), ("0.5", "0.5"), ("9999999999.99", "9999999999.99"),
    (12.5, "12.5"), (7, "7"), (0.1, "0.1"),  # JSON numbers: their float's shortest text
])
def test_amounts_that_fit_numeric_12_2_are_kept_as_written(written: Any, kept: str) -> None:
    assert _amount(written) == kept


@pytest.mark.parametrize("written", [
    "-5", "12.345", "12345678901", "1e3", "", " 12", "12.", ".5", "007", "NaN", True, None, 1e20, -0.5,
])
def test_amounts_the_column_cannot_hold_exactly_are_rejected(written: Any) -> None:
    with pytest.raises(InvalidFileError) as rejected:
        _amount(written)
    assert rejected.value.reason == "invalid-record" and rejected.value.record_index == 0
    assert "total_amount" in rejected.value.detail


@pytest.mark.parametrize(("field", "value"), [("full_name", "Ada\u0000Lovelace"), ("email", "a\u0000@example.com")])
def test_a_nul_character_fails_its_file_naming_the_record(field: str, value: str) -> None:
    """PostgreSQL text cannot hold NUL: left to the COPY, it would fail every file of the batch."""
    content = json.dumps([customer("C-1"), customer("C-2", **{field: value})]).encode()
    with pytest.raises(InvalidFileError) as rejected:
        parse_file(content, CATALOGUE["customers"])
    assert (rejected.value.reason, rejected.value.record_index) == ("invalid-record", 1)
    assert rejected.value.detail.startswith(f"{field}: holds a NUL character")


def test_a_backslash_u0000_text_is_not_a_nul() -> None:
    content = json.dumps([{"customer_id": "C-1", "email": "a@example.com", "full_name": "back\\u0000slash",
                           "country": "DE", "created_at": "2024-05-17T10:00:00Z"}]).encode()
    assert b"\\u0000" in content  # the file does hold the escape's text, after a backslash
    [customer] = parse_file(content, CATALOGUE["customers"])
    assert customer.full_name == "back\\u0000slash"  # type: ignore[attr-defined]
