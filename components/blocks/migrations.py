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

from components.blocks.iam import AwsEnv, Statement
from components.blocks.key import StackKey
from components.blocks.lambda_function import build_function
from components.blocks.naming import Naming
from components.blocks.packaging import FunctionCode
from components.blocks.vpc import VpcPlacement

MIGRATION_MEMORY_MB = 256


class SchemaMigrations(pulumi.ComponentResource):
    """The migration function (one at a time: reserved concurrency 1) and its invocation by `pulumi up`."""

    def __init__(self, naming: Naming, env: AwsEnv, purpose: str, *, code: FunctionCode, vpc: VpcPlacement,
                 statements: Sequence[Statement], environment: Mapping[str, pulumi.Input[str]], checksum: str,
                 timeout_seconds: int, log_retention_days: int,
                 triggers: Mapping[str, pulumi.Input[str]] | None = None,
                 depends_on: Sequence[pulumi.Resource] = (), key: StackKey | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ai-pipelines:blocks:SchemaMigrations", naming.logical(purpose), None, opts)
        parts = build_function(
            self, naming, env, purpose, code=code, timeout_seconds=timeout_seconds, memory_mb=MIGRATION_MEMORY_MB,
            reserved_concurrency=1,  # migrations never run concurrently (the runner also locks)
            log_retention_days=log_retention_days, environment=environment, statements=statements, vpc=vpc, key=key)
        self.function_name, self.log_group, self.role = parts.function_name, parts.log_group, parts.role
        self.policy_document, self.role_policy, self.function = parts.policy_document, parts.role_policy, parts.function
        self.invocation = aws.lambda_.Invocation(
            naming.logical(f"{purpose}-run"),
            function_name=self.function.name,
            input=json.dumps({"checksum": checksum}),
            # Invoked again when the migrations change, or any other input the function applies (``triggers``).
            triggers={**(triggers or {}), "migrations": checksum},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.function, *depends_on]),
        )
        self.register_outputs({"functionName": self.function.name, "checksum": checksum})
