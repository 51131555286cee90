"""Knowledge-base auto-sync: S3 changes -> SQS (delayed) -> Lambda -> Bedrock StartIngestionJob.

Bursts coalesce: the queue delays each change, the mapping waits up to its batching window and takes batches
of up to a thousand, so a burst of uploads starts one ingestion job. A job already running is answered with a
delayed follow-up request on the same queue, so a change made after that job listed the bucket is still
synced. Real failures retry, dead-letter, and page through the alarm topic. An optional schedule invokes the
same function directly.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from components import defaults
from components.blocks.bucket import DataBucket
from components.blocks.iam import AwsEnv, PolicyDocument, Statement, service_trust_policy
from components.blocks.naming import Naming
from components.blocks.notifications import BucketNotifications
from components.blocks.packaging import FunctionCode
from components.blocks.queue import QueueProducer, QueueWithDlq
from components.blocks.worker import QueueWorker
from components.config import KnowledgeBaseSyncSettings

HANDLER_PACKAGE = "kb_sync"
# Scheduler fills in the tick's time, so every retry of one tick carries the same identity (one ingestion job).
SCHEDULED_EVENT = {"source": "schedule", "scheduledTime": "<aws.scheduler.scheduled-time>"}


class KnowledgeBaseSync(pulumi.ComponentResource):
    """Keeps one Bedrock knowledge base in sync with its S3 data source.

    >>> KnowledgeBaseSync(naming, env, settings, code=function_code("kb_sync"), alarm_topic_arn=topic.arn,
    ...                   notifications=hub, log_retention_days=30, protect_data=False)  # doctest: +SKIP
    """

    def __init__(self, naming: Naming, env: AwsEnv, settings: KnowledgeBaseSyncSettings, *, code: FunctionCode,
                 alarm_topic_arn: pulumi.Input[str], notifications: BucketNotifications, log_retention_days: int,
                 protect_data: bool, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ai-pipelines:pipelines:KnowledgeBaseSync", naming.pipeline, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        uses_events = settings.trigger in ("events", "both")
        uses_schedule = settings.trigger in ("schedule", "both")

        if settings.bucket.existing_name:
            self.bucket_name: pulumi.Output[str] = pulumi.Output.from_input(settings.bucket.existing_name)
            bucket_physical = settings.bucket.existing_name
        else:
            bucket = DataBucket(naming, env, "docs", protect=protect_data, opts=child)
            self.bucket_name, bucket_physical = bucket.bucket_name, bucket.name
        bucket_arn = env.s3_bucket(self.bucket_name)

        self.queue = QueueWithDlq(
            naming, env, "changes", settings=settings.queue,
            visibility_timeout_seconds=settings.worker.visibility_timeout_seconds, alarm_topic_arn=alarm_topic_arn,
            producers=[QueueProducer("BucketSendsChanges", "s3.amazonaws.com", bucket_arn)] if uses_events else (),
            # The delay and the batching window hold every change back on purpose; alarm only beyond both.
            age_alarm_seconds=defaults.QUEUE_AGE_ALARM_SECONDS + settings.queue.delay_seconds
            + settings.worker.batching_window_seconds,
            opts=child)
        knowledge_base_arn = env.knowledge_base(settings.knowledge_base_id)
        self.worker = QueueWorker(
            naming, env, "worker", queue=self.queue, code=code, settings=settings.worker,
            alarm_topic_arn=alarm_topic_arn, log_retention_days=log_retention_days,
            statements=[
                Statement("StartIngestionOnThisKnowledgeBase", ["bedrock:StartIngestionJob"], [knowledge_base_arn]),
                self.queue.statement_to_send("RequestFollowUpSync"),
                # Lambda delivers a failed scheduled (asynchronous) run to the DLQ with the function's own role.
                *([Statement("DeadLetterFailedScheduledRuns", ["sqs:SendMessage"], [self.queue.dlq_arn])]
                  if uses_schedule else []),
            ],
            environment={
                "KNOWLEDGE_BASE_ID": settings.knowledge_base_id,
                "DATA_SOURCE_ID": settings.data_source_id,
                "FOLLOW_UP_QUEUE_URL": self.queue.url,
                "FOLLOW_UP_DELAY_SECONDS": str(settings.follow_up_delay_seconds),
                "MAX_FOLLOW_UPS": str(settings.max_follow_ups),
                "POWERTOOLS_SERVICE_NAME": naming.name("worker"),
                "POWERTOOLS_METRICS_NAMESPACE": naming.project,
                "LOG_LEVEL": "INFO",
            },
            opts=child)

        if uses_events:
            notifications.watch(bucket_physical, owner=naming.pipeline, filters=settings.s3_filters,
                                queue_arn=self.queue.arn, queue_policy=self.queue.policy, bucket_ref=self.bucket_name)
        if uses_schedule:
            self._schedule(naming, env, settings)
        self.register_outputs({"queueUrl": self.queue.url, "functionName": self.worker.function.name,
                               "bucketName": self.bucket_name})

    def _schedule(self, naming: Naming, env: AwsEnv, settings: KnowledgeBaseSyncSettings) -> None:
        """An EventBridge Scheduler schedule that invokes the worker, with a role that may invoke only it."""
        child = pulumi.ResourceOptions(parent=self)
        schedule_name = naming.name("schedule")
        role = aws.iam.Role(
            naming.logical("schedule-role"), name=naming.name("schedule", max_length=64),
            assume_role_policy=service_trust_policy("scheduler.amazonaws.com", env,
                                                    source_arn=env.schedule(schedule_name)),
            tags=naming.tags, opts=child)
        policy = aws.iam.RolePolicy(
            naming.logical("schedule-policy"), name="invoke-worker", role=role.name,
            policy=PolicyDocument([
                Statement("InvokeOnlyTheWorker", ["lambda:InvokeFunction"], [self.worker.arn]),
                Statement("DeadLetterUndelivered", ["sqs:SendMessage"], [self.queue.dlq_arn]),
            ]).to_json(), opts=child)
        # The schedule's DLQ only catches invocations Scheduler could not deliver; a run that fails inside the
        # function is retried by Lambda and then lands in the same DLQ, whose alarm pages someone.
        aws.lambda_.FunctionEventInvokeConfig(
            naming.logical("schedule-failures"), function_name=self.worker.function.name,
            maximum_retry_attempts=2, maximum_event_age_in_seconds=defaults.TARGET_MAX_EVENT_AGE_SECONDS // 4,
            destination_config={"on_failure": {"destination": self.queue.dlq_arn}}, opts=child)
        self.schedule = aws.scheduler.Schedule(
            naming.logical("schedule"), name=schedule_name, schedule_expression=settings.schedule_expression,
            flexible_time_window={"mode": "OFF"},
            target={"arn": self.worker.arn, "role_arn": env.iam_role(role.name), "input": json.dumps(SCHEDULED_EVENT),
                    "retry_policy": {"maximum_retry_attempts": defaults.TARGET_MAX_RETRY_ATTEMPTS,
                                     "maximum_event_age_in_seconds": defaults.TARGET_MAX_EVENT_AGE_SECONDS},
                    "dead_letter_config": {"arn": self.queue.dlq_arn}},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]))
