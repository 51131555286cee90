"""The pack's version, read from PulumiPolicy.yaml (where the Pulumi CLI reads it), and the SDK told the same.

The Python policy SDK does not know the pack's version: it reports "0.0.1" in `GetAnalyzerInfo` and in its own
"can't run policy '<p>' from policy pack '<pack>@v0.0.1' during preview" notes, leaving the version to the CLI
(pulumi_policy/policy.py, `PolicyPack.__init__`). `report_manifest_version` makes the SDK report the manifest's
version instead, so every message and report names one version.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pulumi_policy import policy as sdk_policy

MANIFEST = Path(__file__).resolve().parents[2] / "PulumiPolicy.yaml"


def manifest_version(manifest: Path = MANIFEST) -> str:
    match = re.search(r"^version:\s*['\"]?([^'\"\s]+)", manifest.read_text(encoding="utf-8"), re.MULTILINE)
    return match.group(1) if match else "unversioned"


def report_manifest_version() -> None:
    """Make the SDK's analyzer report the manifest's version (it is constructed with a fixed "0.0.1")."""
    servicer = getattr(sdk_policy, "_PolicyAnalyzerServicer", None)
    if servicer is None or getattr(servicer, "_reports_manifest_version", False):
        return  # another SDK layout: the version test in tests/policies says so
    version = manifest_version()
    original = servicer.__init__

    def init(self: Any, name: str, _sdk_version: str, *args: Any, **kwargs: Any) -> None:
        original(self, name, version, *args, **kwargs)

    servicer.__init__ = init
    servicer._reports_manifest_version = True
