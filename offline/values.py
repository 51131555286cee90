"""Property values as plain JSON, the way the engine hands them to analyzers and writes them to a state file."""

from __future__ import annotations

from typing import Any

from pulumi import asset
from pulumi.output import Unknown
from pulumi.runtime import rpc

from offline.model import UNKNOWN


def plain(value: Any) -> Any:
    """A deserialized property as plain JSON: unknowns as the engine's sentinel, secrets unwrapped."""
    if value is None:
        return None
    if isinstance(value, Unknown):
        return UNKNOWN
    if isinstance(value, asset.Archive | asset.Asset):
        return _asset(value)
    if isinstance(value, dict):
        if value.get(rpc._special_sig_key) == rpc._special_secret_sig:
            return plain(value.get("value"))
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def _asset(value: asset.Asset | asset.Archive) -> dict[str, Any]:
    """Assets and archives in the engine's serialized form (signature key plus path, text or members)."""
    if isinstance(value, asset.Archive):
        out: dict[str, Any] = {rpc._special_sig_key: rpc._special_archive_sig}
        if isinstance(value, asset.AssetArchive):
            out["assets"] = {name: plain(member) for name, member in value.assets.items()}
        elif isinstance(value, asset.FileArchive):
            out["path"] = value.path
        elif isinstance(value, asset.RemoteArchive):
            out["uri"] = value.uri
        return out
    out = {rpc._special_sig_key: rpc._special_asset_sig}
    if isinstance(value, asset.StringAsset):
        out["text"] = value.text
    elif isinstance(value, asset.FileAsset):
        out["path"] = value.path
    elif isinstance(value, asset.RemoteAsset):
        out["uri"] = value.uri
    return out
