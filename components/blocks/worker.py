"""A queue-driven Lambda worker: function, role, log group, event source mapping and its alarms."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from components import defaults
from components.blocks.alarms import notifying_alarm
from components.blocks.iam import AwsEnv, PolicyDocument, Statement, service_trust_policy
from components.blocks.naming import Naming
from components.blocks.packaging import FunctionCode
from components.blocks.queue import QueueWithDlq
from components.blocks.vpc import VpcPlacement, network_interface_statements
from components.config import WorkerSettings


class QueueWorker(pulumi.ComponentResource):
    """A function fed by `queue`, with exactly the permissions it needs.

    Its inline policy is the consume statement for its own queue, writes to its own log group, X-Ray segments
    (tracing is on), plus exactly the `statements` the pipeline declares. The trust policy names
    lambda.amazonaws.com for this account only. The mapping reports partial batch failures, so one poison
    message is retried alone. With ``vpc`` the function runs in those subnets and security groups, and its role
    gets the network-interface permissions Lambda uses for that (``components.blocks.vpc``).

    >>> worker = QueueWorker(naming, env, "worker", queue=jobs, code=function_code("kb_sync"),
    ...                      settings=WorkerSettings(), alarm_topic_arn=topic.arn,
    ...                      log_retention_days=30, statements=[...])  # doctest: +SKIP
    """

    def __init__(self, naming: Naming, env: AwsEnv, purpose: str, *, queue: QueueWithDlq, code: FunctionCode,
                 settings: WorkerSettings, alarm_topic_arn: pulumi.Input[str], log_retention_days: int,
                 statements: Sequence[Statement] = (), environment: Mapping[str, pulumi.Input[str]] | None = None,
                 vpc: VpcPlacement | None = None, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ai-pipelines:blocks:QueueWorker", naming.logical(purpose), None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.function_name = naming.name(purpose, max_length=64)
        log_group_name = f"/aws/lambda/{self.function_name}"

        self.log_group = aws.cloudwatch.LogGroup(naming.logical(f"{purpose}-logs"), name=log_group_name,
                                                 retention_in_days=log_retention_days, tags=naming.tags, opts=child)
        self.role = aws.iam.Role(naming.logical(f"{purpose}-role"), name=naming.name(purpose, max_length=64),
                                 assume_role_policy=service_trust_policy("lambda.amazonaws.com", env),
                                 tags=naming.tags, opts=child)
        self.role_arn: pulumi.Output[str] = env.iam_role(self.role.name)
        self.policy_document = PolicyDocument([
            Statement("ConsumeOwnQueue", ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                      [queue.arn]),
            Statement("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"],
                      [env.log_streams(self.log_group.name)]),
            # X-Ray trace writes support no resource-level permission: "*" is the only valid resource.
            Statement("WriteTraces", ["xray:PutTelemetryRecords", "xray:PutTraceSegments"], ["*"]),
            *statements,
            *(network_interface_statements(env, vpc) if vpc is not None else ()),
        ])
        self.role_policy = aws.iam.RolePolicy(naming.logical(f"{purpose}-policy"), name=f"{purpose}-permissions",
                                              role=self.role.name, policy=self.policy_document.to_json(),
                                              opts=child)
        self.function = aws.lambda_.Function(
            naming.logical(purpose),
            name=self.function_name,
            role=self.role_arn,
            **code,
            timeout=settings.timeout_seconds,
            memory_size=settings.memory_mb,
            reserved_concurrent_executions=settings.reserved_concurrency,
            tracing_config={"mode": defaults.LAMBDA_TRACING_MODE},
            logging_config={"log_format": defaults.LAMBDA_LOG_FORMAT, "log_group": self.log_group.name},
            environment={"variables": dict(environment or {})},
            vpc_config=vpc.function_args() if vpc is not None else None,
            tags=naming.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.role_policy]),
        )
        self.arn: pulumi.Output[str] = env.lambda_function(self.function.name)
        scaling = (aws.lambda_.EventSourceMappingScalingConfigArgs(maximum_concurrency=settings.max_concurrency)
                   if settings.max_concurrency is not None else None)
        self.mapping = aws.lambda_.EventSourceMapping(
            naming.logical(f"{purpose}-source"),
            event_source_arn=queue.arn,
            function_name=self.function.name,
            batch_size=settings.batch_size,
            maximum_batching_window_in_seconds=settings.batching_window_seconds,
            function_response_types=["ReportBatchItemFailures"],
            scaling_config=scaling,
            tags=naming.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.role_policy]),
        )
        for metric in ("Errors", "Throttles"):
            notifying_alarm(naming, f"{purpose}-{metric.lower()}", namespace="AWS/Lambda", metric=metric,
                            dimensions={"FunctionName": self.function.name}, topic_arn=alarm_topic_arn,
                            threshold=0, statistic="Sum",
                            description=f"{self.function_name} reported {metric}", parent=self)
        self.register_outputs({"functionName": self.function.name, "arn": self.arn})

