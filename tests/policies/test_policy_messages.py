"""A violation's message is the finding: it names the resource first and does not repeat the rule's description."""

from __future__ import annotations

from offline.analyzer import PolicyPackProcess
from tests.policies.builders import Stack, role, trust
from tests.policies.reports import only


def test_message_opens_with_the_finding_not_the_description(pack: PolicyPackProcess) -> None:
    stack = Stack()
    role(stack, "machine-role", assumeRolePolicy=trust("states.amazonaws.com", conditions={}))
    violation = only(pack.analyze(stack.records), "iam-service-trust-scoped")
    description = next(p.description for p in pack.policies() if p.name == "iam-service-trust-scoped")
    assert violation.message.startswith("role 'machine-role' assumeRolePolicy statement #1 trusts "
                                        "states.amazonaws.com without")
    assert description not in violation.message
    assert "\n" not in violation.message
