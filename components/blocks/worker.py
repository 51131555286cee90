"""A queue-driven Lambda worker: function, role, log group, event source mapping and its alarms."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from components import defaults
from components.blocks.alarms import ErrorRate, function_alarms
from components.blocks.dashboard import Widget, function_widgets
from components.blocks.iam import AwsEnv, Statement
from components.blocks.key import StackKey
from components.blocks.lambda_function import build_function
from components.blocks.naming import Naming
from components.blocks.packaging import FunctionCode
from components.blocks.queue import QueueWithDlq
from components.blocks.vpc import VpcPlacement
from components.config import WorkerSettings
from components.config.sections import ErrorAlarmSettings


def error_rate(settings: ErrorAlarmSettings, by_rate: bool) -> ErrorRate | None:
    """The rate the errors page on (None: any error), from the config, else from the pipeline's choice."""
    if (settings.page_on or ("rate" if by_rate else "count")) == "count":
        return None
    return ErrorRate(settings.rate_percent, settings.min_invocations, settings.period_seconds)


class QueueWorker(pulumi.ComponentResource):
    """A function fed by `queue`, with exactly the permissions it needs.

    Its inline policy is the consume statement for its own queue, writes to its own log group, X-Ray segments
    (tracing is on), plus exactly the `statements` the pipeline declares. The trust policy names
    lambda.amazonaws.com for this account only. The mapping reports partial batch failures, so one poison
    message is retried alone, and publishes its event counts (``defaults.ESM_METRICS``). With ``vpc`` the
    function runs in those subnets and security groups, and its role gets the network-interface permissions Lambda
    uses for that (``components.blocks.vpc``). With ``after`` the function and its mapping wait for those
    resources, so no message is delivered before, say, the schema exists. Its errors page on their rate when
    ``errors_by_rate`` (the pipeline's choice) or the worker's ``errors.pageOn`` says so, else on any error. With
    ``key`` (the stack's key) its log group is encrypted with it, and the role may decrypt its queue's messages.

    >>> worker = QueueWorker(naming, env, "worker", queue=jobs, code=function_code("kb_sync"),
    ...                      settings=WorkerSettings(timeout_seconds=60, memory_mb=256, reserved_concurrency=2,
    ...                                              batch_size=10),
    ...                      alarm_topic_arn=topic.arn, log_retention_days=30, statements=[...])  # doctest: +SKIP
    """

    def __init__(self, naming: Naming, env: AwsEnv, purpose: str, *, queue: QueueWithDlq, code: FunctionCode,
                 settings: WorkerSettings, alarm_topic_arn: pulumi.Input[str], log_retention_days: int,
                 statements: Sequence[Statement] = (), environment: Mapping[str, pulumi.Input[str]] | None = None,
                 vpc: VpcPlacement | None = None, after: Sequence[pulumi.Resource] = (),
                 errors_by_rate: bool = False, key: StackKey | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ai-pipelines:blocks:QueueWorker", naming.logical(purpose), None, opts)
        parts = build_function(
            self, naming, env, purpose, code=code, timeout_seconds=settings.timeout_seconds,
            memory_mb=settings.memory_mb, reserved_concurrency=settings.reserved_concurrency,
            log_retention_days=log_retention_days, environment=environment, vpc=vpc, after=after, key=key,
            statements=[Statement("ConsumeOwnQueue",
                                  ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"], [queue.arn]),
                        *queue.key_to_receive("DecryptOwnQueue"), *statements])
        self.function_name, self.log_group, self.role, self.role_arn = (parts.function_name, parts.log_group,
                                                                        parts.role, parts.role_arn)
        self.policy_document, self.role_policy, self.function, self.arn = (parts.policy_document, parts.role_policy,
                                                                           parts.function, parts.arn)
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
            # Polled, filtered, processed, failed and dropped event counts (AWS/Lambda, by mapping UUID): without
            # them a worker that silently drops work looks like an idle one.
            metrics_config=aws.lambda_.EventSourceMappingMetricsConfigArgs(metrics=list(defaults.ESM_METRICS)),
            tags=naming.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.role_policy, *after]),
        )
        self.alarms = function_alarms(
            naming, purpose, function_name=self.function.name, display_name=self.function_name,
            topic_arn=alarm_topic_arn, parent=self, error_rate=error_rate(settings.errors, errors_by_rate))
        self.purpose, self.settings = purpose, settings
        self.register_outputs({"functionName": self.function.name, "arn": self.arn})

    def widgets(self) -> list[Widget]:
        """Its alarms, duration against its timeout, concurrency against its reservation."""
        return function_widgets(self.purpose, self.function.name, self.alarms,
                                timeout_seconds=self.settings.timeout_seconds,
                                reserved_concurrency=self.settings.reserved_concurrency)

