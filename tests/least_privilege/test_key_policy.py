"""The stack key's policy admits exactly the roles that use the key, for exactly the actions they use, and AWS
services only under conditions; the account itself may administer the key but use it only through the services
that create the stores. Checked on every shipped stack set to customer-managed keys.

What a role uses is what `uses.py` derives (the handlers' recorded requests on encrypted stores, what Lambda, Step
Functions, Bedrock and Scheduler do with the role), the same requests `test_least_privilege` holds its grants to.
"""

from __future__ import annotations

import json
from fnmatch import fnmatchcase
from typing import Any

import pytest

from offline.synth import load_stack_files
from tests.least_privilege.roles import stack_roles
from tests.least_privilege.test_least_privilege import stack, uses
from tests.support.iam_eval import as_list
from tests.support.stacks import SHIPPED_STACKS

pytestmark = pytest.mark.after_handler_tests

WITH_KEY = [name for name in SHIPPED_STACKS
            if load_stack_files(name).config.get("ai-pipelines:encryption") == "customer-managed"]
USE_ACTIONS = {"kms:decrypt", "kms:encrypt", "kms:generatedatakey", "kms:reencryptfrom", "kms:reencryptto",
               "kms:creategrant"}


def stack_key(name: str) -> tuple[str, list[dict[str, Any]]]:
    """(the stack key's ARN, its policy's statements): the key whose alias every store names."""
    synthesis = stack(name)
    aliases = {a.inputs["targetKeyId"]: a.inputs["name"] for a in synthesis.of_type("aws:kms/alias:Alias")}
    [key] = [k for k in synthesis.of_type("aws:kms/key:Key") if aliases.get(k.outputs["keyId"], "").endswith("-data")]
    return key.outputs["arn"], json.loads(key.inputs["policy"])["Statement"]


def test_prod_is_set_to_customer_managed_keys() -> None:
    assert WITH_KEY == ["prod"]


@pytest.mark.parametrize("name", WITH_KEY)
def test_the_key_policy_admits_exactly_the_roles_that_use_the_key(name: str) -> None:
    """Per role, the (action, store) pairs the key policy admits (a store named by its encryption context) are
    exactly those the role's requests use."""
    key_arn, statements = stack_key(name)
    configured = load_stack_files(name).config.get("ai-pipelines:keyReaders") or "[]"
    readers = set(json.loads(configured) if isinstance(configured, str) else configured)
    admitted: dict[str, set[tuple[str, str]]] = {}
    for statement in statements:
        for principal in as_list((statement.get("Principal") or {}).get("AWS")):
            if principal in readers:  # configured readers outside the stack: Decrypt through S3 and SQS only
                assert (statement["Action"], set(statement["Condition"]["StringEquals"])) == (
                    ["kms:Decrypt"], {"kms:ViaService"}), statement
            elif not principal.endswith(":root"):
                admitted.setdefault(principal, set()).update(
                    (action.lower(), store) for action in as_list(statement["Action"])
                    for store in _stores(statement.get("Condition", {})))
    used: dict[str, set[tuple[str, str]]] = {}
    for role in stack_roles(stack(name)):
        for request in uses(name).authorizations(role):
            if request.resource == key_arn:
                used.setdefault(role.arn, set()).update(
                    (request.action.lower(), value) for context, values in request.context
                    if context.startswith("kms:EncryptionContext:") for value in values)
    assert sorted(admitted) == sorted(used)
    for arn, pairs in used.items():
        unmatched = [p for p in pairs if not any(a == p[0] and fnmatchcase(p[1], s) for a, s in admitted[arn])]
        unused = [p for p in admitted[arn] if not any(a == p[0] and fnmatchcase(u, p[1]) for a, u in pairs)]
        assert (arn, unmatched, unused) == (arn, [], [])


def _stores(conditions: dict[str, dict[str, Any]]) -> list[str]:
    return [str(v) for tests in conditions.values() for key, values in tests.items()
            if key.startswith("kms:EncryptionContext:") for v in as_list(values)]


@pytest.mark.parametrize("name", WITH_KEY)
def test_services_are_admitted_only_under_conditions(name: str) -> None:
    _, statements = stack_key(name)
    services = [s for s in statements if "Service" in (s.get("Principal") or {})]
    assert services, "the stack's services (CloudWatch Logs, alarms, S3 and EventBridge delivery) are admitted"
    for statement in services:
        keys = {key for tests in statement.get("Condition", {}).values() for key in tests}
        assert keys & {"aws:SourceArn", "kms:EncryptionContext:aws:logs:arn", "kms:EncryptionContext:aws:sqs:arn",
                       "kms:EncryptionContext:aws:states:stateMachineArn"}, statement


@pytest.mark.parametrize("name", WITH_KEY)
def test_the_account_administers_the_key_and_uses_it_only_through_the_stores_services(name: str) -> None:
    _, statements = stack_key(name)
    account = [s for s in statements if any(p.endswith(":root") for p in as_list(s["Principal"].get("AWS")))]
    for statement in account:
        uses_key = {a.lower() for a in as_list(statement["Action"])} & USE_ACTIONS
        if uses_key:
            conditions = statement["Condition"]["StringEquals"]
            assert set(conditions) == {"kms:CallerAccount", "kms:ViaService"}, statement
            assert all(".amazonaws.com" in v for v in as_list(conditions["kms:ViaService"]))
        assert "kms:*" not in as_list(statement["Action"])
