"""The preview's findings as SARIF 2.1.0, for GitHub code scanning (`python -m offline preview --sarif FILE`).

One `result` per violation, with its policy as the rule (description, severity, remediation and documentation URL
as the pack declares them), the resource's URN as a logical location, and a physical location where one is known:
the program line that registered the resource (the SDK reports it with every registration), else the stack's
`Pulumi.<stack>.yaml`. Paths are relative to the project directory (`%SRCROOT%`), as code scanning expects.
Policies skipped for an unknown value are results too (level `note`), so nothing unjudged goes unseen.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from offline.model import PolicyInfo, ResourceRecord
from offline.report import PreviewResult

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
_LEVELS = {"mandatory": "error", "remediate": "error", "advisory": "warning", "disabled": "none"}
# SARIF's `security-severity` (0.0-10.0) is what code scanning sorts security findings by.
_SECURITY_SEVERITY = {"critical": "9.5", "high": "8.0", "medium": "5.5", "low": "3.0"}


def _rule(policy: PolicyInfo) -> dict[str, Any]:
    rule: dict[str, Any] = {
        "id": policy.name,
        "name": policy.name,
        "shortDescription": {"text": policy.description or policy.name},
        "defaultConfiguration": {"level": _LEVELS.get(policy.enforcement, "warning")},
        "properties": {"tags": ["security", *policy.tags]},
    }
    if policy.remediation:
        rule["help"] = {"text": policy.remediation}
    if policy.url:
        rule["helpUri"] = policy.url
    if policy.severity:
        rule["properties"]["security-severity"] = _SECURITY_SEVERITY[policy.severity]
    return rule


def _physical(record: ResourceRecord | None, project_dir: Path, stack: str) -> dict[str, Any]:
    if record is not None and record.source is not None:
        path, line = Path(record.source[0]), record.source[1]
        if path.is_relative_to(project_dir):
            return {"artifactLocation": {"uri": path.relative_to(project_dir).as_posix(), "uriBaseId": "%SRCROOT%"},
                    "region": {"startLine": line}}
    return {"artifactLocation": {"uri": f"Pulumi.{stack}.yaml", "uriBaseId": "%SRCROOT%"},
            "region": {"startLine": 1}}


def _result(rule_ids: dict[str, int], policy: str, level: str, urn: str, message: str,
            by_urn: dict[str, ResourceRecord], project_dir: Path, stack: str) -> dict[str, Any]:
    record = by_urn.get(urn)
    result: dict[str, Any] = {
        "ruleId": policy,
        "level": level,
        "message": {"text": message},
        "locations": [{"physicalLocation": _physical(record, project_dir, stack),
                       "logicalLocations": [{"fullyQualifiedName": urn, "kind": "resource"}]}],
        # Stable across runs and line moves: the same policy on the same resource is the same finding.
        "partialFingerprints": {"policyAndUrn/v1": hashlib.sha256(f"{policy}|{urn}".encode()).hexdigest()},
    }
    if policy in rule_ids:
        result["ruleIndex"] = rule_ids[policy]
    return result


def sarif_report(result: PreviewResult, *, project_dir: Path) -> dict[str, Any]:
    """A SARIF log with one run: the policy pack as the tool, each violation and skip as a result."""
    project_dir = project_dir.resolve()
    synthesis, analysis = result.synthesis, result.analysis
    rules = [_rule(p) for p in analysis.policies]
    rule_ids = {rule["id"]: index for index, rule in enumerate(rules)}
    by_urn = {r.urn: r for r in synthesis.resources}
    results = [_result(rule_ids, v.policy, _LEVELS.get(v.enforcement, "warning"), v.urn, v.message, by_urn,
                       project_dir, synthesis.stack) for v in analysis.violations]
    results += [_result(rule_ids, s.policy, "note", s.urn, s.message, by_urn, project_dir, synthesis.stack)
                for s in analysis.skipped]
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": analysis.pack_name, "version": analysis.pack_version, "rules": rules}},
            "automationDetails": {"id": f"pulumi-preview/{synthesis.project}/{synthesis.stack}/"},
            "originalUriBaseIds": {"%SRCROOT%": {"uri": project_dir.as_uri() + "/"}},
            "results": results,
        }],
    }
