"""IAM rules over every statement, action and attachment, not only the first: a Deny, a clean statement, a typo or
an accepted action before the one at fault; messages that name every action they judge; the AWS managed policy copy
judged statement by statement."""

from __future__ import annotations

import pytest

from offline.analyzer import PolicyPackProcess
from offline.model import ResourceRecord
from policies.rules import aws_managed
from tests.policies.builders import ACCOUNT, Stack, allow, arn, document, role, role_policy
from tests.policies.reports import findings, only, skipped

QUEUE_ARN = arn("sqs", "ai-pipelines-test-jobs")
TABLE_ARN = arn("dynamodb", "table/ai-pipelines-test-results")
UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9"  # the engine's marker for a value unknown at preview
MANAGED = "arn:aws:iam::aws:policy/"


def _messages(pack: PolicyPackProcess, stack: Stack, policy: str, config: dict | None = None) -> list[str]:
    return [v.message for v in findings(pack.analyze(stack.records, policy_config=config), policy)]


def _policy(*statements: dict) -> Stack:
    stack = Stack()
    role_policy(stack, "worker-policy", role(stack, "worker-role"), *statements)
    return stack


def deny(actions: list[str], resources: list[str]) -> dict:
    return {"Sid": "Guard", "Effect": "Deny", "Action": actions, "Resource": resources}


WHERE = "role policy 'worker-policy' statement"


def test_an_allow_after_a_deny_is_judged_by_every_rule(pack: PolicyPackProcess) -> None:
    stack = _policy(deny(["iam:PassRole", "sqs:*"], ["*"]), allow("Broad", ["sqs:Send*", "iam:PassRole"], ["*"]))
    assert _messages(pack, stack, "iam-no-wildcard-actions") == [
        f"{WHERE} 'Broad' allows wildcard action 'sqs:Send*'; name the actions the code calls (or list the pattern "
        f"in allowedActions)"]
    assert _messages(pack, stack, "iam-resource-scoped-actions") == [
        f"{WHERE} 'Broad' allows sqs:SendMessage, iam:PassRole on Resource '*', though AWS's IAM database lists "
        f"resource-level permissions for them; name the resources"]
    assert len(_messages(pack, stack, "iam-pass-role-scoped")) == 2


def test_pass_role_after_a_statement_without_it_is_judged(pack: PolicyPackProcess) -> None:
    stack = _policy(allow("Consume", ["sqs:ReceiveMessage"], [QUEUE_ARN]), allow("Pass", ["iam:PassRole"], ["*"]))
    assert _messages(pack, stack, "iam-pass-role-scoped") == [
        f"{WHERE} 'Pass' allows iam:PassRole on *; name the roles it may pass",
        f"{WHERE} 'Pass' allows iam:PassRole without an iam:PassedToService condition, so the role could be handed "
        f"to any service; name the service that receives it"]


def test_pass_role_message_names_every_action_that_passes_roles(pack: PolicyPackProcess) -> None:
    stack = _policy(allow("Pass", ["iam:PassRole", "iam:Pass*"], ["*"]))
    messages = _messages(pack, stack, "iam-pass-role-scoped")
    assert [m.split(" on *")[0].split(" without")[0] for m in messages] == [
        f"{WHERE} 'Pass' allows iam:PassRole, iam:Pass*"] * 2


def test_actions_after_an_all_actions_grant_or_a_typo_are_scoped(pack: PolicyPackProcess) -> None:
    stack = _policy(allow("Mixed", ["*", "sqs:RecieveMessage", "sqs:SendMessage"], ["*"]))
    assert _messages(pack, stack, "iam-resource-scoped-actions") == [
        f"{WHERE} 'Mixed' names action 'sqs:RecieveMessage', which does not exist in AWS's IAM database (a typo "
        f"grants nothing and hides the permission the code needs)",
        f"{WHERE} 'Mixed' allows sqs:SendMessage on Resource '*', though AWS's IAM database lists resource-level "
        f"permissions for them; name the resources"]


def test_statement_after_one_with_nothing_to_scope_is_judged(pack: PolicyPackProcess) -> None:
    stack = _policy(allow("Typo", ["sqs:RecieveMessage"], [QUEUE_ARN]), allow("Send", ["sqs:SendMessage"], ["*"]))
    messages = _messages(pack, stack, "iam-resource-scoped-actions")
    assert len(messages) == 2 and messages[1].startswith(f"{WHERE} 'Send' allows sqs:SendMessage on Resource '*'")


def test_statement_after_one_on_every_resource_is_judged(pack: PolicyPackProcess) -> None:
    stack = _policy(allow("Traces", ["xray:PutTraceSegments"], ["*"]), allow("Send", ["sqs:SendMessage"], [TABLE_ARN]))
    assert _messages(pack, stack, "iam-resource-scoped-actions") == [
        f"{WHERE} 'Send' names resource '{TABLE_ARN}', which fits no resource type that sqs:SendMessage accept",
        f"{WHERE} 'Send' allows 'sqs:SendMessage' on {TABLE_ARN}, none of which is a resource type the action "
        f"accepts"]


def test_every_action_of_a_statement_is_matched_with_its_resources(pack: PolicyPackProcess) -> None:
    stack = _policy(allow("Consume", ["sqs:ReceiveMessage", "dynamodb:PutItem"], [QUEUE_ARN]))
    assert _messages(pack, stack, "iam-resource-scoped-actions") == [
        f"{WHERE} 'Consume' allows 'dynamodb:PutItem' on {QUEUE_ARN}, none of which is a resource type the action "
        f"accepts"]


def test_scoping_reports_the_actions_after_an_accepted_one(pack: PolicyPackProcess) -> None:
    stack = _policy(allow("Models", ["bedrock:InvokeModel", "sqs:SendMessage"], ["*"]))
    config = {"iam-resource-scoped-actions": {"allowedWildcardResourceActions": ["bedrock:InvokeModel"]}}
    messages = _messages(pack, stack, "iam-resource-scoped-actions", config)
    assert len(messages) == 1 and messages[0].startswith(f"{WHERE} 'Models' allows sqs:SendMessage on Resource '*'")


def test_star_beside_an_arn_grants_an_action_without_resource_level_permission(pack: PolicyPackProcess) -> None:
    """'*' in the statement is the resource PutMetricData needs; only SendMessage's '*' is a finding."""
    stack = _policy(allow("Mixed", ["sqs:SendMessage", "cloudwatch:PutMetricData"], ["*", QUEUE_ARN]))
    messages = _messages(pack, stack, "iam-resource-scoped-actions")
    assert len(messages) == 1 and messages[0].startswith(f"{WHERE} 'Mixed' allows sqs:SendMessage on Resource '*'")


def test_not_resource_is_reported_once(pack: PolicyPackProcess) -> None:
    stack = _policy({"Sid": "AllBut", "Effect": "Allow", "Action": ["sqs:SendMessage"], "NotResource": [QUEUE_ARN]})
    assert _messages(pack, stack, "iam-resource-scoped-actions") == [
        f"{WHERE} 'AllBut' is an Allow with NotResource, which grants every resource it does not list; name the "
        f"resources instead"]


SQS_SCOPABLE = ["sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
                "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:PurgeQueue", "sqs:SetQueueAttributes",
                "sqs:DeleteQueue"]


@pytest.mark.parametrize(("count", "tail"), [(8, ""), (9, " and 1 more")])
def test_star_message_names_eight_actions_then_counts(pack: PolicyPackProcess, count: int, tail: str) -> None:
    stack = _policy(allow("Queue", SQS_SCOPABLE[:count], ["*"]))
    message = only(pack.analyze(stack.records), "iam-resource-scoped-actions").message
    assert message.startswith(f"{WHERE} 'Queue' allows {', '.join(SQS_SCOPABLE[:8])}{tail} on Resource '*'")


def test_arn_cut_short_is_reported_as_fitting_nothing_not_by_its_parts(pack: PolicyPackProcess) -> None:
    """Too few parts to be an ARN: which part would be the account is not known, so only the fit is reported."""
    short = "arn:aws:sqs:eu-west-1:*"
    stack = _policy(allow("Send", ["sqs:SendMessage"], [short]))
    messages = _messages(pack, stack, "iam-resource-scoped-actions")
    assert messages[0] == (f"{WHERE} 'Send' names resource '{short}', which fits no resource type that "
                           f"sqs:SendMessage accept")
    assert not [m for m in messages if "wildcard" in m]


def test_case_and_mid_name_wildcards_name_real_actions(pack: PolicyPackProcess) -> None:
    """IAM matches action names ignoring case, with '*' and '?' anywhere: these name real actions."""
    stack = _policy(allow("Consume", ["SQS:receive*", "sqs:Delete?essage", "sqs:*MessageVisibility"], [QUEUE_ARN]))
    assert not findings(pack.analyze(stack.records), "iam-resource-scoped-actions")


# --- managed policies ------------------------------------------------------------------------------------------

def _own_policy(stack: Stack, *statements: dict) -> ResourceRecord:
    return stack.add("aws:iam/policy:Policy", "worker-managed", {"name": "ai-pipelines-test-worker-managed",
                                                                "policy": document(*statements)})


def test_each_attached_policy_is_judged_after_one_passed_over(pack: PolicyPackProcess) -> None:
    stack = Stack()
    owner = role(stack, "worker-role", managedPolicyArns=[
        f"arn:aws:iam::{ACCOUNT}:policy/CustomFullAccess",  # not AWS managed
        f"{MANAGED}AdministratorAccess", f"{MANAGED}AmazonSSMReadOnlyAccess", f"{MANAGED}IAMFullAccess"])
    violations = findings(pack.analyze(stack.records), "iam-no-broad-managed-policies")
    assert [v.urn for v in violations] == [owner.urn] * 3
    assert ["'AdministratorAccess'" in violations[0].message, "'AmazonSSMReadOnlyAccess'" in violations[1].message,
            "'IAMFullAccess'" in violations[2].message] == [True] * 3


def test_unknown_arn_beside_an_own_policy_is_passed_over_and_the_rest_judged(pack: PolicyPackProcess) -> None:
    stack = Stack()
    policy = _own_policy(stack, allow("Consume", ["sqs:ReceiveMessage"], [QUEUE_ARN]))
    owner = stack.add("aws:iam/role:Role", "worker-role", {
        "name": stack.physical("worker-role"), "assumeRolePolicy": role(stack, "other").inputs["assumeRolePolicy"],
        "managedPolicyArns": [UNKNOWN, f"{MANAGED}AdministratorAccess"]}, deps={"managedPolicyArns": [policy]})
    report = pack.analyze(stack.records)
    violation = only(report, "iam-no-broad-managed-policies")
    assert violation.urn == owner.urn and "'AdministratorAccess'" in violation.message
    assert not skipped(report, "iam-no-broad-managed-policies")


def test_unknown_arn_not_built_from_the_stack_ends_the_judgement(pack: PolicyPackProcess) -> None:
    stack = Stack()
    role(stack, "worker-role", managedPolicyArns=[UNKNOWN, f"{MANAGED}AdministratorAccess"])
    report = pack.analyze(stack.records)
    assert skipped(report, "iam-no-broad-managed-policies")
    assert not findings(report, "iam-no-broad-managed-policies")


def test_own_policy_is_judged_past_a_deny_and_a_scoped_statement(pack: PolicyPackProcess) -> None:
    stack = Stack()
    policy = _own_policy(stack, deny(["*"], ["*"]), allow("Scoped", ["*"], [QUEUE_ARN]),
                         allow("Everything", ["sqs:*"], ["*"]))
    link = stack.add("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "worker-managed", {
        "role": role(stack, "worker-role").inputs["name"], "policyArn": UNKNOWN}, deps={"policyArn": [policy]})
    violation = only(pack.analyze(stack.records), "iam-no-broad-managed-policies")
    assert violation.urn == link.urn
    assert "whose statement 'Everything' allows sqs:* on Resource '*'" in violation.message


# --- the pack's copy of AWS managed policies --------------------------------------------------------------------

SQS_DATA = [*SQS_SCOPABLE, "sqs:CreateQueue"]  # ten Read, Write or Permissions management actions
LEVELS = frozenset({"Read", "Write", "Permissions management"})


@pytest.mark.parametrize(("count", "tail"), [(8, ""), (10, " and 2 more")])
def test_broad_grant_names_eight_actions_then_counts(count: int, tail: str) -> None:
    grants = aws_managed.broad_grants(document(allow("All", SQS_DATA[:count], ["*"])), LEVELS)
    assert len(grants) == 1
    named = grants[0].split(" on *")[0]
    assert named.count("sqs:") == 8 and named.endswith(f"(Permissions management){tail}")


def test_broad_grants_judge_every_statement() -> None:
    grants = aws_managed.broad_grants(document(
        deny(["sqs:*"], ["*"]), allow("Named", ["sqs:SendMessage"], [QUEUE_ARN]),
        allow("Every", ["sqs:ReceiveMessage"], ["*"])), LEVELS)
    assert grants == ["sqs:ReceiveMessage (Read) on *"]


def test_held_policies_are_listed_by_name_ignoring_case() -> None:
    names = [name for name, _ in aws_managed.held()]
    assert names == sorted(names, key=str.lower)
    assert names.index("AmazonSQSFullAccess") < names.index("AWSLambdaRole")  # 'm' before 'W' once case is ignored
