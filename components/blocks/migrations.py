"""Schema migrations applied by `pulumi up` itself, from a small function where the database is reachable.

The database is private, so the migrations run inside its VPC: a function built from the migration package, with
a role that may read exactly the credentials' secret and manage its network interfaces, and an
``aws.lambda_.Invocation`` keyed by the migrations' checksum. `pulumi up` invokes the function when the
migrations change, and only then; a failed migration fails the invocation and with it the update.

>>> SchemaMigrations(naming, env, "migrate", code=function_code("file_ingestion_migrate"), vpc=placement,
...                  statements=[read_secret], environment={...}, checksum="<sha256>",
...                  timeout_seconds=300, log_retention_days=30)  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from components import defaults
from components.blocks.iam import AwsEnv, PolicyDocument, Statement, service_trust_policy
from components.blocks.naming import Naming
from components.blocks.packaging import FunctionCode
from components.blocks.vpc import VpcPlacement, network_interface_statements

MIGRATION_MEMORY_MB = 256


class SchemaMigrations(pulumi.ComponentResource):
    """The migration function (one at a time: reserved concurrency 1) and its invocation by `pulumi up`."""

    def __init__(self, naming: Naming, env: AwsEnv, purpose: str, *, code: FunctionCode, vpc: VpcPlacement,
                 statements: Sequence[Statement], environment: Mapping[str, pulumi.Input[str]], checksum: str,
                 timeout_seconds: int, log_retention_days: int,
                 depends_on: Sequence[pulumi.Resource] = (), opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ai-pipelines:blocks:SchemaMigrations", naming.logical(purpose), None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.function_name = naming.name(purpose, max_length=64)
        self.log_group = aws.cloudwatch.LogGroup(naming.logical(f"{purpose}-logs"),
                                                 name=f"/aws/lambda/{self.function_name}",
                                                 retention_in_days=log_retention_days, tags=naming.tags, opts=child)
        self.role = aws.iam.Role(naming.logical(f"{purpose}-role"), name=naming.name(purpose, max_length=64),
                                 assume_role_policy=service_trust_policy("lambda.amazonaws.com", env),
                                 tags=naming.tags, opts=child)
        self.policy_document = PolicyDocument([
            Statement("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"],
                      [env.log_streams(self.log_group.name)]),
            # X-Ray trace writes support no resource-level permission: "*" is the only valid resource.
            Statement("WriteTraces", ["xray:PutTelemetryRecords", "xray:PutTraceSegments"], ["*"]),
            *statements,
            *network_interface_statements(env, vpc),
        ])
        self.role_policy = aws.iam.RolePolicy(naming.logical(f"{purpose}-policy"), name=f"{purpose}-permissions",
                                              role=self.role.name, policy=self.policy_document.to_json(), opts=child)
        self.function = aws.lambda_.Function(
            naming.logical(purpose),
            name=self.function_name,
            role=env.iam_role(self.role.name),
            **code,
            timeout=timeout_seconds,
            memory_size=MIGRATION_MEMORY_MB,
            reserved_concurrent_executions=1,  # migrations never run concurrently (the runner also locks)
            tracing_config={"mode": defaults.LAMBDA_TRACING_MODE},
            logging_config={"log_format": defaults.LAMBDA_LOG_FORMAT, "log_group": self.log_group.name},
            environment={"variables": dict(environment)},
            vpc_config=vpc.function_args(),
            tags=naming.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.role_policy]),
        )
        self.invocation = aws.lambda_.Invocation(
            naming.logical(f"{purpose}-run"),
            function_name=self.function.name,
            input=json.dumps({"checksum": checksum}),
            triggers={"migrations": checksum},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.function, *depends_on]),
        )
        self.register_outputs({"functionName": self.function.name, "checksum": checksum})
