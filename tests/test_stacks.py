"""Properties of the shipped stacks as a whole: config gates, tags, data protection."""

from __future__ import annotations

import functools
import importlib
import inspect

import pytest

from offline.synth import SynthesisError, synthesize
from tests.support.stacks import SHIPPED_STACKS, shipped_stack

DATA_HOLDING_TYPES = ("aws:s3/bucket:Bucket", "aws:dynamodb/table:Table")


@functools.cache
def taggable(type_token: str) -> bool:
    """Whether the pulumi-aws resource class for a type token accepts `tags` (its own schema says so)."""
    package, module_and_type = type_token.split(":", 1)[1].split("/", 1)[0], type_token.rsplit(":", 1)[1]
    module = importlib.import_module(f"pulumi_aws.{'lambda_' if package == 'lambda' else package}")
    resource_class = getattr(module, module_and_type)
    return "tags" in inspect.signature(resource_class._internal_init).parameters


def test_invalid_config_stops_the_program_before_any_resource_is_registered() -> None:
    with pytest.raises(SynthesisError) as caught:
        synthesize("dev", config_overrides={"ai-pipelines:knowledgeBaseSync": {
            "knowledgeBaseId": "KBDEV00001", "dataSourceId": "DSDEV00001",
            "worker": {"batchSize": 50, "batchingWindowSeconds": 0}}})
    message = str(caught.value)
    assert message.startswith("Pulumi.dev.yaml: invalid configuration")
    assert "ai-pipelines:knowledgeBaseSync.worker: batchSize 50 is above 10" in message


def test_an_unknown_top_level_key_names_the_closest_valid_one() -> None:
    with pytest.raises(SynthesisError, match="ai-pipelines:ownr: unknown key; did you mean 'owner'"):
        synthesize("dev", config_overrides={"ai-pipelines:ownr": "someone"})


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_every_taggable_resource_carries_project_stack_pipeline_and_owner(stack: str) -> None:
    synthesis = shipped_stack(stack)
    missing = [r.name for r in synthesis.resources if r.custom and taggable(r.type)
               and not {"project", "stack", "pipeline", "owner"} <= set(r.inputs.get("tags", {}))]
    assert missing == []
    assert any(taggable(r.type) for r in synthesis.resources if r.custom)


@pytest.mark.parametrize(("stack", "protected"), [("dev", False), ("prod", True)])
def test_resources_holding_data_are_protected_in_prod_only(stack: str, protected: bool) -> None:
    holders = [r for r in shipped_stack(stack).resources if r.type in DATA_HOLDING_TYPES]
    assert holders, f"{stack} holds no data?"
    assert {r.name: r.protect for r in holders} == {r.name: protected for r in holders}


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_every_bucket_has_a_lifecycle_bounding_uploads_and_old_versions(stack: str) -> None:
    synthesis = shipped_stack(stack)
    buckets = {r.inputs["bucket"] for r in synthesis.of_type("aws:s3/bucket:Bucket")}
    lifecycles = {r.inputs["bucket"]: r.inputs["rules"] for r in synthesis.of_type(
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")}
    assert buckets and set(lifecycles) == buckets
    for rules in lifecycles.values():
        whole = [r for r in rules if r["status"] == "Enabled" and r["filter"] == {}]
        assert [r["abortIncompleteMultipartUpload"]["daysAfterInitiation"] for r in whole] == [1]
        assert 1 <= whole[0]["noncurrentVersionExpiration"]["noncurrentDays"] <= 365


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_every_event_source_mapping_publishes_its_event_counts(stack: str) -> None:
    mappings = shipped_stack(stack).of_type("aws:lambda/eventSourceMapping:EventSourceMapping")
    assert len(mappings) >= 5
    assert {m.name: m.inputs.get("metricsConfig") for m in mappings} == {
        m.name: {"metrics": ["EventCount"]} for m in mappings}


def test_pipelines_sharing_an_existing_bucket_with_overlapping_filters_fail_before_anything_is_created() -> None:
    shared = {"existingName": "corp-landing"}
    with pytest.raises(SynthesisError) as caught:
        synthesize("dev", config_overrides={
            "ai-pipelines:knowledgeBaseSync": {"knowledgeBaseId": "KBDEV00001", "dataSourceId": "DSDEV00001",
                                               "bucket": shared, "documentPrefix": "input/"},
            "ai-pipelines:fileIngestion": {**_dev_section("fileIngestion"), "bucket": shared}})
    message = str(caught.value)
    assert message.startswith("Pulumi.dev.yaml: invalid configuration")
    assert ("bucket corp-landing: the notification of fileIngestion (prefix 'input/', suffix '.json') overlaps "
            "that of knowledgeBaseSync (prefix 'input/', suffix '')") in message


def _dev_section(key: str) -> dict:
    import json

    from offline.synth import load_stack_files

    return json.loads(load_stack_files("dev").config[f"ai-pipelines:{key}"])


@pytest.mark.parametrize("stack", SHIPPED_STACKS)
def test_example_ids_never_reach_a_real_account(stack: str) -> None:
    """The shipped stack files carry example ids: offline (AWS's documentation account) they synthesize; in any
    real account the program stops before registering anything, naming what to replace."""
    with pytest.raises(SynthesisError, match=rf"Pulumi\.{stack}\.yaml: ai-pipelines:exampleValues is true.*"
                                             r"account 210987654321 is real"):
        synthesize(stack, "update", account_id="210987654321")
    real = synthesize(stack, "update", account_id="210987654321",
                      config_overrides={"ai-pipelines:exampleValues": False})
    assert real.resources
