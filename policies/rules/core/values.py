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

from pulumi_policy import PolicyResource
from pulumi_policy.proxy import UnknownValueError


def unless_computed(resource: PolicyResource, key: str) -> Any:
    """A property the provider computes when the program leaves it unset: its value, None when the program left it
    unset, and `UnknownValueError` when the program set it to a value unknown at preview.

    In a preview's planned state such a property is unknown whenever the program did not set it, so the value alone
    cannot tell "left unset" from "set to something unknown". The engine's property dependencies can: a value the
    program built from another resource's output records that resource under the property's key, while an unset
    property records none. So an unknown value with dependencies is the program's own, and no verdict can be given
    from it (the error ends this resource's judgement, as any unknown does); without dependencies it is unset.
    """
    try:
        return resource.props.get(key)
    except UnknownValueError:
        if resource.property_dependencies.get(key):
            raise
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
