"""What the model may answer, per task: the JSON schema it is held to, and the check of every answer. Pure.

The model answers by calling one tool, ``record_result``, whose ``inputSchema`` is the task's schema, and
``toolChoice`` forces that call (``model.converse_request``). Its input is then validated against the same
pydantic model, strictly (no coercion, no extra fields, the configured labels only) before anything is stored,
remembered or published: Converse does not promise that a tool input honours its schema, and the item text is
producer data that may try to steer the answer. An answer that fails is ``Invalid`` and never a result.

Bounds on every string and list keep a result far inside EventBridge's 256 KiB entry and DynamoDB's 400 KB item.

>>> check(answer_model("classify", ("spam", "ham")), {"label": "ham", "confidence": 0.5})
{'label': 'ham', 'confidence': 0.5}
>>> check(answer_model("classify", ("spam", "ham")), {"label": "eggs", "confidence": 0.5}).reason
"label: Input should be 'spam' or 'ham'"
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from common.redact import clip

TOOL_NAME = "record_result"
TOOL_DESCRIPTION = "Record the result for the item. Call it exactly once, with arguments that match the schema."
MODERATION_CATEGORIES = ("hate", "harassment", "violence", "sexual", "self-harm")
_PROBLEMS_NAMED = 3


class _Answer(BaseModel):
    # strict: "0.9" is not a number and 1 is not true; extra="forbid": nothing but the schema's fields.
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Summary(_Answer):
    summary: str = Field(min_length=1, max_length=2000)


class Entity(_Answer):
    type: str = Field(min_length=1, max_length=64)
    text: str = Field(min_length=1, max_length=500)


class Extraction(_Answer):
    entities: list[Entity] = Field(max_length=200)


class Moderation(_Answer):
    flagged: bool
    categories: list[Literal["hate", "harassment", "violence", "sexual", "self-harm"]] = Field(max_length=5)


def answer_model(task: str, labels: Sequence[str] = ()) -> type[BaseModel]:
    """The pydantic model of ``task``'s answer; a classification chooses one of ``labels``."""
    if task == "classify":
        label_type: Any = Literal[tuple(labels)] if labels else str  # Literal[("a", "b")] is Literal["a", "b"]
        return create_model("Classification", __base__=_Answer,
                            label=(label_type, Field(description="One of the labels.")),
                            confidence=(float, Field(ge=0, le=1, description="How sure, 0..1.")))
    models: dict[str, type[BaseModel]] = {"summarize": Summary, "extract": Extraction, "moderate": Moderation}
    return models[task]


def tool_spec(model: type[BaseModel]) -> dict[str, Any]:
    """The Converse ``toolSpec`` whose input schema is the task's answer schema."""
    return {"name": TOOL_NAME, "description": TOOL_DESCRIPTION, "inputSchema": {"json": model.model_json_schema()}}


@dataclass(frozen=True)
class Invalid:
    reason: str  # field locations and messages only, never the values: they may be large, and they are model output


def check(model: type[BaseModel], tool_input: Any) -> dict[str, Any] | Invalid:
    """The validated answer as plain JSON data, or why it is not one."""
    if tool_input is None:
        return Invalid(f"the model did not call the {TOOL_NAME} tool")
    try:
        return model.model_validate(tool_input).model_dump(mode="json")
    except ValidationError as error:
        problems = error.errors(include_url=False, include_input=False)[:_PROBLEMS_NAMED]
        return Invalid("; ".join(f"{'.'.join(clip(str(part), 40) for part in problem['loc'])}: {problem['msg']}"
                                 for problem in problems))
    except (RecursionError, ValueError):  # nesting past the recursion limit, a number too long to convert
        return Invalid("the tool input is nested too deeply or holds a number too large")
