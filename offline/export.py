"""The synthesized stack as a `pulumi stack export` deployment (version 3).

A user with the CLI can cross-check the offline verdict against the real engine:

    python -m offline preview --stack dev --mode update --export dev.json
    pulumi policy analyze --policy-pack policies --file dev.json

The document follows `apitype.UntypedDeployment` / `DeploymentV3` / `ResourceV3` of the Pulumi engine: a manifest
whose magic is the SHA-256 of the engine version, the stack resource (with the stack outputs), one default
provider per package, then every resource in registration order (parents and dependencies always come first,
as the engine writes them). Custom resources reference their provider as `<provider URN>::<provider id>`.
Unknown values keep the engine's sentinel; an id unknown at preview is left out, because a state file never
holds an unknown id.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from offline.model import UNKNOWN, ResourceRecord
from offline.synth import Synthesis

DEPLOYMENT_VERSION = 3
STACK_TYPE = "pulumi:pulumi:Stack"


def engine_version() -> str:
    """The Pulumi SDK version stands in for the CLI version the engine would record."""
    return metadata.version("pulumi")


def deployment(synthesis: Synthesis, *, time: datetime | None = None) -> dict[str, Any]:
    """The `pulumi stack export` document of `synthesis`."""
    version = engine_version()
    providers = _default_providers(synthesis)
    resources: list[dict[str, Any]] = []
    for record in synthesis.resources:
        entry = _resource(record, providers, synthesis)
        resources.append(entry)
        if record.type == STACK_TYPE:
            # Default providers are registered right after the stack, before anything that references them.
            resources.extend(provider.entry for provider in providers.values())
    return {
        "version": DEPLOYMENT_VERSION,
        "deployment": {
            "manifest": {
                "time": (time or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
                "magic": hashlib.sha256(version.encode()).hexdigest(),
                "version": version,
            },
            "resources": resources,
        },
    }


def write_export(synthesis: Synthesis, path: Path) -> None:
    path.write_text(json.dumps(deployment(synthesis), indent=2) + "\n")


def read_export(path: Path) -> list[ResourceRecord]:
    """Records from an exported deployment (ours or the CLI's); provider resources are records like any other."""
    document = json.loads(path.read_text())
    if document.get("version") != DEPLOYMENT_VERSION:
        raise ValueError(f"{path}: deployment version {document.get('version')}, expected {DEPLOYMENT_VERSION}")
    return [_record(entry) for entry in document["deployment"].get("resources", [])]


class _Provider:
    """A default provider resource as the engine registers it for a package the program uses."""

    def __init__(self, synthesis: Synthesis, package: str) -> None:
        version = _package_version(package)
        name = "default" + (f"_{version.replace('.', '_')}" if version else "")
        self.urn = f"urn:pulumi:{synthesis.stack}::{synthesis.project}::pulumi:providers:{package}::{name}"
        # Stable across runs, so two exports of the same stack differ only in the manifest time.
        self.id = str(uuid.uuid5(uuid.NAMESPACE_URL, self.urn))
        properties = {"version": version} if version else {}
        if package == "aws":
            properties["region"] = synthesis.account.region
        self.entry = {"urn": self.urn, "custom": True, "id": self.id, "type": f"pulumi:providers:{package}",
                      "inputs": properties, "outputs": properties}

    @property
    def reference(self) -> str:
        return f"{self.urn}::{self.id}"


def _default_providers(synthesis: Synthesis) -> dict[str, _Provider]:
    packages = sorted({_package(r.type) for r in synthesis.resources if r.custom and not r.provider
                       and not _is_provider(r.type)})
    return {package: _Provider(synthesis, package) for package in packages}


def _is_provider(type_: str) -> bool:
    return type_.startswith("pulumi:providers:")


def _package(type_: str) -> str:
    return type_.split(":", 1)[0]


def _package_version(package: str) -> str:
    try:
        return metadata.version(f"pulumi_{package}")
    except metadata.PackageNotFoundError:
        return ""


def _resource(record: ResourceRecord, providers: dict[str, _Provider], synthesis: Synthesis) -> dict[str, Any]:
    entry: dict[str, Any] = {"urn": record.urn, "custom": record.custom, "type": record.type}
    if record.custom and record.id and record.id != UNKNOWN:
        entry["id"] = record.id
    if record.parent:
        entry["parent"] = record.parent
    if record.type == STACK_TYPE:
        entry["outputs"] = synthesis.outputs
    elif record.custom:
        entry["inputs"] = record.inputs
        entry["outputs"] = record.outputs
    else:
        entry["inputs"] = record.inputs
    if record.protect:
        entry["protect"] = True
    if record.dependencies:
        entry["dependencies"] = record.dependencies
    if record.custom and not _is_provider(record.type):
        entry["provider"] = record.provider or providers[_package(record.type)].reference
    if record.property_dependencies:
        entry["propertyDependencies"] = record.property_dependencies
    return entry


def _record(entry: dict[str, Any]) -> ResourceRecord:
    urn = entry["urn"]
    return ResourceRecord(
        urn=urn, type=entry["type"], name=urn.rsplit("::", 1)[1], custom=entry.get("custom", False),
        inputs=entry.get("inputs", {}), outputs=entry.get("outputs", {}), id=entry.get("id"),
        parent=entry.get("parent"), dependencies=entry.get("dependencies", []),
        property_dependencies=entry.get("propertyDependencies", {}), protect=entry.get("protect", False),
        provider=entry.get("provider"))
