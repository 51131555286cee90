"""The body checks every queue-fed handler shares."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError

from common.message_body import BodyProblem, BodyRejected, describe_validation_error, read_body

BODIES: list[tuple[object, BodyProblem]] = [
    (b'{"a": 1}', BodyProblem.NOT_TEXT),
    (None, BodyProblem.NOT_TEXT),
    ("", BodyProblem.EMPTY_BODY),
    (" \n\t", BodyProblem.EMPTY_BODY),
    ('{"a": "\udcff"}', BodyProblem.INVALID_UTF8),  # what an invalid byte becomes in Lambda's decoded event
    ("x" * 65, BodyProblem.OVERSIZED),
    ("é" * 33, BodyProblem.OVERSIZED),  # 66 bytes: the limit is on bytes, not characters
]


@pytest.mark.parametrize(("body", "problem"), BODIES)
def test_a_body_that_cannot_be_parsed_is_named(body: object, problem: BodyProblem) -> None:
    rejected = read_body(body, max_bytes=64)
    assert isinstance(rejected, BodyRejected) and rejected.problem == problem


def test_a_usable_body_comes_back_as_text() -> None:
    assert read_body('{"a": 1}', max_bytes=8) == '{"a": 1}'


class _Message(BaseModel):
    count: int
    name: str


@pytest.mark.parametrize(("body", "problem", "detail"), [
    ("{nope", BodyProblem.MALFORMED_JSON, "body is not JSON"),
    ('{"count": "many", "name": 3}', BodyProblem.INVALID_FIELDS, "count: Input should be a valid integer"),
])
def test_a_body_failing_its_model_is_described_without_its_values(body: str, problem: BodyProblem,
                                                                   detail: str) -> None:
    with pytest.raises(ValidationError) as failed:
        _Message.model_validate_json(body)
    described = describe_validation_error(failed.value)
    assert described.problem == problem and described.detail.startswith(detail)
    assert "many" not in described.detail


def test_the_event_processor_names_every_problem_read_body_reports() -> None:
    """It converts by value into its own reasons (the other handlers use ``BodyProblem`` itself)."""
    from event_processor.intake import RejectReason

    for body, problem in BODIES:
        rejected = read_body(body, max_bytes=64)
        assert isinstance(rejected, BodyRejected)
        assert RejectReason(rejected.problem).value == problem.value
