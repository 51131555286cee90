"""AWS's IAM action and resource-type database, through policy-sentry, loaded once and queried through caches.

policy-sentry parses its 13 MB database when first imported (0.2 to 0.5 s here), so the import happens on the
first IAM check rather than when the pack starts, and every lookup the rules make is memoised: a stack repeats the
same few dozen actions and ARNs across all its roles.

An action's accepted resource types come as ARN formats (`arn:${Partition}:sqs:${Region}:${Account}:${QueueName}`).
policy-sentry's own matcher splits ARNs on `/` and `:`, which misreads names that contain `/` (log groups such
as `/aws/lambda/x`), so a format also matches when the ARN and the format overlap as wildcard patterns; the
formats policy-sentry treats specially (S3 buckets vs objects, DynamoDB tables) are left to policy-sentry alone.
"""

from __future__ import annotations

import re
from functools import cache
from typing import Any

from .core import globs


@cache
def _sentry() -> Any:
    from policy_sentry.querying import actions
    from policy_sentry.util import arns

    return actions, arns


def split(action: str) -> tuple[str, str]:
    service, _, name = action.partition(":")
    return service.lower(), name


@cache
def formats(action: str) -> tuple[str, ...] | None:
    """The ARN formats `action` accepts ("*" for "no resource-level permission"), or None if no such action."""
    actions, _ = _sentry()
    service, name = split(action)
    if not service or not name:
        return None
    entries = actions.get_action_data(service, name).get(service) or []
    if not entries:
        return None
    return tuple(sorted({entry["resource_arn_format"] for entry in entries}))


@cache
def expand(pattern: str) -> tuple[str, ...]:
    """The actions a wildcard action pattern names (`sqs:Get*`, `iam:*AccessKey*`, `s3:Get?bject`). IAM matches `*`
    and `?` anywhere in the name and ignores case; policy-sentry's own lookup takes a trailing `*` only and compares
    case-sensitively, so the service's actions are matched here."""
    actions, _ = _sentry()
    service, name = split(pattern)
    matcher = re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in name.lower()))
    entries = actions.get_action_data(service, "*").get(service) or []
    return tuple(sorted({entry["action"] for entry in entries if matcher.fullmatch(split(entry["action"])[1].lower())}))


@cache
def _wildcard_only_actions(service: str) -> frozenset[str]:
    actions, _ = _sentry()
    return frozenset(a.lower() for a in actions.get_actions_that_support_wildcard_arns_only(service))


def wildcard_only(action: str) -> bool:
    """True when `action` supports no resource-level permission, so `Resource: "*"` is its only valid resource."""
    service, _ = split(action)
    return action.lower() in _wildcard_only_actions(service)


@cache
def fits(action: str, arn: str) -> bool:
    """True when `arn` (which may hold wildcards) names a resource type `action` accepts."""
    _, arns = _sentry()
    if not arn.startswith("arn:") or arn.count(":") < 5:
        return False
    for raw in formats(action) or ():
        if raw == "*":
            continue
        if arns.does_arn_match(arn, raw):
            return True
        special = raw.split(":", 5)[5] in arns.EXCLUSION_LIST
        if not special and globs.overlap(globs.wildcard(arn), globs.arn_format(raw)):
            return True
    return False


@cache
def access_level(action: str) -> str | None:
    """The access level AWS documents for `action` ('List', 'Read', 'Write', 'Permissions management', 'Tagging'),
    or None if no such action."""
    actions, _ = _sentry()
    service, name = split(action)
    if not service or not name:
        return None
    entries = actions.get_action_data(service, name).get(service) or []
    return str(entries[0]["access_level"]) if entries else None
