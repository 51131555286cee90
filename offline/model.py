"""The records the offline path passes between synthesis, the analyzer driver and the reports."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Mode = Literal["preview", "update"]

# The engine's sentinel for a value that is unknown during preview (pulumi.runtime.rpc.UNKNOWN).
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"


@dataclass
class ResourceRecord:
    """One registered resource, as the engine would hold it after `pulumi preview` or `pulumi up`.

    `inputs` and `outputs` hold plain JSON values; a value unknown at preview is the `UNKNOWN` sentinel.
    `parent`, `dependencies` and `property_dependencies` hold URNs.
    """

    urn: str
    type: str
    name: str
    custom: bool
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    parent: str | None = None
    dependencies: list[str] = field(default_factory=list)
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    protect: bool = False
    provider: str | None = None
    source: tuple[str, int] | None = None  # (file path, line) of the program line that registered it, if known


@dataclass
class Violation:
    policy: str
    enforcement: str  # "advisory" | "mandatory" | "remediate" | "disabled"
    urn: str
    message: str


@dataclass
class Skipped:
    """A policy that could not give a verdict because a value it read was unknown at preview."""

    policy: str
    urn: str
    message: str


@dataclass
class PolicyInfo:
    name: str
    enforcement: str
    description: str = ""
    config_schema: dict[str, Any] = field(default_factory=dict)
    severity: str = ""  # "low" | "medium" | "high" | "critical", when the policy declares one
    remediation: str = ""
    url: str = ""
    tags: tuple[str, ...] = ()


@dataclass
class AnalysisReport:
    policies: list[PolicyInfo]
    violations: list[Violation]
    skipped: list[Skipped]
    not_applicable: list[tuple[str, str]] = field(default_factory=list)  # (policy, reason)
    pack_name: str = ""
    pack_version: str = ""

    @property
    def mandatory(self) -> list[Violation]:
        return [v for v in self.violations if v.enforcement == "mandatory"]
