"""IAM rules through the analyzer protocol: wildcards, resource scoping (AWS's IAM database), managed policies,
service trust."""

from __future__ import annotations

import json

import pytest

from offline.analyzer import PolicyPackProcess
from offline.model import ResourceRecord
from tests.policies.builders import (
    ACCOUNT,
    Stack,
    allow,
    arn,
    attachment,
    document,
    role,
    role_policy,
    trust,
)
from tests.policies.reports import findings, only, skipped

QUEUE_ARN = arn("sqs", "ai-pipelines-test-jobs")
TABLE_ARN = arn("dynamodb", "table/ai-pipelines-test-results")


def _policy_stack(*statements: dict) -> tuple[Stack, ResourceRecord]:
    stack = Stack()
    owner = role(stack, "worker-role")
    return stack, role_policy(stack, "worker-policy", owner, *statements)


def test_named_actions_on_named_resources_pass(pack: PolicyPackProcess) -> None:
    stack, _ = _policy_stack(
        allow("Consume", ["sqs:ReceiveMessage", "sqs:DeleteMessage"], [QUEUE_ARN]),
        allow("Results", ["dynamodb:PutItem", "dynamodb:Query"], [TABLE_ARN, f"{TABLE_ARN}/index/*"]),
        allow("Logs", ["logs:CreateLogStream", "logs:PutLogEvents"],
              [arn("logs", "log-group:/aws/lambda/ai-pipelines-test-worker:log-stream:*")]),
        allow("Objects", ["s3:GetObject"], ["arn:aws:s3:::ai-pipelines-test-data/incoming/*"]),
        allow("Traces", ["xray:PutTraceSegments"], ["*"]))
    report = pack.analyze(stack.records)
    for policy in ("iam-no-wildcard-actions", "iam-resource-scoped-actions", "iam-service-trust-scoped"):
        assert not findings(report, policy)


@pytest.mark.parametrize("action", ["*", "sqs:*", "sqs:Receive*", "s3:Get?bject"])
def test_wildcard_action_is_a_violation(pack: PolicyPackProcess, action: str) -> None:
    stack, policy = _policy_stack(allow("Broad", [action], [QUEUE_ARN]))
    violation = only(pack.analyze(stack.records), "iam-no-wildcard-actions")
    assert violation.urn == policy.urn
    assert violation.enforcement == "mandatory"
    assert f"role policy 'worker-policy' statement 'Broad' allows wildcard action '{action}'" in violation.message


def test_wildcard_in_a_role_inline_policy(pack: PolicyPackProcess) -> None:
    stack = Stack()
    owner = role(stack, "worker-role", inlinePolicies=[
        {"name": "inline", "policy": document(allow("Broad", ["dynamodb:*"], [TABLE_ARN]))}])
    violation = only(pack.analyze(stack.records), "iam-no-wildcard-actions")
    assert violation.urn == owner.urn
    assert "role 'worker-role' inline policy 'inline' statement 'Broad' allows wildcard action 'dynamodb:*'" in (
        violation.message)


def test_not_action_is_a_violation(pack: PolicyPackProcess) -> None:
    stack, _ = _policy_stack({"Sid": "AllBut", "Effect": "Allow", "NotAction": ["iam:*"], "Resource": ["*"]})
    assert "Allow with NotAction" in only(pack.analyze(stack.records), "iam-no-wildcard-actions").message


def test_allowed_wildcard_pattern_is_accepted_through_config(pack: PolicyPackProcess) -> None:
    stack, _ = _policy_stack(allow("Read", ["sqs:Get*"], [QUEUE_ARN]))
    assert findings(pack.analyze(stack.records), "iam-no-wildcard-actions")
    config = {"iam-no-wildcard-actions": {"allowedActions": ["sqs:Get*"]}}
    report = pack.analyze(stack.records, policy_config=config)
    assert not findings(report, "iam-no-wildcard-actions")
    assert not findings(report, "iam-resource-scoped-actions")  # both expansions accept a queue ARN


def test_misspelt_action_is_a_violation(pack: PolicyPackProcess) -> None:
    stack, policy = _policy_stack(allow("Consume", ["sqs:RecieveMessage"], [QUEUE_ARN]))
    violation = only(pack.analyze(stack.records), "iam-resource-scoped-actions")
    assert violation.urn == policy.urn
    assert "names action 'sqs:RecieveMessage', which does not exist in AWS's IAM database" in violation.message


def test_star_resource_for_a_scopable_action_is_a_violation(pack: PolicyPackProcess) -> None:
    stack, policy = _policy_stack(allow("Send", ["sqs:SendMessage", "xray:PutTraceSegments"], ["*"]))
    violation = only(pack.analyze(stack.records), "iam-resource-scoped-actions")
    assert violation.urn == policy.urn
    assert "allows sqs:SendMessage on Resource '*'" in violation.message
    assert "xray" not in violation.message  # X-Ray supports no resource-level permission: '*' is right for it


def test_star_resource_accepted_for_a_configured_action(pack: PolicyPackProcess) -> None:
    stack, _ = _policy_stack(allow("Models", ["bedrock:InvokeModel"], ["*"]))
    assert findings(pack.analyze(stack.records), "iam-resource-scoped-actions")
    config = {"iam-resource-scoped-actions": {"allowedWildcardResourceActions": ["bedrock:InvokeModel"]}}
    assert not findings(pack.analyze(stack.records, policy_config=config), "iam-resource-scoped-actions")


def test_resource_of_the_wrong_type_is_a_violation(pack: PolicyPackProcess) -> None:
    stack, _ = _policy_stack(allow("Send", ["sqs:SendMessage"], [TABLE_ARN]))
    messages = [v.message for v in findings(pack.analyze(stack.records), "iam-resource-scoped-actions")]
    assert any(f"names resource '{TABLE_ARN}', which fits no resource type that sqs:SendMessage accept" in m
               for m in messages)
    assert any("allows 'sqs:SendMessage' on" in m and "none of which is a resource type" in m for m in messages)


def test_bucket_action_on_object_arn_is_a_violation(pack: PolicyPackProcess) -> None:
    stack, _ = _policy_stack(allow("List", ["s3:ListBucket"], ["arn:aws:s3:::ai-pipelines-test-data/*"]))
    assert findings(pack.analyze(stack.records), "iam-resource-scoped-actions")


def test_wildcard_only_action_on_a_named_resource_is_a_violation(pack: PolicyPackProcess) -> None:
    stack, _ = _policy_stack(allow("Metrics", ["cloudwatch:PutMetricData"], [QUEUE_ARN]))
    messages = [v.message for v in findings(pack.analyze(stack.records), "iam-resource-scoped-actions")]
    assert any("supports only Resource '*'" in m for m in messages)


@pytest.mark.parametrize("policy_arn", ["arn:aws:iam::aws:policy/AdministratorAccess",
                                        "arn:aws:iam::aws:policy/AmazonSQSFullAccess",
                                        "arn:aws:iam::aws:policy/job-function/PowerUserAccess"])
def test_broad_managed_policy_attachment_is_a_violation(pack: PolicyPackProcess, policy_arn: str) -> None:
    stack = Stack()
    link = attachment(stack, "worker-admin", role(stack, "worker-role"), policy_arn)
    violation = only(pack.analyze(stack.records), "iam-no-broad-managed-policies")
    assert violation.urn == link.urn
    assert policy_arn in violation.message and "denied pattern" in violation.message


def test_broad_managed_policy_in_role_managed_arns(pack: PolicyPackProcess) -> None:
    stack = Stack()
    owner = role(stack, "worker-role", managedPolicyArns=["arn:aws:iam::aws:policy/IAMFullAccess"])
    assert only(pack.analyze(stack.records), "iam-no-broad-managed-policies").urn == owner.urn


def test_narrow_or_allowed_managed_policies_pass(pack: PolicyPackProcess) -> None:
    stack = Stack()
    owner = role(stack, "worker-role")
    # Its actions support no resource-level permission: '*' is the only resource they can have.
    attachment(stack, "xray", owner, "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess")
    attachment(stack, "custom", owner, f"arn:aws:iam::{ACCOUNT}:policy/CustomFullAccess")  # not AWS managed
    attachment(stack, "ssm", owner, "arn:aws:iam::aws:policy/AmazonSSMFullAccess")
    config = {"iam-no-broad-managed-policies": {"allowedPolicies": ["AmazonSSMFullAccess"]}}
    assert not findings(pack.analyze(stack.records, policy_config=config), "iam-no-broad-managed-policies")


@pytest.mark.parametrize(("name", "grants"), [
    ("service-role/AWSLambdaExecute", "allows logs:* on arn:aws:logs:*:*:*; s3:GetObject (Read), s3:PutObject (Write) "
                                      "on arn:aws:s3:::*"),
    ("AmazonS3ReadOnlyAccess", "allows s3:Get*, s3:List*, s3:Describe*, s3-object-lambda:Get*, s3-object-lambda:List* "
                               "on *"),
    ("service-role/AWSLambdaBasicExecutionRole", "allows logs:CreateLogGroup (Write), logs:CreateLogStream (Write), "
                                                 "logs:PutLogEvents (Write) on *"),
    ("service-role/AWSLambdaRole", "allows lambda:InvokeFunction (Write) on *"),
])
def test_aws_managed_policy_granting_data_actions_on_every_resource_is_a_violation(
        pack: PolicyPackProcess, name: str, grants: str) -> None:
    """Judged by the document of the pack's copy, not by its name (none of these matches a denied pattern)."""
    stack = Stack()
    link = attachment(stack, "worker-managed", role(stack, "worker-role"), f"arn:aws:iam::aws:policy/{name}")
    violation = only(pack.analyze(stack.records), "iam-no-broad-managed-policies")
    assert violation.urn == link.urn
    assert f"attaches AWS managed policy '{name.rsplit('/', 1)[-1]}'" in violation.message
    assert grants in violation.message, violation.message


def test_aws_managed_policy_in_role_managed_arns_is_judged_by_its_document(pack: PolicyPackProcess) -> None:
    stack = Stack()
    owner = role(stack, "worker-role", managedPolicyArns=[
        "arn:aws:iam::aws:policy/AWSXRayDaemonWriteAccess", "arn:aws:iam::aws:policy/AmazonSQSReadOnlyAccess"])
    violation = only(pack.analyze(stack.records), "iam-no-broad-managed-policies")
    assert violation.urn == owner.urn
    assert "'AmazonSQSReadOnlyAccess'" in violation.message and "sqs:GetQueueAttributes (Read)" in violation.message
    # Only Write counted: a read-only policy passes.
    config = {"iam-no-broad-managed-policies": {"dataAccessLevels": ["Write"]}}
    assert not findings(pack.analyze(stack.records, policy_config=config), "iam-no-broad-managed-policies")


def test_aws_managed_policy_missing_from_the_copy_is_not_judged_silently(pack: PolicyPackProcess) -> None:
    stack = Stack()
    link = attachment(stack, "ssm", role(stack, "worker-role"), "arn:aws:iam::aws:policy/AmazonSSMReadOnlyAccess")
    violation = only(pack.analyze(stack.records), "iam-no-broad-managed-policies")
    assert violation.urn == link.urn and "does not hold" in violation.message
    for settings in ({"unlistedPolicies": "allow"}, {"allowedPolicies": ["AmazonSSMReadOnlyAccess"]}):
        report = pack.analyze(stack.records, policy_config={"iam-no-broad-managed-policies": settings})
        assert not findings(report, "iam-no-broad-managed-policies")


def test_trust_without_source_condition_is_a_violation(pack: PolicyPackProcess) -> None:
    stack = Stack()
    owner = role(stack, "machine-role", assumeRolePolicy=trust("states.amazonaws.com", conditions={}))
    violation = only(pack.analyze(stack.records), "iam-service-trust-scoped")
    assert violation.urn == owner.urn
    assert "trusts states.amazonaws.com without an aws:SourceAccount or aws:SourceArn condition" in violation.message


def test_trust_of_two_services_is_a_violation(pack: PolicyPackProcess) -> None:
    stack = Stack()
    policy = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "sts:AssumeRole",
        "Principal": {"Service": ["lambda.amazonaws.com", "states.amazonaws.com"]},
        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}]})
    role(stack, "shared-role", assumeRolePolicy=policy)
    assert "trusts 2 service principals" in only(pack.analyze(stack.records), "iam-service-trust-scoped").message


def test_trust_with_source_arn_or_of_an_exempt_service_passes(pack: PolicyPackProcess) -> None:
    stack = Stack()
    role(stack, "scheduler-role", assumeRolePolicy=trust("scheduler.amazonaws.com", conditions={
        "ArnLike": {"aws:SourceArn": arn("scheduler", "schedule/default/ai-pipelines-test-sync")}}))
    role(stack, "instance-role", assumeRolePolicy=trust("ec2.amazonaws.com", conditions={}))
    assert not findings(pack.analyze(stack.records), "iam-service-trust-scoped")


ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/ai-pipelines-test-batch-role"


def test_passing_a_named_role_to_one_service_passes(pack: PolicyPackProcess) -> None:
    stack, _ = _policy_stack(allow("Pass", ["iam:PassRole"], [ROLE_ARN],
                                   conditions={"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}}))
    assert not findings(pack.analyze(stack.records), "iam-pass-role-scoped")


@pytest.mark.parametrize(("resource", "conditions", "expected"), [
    (ROLE_ARN, {}, "allows iam:PassRole without an iam:PassedToService condition"),
    ("*", {"StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}}, "allows iam:PassRole on *; name the"),
    (f"arn:aws:iam::{ACCOUNT}:role/ai-pipelines-*", {"StringEquals": {"iam:PassedToService": "states.amazonaws.com"}},
     f"allows iam:PassRole on arn:aws:iam::{ACCOUNT}:role/ai-pipelines-*"),
])
def test_passing_any_role_or_to_any_service_is_a_violation(pack: PolicyPackProcess, resource: str,
                                                             conditions: dict, expected: str) -> None:
    stack, policy = _policy_stack(allow("Pass", ["iam:PassRole"], [resource], conditions=conditions))
    violation = only(pack.analyze(stack.records), "iam-pass-role-scoped")
    assert violation.urn == policy.urn and violation.enforcement == "mandatory"
    assert f"role policy 'worker-policy' statement 'Pass' {expected}" in violation.message


def test_wildcard_on_star_names_only_the_actions_that_accept_arns(pack: PolicyPackProcess) -> None:
    """`ec2:Describe*` on '*': the wildcard is iam-no-wildcard-actions' finding; resource scoping names only the few
    expanded actions that accept resource ARNs, once."""
    stack, _ = _policy_stack(allow("Inventory", ["ec2:Describe*"], ["*"]))
    report = pack.analyze(stack.records)
    assert "allows wildcard action 'ec2:Describe*'" in only(report, "iam-no-wildcard-actions").message
    message = only(report, "iam-resource-scoped-actions").message
    assert message.startswith("role policy 'worker-policy' statement 'Inventory' allows ec2:DescribeCapacityBlock")
    assert "ec2:Describe*" not in message and "ec2:DescribeInstances," not in message  # '*' is right for those
    assert message.count("ec2:Describe") == 8 and " and 9 more on Resource '*'" in message


def test_wildcard_whose_expansion_accepts_only_star_passes_resource_scoping(pack: PolicyPackProcess) -> None:
    stack, _ = _policy_stack(allow("Traces", ["xray:PutTrace*"], ["*"]))
    report = pack.analyze(stack.records)
    assert findings(report, "iam-no-wildcard-actions")
    assert not findings(report, "iam-resource-scoped-actions")


@pytest.mark.parametrize(("resource", "parts"), [
    ("arn:aws:logs:*:*:*", "region and account are wildcards"),
    ("arn:aws:secretsmanager:*:*:secret:app*", "region and account are wildcards"),
    ("arn:aws:sqs:eu-west-1:*:ai-pipelines-test-jobs", "account is a wildcard"),
])
def test_arn_with_a_wildcard_account_is_a_violation(pack: PolicyPackProcess, resource: str, parts: str) -> None:
    action = {"logs": "logs:PutLogEvents", "secretsmanager": "secretsmanager:GetSecretValue",
              "sqs": "sqs:SendMessage"}[resource.split(":")[2]]
    stack, policy = _policy_stack(allow("Broad", [action], [resource]))
    violation = only(pack.analyze(stack.records), "iam-resource-scoped-actions")
    assert violation.urn == policy.urn
    assert f"statement 'Broad' names resource '{resource}', whose {parts}: as broad as '*' there" in violation.message


def test_wildcard_region_in_the_own_account_passes(pack: PolicyPackProcess) -> None:
    stack, _ = _policy_stack(
        allow("Models", ["bedrock:InvokeModel"], ["arn:aws:bedrock:*::foundation-model/anthropic.claude-v2"]),
        allow("Secrets", ["secretsmanager:GetSecretValue"], [f"arn:aws:secretsmanager:*:{ACCOUNT}:secret:app-*"]))
    assert not findings(pack.analyze(stack.records), "iam-resource-scoped-actions")


UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's marker for a value unknown at preview


def _own_policy(stack: Stack, *statements: dict) -> ResourceRecord:
    return stack.add("aws:iam/policy:Policy", "worker-managed", {"name": "ai-pipelines-test-worker-managed",
                                                                "policy": document(*statements)})


@pytest.mark.parametrize("strict", [False, True])
def test_attached_policy_of_the_stack_is_judged_by_its_document(pack: PolicyPackProcess, strict: bool) -> None:
    """Its ARN is unknown at preview; the property dependency says it is this stack's Policy, not an AWS one."""
    stack = Stack()
    owner = role(stack, "worker-role")
    policy = _own_policy(stack, allow("Consume", ["sqs:ReceiveMessage"], [QUEUE_ARN]))
    stack.add("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "worker-managed", {
        "role": owner.inputs["name"], "policyArn": UNKNOWN}, deps={"role": [owner], "policyArn": [policy]})
    config = {"iam-no-broad-managed-policies": {"unknownValues": "violation"}} if strict else None
    report = pack.analyze(stack.records, policy_config=config)
    assert not findings(report, "iam-no-broad-managed-policies")
    assert not skipped(report, "iam-no-broad-managed-policies")


def test_attached_policy_of_the_stack_granting_everything_is_a_violation(pack: PolicyPackProcess) -> None:
    stack = Stack()
    owner = role(stack, "worker-role")
    policy = _own_policy(stack, allow("Everything", ["*"], ["*"]))
    link = stack.add("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "worker-managed", {
        "role": owner.inputs["name"], "policyArn": UNKNOWN}, deps={"role": [owner], "policyArn": [policy]})
    violation = only(pack.analyze(stack.records), "iam-no-broad-managed-policies")
    assert violation.urn == link.urn
    assert violation.message.startswith("policy attachment 'worker-managed' policyArn attaches managed policy "
                                        "'worker-managed' of this stack, whose statement 'Everything' allows * on "
                                        "Resource '*'")


def test_unknown_policy_arn_not_built_from_the_stack_still_cannot_be_judged(pack: PolicyPackProcess) -> None:
    stack = Stack()
    owner = role(stack, "worker-role")
    attachment(stack, "mystery", owner, UNKNOWN)
    assert skipped(pack.analyze(stack.records), "iam-no-broad-managed-policies")
