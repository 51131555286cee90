"""Policy configuration: the keys every rule accepts, and each rule's own keys with their defaults.

The CLI fills in schema defaults before it sends the config, but `pulumi policy analyze` without a config (and
any engine that sends none) does not, so a rule never trusts that a key is present: `resolve` merges what was
sent over the defaults declared here.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

Schema = Mapping[str, Mapping[str, Any]]

UNKNOWN_VALUES: Final = "unknownValues"
EXEMPTIONS: Final = "exemptions"
REASON: Final = "reason"

COMMON: Final[Schema] = {
    UNKNOWN_VALUES: {
        "type": "string",
        "enum": ["skip", "violation"],
        "default": "skip",
        "description": "What to do when a value the rule reads is unknown at preview: 'skip' (Pulumi's "
                       "advisory \"can't run policy\" note) or 'violation' (a violation naming the property).",
    },
    EXEMPTIONS: {
        "type": "array",
        "default": [],
        "description": "Resources exempted from this rule: [{resource: name or URN glob, reason, expires: "
                       "YYYY-MM-DD}]. An applied exemption is reported as advisory; an expired one is a violation.",
        "items": {
            "type": "object",
            "properties": {
                "resource": {"type": "string", "minLength": 1},
                "reason": {"type": "string", "minLength": 1},
                "expires": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
            },
            "required": ["resource", "reason", "expires"],
        },
    },
    REASON: {
        "type": "string",
        "description": "Why this stack's config departs from the rule's defaults (documentation only).",
    },
}


def schema_for(own: Schema) -> dict[str, dict[str, Any]]:
    """A rule's full config schema: its own keys plus the common ones."""
    return {key: dict(spec) for key, spec in {**own, **COMMON}.items()}


def resolve(schema: Schema, sent: Mapping[str, Any] | None) -> dict[str, Any]:
    """The effective settings: defaults from `schema`, overridden by the config that was sent."""
    settings = {key: spec["default"] for key, spec in schema.items() if "default" in spec}
    settings.update(sent or {})
    return settings
