"""Exemptions (reason and expiry) and strict unknowns, through the analyzer protocol."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from offline.analyzer import PolicyPackProcess
from offline.model import UNKNOWN
from offline.policy_config import PolicyConfigError
from tests.policies.builders import Stack, alarm_topic, allow, queue_with_dlq, role, role_policy, worker
from tests.policies.reports import findings, only, skipped

VISIBILITY = "sqs-visibility-timeout-covers-consumer"
FUTURE = (dt.date.today() + dt.timedelta(days=30)).isoformat()
PAST = (dt.date.today() - dt.timedelta(days=1)).isoformat()


def two_workers(jobs_visibility: Any = 30, other_visibility: Any = 30) -> Stack:
    """Two workers whose queues' visibility timeouts (30 s) are below 6 x 60 s."""
    stack = Stack()
    topic = alarm_topic(stack)
    for name, visibility in (("jobs", jobs_visibility), ("other", other_visibility)):
        source = queue_with_dlq(stack, name, topic, queue={"visibilityTimeoutSeconds": visibility})
        worker(stack, f"{name}-worker", source, topic)
    return stack


def exemption(resource: str, expires: str, reason: str = "consumer rewrite in progress, PLAT-42") -> dict[str, Any]:
    return {VISIBILITY: {"exemptions": [{"resource": resource, "reason": reason, "expires": expires}]}}


def queue_urn(stack: Stack, name: str) -> str:
    return stack.find("aws:sqs/queue:Queue", name).urn


@pytest.mark.parametrize("pattern", ["jobs", "urn:pulumi:test::ai-pipelines::*Queue::jobs", "job?"])
def test_active_exemption_suppresses_and_is_reported_as_advisory(pack: PolicyPackProcess, pattern: str) -> None:
    stack = two_workers()
    report = pack.analyze(stack.records, policy_config=exemption(pattern, FUTURE))
    assert [v.urn for v in findings(report, VISIBILITY)] == [queue_urn(stack, "other")]
    applied = only(report, "exemptions-applied")
    assert applied.enforcement == "advisory"
    assert applied.urn == queue_urn(stack, "jobs")
    assert f"{VISIBILITY} exempted until {FUTURE} (consumer rewrite in progress, PLAT-42)" in applied.message
    assert "queue 'jobs' visibilityTimeoutSeconds 30 s" in applied.message  # what was suppressed


def test_exemptions_are_reported_once_per_analysis(pack: PolicyPackProcess) -> None:
    stack = two_workers()
    pack.analyze(stack.records, policy_config=exemption("jobs", FUTURE))
    report = pack.analyze(stack.records)
    assert not findings(report, "exemptions-applied")
    assert len(findings(report, VISIBILITY)) == 2


def test_expired_exemption_is_a_violation(pack: PolicyPackProcess) -> None:
    stack = two_workers()
    report = pack.analyze(stack.records, policy_config=exemption("jobs", PAST))
    violation = next(v for v in findings(report, VISIBILITY) if v.urn == queue_urn(stack, "jobs"))
    assert violation.enforcement == "mandatory"
    assert f"(exemption for 'jobs' expired on {PAST}: consumer rewrite in progress, PLAT-42)" in violation.message
    assert not findings(report, "exemptions-applied")


def test_exemption_of_a_resource_policy(pack: PolicyPackProcess) -> None:
    stack = Stack()
    policy = role_policy(stack, "admin-policy", role(stack, "admin"), allow("Admin", ["*"], ["*"]))
    config = {"iam-no-wildcard-actions": {"exemptions": [
        {"resource": "admin-policy", "reason": "break-glass role, reviewed quarterly", "expires": FUTURE}]}}
    report = pack.analyze(stack.records, policy_config=config)
    assert not findings(report, "iam-no-wildcard-actions")
    applied = only(report, "exemptions-applied")
    assert applied.urn == policy.urn and "break-glass role, reviewed quarterly" in applied.message


def test_exemption_without_reason_is_rejected_before_analysis(pack: PolicyPackProcess) -> None:
    config = {VISIBILITY: {"exemptions": [{"resource": "jobs", "expires": FUTURE}]}}
    with pytest.raises(PolicyConfigError, match=r"exemptions\[0\]\.reason is required"):
        pack.analyze(two_workers().records, policy_config=config)


# --- unknowns -------------------------------------------------------------------------------------------------

def test_unknown_policy_document_is_skipped(pack: PolicyPackProcess) -> None:
    stack = Stack()
    policy = stack.add("aws:iam/rolePolicy:RolePolicy", "worker-policy", {"role": "worker", "policy": UNKNOWN})
    report = pack.analyze(stack.records)
    for name in ("iam-no-wildcard-actions", "iam-resource-scoped-actions"):
        [note] = skipped(report, name)
        assert note.urn == policy.urn
        assert f"can't run policy '{name}'" in note.message and "string value at .policy" in note.message
    assert not report.violations


def test_unknown_policy_document_is_a_violation_when_strict(pack: PolicyPackProcess) -> None:
    stack = Stack()
    policy = stack.add("aws:iam/rolePolicy:RolePolicy", "worker-policy", {"role": "worker", "policy": UNKNOWN})
    report = pack.analyze(stack.records, policy_config={"iam-no-wildcard-actions": {"unknownValues": "violation"}})
    violation = only(report, "iam-no-wildcard-actions")
    assert violation.urn == policy.urn and violation.enforcement == "mandatory"
    assert ("role policy 'worker-policy': string value at .policy can't be known during preview, so this rule "
            "cannot give a verdict") in violation.message
    assert not skipped(report, "iam-no-wildcard-actions")
    assert skipped(report, "iam-resource-scoped-actions")  # still the default for the other rule


def test_unknown_in_a_stack_rule_skips_only_that_resource(pack: PolicyPackProcess) -> None:
    stack = two_workers(jobs_visibility=UNKNOWN)
    report = pack.analyze(stack.records)
    assert [v.urn for v in findings(report, VISIBILITY)] == [queue_urn(stack, "other")]
    [note] = skipped(report, VISIBILITY)
    assert "jobs.visibilityTimeoutSeconds can't be known during preview" in note.message


def test_unknown_in_a_stack_rule_is_a_violation_when_strict(pack: PolicyPackProcess) -> None:
    stack = two_workers(jobs_visibility=UNKNOWN)
    report = pack.analyze(stack.records, policy_config={VISIBILITY: {"unknownValues": "violation"}})
    by_urn = {v.urn: v.message for v in findings(report, VISIBILITY)}
    # The engine sends every unknown as its string sentinel, whatever the property's type.
    assert "queue 'jobs': string value at .visibilityTimeoutSeconds can't be known" in by_urn[queue_urn(stack, "jobs")]
    assert "visibilityTimeoutSeconds 30 s < 6 x" in by_urn[queue_urn(stack, "other")]
    assert not report.skipped
