"""IAM's decision for one request, from the statements of a role's policies: an explicit Deny wins, otherwise an
Allow whose action, resource and conditions all match is needed.

A request is an `Authorization`: the action, the resource it acts on and the request's context keys. Its resource
may be a pattern where part of the name is chosen at run time by AWS (``secret:db-??????``, the six characters
Secrets Manager appends; ``model-invocation-job/*``, the id Bedrock assigns): a statement allows such a request only
if it allows every name the pattern stands for (`covers`), so a pattern is never compared as if it were a name.
An action that supports no resource-level permission is requested on ``*``, which only ``*`` covers.

>>> s = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::b",
...      "Condition": {"StringLike": {"s3:prefix": ["in/*"]}}}
>>> allowed([s], Authorization("s3:ListBucket", "arn:aws:s3:::b", context_of({"s3:prefix": "in/x"})))
True
>>> allowed([s], Authorization("s3:ListBucket", "arn:aws:s3:::b", context_of({"s3:prefix": "out/x"})))
False
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Context = tuple[tuple[str, tuple[str, ...]], ...]


def context_of(values: Mapping[str, str | bool | Sequence[str]]) -> Context:
    """A request context (key -> one value or several) in the hashable form `Authorization` keeps."""
    normalized: dict[str, tuple[str, ...]] = {}
    for key, value in values.items():
        if isinstance(value, bool):
            normalized[key] = ("true" if value else "false",)
        elif isinstance(value, str):
            normalized[key] = (value,)
        else:
            normalized[key] = tuple(value)
    return tuple(sorted(normalized.items()))


@dataclass(frozen=True, order=True)
class Authorization:
    """One thing IAM authorizes: `action` on `resource` with the request's context keys."""

    action: str
    resource: str
    context: Context = ()
    origin: str = field(default="", compare=False)  # what made the request (for messages)

    def context_value(self, key: str) -> tuple[str, ...] | None:
        for name, values in self.context:
            if name.lower() == key.lower():
                return values
        return None


def as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return [value] if isinstance(value, str | dict) else list(value)


@functools.cache
def _wildcard_regex(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(body, re.DOTALL if case_sensitive else re.DOTALL | re.IGNORECASE)


def matches(pattern: str, value: str, *, case_sensitive: bool = True) -> bool:
    """IAM's wildcard match of one name: ``*`` any run of characters, ``?`` any one character."""
    return _wildcard_regex(pattern, case_sensitive).fullmatch(value) is not None


# Stands for a character chosen at run time: no literal character of a statement matches it, only its wildcards.
_UNKNOWN = "\x00"


def covers(grant: str, resource: str, *, case_sensitive: bool = True) -> bool:
    """Whether `grant` matches every name the (possibly wildcarded) `resource` stands for."""
    if "*" not in resource and "?" not in resource:
        return matches(grant, resource, case_sensitive=case_sensitive)
    with_unknowns = resource.replace("?", _UNKNOWN)
    return all(matches(grant, with_unknowns.replace("*", _UNKNOWN * n), case_sensitive=case_sensitive)
               for n in (0, 1, 2, 5))


def _action_matches(statement: Mapping[str, Any], action: str) -> bool:
    if "NotAction" in statement:
        return not any(matches(a, action, case_sensitive=False) for a in as_list(statement["NotAction"]))
    return any(matches(a, action, case_sensitive=False) for a in as_list(statement.get("Action")))


def _resource_matches(statement: Mapping[str, Any], resource: str) -> bool:
    if "NotResource" in statement:
        return not any(covers(r, resource) for r in as_list(statement["NotResource"]))
    return any(covers(r, resource) for r in as_list(statement.get("Resource")))


# --- conditions -----------------------------------------------------------------------------------------------

def _string_equals(policy: str, value: str) -> bool:
    return policy == value


def _string_equals_ignore_case(policy: str, value: str) -> bool:
    return policy.lower() == value.lower()


def _string_like(policy: str, value: str) -> bool:
    return matches(policy, value)


def _bool(policy: str, value: str) -> bool:
    return policy.lower() == value.lower()


_COMPARISONS = {
    "StringEquals": (_string_equals, False), "StringNotEquals": (_string_equals, True),
    "StringEqualsIgnoreCase": (_string_equals_ignore_case, False),
    "StringNotEqualsIgnoreCase": (_string_equals_ignore_case, True),
    "StringLike": (_string_like, False), "StringNotLike": (_string_like, True),
    "ArnEquals": (_string_equals, False), "ArnNotEquals": (_string_equals, True),
    "ArnLike": (_string_like, False), "ArnNotLike": (_string_like, True),
    "Bool": (_bool, False),
}


def _condition_holds(operator: str, key: str, expected: Any, authorization: Authorization) -> bool:
    qualifier, _, base = operator.rpartition(":")
    if_exists = base.endswith("IfExists")
    base = base.removesuffix("IfExists")
    values = authorization.context_value(key)
    policy_values = [str(v).lower() if isinstance(v, bool) else str(v) for v in as_list(expected)]
    if base == "Null":  # "true": the key is absent
        return (values is None) == (policy_values[0].lower() == "true")
    if base not in _COMPARISONS:
        raise NotImplementedError(f"condition operator {operator} is not evaluated by this check")
    if any("${" in v for v in policy_values):
        raise NotImplementedError(f"policy variables in {operator} {key} are not evaluated by this check")
    compare, negated = _COMPARISONS[base]
    if values is None:
        return True if qualifier == "ForAllValues" or if_exists else negated and not qualifier

    def one(value: str) -> bool:
        hit = any(compare(p, value) for p in policy_values)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        return all(one(v) for v in values)
    if qualifier == "ForAnyValue":
        return any(one(v) for v in values)
    if qualifier:
        raise NotImplementedError(f"condition set operator {qualifier} is not evaluated by this check")
    return any(one(v) for v in values)


def conditions_hold(conditions: Mapping[str, Mapping[str, Any]], authorization: Authorization) -> bool:
    """Every operator's every key holds for the request (IAM ANDs them; a key's values are ORed)."""
    return all(_condition_holds(operator, key, expected, authorization)
               for operator, tests in conditions.items() for key, expected in tests.items())


def applies(statement: Mapping[str, Any], authorization: Authorization) -> bool:
    return (_action_matches(statement, authorization.action)
            and _resource_matches(statement, authorization.resource)
            and conditions_hold(statement.get("Condition", {}), authorization))


def deciding(statements: Iterable[Mapping[str, Any]], authorization: Authorization,
             effect: str = "Allow") -> list[Mapping[str, Any]]:
    """The statements of `effect` that apply to the request."""
    return [s for s in statements if s.get("Effect") == effect and applies(s, authorization)]


def allowed(statements: Sequence[Mapping[str, Any]], authorization: Authorization) -> bool:
    """IAM's decision within one account: some Allow applies and no Deny does."""
    return bool(deciding(statements, authorization)) and not deciding(statements, authorization, "Deny")
