"""The record models' edge rules, through the parser the handler uses."""

from __future__ import annotations

import json
from typing import Any

import pytest

from file_ingestion.datasets import CATALOGUE
from file_ingestion.parse import InvalidFileError, parse_file
from tests.handlers.file_ingestion.conftest import order


def _amount(value: Any) -> str:
    [record] = parse_file(json.dumps([order("A-1", total_amount=value)]).encode(), CATALOGUE["orders"])
    return str(record.total_amount)  # type: ignore[attr-defined]


@pytest.mark.parametrize(("written", "kept"), [
    ("129.90", "129.90"), ("0", "0"), ("0.5", "0.5"), ("9999999999.99", "9999999999.99"),
    (12.5, "12.5"), (7, "7"), (0.1, "0.1"),  # JSON numbers keep their text: no binary float in between
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
