"""A Lambda function invoked directly (by Step Functions or a schedule), not by a queue: function, role, log
group and the alarms that say it is failing.

The role's inline policy is its own log writes, X-Ray segments (tracing is on) and exactly the `statements` the
pipeline declares; the trust policy names lambda.amazonaws.com for this account only. For a function fed by a
queue, use `QueueWorker`.

>>> sharder = TaskFunction(naming, env, "sharder", code=function_code("batch_inference", module="sharder"),
...                        timeout_seconds=900, memory_mb=1024, alarm_topic_arn=topic.arn,
...                        log_retention_days=30, statements=[...])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from components import defaults
from components.blocks.alarms import notifying_alarm
from components.blocks.iam import AwsEnv, PolicyDocument, Statement, service_trust_policy
from components.blocks.naming import Naming
from components.blocks.packaging import FunctionCode

# Lambda's default (and free) ephemeral storage.
DEFAULT_EPHEMERAL_MB = 512


class TaskFunction(pulumi.ComponentResource):
    """A directly invoked function with exactly the permissions it needs."""

    def __init__(self, naming: Naming, env: AwsEnv, purpose: str, *, code: FunctionCode, timeout_seconds: int,
                 memory_mb: int, alarm_topic_arn: pulumi.Input[str], log_retention_days: int,
                 statements: Sequence[Statement] = (), environment: Mapping[str, pulumi.Input[str]] | None = None,
                 reserved_concurrency: int | None = None, ephemeral_storage_mb: int = DEFAULT_EPHEMERAL_MB,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ai-pipelines:blocks:TaskFunction", naming.logical(purpose), None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.function_name = naming.name(purpose, max_length=64)
        self.log_group = aws.cloudwatch.LogGroup(naming.logical(f"{purpose}-logs"),
                                                 name=f"/aws/lambda/{self.function_name}",
                                                 retention_in_days=log_retention_days, tags=naming.tags, opts=child)
        self.role = aws.iam.Role(naming.logical(f"{purpose}-role"), name=naming.name(purpose, max_length=64),
                                 assume_role_policy=service_trust_policy("lambda.amazonaws.com", env),
                                 tags=naming.tags, opts=child)
        self.role_arn: pulumi.Output[str] = env.iam_role(self.role.name)
        self.policy_document = PolicyDocument([
            Statement("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"],
                      [env.log_streams(self.log_group.name)]),
            # X-Ray trace writes support no resource-level permission: "*" is the only valid resource.
            Statement("WriteTraces", ["xray:PutTelemetryRecords", "xray:PutTraceSegments"], ["*"]),
            *statements,
        ])
        self.role_policy = aws.iam.RolePolicy(naming.logical(f"{purpose}-policy"), name=f"{purpose}-permissions",
                                              role=self.role.name, policy=self.policy_document.to_json(),
                                              opts=child)
        self.function = aws.lambda_.Function(
            naming.logical(purpose),
            name=self.function_name,
            role=self.role_arn,
            **code,
            timeout=timeout_seconds,
            memory_size=memory_mb,
            reserved_concurrent_executions=reserved_concurrency,
            ephemeral_storage={"size": ephemeral_storage_mb},
            tracing_config={"mode": defaults.LAMBDA_TRACING_MODE},
            logging_config={"log_format": defaults.LAMBDA_LOG_FORMAT, "log_group": self.log_group.name},
            environment={"variables": dict(environment or {})},
            tags=naming.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.role_policy]),
        )
        self.arn: pulumi.Output[str] = env.lambda_function(self.function.name)
        for metric in ("Errors", "Throttles"):
            notifying_alarm(naming, f"{purpose}-{metric.lower()}", namespace="AWS/Lambda", metric=metric,
                            dimensions={"FunctionName": self.function.name}, topic_arn=alarm_topic_arn,
                            threshold=0, statistic="Sum",
                            description=f"{self.function_name} reported {metric}", parent=self)
        self.register_outputs({"functionName": self.function.name, "arn": self.arn})
