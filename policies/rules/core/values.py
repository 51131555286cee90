"""Reading resource properties as the analyzer hands them over.

Properties arrive through the SDK's unknown-checking proxy: mappings are `Mapping`s and lists are `Sequence`s
(not `dict`/`list`), numbers are floats (protobuf `Struct` has no integers), and reading a value that is unknown
at preview raises `UnknownValueError`. These helpers keep the rules free of those details.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from pulumi_policy.proxy import UnknownValueError


def unless_computed(props: Mapping[str, Any], key: str) -> Any:
    """A property the provider computes when the program leaves it unset: its value, or None while it is unknown.

    In a preview's planned state such a property is unknown whenever the program did not set it, so for a stack
    policy "unknown" and "left unset" look alike, and this reads both as unset. Use it only where that is sound:
    where the property is also judged from the resource's checked inputs (in which an unset property is absent and
    only a program's own unknown is unknown), where reading it as unset can only add a violation, or for a block
    that a program sets field by field (a wholly unknown block then means an Output passed for the whole block,
    which this reads as unset; a field left unknown inside a set block still raises).
    """
    try:
        return props.get(key)
    except UnknownValueError:
        return None


def is_present(props: Mapping[str, Any], key: str) -> bool:
    """Whether the program set `key` (to a value or to one unknown at preview), without reading the value: a
    membership test on the SDK's proxy reads the value, and raises when it is unknown."""
    return any(name == key for name in props)


def as_list(value: Any) -> list[Any]:
    """IAM and S3 accept a single value or a list in many places; rules always iterate."""
    if value is None:
        return []
    if isinstance(value, str | bytes | Mapping):
        return [value]
    if isinstance(value, Sequence):
        return list(value)
    return [value]


def get_path(props: Mapping[str, Any] | None, *path: str, default: Any = None) -> Any:
    """`props[a][b]...` or `default` when any step is absent or null; unknown values still raise."""
    current: Any = props
    for key in path:
        if not isinstance(current, Mapping) or key not in current:
            return default
        current = current[key]
        if current is None:
            return default
    return current


def number(value: Any, default: float) -> float:
    if value is None or value == "":
        return default
    return float(value)


def fmt(value: float) -> str:
    """60.0 -> '60', 0.5 -> '0.5': numbers as a person wrote them."""
    return f"{value:g}"


def json_document(value: Any) -> Mapping[str, Any] | None:
    """A policy document or definition: the provider takes a JSON string; tolerate an already-parsed object."""
    if value is None or value == "":
        return None
    if isinstance(value, Mapping):
        return value
    return _parsed_document(value) if isinstance(value, str) else _as_document(json.loads(value))


# Several rules read the same documents (every IAM rule reads every role's policies): each text is parsed once. The
# parsed document is shared, and no rule changes what it reads.
@lru_cache(maxsize=8192)
def _parsed_document(text: str) -> Mapping[str, Any] | None:
    return _as_document(json.loads(text))


def _as_document(parsed: Any) -> Mapping[str, Any] | None:
    return parsed if isinstance(parsed, Mapping) else None


def truthy(value: Any) -> bool:
    """Booleans may arrive as strings from some providers' outputs."""
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return bool(value)


def name_of(urn: str) -> str:
    """The logical name at the end of a URN."""
    return urn.rsplit("::", 1)[-1]
