"""Property values as plain JSON, the way the engine hands them to analyzers and writes them to a state file."""

from __future__ import annotations

from typing import Any

from pulumi.output import Unknown
from pulumi.runtime import rpc

from offline.model import UNKNOWN


def plain(value: Any) -> Any:
    """A deserialized property as plain JSON: unknowns as the engine's sentinel, secrets unwrapped."""
    if value is None:
        return None
    if isinstance(value, Unknown):
        return UNKNOWN
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return plain(value.get("value"))
        return {k: plain(v) for k, v in value.items() if not k.startswith("__")}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value
