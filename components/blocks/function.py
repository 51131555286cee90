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

from components.blocks.alarms import ErrorRate, function_alarms
from components.blocks.dashboard import Widget, function_widgets
from components.blocks.iam import AwsEnv, Statement
from components.blocks.key import StackKey
from components.blocks.lambda_function import build_function
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
                 error_rate: ErrorRate | None = None, key: StackKey | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ai-pipelines:blocks:TaskFunction", naming.logical(purpose), None, opts)
        parts = build_function(
            self, naming, env, purpose, code=code, timeout_seconds=timeout_seconds, memory_mb=memory_mb,
            reserved_concurrency=reserved_concurrency, log_retention_days=log_retention_days,
            environment=environment, statements=statements, key=key,
            ephemeral_storage={"size": ephemeral_storage_mb})
        self.function_name, self.log_group, self.role, self.role_arn = (parts.function_name, parts.log_group,
                                                                        parts.role, parts.role_arn)
        self.policy_document, self.role_policy, self.function, self.arn = (parts.policy_document, parts.role_policy,
                                                                           parts.function, parts.arn)
        self.alarms = function_alarms(naming, purpose, function_name=self.function.name,
                                      display_name=self.function_name, topic_arn=alarm_topic_arn, parent=self,
                                      error_rate=error_rate)
        self.purpose, self.timeout_seconds, self.reserved_concurrency = purpose, timeout_seconds, reserved_concurrency
        self.register_outputs({"functionName": self.function.name, "arn": self.arn})

    def widgets(self) -> list[Widget]:
        """Its alarms, duration against its timeout, concurrency against its reservation."""
        return function_widgets(self.purpose, self.function.name, self.alarms, timeout_seconds=self.timeout_seconds,
                                reserved_concurrency=self.reserved_concurrency)
