"""IAM policy documents: statements, their actions and resources, and the TLS-only deny every resource policy needs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

from .values import as_list, json_document


def statements(document: Any) -> list[Mapping[str, Any]]:
    """The statements of a policy document given as JSON text (or already parsed)."""
    parsed = json_document(document)
    if parsed is None:
        return []
    return [s for s in as_list(parsed.get("Statement")) if isinstance(s, Mapping)]


def sid(statement: Mapping[str, Any], position: int) -> str:
    return f"statement '{statement['Sid']}'" if statement.get("Sid") else f"statement #{position + 1}"


def is_allow(statement: Mapping[str, Any]) -> bool:
    return statement.get("Effect") == "Allow"


def as_strings(value: Any) -> list[str]:
    return [str(v) for v in as_list(value)]


def actions(statement: Mapping[str, Any]) -> list[str]:
    return [str(a) for a in as_list(statement.get("Action"))]


def resources(statement: Mapping[str, Any]) -> list[str]:
    return [str(r) for r in as_list(statement.get("Resource"))]


def condition_keys(statement: Mapping[str, Any]) -> set[str]:
    """Every condition key the statement tests, lower-cased (IAM condition keys are case-insensitive)."""
    keys: set[str] = set()
    for block in (statement.get("Condition") or {}).values():
        if isinstance(block, Mapping):
            keys.update(str(k).lower() for k in block)
    return keys


def everyone(principal: Any) -> bool:
    """A principal of '*' or {"AWS": "*"}: every caller in every account."""
    if principal == "*":
        return True
    return isinstance(principal, Mapping) and "*" in as_list(principal.get("AWS"))


def _insecure_transport_condition(statement: Mapping[str, Any]) -> bool:
    for operator, block in (statement.get("Condition") or {}).items():
        if operator not in ("Bool", "BoolIfExists") or not isinstance(block, Mapping):
            continue
        for key, value in block.items():
            if str(key).lower() == "aws:securetransport" and str(as_list(value)[0]).lower() == "false":
                return True
    return False


def covers(written: Sequence[str], action: str) -> bool:
    """True when one of the statement's (possibly wildcard) actions matches `action` (IAM is case-insensitive)."""
    return any(fnmatchcase(action.lower(), a.lower()) for a in written)


def denies_insecure_transport(document: Any, required: Sequence[str]) -> bool:
    """True when the document denies everyone each `required` action over plain HTTP (aws:SecureTransport false)."""
    for statement in statements(document):
        if (statement.get("Effect") == "Deny" and everyone(statement.get("Principal"))
                and _insecure_transport_condition(statement)
                and all(covers(actions(statement), action) for action in required)):
            return True
    return False
