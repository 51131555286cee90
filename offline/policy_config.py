"""The policy config the Pulumi CLI would send to a policy pack, from a `--policy-pack-config` file.

The file maps a policy name (or `all`) to an enforcement level or to an object with an optional
`enforcementLevel` and the policy's config properties:

    {"all": "mandatory",
     "sqs-redrive-to-dlq": {"enforcementLevel": "advisory", "minMaxReceiveCount": 3, "reason": "..."}}

`resolve` does what the CLI's `ReconcilePolicyPackConfig` does: start every policy at its default enforcement level
with its config-schema defaults, apply `all`'s level, then each policy's own entry on top, and validate the result
against each policy's schema. It is stricter in two ways that catch mistakes the CLI passes silently: a config
naming a policy the pack does not have, or a property the policy's schema does not declare, is rejected; and `all`
may only carry an enforcement level (the CLI ignores properties given there).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from offline.model import PolicyInfo

LEVELS = ("advisory", "mandatory", "remediate", "disabled")
ALL = "all"


class PolicyConfigError(ValueError):
    """The policy config cannot be sent: it names something the pack does not have, or breaks a schema."""


@dataclass
class ResolvedPolicyConfig:
    enforcement: str
    properties: dict[str, Any] = field(default_factory=dict)


def load(path: Path) -> dict[str, Any]:
    """Read a `--policy-pack-config` JSON file (empty file: no config, as the CLI accepts)."""
    text = path.read_text(encoding="utf-8")
    if not text.strip():
        return {}
    try:
        config = json.loads(text)
    except json.JSONDecodeError as error:
        raise PolicyConfigError(f"{path}: not valid JSON: {error}") from error
    if not isinstance(config, dict):
        raise PolicyConfigError(f"{path}: the policy config must be a JSON object of policy name -> config")
    return config


def _split(name: str, value: Any) -> tuple[str | None, dict[str, Any]]:
    """(enforcement level or None, properties) of one entry."""
    if isinstance(value, str):
        level, properties = value, {}
    elif isinstance(value, Mapping):
        properties = dict(value)
        level = properties.pop("enforcementLevel", None)
    else:
        raise PolicyConfigError(f"policy config for '{name}': {value!r} is not an enforcement level or an object")
    if level is not None and level not in LEVELS:
        raise PolicyConfigError(f"policy config for '{name}': enforcementLevel {level!r} is not one of "
                                f"{', '.join(LEVELS)}")
    return level, properties


def resolve(policies: Sequence[PolicyInfo], config: Mapping[str, Any] | None) -> dict[str, ResolvedPolicyConfig]:
    """The config of every policy of the pack, as the CLI would send it in `Configure`."""
    by_name = {p.name: p for p in policies}
    resolved = {p.name: ResolvedPolicyConfig(p.enforcement, _defaults(p)) for p in policies}
    config = dict(config or {})
    unknown = sorted(set(config) - set(by_name) - {ALL})
    if unknown:
        raise PolicyConfigError(f"policy config names {', '.join(repr(u) for u in unknown)}, which the pack does "
                                f"not have; its policies are: {', '.join(sorted(by_name))}")
    if ALL in config:
        level, properties = _split(ALL, config[ALL])
        if properties:
            raise PolicyConfigError(f"policy config 'all' may only set enforcementLevel; set "
                                    f"{', '.join(sorted(properties))} per policy")
        for entry in resolved.values():
            entry.enforcement = level or entry.enforcement
    for name, value in config.items():
        if name == ALL:
            continue
        level, properties = _split(name, value)
        entry = resolved[name]
        entry.enforcement = level or entry.enforcement
        entry.properties.update(properties)
    for name, entry in resolved.items():
        _validate(name, by_name[name].config_schema, entry.properties)
    return resolved


def _defaults(policy: PolicyInfo) -> dict[str, Any]:
    properties = policy.config_schema.get("properties") or {}
    return {key: spec["default"] for key, spec in properties.items() if isinstance(spec, Mapping) and "default" in spec}


# --- a JSON-schema subset: what the pack's config schemas use -------------------------------------------------

_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,), "boolean": (bool,), "array": (list,), "object": (dict,), "number": (int, float),
    "integer": (int, float),
}


def _check(where: str, schema: Mapping[str, Any], value: Any) -> list[str]:
    expected = schema.get("type")
    if expected in _TYPES and (not isinstance(value, _TYPES[expected]) or
                               (expected in ("number", "integer") and isinstance(value, bool))):
        return [f"{where} must be {expected}, got {value!r}"]
    if expected == "integer" and isinstance(value, float) and not value.is_integer():
        return [f"{where} must be an integer, got {value!r}"]
    errors = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where} must be one of {schema['enum']}, got {value!r}")
    if "minimum" in schema and isinstance(value, int | float) and value < schema["minimum"]:
        errors.append(f"{where} must be >= {schema['minimum']}, got {value!r}")
    if "maximum" in schema and isinstance(value, int | float) and value > schema["maximum"]:
        errors.append(f"{where} must be <= {schema['maximum']}, got {value!r}")
    if "minLength" in schema and isinstance(value, str) and len(value) < schema["minLength"]:
        errors.append(f"{where} must not be empty")
    if "pattern" in schema and isinstance(value, str) and not re.search(schema["pattern"], value):
        errors.append(f"{where} must match {schema['pattern']}, got {value!r}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += _check(f"{where}[{i}]", schema["items"], item)
    if isinstance(value, dict):
        for key in schema.get("required", ()):
            if key not in value:
                errors.append(f"{where}.{key} is required")
        for key, spec in (schema.get("properties") or {}).items():
            if key in value:
                errors += _check(f"{where}.{key}", spec, value[key])
    return errors


def _validate(policy: str, schema: Mapping[str, Any], properties: Mapping[str, Any]) -> None:
    declared = schema.get("properties") or {}
    undeclared = sorted(set(properties) - set(declared))
    if undeclared:
        raise PolicyConfigError(f"policy config for '{policy}' sets {', '.join(undeclared)}, which its config "
                                f"schema does not declare; known keys: {', '.join(sorted(declared)) or 'none'}")
    errors = _check(policy, {"type": "object", **schema}, dict(properties))
    if errors:
        raise PolicyConfigError("policy config is invalid: " + "; ".join(errors))
