"""The AWS provider's `Check`, as far as a policy can observe it: the inputs every later step (and `Analyze`) sees.

The engine calls the provider's `Check` with the program's inputs before anything else, and hands the *checked*
inputs to the analyzers (`docs/offline-fidelity.md`, "Check"). The bridged provider's Check

* applies the Terraform schema's truthy defaults to properties the program left unset (`offline.tf_defaults`);
* auto-names a resource whose name the program left unset: the logical name, a hyphen and seven random hex digits,
  known at preview (here the digits are derived from the URN, so a run is repeatable);
* computes `tagsAll` from `tags` (pulumi-aws's `applyTags`; `{}` without tags; the offline provider has no
  `defaultTags`);
* holds policy documents as JSON strings; a document with any unknown inside is one unknown string;
* drops a role's inline policy whose document is unknown (pulumi-aws's transform of `inline_policy` keeps an
  element only if its policy is a known string or absent), so no policy ever sees that document at preview.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from offline import tf_defaults
from offline.model import UNKNOWN
from offline.schema import schema_of

# Properties the AWS provider takes as JSON documents (type token -> property names).
JSON_DOCUMENT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "aws:iam/role:Role": ("assumeRolePolicy",),
    "aws:iam/rolePolicy:RolePolicy": ("policy",),
    "aws:iam/policy:Policy": ("policy",),
    "aws:sqs/queue:Queue": ("policy", "redrivePolicy", "redriveAllowPolicy"),
    "aws:sqs/queuePolicy:QueuePolicy": ("policy",),
    "aws:sqs/redrivePolicy:RedrivePolicy": ("redrivePolicy",),
    "aws:sqs/redriveAllowPolicy:RedriveAllowPolicy": ("redriveAllowPolicy",),
    "aws:sns/topicPolicy:TopicPolicy": ("policy",),
    "aws:s3/bucketPolicy:BucketPolicy": ("policy",),
    "aws:kms/key:Key": ("policy",),
    "aws:sfn/stateMachine:StateMachine": ("definition",),
    "aws:cloudwatch/eventRule:EventRule": ("eventPattern",),
}

# The property a type is auto-named through, where it is not `name`; and types whose names S3 requires lower-case.
_NAME_PROPERTY = {"aws:s3/bucket:Bucket": "bucket", "aws:s3/bucketV2:BucketV2": "bucket"}
_LOWER_CASE_NAMES = frozenset(_NAME_PROPERTY)
_PREFIX_PROPERTY = {"name": "namePrefix", "bucket": "bucketPrefix"}
AUTO_NAME_RANDOM_HEX = 7


def contains_unknown(value: Any) -> bool:
    if isinstance(value, str):
        return value == UNKNOWN
    if isinstance(value, dict):
        return any(contains_unknown(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(contains_unknown(v) for v in value)
    return False


def as_provider_inputs(type_: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Inputs as the provider holds them: JSON documents as strings, unknown as a whole if unknown in part."""
    result = dict(inputs)
    for prop in JSON_DOCUMENT_PROPERTIES.get(type_, ()):
        value = result.get(prop)
        if value is None:
            continue
        if contains_unknown(value):
            result[prop] = UNKNOWN
        elif not isinstance(value, str):
            result[prop] = json.dumps(value)
    return result


def auto_name(type_: str, name: str, urn: str) -> str:
    """`<logical name>-<7 hex digits>`, as Pulumi auto-names; the digits come from the URN (stable per resource)."""
    suffix = hashlib.sha256(urn.encode()).hexdigest()[:AUTO_NAME_RANDOM_HEX]
    physical = f"{name}-{suffix}"
    return physical.lower() if type_ in _LOWER_CASE_NAMES else physical


def check(type_: str, name: str, urn: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """The inputs the provider's Check returns for a program's inputs to a custom resource."""
    result = as_provider_inputs(type_, {k: v for k, v in inputs.items() if v is not None})
    for prop, default in tf_defaults.checked_defaults(type_).items():
        result.setdefault(prop, default)
    if type_ == "aws:iam/role:Role" and isinstance(result.get("inlinePolicies"), list):
        result["inlinePolicies"] = [_as_document_holder(p) for p in result["inlinePolicies"]
                                    if not (isinstance(p, dict) and contains_unknown(p.get("policy")))]
    schema = schema_of(type_)
    if schema is None:
        return result
    name_property = _NAME_PROPERTY.get(type_, "name")
    prefix_property = _PREFIX_PROPERTY[name_property]
    if (name_property in schema.computed and name_property not in result
            and result.get(prefix_property) is None):
        result[name_property] = auto_name(type_, name, urn)
    if "tagsAll" in schema.outputs and "tags" in schema.inputs:
        tags = result.get("tags") or {}
        result["tagsAll"] = UNKNOWN if contains_unknown(tags) else dict(tags)
    return result


def _as_document_holder(inline: Any) -> Any:
    if isinstance(inline, dict) and isinstance(inline.get("policy"), dict | list):
        return {**inline, "policy": json.dumps(inline["policy"])}
    return inline
