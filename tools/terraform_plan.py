"""A synthesized stack as a Terraform plan JSON, for rule sets that read Terraform plans (checkov's terraform_plan).

    python -m tools.terraform_plan --stack prod > prod.tfplan.json
    checkov -f prod.tfplan.json --framework terraform_plan     # in its own virtualenv

The stack is synthesized in update mode, so values the provider computes are realistic. Pulumi's AWS provider is
bridged from Terraform's, so a resource's properties are Terraform's attributes renamed: the type token maps to the
Terraform type (``aws:s3/bucketLogging:BucketLogging`` -> ``aws_s3_bucket_logging``), camelCase to snake_case, an
object to a one-element block list (except map-typed properties such as tags), and a repeated block Pulumi names in
the plural to Terraform's singular. Terraform leaves an unset block out and plans an unreserved function as -1; both
are dropped, so a check sees them unset. The engine's property dependencies become configuration references, which
is how a plan reader relates e.g. a bucket's logging to the bucket. A cross-check, not a Terraform plan anyone
applies: a property the mapping misnames shows up as a check that passes or fails for no reason, so read a
surprising verdict against the plan.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence
from typing import Any

from offline.model import ResourceRecord

# Properties whose object value is a map (arbitrary keys), not a block.
MAP_PROPERTIES = frozenset({"tags", "tagsAll", "variables", "dimensions", "parameters"})
# Terraform types whose name is not derived from the Pulumi token.
TYPE_EXCEPTIONS = {"aws:rds/instance:Instance": "aws_db_instance"}
# Repeated blocks Pulumi names in the plural, by (Terraform type, Pulumi's snake_case name).
SINGULAR = {("aws_s3_bucket_lifecycle_configuration", "rules"): "rule",
            ("aws_s3_bucket_server_side_encryption_configuration", "rules"): "rule",
            ("aws_s3_bucket_notification", "queues"): "queue",
            ("aws_s3_bucket_notification", "lambda_functions"): "lambda_function"}
PROVIDER = "registry.terraform.io/hashicorp/aws"


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def terraform_type(token: str) -> str | None:
    """``aws:sqs/queue:Queue`` -> ``aws_sqs_queue``; None for what is not an AWS resource."""
    if token in TYPE_EXCEPTIONS:
        return TYPE_EXCEPTIONS[token]
    parts = token.split(":")
    if len(parts) != 3 or parts[0] != "aws" or "/" not in parts[1]:
        return None
    module, resource = parts[1].split("/", 1)
    return f"aws_{module.lower()}_{snake(resource)}"


def _value(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        if key in MAP_PROPERTIES:
            return dict(value)
        return [{snake(k): _value(v, k) for k, v in value.items()}]
    if isinstance(value, list):
        items: list[Any] = []
        for item in value:
            converted = _value(item, key)
            items.extend(converted if isinstance(item, dict) and key not in MAP_PROPERTIES else [converted])
        return items
    return value


def attributes(tf_type: str, props: dict[str, Any]) -> dict[str, Any]:
    """A resource's Pulumi properties as Terraform attributes."""
    converted = {SINGULAR.get((tf_type, snake(k)), snake(k)): _value(v, k) for k, v in props.items()}
    return {k: v for k, v in converted.items() if v not in ([{}], {}, [], None)
            and not (k == "reserved_concurrent_executions" and v == -1)}


def plan(resources: Sequence[ResourceRecord]) -> dict[str, Any]:
    """The Terraform plan JSON (format 1.2) of `resources`: planned values, changes (all creates), configuration."""
    addresses: dict[str, str] = {}
    for record in resources:
        tf_type = terraform_type(record.type) if record.custom else None
        if tf_type is not None:
            addresses[record.urn] = f"{tf_type}.{re.sub(r'[^A-Za-z0-9_]', '_', record.name)}"
    planned, changes, configuration = [], [], []
    for record in resources:
        address = addresses.get(record.urn)
        if address is None:
            continue
        tf_type, name = address.split(".", 1)
        values = attributes(tf_type, {**record.outputs, **record.inputs})
        head = {"address": address, "mode": "managed", "type": tf_type, "name": name}
        planned.append({**head, "provider_name": PROVIDER, "schema_version": 0, "values": values})
        changes.append({**head, "provider_name": PROVIDER,
                        "change": {"actions": ["create"], "before": None, "after": values, "after_unknown": {}}})
        references = {snake(key): {"references": [ref for urn in urns if urn in addresses
                                                  for ref in (f"{addresses[urn]}.id", addresses[urn])]}
                      for key, urns in record.property_dependencies.items()
                      if any(urn in addresses for urn in urns)}
        configuration.append({**head, "provider_config_key": "aws", "expressions": references, "schema_version": 0})
    return {"format_version": "1.2", "terraform_version": "1.9.0",
            "planned_values": {"root_module": {"resources": planned}},
            "resource_changes": changes,
            "configuration": {"provider_config": {"aws": {"name": "aws", "full_name": PROVIDER}},
                              "root_module": {"resources": configuration}}}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.terraform_plan", description=__doc__.split("\n")[0])
    parser.add_argument("--stack", required=True, help="the stack whose Pulumi.<stack>.yaml to synthesize")
    args = parser.parse_args(argv)
    from offline.synth import synthesize

    json.dump(plan(synthesize(args.stack, "update").resources), sys.stdout, indent=1, default=str)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
