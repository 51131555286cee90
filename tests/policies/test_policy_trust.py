"""Who a policy lets in: service trust decided per service from AWS's guidance, resource policies open to '*', and
Lambda permissions without a source, through the analyzer protocol."""

from __future__ import annotations

import json
from typing import Any

import pytest

from offline.analyzer import DEFAULT_PACK_DIR, PolicyPackProcess
from policies.rules import trust_guidance
from tests.policies.builders import ACCOUNT, REGION, Stack, arn, document, role, trust
from tests.policies.reports import findings, only, skipped

RULE = "iam-service-trust-scoped"
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's marker for a value unknown at preview
STEP_FUNCTIONS_GUIDE = "https://docs.aws.amazon.com/step-functions/latest/dg/procedure-create-iam-role.html"
IAM_GUIDE = "https://docs.aws.amazon.com/IAM/latest/UserGuide/confused-deputy.html"


# --- role trust, per service -------------------------------------------------------------------------------------

@pytest.mark.parametrize("service", ["lambda.amazonaws.com", "appsync.amazonaws.com", "apigateway.amazonaws.com",
                                     "glue.amazonaws.com", "redshift.amazonaws.com"])
def test_service_that_sends_no_source_context_is_not_asked_for_it(pack: PolicyPackProcess, service: str) -> None:
    stack = Stack()
    role(stack, "service-role", assumeRolePolicy=trust(service, conditions={}))
    assert not findings(pack.analyze(stack.records), RULE)


def test_step_functions_trust_without_source_names_its_guidance(pack: PolicyPackProcess) -> None:
    stack = Stack()
    role(stack, "machine-role", assumeRolePolicy=trust("states.amazonaws.com", conditions={}))
    message = only(pack.analyze(stack.records), RULE).message
    assert "trusts states.amazonaws.com without an aws:SourceAccount or aws:SourceArn condition" in message
    assert STEP_FUNCTIONS_GUIDE in message


def test_service_without_its_own_guidance_follows_iams(pack: PolicyPackProcess) -> None:
    stack = Stack()
    role(stack, "scheduler-role", assumeRolePolicy=trust("scheduler.amazonaws.com", conditions={}))
    assert IAM_GUIDE in only(pack.analyze(stack.records), RULE).message


def test_services_without_source_conditions_is_configurable(pack: PolicyPackProcess) -> None:
    stack = Stack()
    role(stack, "worker-role", assumeRolePolicy=trust("lambda.amazonaws.com", conditions={}))
    role(stack, "scheduler-role", assumeRolePolicy=trust("scheduler.amazonaws.com", conditions={}))
    config = {RULE: {"servicesWithoutSourceConditions": ["scheduler.amazonaws.com"]}}
    violation = only(pack.analyze(stack.records, policy_config=config), RULE)
    assert "trusts lambda.amazonaws.com without" in violation.message


def test_catalogue_records_each_service_decision_and_its_source() -> None:
    """The table the catalogue generates, and the README generated from it."""
    readme = (DEFAULT_PACK_DIR / "README.md").read_text(encoding="utf-8")
    for text in (trust_guidance.catalogue_table(), readme):
        for service, verdict in [("states", "demanded"), ("lambda", "not demanded"), ("appsync", "not demanded"),
                                 ("apigateway", "not demanded"), ("glue", "not demanded"),
                                 ("redshift", "not demanded")]:
            row = next(line for line in text.splitlines() if line.startswith(f"| `{service}.amazonaws.com` |"))
            assert f"| {verdict} |" in row and "(https://docs.aws.amazon.com/" in row


def _trust_policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _service(service: str | list[str], effect: str = "Allow") -> dict[str, Any]:
    return {"Effect": effect, "Principal": {"Service": service}, "Action": "sts:AssumeRole"}


def test_trust_statement_after_a_deny_or_another_principal_is_judged(pack: PolicyPackProcess) -> None:
    """A Deny names a service without a source condition and is right to: only the Allow after it is a finding."""
    stack = Stack()
    role(stack, "machine-role", assumeRolePolicy=_trust_policy(
        {"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "Action": "sts:AssumeRole"},
        _service("scheduler.amazonaws.com", effect="Deny"), _service("states.amazonaws.com")))
    assert only(pack.analyze(stack.records), RULE).message.startswith(
        "role 'machine-role' assumeRolePolicy statement #3 trusts states.amazonaws.com without an aws:SourceAccount "
        "or aws:SourceArn condition")


def test_trust_statement_after_one_of_two_services_is_judged(pack: PolicyPackProcess) -> None:
    stack = Stack()
    role(stack, "machine-role", assumeRolePolicy=_trust_policy(
        _service(["lambda.amazonaws.com", "states.amazonaws.com"]), _service("scheduler.amazonaws.com")))
    messages = [v.message for v in findings(pack.analyze(stack.records), RULE)]
    assert len(messages) == 2
    assert "statement #1 trusts 2 service principals (lambda.amazonaws.com, states.amazonaws.com)" in messages[0]
    assert "statement #2 trusts scheduler.amazonaws.com without" in messages[1]


# --- resource policies open to '*' ---------------------------------------------------------------------------------

def _public(principal: Any, conditions: dict[str, Any] | None = None) -> str:
    statement: dict[str, Any] = {"Sid": "Public", "Effect": "Allow", "Principal": principal,
                                 "Action": ["sqs:SendMessage"], "Resource": ["*"]}
    return document({**statement, "Condition": conditions} if conditions else statement)


QUEUE_ARN = arn("sqs", "ai-pipelines-test-jobs")


@pytest.mark.parametrize("principal", ["*", {"AWS": "*"}, {"AWS": ["*"]}])
def test_queue_policy_open_to_everyone_is_a_violation(pack: PolicyPackProcess, principal: Any) -> None:
    stack = Stack()
    policy = stack.add("aws:sqs/queuePolicy:QueuePolicy", "jobs-policy", {
        "queueUrl": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/jobs", "policy": _public(principal)})
    violation = only(pack.analyze(stack.records), RULE)
    assert violation.urn == policy.urn
    assert violation.message.startswith("queue policy 'jobs-policy' policy statement 'Public' allows sqs:SendMessage "
                                        "to Principal '*' with no condition on the caller")


@pytest.mark.parametrize("conditions", [{"ArnLike": {"aws:SourceArn": arn("sns", "ai-pipelines-test-topic")}},
                                        {"StringEquals": {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}}])
def test_allow_to_everyone_narrowed_by_a_caller_condition_passes(pack: PolicyPackProcess,
                                                                 conditions: dict[str, Any]) -> None:
    stack = Stack()
    stack.add("aws:sqs/queuePolicy:QueuePolicy", "jobs-policy", {
        "queueUrl": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/jobs", "policy": _public("*", conditions)})
    assert not findings(pack.analyze(stack.records), RULE)


def test_condition_that_does_not_narrow_the_caller_is_still_open(pack: PolicyPackProcess) -> None:
    stack = Stack()
    stack.add("aws:sns/topic:Topic", "alerts", {
        "name": "alerts", "policy": _public("*", {"Bool": {"aws:SecureTransport": "true"}})})
    assert "topic 'alerts' policy statement 'Public' allows" in only(pack.analyze(stack.records), RULE).message


@pytest.mark.parametrize(("type_", "inputs"), [
    ("aws:s3/bucketPolicy:BucketPolicy", {"bucket": "ai-pipelines-test-data"}),
    ("aws:cloudwatch/eventBusPolicy:EventBusPolicy", {"eventBusName": "default"}),
    ("aws:s3/bucket:Bucket", {"bucket": "ai-pipelines-test-data"}),
])
def test_bucket_and_event_bus_policies_open_to_everyone(pack: PolicyPackProcess, type_: str,
                                                        inputs: dict[str, Any]) -> None:
    stack = Stack()
    holder = stack.add(type_, "open", {**inputs, "policy": _public({"AWS": "*"})})
    assert only(pack.analyze(stack.records), RULE).urn == holder.urn


def test_role_trust_open_to_everyone_is_a_violation(pack: PolicyPackProcess) -> None:
    stack = Stack()
    role(stack, "open-role", assumeRolePolicy=json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}]}))
    assert "role 'open-role' assumeRolePolicy statement #1 allows sts:AssumeRole to Principal '*'" in only(
        pack.analyze(stack.records), RULE).message


# --- Lambda permissions ----------------------------------------------------------------------------------------------

def _permission(stack: Stack, **inputs: Any) -> Any:
    return stack.add("aws:lambda/permission:Permission", "invoke", {
        "action": "lambda:InvokeFunction", "function": "ai-pipelines-test-worker", **inputs})


def test_service_permission_without_source_is_a_violation(pack: PolicyPackProcess) -> None:
    stack = Stack()
    permission = _permission(stack, principal="s3.amazonaws.com")
    violation = only(pack.analyze(stack.records), RULE)
    assert violation.urn == permission.urn
    assert violation.message.startswith("lambda permission 'invoke' lets s3.amazonaws.com invoke "
                                        "ai-pipelines-test-worker without sourceArn or sourceAccount, so another "
                                        "account's s3 resource could invoke it")


def test_permission_open_to_everyone_is_a_violation(pack: PolicyPackProcess) -> None:
    stack = Stack()
    _permission(stack, principal="*")
    assert "lets principal '*' invoke" in only(pack.analyze(stack.records), RULE).message


@pytest.mark.parametrize("inputs", [
    {"principal": "s3.amazonaws.com", "sourceArn": UNKNOWN},  # built from the bucket's ARN: unknown at preview
    {"principal": "events.amazonaws.com", "sourceAccount": ACCOUNT},
    {"principal": ACCOUNT},
])
def test_permission_with_a_source_or_an_account_principal_passes(pack: PolicyPackProcess,
                                                                 inputs: dict[str, Any]) -> None:
    stack = Stack()
    _permission(stack, **inputs)
    report = pack.analyze(stack.records)
    assert not findings(report, RULE)
    assert not skipped(report, RULE)
