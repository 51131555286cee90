"""The README's config reference, generated from the pydantic models so it can't drift from the code."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from components.config import PROJECT, StackConfig


def _nested_model(field: FieldInfo) -> type[BaseModel] | None:
    for arg in getattr(field.annotation, "__args__", (field.annotation,)):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def _type_name(field: FieldInfo) -> str:
    text = str(field.annotation).replace("typing.", "").replace("<class '", "").replace("'>", "")
    return text.replace("Literal", "one of ").replace("NoneType", "None")


def _bounds(field: FieldInfo) -> str:
    parts = []
    for item in field.metadata:
        for attr, symbol in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<"), ("pattern", "matches"),
                             ("min_length", "min length"), ("max_length", "max length")):
            value = getattr(item, attr, None)
            if value is not None:
                parts.append(f"{symbol} `{value}`")
    return ", ".join(parts)


def _default_value(field: FieldInfo, name: str, owner: BaseModel | None) -> Any:
    """The effective default: a section's own default (e.g. a pipeline's queue delay) beats the class default."""
    if owner is not None:
        return getattr(owner, name)
    if field.default is not PydanticUndefined:
        return field.default
    if field.default_factory is not None:
        return field.default_factory()  # type: ignore[call-arg]
    return PydanticUndefined


def _shown(value: Any) -> str:
    if value is PydanticUndefined:
        return "**required**"
    if isinstance(value, BaseModel):
        return "see below"
    return f"`{json.dumps(value, default=str)}`"


def rows(model: type[BaseModel] = StackConfig, prefix: str = f"{PROJECT}:",
         owner: BaseModel | None = None) -> Iterator[tuple[str, ...]]:
    for name, field in model.model_fields.items():
        key = f"{prefix}{field.alias or name}"
        nested = _nested_model(field)
        value = _default_value(field, name, owner)
        yield (f"`{key}`", _type_name(field) if nested is None else "object", _shown(value), _bounds(field),
               field.description or "")
        if nested is not None:
            yield from rows(nested, f"{key}.", value if isinstance(value, BaseModel) else None)


def markdown() -> str:
    lines = ["| key | type | default | bounds | meaning |", "|---|---|---|---|---|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows()]
    return "\n".join(lines)


def main(argv: Any = None) -> None:
    print(markdown())


if __name__ == "__main__":
    main()
