"""The parts every function of the project has: log group, role, inline policy and the function itself.

Blocks that own a function (QueueWorker, TaskFunction, SchemaMigrations) build it here, under themselves as
parent, so the parts and their secure defaults are written once: an explicit log group with retention, a role
trusted by lambda.amazonaws.com for this account only, an inline policy of the function's own log writes, X-Ray
segments and exactly the statements the caller declares, tracing on, JSON logs, and the VPC placement's
network-interface permissions when the function runs in a VPC.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components import defaults
from components.blocks.iam import AwsEnv, PolicyDocument, Statement, service_trust_policy
from components.blocks.key import StackKey
from components.blocks.naming import Naming
from components.blocks.packaging import FunctionCode
from components.blocks.vpc import VpcPlacement, network_interface_statements


@dataclass(frozen=True)
class LambdaParts:
    function_name: str
    log_group: aws.cloudwatch.LogGroup
    role: aws.iam.Role
    role_arn: pulumi.Output[str]
    policy_document: PolicyDocument
    role_policy: aws.iam.RolePolicy
    function: aws.lambda_.Function
    arn: pulumi.Output[str]


def build_function(owner: pulumi.Resource, naming: Naming, env: AwsEnv, purpose: str, *, code: FunctionCode,
                   timeout_seconds: int, memory_mb: int, log_retention_days: int,
                   statements: Sequence[Statement] = (), environment: Mapping[str, pulumi.Input[str]] | None = None,
                   reserved_concurrency: int | None = None, vpc: VpcPlacement | None = None,
                   after: Sequence[pulumi.Resource] = (), key: StackKey | None = None,
                   **function_args: Any) -> LambdaParts:
    """Create the function `purpose` and its log group, role and policy as children of `owner`.

    `statements` come first in the policy (the caller's own), then log writes and traces; `function_args` are
    further `aws.lambda_.Function` arguments (e.g. `ephemeral_storage`). The function is created or updated only
    after `after` (e.g. the schema migrations its code relies on). With `key` the log group is encrypted with the
    stack's key, and the key policy admits the role for the key statements among `statements`.
    """
    child = pulumi.ResourceOptions(parent=owner)
    function_name = naming.name(purpose, max_length=64)
    log_group_name = f"/aws/lambda/{function_name}"
    log_group = aws.cloudwatch.LogGroup(naming.logical(f"{purpose}-logs"), name=log_group_name,
                                        retention_in_days=log_retention_days, tags=naming.tags,
                                        kms_key_id=key.encrypt_log_group(log_group_name) if key else None, opts=child)
    role = aws.iam.Role(naming.logical(f"{purpose}-role"), name=naming.name(purpose, max_length=64),
                        assume_role_policy=service_trust_policy("lambda.amazonaws.com", env),
                        tags=naming.tags, opts=child)
    policy_document = PolicyDocument([
        *statements,
        Statement("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], [env.log_streams(log_group.name)]),
        # X-Ray trace writes support no resource-level permission: "*" is the only valid resource.
        Statement("WriteTraces", ["xray:PutTelemetryRecords", "xray:PutTraceSegments"], ["*"]),
        *(network_interface_statements(env, vpc) if vpc is not None else ()),
    ])
    role_policy = aws.iam.RolePolicy(naming.logical(f"{purpose}-policy"), name=f"{purpose}-permissions",
                                     role=role.name, policy=policy_document.to_json(), opts=child)
    role_arn = env.iam_role(role.name)
    if key is not None:
        key.admit_roles(role_arn, statements)
    function = aws.lambda_.Function(
        naming.logical(purpose),
        name=function_name,
        role=role_arn,
        **code,
        timeout=timeout_seconds,
        memory_size=memory_mb,
        reserved_concurrent_executions=reserved_concurrency,
        tracing_config={"mode": defaults.LAMBDA_TRACING_MODE},
        logging_config={"log_format": defaults.LAMBDA_LOG_FORMAT, "log_group": log_group.name},
        environment={"variables": dict(environment or {})},
        vpc_config=vpc.function_args() if vpc is not None else None,
        tags=naming.tags,
        **function_args,
        opts=pulumi.ResourceOptions(parent=owner, depends_on=[role_policy, *after]),
    )
    return LambdaParts(function_name, log_group, role, role_arn, policy_document, role_policy, function,
                       env.lambda_function(function.name))
