"""Property values as plain JSON, the way the engine hands them to analyzers and writes them to a state file."""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format, struct_pb2
from pulumi import asset
from pulumi.output import Unknown
from pulumi.runtime import rpc

from offline.model import UNKNOWN


def from_wire(properties: struct_pb2.Struct) -> dict[str, Any]:
    """Properties as the SDK sent them (a protobuf Struct), as plain JSON the way the engine hands them on.

    Read straight from the wire rather than through the SDK's deserializer, which needs an event loop on the
    calling thread (and makes one per gRPC worker thread). Secrets are unwrapped; a resource reference becomes the
    referenced resource's id (custom) or URN (component), as the SDK and the engine marshal one for a provider that
    does not take resource references; an unknown id stays unknown. A property set to null is left out, as the SDK's
own deserializer leaves it out.
    """
    return _unwire(json_format.MessageToDict(properties))  # type: ignore[no-any-return]


def _unwire(value: Any) -> Any:
    if isinstance(value, dict):
        signature = value.get(rpc._special_sig_key)
        if signature == rpc._special_secret_sig:
            return _unwire(value.get("value"))
        if signature == rpc._special_resource_sig:
            if "id" in value:  # a custom resource: its id, unknown until the resource exists
                return value["id"] or UNKNOWN
            return value.get("urn")
        return {k: _unwire(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_unwire(v) for v in value]
    return value


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
