"""The AWS provider's `Check`, as far as a policy can observe it: the inputs every later step (and `Analyze`) sees.

The engine calls the provider's `Check` with the program's inputs before anything else, and hands the *checked*
inputs to the analyzers (`docs/offline-fidelity.md`, "Check"). The bridged provider's Check

* applies the Terraform schema's truthy defaults to properties the program left unset (`offline.tf_defaults`);
* auto-names a resource whose name the program left unset: the logical name, a hyphen and seven random hex digits,
  known at preview (here the digits are derived from the URN, so a run is repeatable);
* sets `region` to its provider's (pulumi-aws's `applyRegion`);
* computes `tagsAll` from the provider's `defaultTags` and the resource's `tags` (pulumi-aws's `applyTags`; `{}`
  without either);
* holds policy documents as JSON strings; a document with any unknown inside is one unknown string;
* drops a role's inline policy whose document is unknown or empty (pulumi-aws's transform of `inline_policy` keeps
  an element only if its policy is a known, non-empty string or absent), so no policy ever sees that document at
  preview, and auto-names an inline policy without a name.
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

# Pulumi-side auto-names pulumi-aws declares beyond `name` (provider/resource_overrides.go): the property, a prefix
# AWS requires, whether S3 demands lower case. Every other type with an optional `name` input is auto-named through
# `name` (provider/autonaming.go, setAutonaming).
_AUTO_NAMED: dict[str, tuple[str, str, bool]] = {
    "aws:s3/bucket:Bucket": ("bucket", "", True),
    "aws:s3/bucketV2:BucketV2": ("bucket", "", True),
    "aws:cloudwatch/eventTarget:EventTarget": ("targetId", "", False),
    "aws:lambda/permission:Permission": ("statementId", "", False),
    "aws:kms/alias:Alias": ("name", "alias/", False),
}
_PREFIX_PROPERTY = {"name": "namePrefix", "bucket": "bucketPrefix", "statementId": "statementIdPrefix"}
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


def auto_name(name: str, seed: str, *, prefix: str = "", lower: bool = False) -> str:
    """`<logical name>-<7 hex digits>`, as Pulumi auto-names; the digits come from `seed` (the URN: stable per
    resource) where the engine draws them from a random seed per registration."""
    physical = f"{prefix}{name}-{hashlib.sha256(seed.encode()).hexdigest()[:AUTO_NAME_RANDOM_HEX]}"
    return physical.lower() if lower else physical


def check(type_: str, name: str, urn: str, inputs: dict[str, Any], *, region: str | None = None,
          default_tags: dict[str, Any] | None = None) -> dict[str, Any]:
    """The inputs the provider's Check returns for a program's inputs to a custom resource, in `region` (the
    resource's provider's) with that provider's `defaultTags`."""
    result = as_provider_inputs(type_, {k: v for k, v in inputs.items() if v is not None})
    tf_defaults.apply_checked_defaults(type_, result)
    if type_ == "aws:iam/role:Role" and isinstance(result.get("inlinePolicies"), list):
        result["inlinePolicies"] = _checked_inline_policies(result["inlinePolicies"], urn)
    schema = schema_of(type_)
    if schema is None:
        return result
    _auto_name(type_, name, urn, schema.inputs, schema.computed, result)
    if region is not None and "region" in schema.inputs and "region" not in result:
        result["region"] = region  # pulumi-aws's applyRegion PreCheckCallback (provider/region.go)
    if "tagsAll" in schema.outputs and "tags" in schema.inputs:
        tags = {**(default_tags or {}), **(result.get("tags") or {})}
        result["tagsAll"] = UNKNOWN if contains_unknown(tags) else tags  # pulumi-aws's applyTags
    return result


def _auto_name(type_: str, name: str, urn: str, inputs: frozenset[str], computed: frozenset[str],
               result: dict[str, Any]) -> None:
    """Auto-name a property the program left unset, as pulumi-aws's Check does: only a property the program could
    have set (an input) that the provider otherwise computes, and not when the program gave a prefix."""
    prop, prefix, lower = _AUTO_NAMED.get(type_, ("name", "", False))
    if (prop in inputs and prop in computed and prop not in result
            and result.get(_PREFIX_PROPERTY.get(prop, "")) is None):
        result[prop] = auto_name(name, urn, prefix=prefix, lower=lower)


def _checked_inline_policies(policies: list[Any], urn: str) -> list[Any]:
    """pulumi-aws's transform of a role's `inline_policy`: an element whose document is unknown, or empty, is
    dropped; one without a name is auto-named."""
    checked = []
    for position, inline in enumerate(policies):
        if not isinstance(inline, dict):
            checked.append(inline)
            continue
        if contains_unknown(inline.get("policy")) or inline.get("policy") == "":
            continue
        inline = _as_document_holder(inline)
        if not inline.get("name") and not inline.get("namePrefix"):
            inline = {**inline, "name": auto_name("inline-policy", f"{urn}#{position}")}
        checked.append(inline)
    return checked


def _as_document_holder(inline: Any) -> Any:
    if isinstance(inline, dict) and isinstance(inline.get("policy"), dict | list):
        return {**inline, "policy": json.dumps(inline["policy"])}
    return inline
