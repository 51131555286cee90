"""The real program's stacks: they pass with their shipped policy config, and the mistakes the pack exists for,
made in the dev stack, are caught with messages that name every resource involved."""

from __future__ import annotations

import copy
import functools
import json

import pytest

from offline import policy_config
from offline.analyzer import DEFAULT_PACK_DIR, PolicyPackProcess
from offline.model import Mode, ResourceRecord
from offline.synth import synthesize
from tests.policies.reports import findings, text

ESM = "aws:lambda/eventSourceMapping:EventSourceMapping"


@functools.cache
def _synthesized(stack: str, mode: Mode) -> tuple[ResourceRecord, ...]:
    return tuple(synthesize(stack, mode).resources)


def shipped(stack: str, mode: Mode = "preview") -> list[ResourceRecord]:
    """A private copy of the stack's records, free to mutate."""
    return copy.deepcopy(list(_synthesized(stack, mode)))


def shipped_config(stack: str) -> dict:
    return policy_config.load(DEFAULT_PACK_DIR / "config" / f"{stack}.json")


def change(record: ResourceRecord, key: str, value: object = None, *, drop: bool = False) -> None:
    """Change a property as the program would: in its inputs and in the outputs the provider reports back."""
    for properties in (record.inputs, record.outputs):
        if drop:
            properties.pop(key, None)
        elif properties is record.inputs or properties:
            properties[key] = value


def worker_triple(records: list[ResourceRecord]) -> tuple[ResourceRecord, ResourceRecord, ResourceRecord]:
    """(queue, function, mapping) of the first queue-driven worker, found through property dependencies."""
    by_urn = {r.urn: r for r in records}
    mapping = next(r for r in records if r.type == ESM)
    queue = by_urn[mapping.property_dependencies["eventSourceArn"][0]]
    function = by_urn[mapping.property_dependencies["functionName"][0]]
    return queue, function, mapping


@pytest.mark.parametrize("mode", ["preview", "update"])
@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_shipped_stack_passes_with_no_finding_at_any_level(pack: PolicyPackProcess, stack: str, mode: Mode) -> None:
    report = pack.analyze(shipped(stack, mode), policy_config=shipped_config(stack))
    assert report.violations == [], text(report)
    assert report.skipped == []


def test_lowered_visibility_timeout_names_queue_function_and_mapping(pack: PolicyPackProcess) -> None:
    records = shipped("dev")
    queue, function, mapping = worker_triple(records)
    change(queue, "visibilityTimeoutSeconds", 30)
    [violation] = findings(pack.analyze(records, policy_config=shipped_config("dev")),
                           "sqs-visibility-timeout-covers-consumer")
    assert violation.urn == queue.urn
    for resource in (queue, function, mapping):
        assert f"'{resource.name}'" in violation.message


def test_worker_without_reserved_concurrency_names_function_mapping_and_queue(pack: PolicyPackProcess) -> None:
    records = shipped("dev")
    queue, function, mapping = worker_triple(records)
    change(function, "reservedConcurrentExecutions", drop=True)
    change(mapping, "scalingConfig", drop=True)
    [violation] = findings(pack.analyze(records, policy_config=shipped_config("dev")),
                           "lambda-sqs-concurrency-bounded")
    assert violation.urn == function.urn
    for resource in (queue, function, mapping):
        assert f"'{resource.name}'" in violation.message


def test_wildcard_statement_added_to_a_role_policy(pack: PolicyPackProcess) -> None:
    records = shipped("dev")
    policy = next(r for r in records if r.type == "aws:iam/rolePolicy:RolePolicy")
    document = json.loads(policy.inputs["policy"])
    document["Statement"].append({"Sid": "Everything", "Effect": "Allow", "Action": "s3:*", "Resource": "*"})
    change(policy, "policy", json.dumps(document))
    report = pack.analyze(records, policy_config=shipped_config("dev"))
    [wildcard] = findings(report, "iam-no-wildcard-actions")
    assert wildcard.urn == policy.urn
    assert f"role policy '{policy.name}' statement 'Everything' allows wildcard action 's3:*'" in wildcard.message
    assert any(v.urn == policy.urn for v in findings(report, "iam-resource-scoped-actions"))
