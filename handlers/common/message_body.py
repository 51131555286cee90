"""The checks every queue-fed handler runs on a message body first, and how a rejected body is described.

Every pipeline names these problems with the same strings, so one runbook reads every pipeline's logs. A
description names field locations and messages only, never the offending values: they may be large, may be
personal data, and are in the dead-lettered message anyway.

>>> read_body("  ", max_bytes=10)
BodyRejected(problem=<BodyProblem.EMPTY_BODY: 'empty-body'>, detail='body is empty')
>>> read_body('{"a": 1}', max_bytes=64)
'{"a": 1}'
"""

from __future__ import annotations

from enum import StrEnum
from typing import NamedTuple

from pydantic import ValidationError

_PROBLEMS_NAMED = 5


class BodyProblem(StrEnum):
    NOT_TEXT = "body-not-text"
    EMPTY_BODY = "empty-body"
    INVALID_UTF8 = "invalid-utf-8"
    OVERSIZED = "oversized"
    MALFORMED_JSON = "malformed-json"
    UNRECOGNISED = "unrecognised-message"
    INVALID_FIELDS = "invalid-fields"


class BodyRejected(NamedTuple):
    problem: BodyProblem
    detail: str


def read_body(body: object, *, max_bytes: int) -> str | BodyRejected:
    """``body`` as text ready to parse, or what is wrong with it (not text, empty, not UTF-8, too large)."""
    if not isinstance(body, str):
        return BodyRejected(BodyProblem.NOT_TEXT, f"body is {type(body).__name__}, not a string")
    if not body.strip():
        return BodyRejected(BodyProblem.EMPTY_BODY, "body is empty")
    try:
        size = len(body.encode("utf-8"))
    except UnicodeEncodeError as error:  # Lambda hands over text; a lone surrogate is what invalid UTF-8 becomes
        return BodyRejected(BodyProblem.INVALID_UTF8, f"body is not valid UTF-8 at character {error.start}")
    if size > max_bytes:
        return BodyRejected(BodyProblem.OVERSIZED, f"body is {size} bytes; the limit is {max_bytes}")
    return body


def describe_validation_error(error: ValidationError) -> BodyRejected:
    """Why a body failed its message model: not JSON, no known message, or the first few invalid fields."""
    problems = error.errors(include_url=False, include_input=False)
    kinds = {problem["type"] for problem in problems}
    if "json_invalid" in kinds:
        return BodyRejected(BodyProblem.MALFORMED_JSON, f"body is not JSON: {problems[0]['msg']}")
    if "unrecognised_message" in kinds:
        return BodyRejected(BodyProblem.UNRECOGNISED, problems[0]["msg"])
    described = "; ".join(f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
                          for problem in problems[:_PROBLEMS_NAMED])
    return BodyRejected(BodyProblem.INVALID_FIELDS, described)
