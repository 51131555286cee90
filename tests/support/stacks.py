"""The shipped stacks, synthesized once per test session, as the handler and least-privilege tests see them.

Handler tests run in moto's account and region; synthesizing the stack in that same account and region lets a
handler run with exactly the environment the infrastructure gives its function, and lets the calls it makes be
held against exactly the role the infrastructure builds for it.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

from offline.model import ResourceRecord
from offline.synth import Synthesis, synthesize

TEST_REGION = "us-east-1"  # moto's default region, where the handler tests' resources live
SHIPPED_STACKS = ("dev", "prod")


@functools.cache
def shipped_stack(stack: str = "dev") -> Synthesis:
    """The stack after a `pulumi up` (every output known), in the handler tests' region."""
    return synthesize(stack, "update", config_overrides={"aws:region": TEST_REGION})


@dataclass(frozen=True)
class FunctionRole:
    function: ResourceRecord
    package: str  # the handler package the function runs, with its entry module when not `app` (pkg.module)
    statements: tuple[dict[str, Any], ...]


def function_roles(synthesis: Synthesis) -> list[FunctionRole]:
    """Each function with the Allow/Deny statements of every policy on its role."""
    by_urn = synthesis.by_urn()
    roles = {r.outputs["arn"]: r for r in synthesis.of_type("aws:iam/role:Role")}
    policies_by_role: dict[str, list[dict[str, Any]]] = {}
    for policy in synthesis.of_type("aws:iam/rolePolicy:RolePolicy"):
        for role_urn in policy.property_dependencies.get("role", []):
            policies_by_role.setdefault(role_urn, []).extend(json.loads(policy.inputs["policy"])["Statement"])
    result = []
    for function in synthesis.of_type("aws:lambda/function:Function"):
        role = roles[function.inputs["role"]]
        assert role.urn in by_urn
        package = handler_identity(function.inputs["handler"])
        result.append(FunctionRole(function, package, tuple(policies_by_role.get(role.urn, []))))
    return result


def handler_identity(handler: str) -> str:
    """What the AWS call recorder calls a function: its package (`kb_sync.app.handler` -> `kb_sync`), or package and
    entry module when a package holds several functions (`batch_inference.sharder.handler` ->
    `batch_inference.sharder`), so each function's calls are held against its own role."""
    module = handler.rsplit(".", 1)[0]
    return module.removesuffix(".app")


def function_environment(package: str, stack: str = "dev") -> dict[str, str]:
    """The environment variables the stack gives the function that runs `package`."""
    for role in function_roles(shipped_stack(stack)):
        if role.package == package:
            return dict(role.function.inputs.get("environment", {}).get("variables", {}))
    raise LookupError(f"no function in stack {stack} runs the handler package {package}")
