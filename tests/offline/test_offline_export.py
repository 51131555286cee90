"""The `pulumi stack export` (version 3) document: what the engine's DeserializeDeploymentV3 needs to load it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import pytest

from offline.export import deployment, engine_version, read_export, write_export
from offline.model import UNKNOWN, ResourceRecord
from offline.synth import Synthesis

AWS_PROVIDER_PREFIX = "urn:pulumi:violating::offline-fixture::pulumi:providers:aws::default_"


@pytest.mark.parametrize("mode", ["preview", "update"])
def test_round_trip_keeps_urns_inputs_and_property_dependencies(mode: str, tmp_path: Path,
                                                                 violating_preview: Synthesis,
                                                                 violating_update: Synthesis) -> None:
    synthesis = violating_preview if mode == "preview" else violating_update
    path = tmp_path / "stack.json"
    write_export(synthesis, path)
    loaded = {r.urn: r for r in read_export(path)}

    providers = {urn for urn in loaded if "::pulumi:providers:" in urn}
    assert set(loaded) - providers == {r.urn for r in synthesis.resources}
    assert [urn for urn in providers] == [next(iter(providers))] and next(iter(providers)).startswith(
        AWS_PROVIDER_PREFIX)
    for record in synthesis.resources:
        again = loaded[record.urn]
        assert (again.type, again.custom, again.parent) == (record.type, record.custom, record.parent)
        assert again.property_dependencies == record.property_dependencies
        assert again.dependencies == record.dependencies
        if record.type != "pulumi:pulumi:Stack":
            assert again.inputs == record.inputs


def test_the_stack_resource_carries_the_outputs(violating_update: Synthesis) -> None:
    stack = deployment(violating_update)["deployment"]["resources"][0]
    assert stack["type"] == "pulumi:pulumi:Stack" and not stack["custom"] and "id" not in stack
    assert stack["outputs"] == {"region": "eu-central-1"}


def test_manifest_is_what_the_engine_writes(violating_preview: Synthesis) -> None:
    document = deployment(violating_preview)
    assert document["version"] == 3
    manifest = document["deployment"]["manifest"]
    assert manifest["version"] == engine_version()
    assert manifest["magic"] == hashlib.sha256(manifest["version"].encode()).hexdigest()
    assert datetime.fromisoformat(manifest["time"].replace("Z", "+00:00")).tzinfo is not None


def test_custom_resources_reference_the_default_provider_by_urn_and_id(violating_update: Synthesis) -> None:
    resources = deployment(violating_update)["deployment"]["resources"]
    providers = {f"{r['urn']}::{r['id']}": r for r in resources if r["type"].startswith("pulumi:providers:")}
    (provider,) = providers.values()
    assert provider["custom"] and provider["inputs"]["region"] == "eu-central-1"
    assert provider["inputs"]["version"] and "parent" not in provider
    for resource in resources:
        if resource["custom"] and resource is not provider:
            assert resource["provider"] in providers
        if not resource["custom"]:
            assert "provider" not in resource


def test_resources_come_after_everything_they_reference(violating_update: Synthesis) -> None:
    resources = deployment(violating_update)["deployment"]["resources"]
    seen: set[str] = set()
    for resource in resources:
        referenced = {resource.get("parent"), *resource.get("dependencies", []),
                      *(u for urns in resource.get("propertyDependencies", {}).values() for u in urns),
                      resource.get("provider", "").rsplit("::", 1)[0] or None} - {None}
        assert referenced <= seen, resource["urn"]
        seen.add(resource["urn"])


def test_ids_only_where_the_engine_has_them(violating_preview: Synthesis, violating_update: Synthesis) -> None:
    # The engine rejects a component with an id, and a state file never holds an unknown id.
    for synthesis, custom_ids in ((violating_preview, False), (violating_update, True)):
        for resource in deployment(synthesis)["deployment"]["resources"]:
            if resource["type"].startswith("pulumi:providers:"):
                continue
            assert ("id" in resource) == (resource["custom"] and custom_ids), resource["urn"]
            assert resource.get("id") != UNKNOWN


def test_unknown_outputs_keep_the_engines_sentinel(violating_preview: Synthesis) -> None:
    text = json.dumps(deployment(violating_preview))
    queue = violating_preview.named("orders-queue")
    assert queue.outputs["arn"] == UNKNOWN and UNKNOWN in text


def test_two_exports_differ_only_in_time(violating_update: Synthesis) -> None:
    first, second = deployment(violating_update), deployment(violating_update)
    first["deployment"]["manifest"].pop("time")
    second["deployment"]["manifest"].pop("time")
    assert first == second


def test_explicit_providers_are_kept_and_need_no_default(violating_update: Synthesis) -> None:
    stack = violating_update.resources[0]
    provider = ResourceRecord(urn="urn:pulumi:violating::offline-fixture::pulumi:providers:aws::us-east",
                              type="pulumi:providers:aws", name="us-east", custom=True, id="prov-1",
                              inputs={"region": "us-east-1"}, parent=stack.urn)
    queue = ResourceRecord(urn="urn:pulumi:violating::offline-fixture::aws:sqs/queue:Queue::q",
                           type="aws:sqs/queue:Queue", name="q", custom=True, id="q", parent=stack.urn,
                           provider=f"{provider.urn}::prov-1")
    synthesis = replace(violating_update, resources=[stack, provider, queue])
    resources = deployment(synthesis)["deployment"]["resources"]
    assert [r["urn"] for r in resources] == [stack.urn, provider.urn, queue.urn]  # no default provider added
    assert "provider" not in resources[1] and resources[2]["provider"] == f"{provider.urn}::prov-1"
