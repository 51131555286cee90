"""Knowledge-base auto-sync: S3 changes -> SQS -> Lambda -> Bedrock direct ingestion or StartIngestionJob.

A small change set is ingested directly (mode auto or direct), searchable within a minute; a burst waits a
moment for the rest of itself and starts one ingestion job. A job already running, or the account's job quota
taken, is answered with a delayed follow-up request on the same queue, so a change made after that job listed
the bucket is still synced. Every started job and direct ingestion is followed to its end by delayed checks on
the same queue; failed jobs, failed documents and direct ingestions that failed past their retries page through
the alarm topic, as do real failures after their retries. An optional schedule invokes the same function
directly: the reconciling sync.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components import defaults
from components.blocks.access_logs import AccessLogs
from components.blocks.alarms import Alarm, custom_metric, notifying_alarm, queue_metric
from components.blocks.bucket import existing_or_new_bucket
from components.blocks.dashboard import PipelineDashboard, Widget, alarm_widget, batch_size_widget, metrics_widget
from components.blocks.event_bus import EVENTS_SERVICE, EventBus, RuleToQueue, TargetRetry
from components.blocks.iam import AwsEnv, PolicyDocument, Statement, deny_insecure_transport
from components.blocks.key import StackKey
from components.blocks.metrics import Metric
from components.blocks.naming import Naming
from components.blocks.notifications import BucketNotifications
from components.blocks.packaging import FunctionCode
from components.blocks.queue import QueueProducer, QueueWithDlq, encryption, key_to_send
from components.blocks.schedule import invoke_on_schedule
from components.blocks.worker import QueueWorker
from components.config import KnowledgeBaseSyncSettings

HANDLER_PACKAGE = "kb_sync"
# The batch-inference pipeline's event for every run's end (handlers/batch_inference/finalizer.py).
BATCH_RUN_COMPLETED = "BatchRunCompleted"
# The worker's own metrics (Powertools: namespace the project, dimension service) that page on their first count.
FAILURE_METRICS = {
    "failed-ingestion-jobs": ("IngestionJobsFailed", "an ingestion job ended FAILED or STOPPED, or was still running "
                              "after maxJobChecks checks; the worker's log names the job and its failure reasons"),
    "failed-ingestion-documents": ("IngestionDocumentsFailed", "an ingestion job completed with failed documents "
                                   "(numberOfDocumentsFailed); the worker's log names the job"),
    "failed-direct-documents": ("DirectDocumentsFailed", "documents ingested or deleted directly failed past their "
                                "retries; an ingestion job was requested for them, and the log names them by digest"),
}


def worker_environment(naming: Naming, settings: KnowledgeBaseSyncSettings, *, bucket: pulumi.Input[str],
                       queue_url: pulumi.Input[str]) -> dict[str, pulumi.Input[str]]:
    """The worker's environment (handlers/kb_sync/config.py reads it), from the pipeline's settings."""
    return {
        "KNOWLEDGE_BASE_ID": settings.knowledge_base_id,
        "DATA_SOURCE_ID": settings.data_source_id,
        # Notifications of any other bucket, or of keys outside the prefix, are rejected: a forged one must not
        # start an ingestion job.
        "DOCUMENT_BUCKET": bucket,
        "DOCUMENT_PREFIX": settings.document_prefix,
        "FOLLOW_UP_QUEUE_URL": queue_url,
        "FOLLOW_UP_DELAY_SECONDS": str(settings.follow_up_delay_seconds),
        "MAX_FOLLOW_UPS": str(settings.max_follow_ups),
        "SYNC_MODE": settings.mode,
        "BURST_THRESHOLD_DOCUMENTS": str(settings.burst_threshold_documents),
        "BURST_SETTLE_SECONDS": str(settings.burst_settle_seconds),
        "CHECK_DELAY_SECONDS": str(settings.check_delay_seconds),
        "MAX_JOB_CHECKS": str(settings.max_job_checks),
        "MAX_DOCUMENT_RETRIES": str(settings.max_document_retries),
        "POWERTOOLS_SERVICE_NAME": naming.name("worker"),
        "POWERTOOLS_METRICS_NAMESPACE": naming.project,
        "LOG_LEVEL": "INFO",
    }


@dataclass(frozen=True)
class BatchResults:
    """A batch-inference result bus whose successful runs this pipeline syncs: the bus and its events' source."""

    bus: EventBus
    source: str


def batch_results_pattern(source: str, bucket: pulumi.Input[str], document_prefix: str) -> dict[str, Any]:
    """The BatchRunCompleted events that mean "documents of this knowledge base were written": a successful run
    whose results lie in the data-source bucket under the document prefix."""
    return {"source": [source], "detail-type": [BATCH_RUN_COMPLETED],
            "detail": {"status": ["SUCCEEDED"],
                       "output": {"bucket": [bucket], "resultsPrefix": [{"prefix": document_prefix}]}}}


class KnowledgeBaseSync(pulumi.ComponentResource):
    """Keeps one Bedrock knowledge base in sync with its S3 data source.

    >>> KnowledgeBaseSync(naming, env, settings, code=function_code("kb_sync"), alarm_topic_arn=topic.arn,
    ...                   notifications=hub, log_retention_days=30, protect_data=False)  # doctest: +SKIP
    """

    def __init__(self, naming: Naming, env: AwsEnv, settings: KnowledgeBaseSyncSettings, *, code: FunctionCode,
                 alarm_topic_arn: pulumi.Input[str], notifications: BucketNotifications, log_retention_days: int,
                 protect_data: bool, batch_results: BatchResults | None = None, key: StackKey | None = None,
                 access_logs: AccessLogs | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ai-pipelines:pipelines:KnowledgeBaseSync", naming.pipeline, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        uses_events = settings.trigger in ("events", "both")
        uses_schedule = settings.trigger in ("schedule", "both")

        self.bucket_name, bucket_physical = existing_or_new_bucket(
            naming, env, "docs", settings=settings.bucket, protect=protect_data, key=key, access_logs=access_logs,
            opts=child)
        bucket_arn = env.s3_bucket(self.bucket_name)
        if settings.batch_results and batch_results is None:
            raise ValueError(f"{naming.pipeline}: batchResults is set but the stack passes no batch-inference bus")
        subscribed = batch_results if settings.batch_results else None
        producers = [QueueProducer("BucketSendsChanges", "s3.amazonaws.com", bucket_arn)] if uses_events else []
        if subscribed is not None:
            producers.append(QueueProducer("BatchRunsRequestSync", EVENTS_SERVICE, RuleToQueue.rule_arn(
                naming, env, "batch-results", subscribed.bus)))

        self.queue = QueueWithDlq(
            naming, env, "changes", settings=settings.queue,
            visibility_timeout_seconds=settings.worker.visibility_timeout_seconds, alarm_topic_arn=alarm_topic_arn,
            producers=producers,
            # The delay and the batching window hold every change back on purpose; alarm only beyond both.
            age_alarm_seconds=defaults.QUEUE_AGE_ALARM_SECONDS + settings.queue.delay_seconds
            + settings.worker.batching_window_seconds,
            key=key, opts=child)
        knowledge_base_arn = env.knowledge_base(settings.knowledge_base_id)
        self.failed_runs_alarm: Alarm | None = None
        if uses_schedule:
            self.failed_runs_arn = self._failed_runs_queue(naming, env, alarm_topic_arn, key)
        # Its errors page on any error: a burst of changes is one invocation, so each failure is a sync that did
        # not start, and there are too few invocations for a rate to mean anything.
        self.worker = QueueWorker(
            naming, env, "worker", queue=self.queue, code=code, settings=settings.worker,
            alarm_topic_arn=alarm_topic_arn, log_retention_days=log_retention_days,
            statements=[
                # Every mode's actions, whatever the mode: a change of mode is a config change, not a deploy of
                # new grants, and each action acts on this knowledge base alone.
                Statement("SyncThisKnowledgeBase", [
                    "bedrock:StartIngestionJob", "bedrock:GetIngestionJob", "bedrock:ListIngestionJobs",
                    "bedrock:IngestKnowledgeBaseDocuments", "bedrock:DeleteKnowledgeBaseDocuments",
                    "bedrock:GetKnowledgeBaseDocuments"], [knowledge_base_arn]),
                # Direct ingestion asks the bucket whether a changed document still exists (handlers/kb_sync/
                # stored.py): notifications of one key may be applied out of order. A listing under the document
                # prefix needs this grant alone; HeadObject would need s3:GetObject on every document besides.
                Statement("TellDocumentsThatStillExist", ["s3:ListBucket"], [bucket_arn],
                          conditions={"StringLike": {"s3:prefix": [f"{settings.document_prefix}*"]}}),
                *self.queue.statements_to_send("RequestFollowUpSync"),
                # Lambda delivers a failed scheduled (asynchronous) run to its queue with the function's own role.
                *([Statement("DeadLetterFailedScheduledRuns", ["sqs:SendMessage"], [self.failed_runs_arn]),
                   *key_to_send(key, "DeadLetterFailedScheduledRunsEncrypted",
                                [env.arn("sqs", naming.name("failed-runs", max_length=80))])]
                  if uses_schedule else []),
            ],
            environment=worker_environment(naming, settings, bucket=self.bucket_name, queue_url=self.queue.url),
            key=key, opts=child)

        self.failure_alarms = [
            notifying_alarm(naming, purpose, watch=custom_metric(naming, "worker", metric), topic_arn=alarm_topic_arn,
                            threshold=0, title=purpose.replace("-", " "),
                            description=f"Knowledge base {settings.knowledge_base_id}: {meaning}", parent=self)
            for purpose, (metric, meaning) in FAILURE_METRICS.items()]

        self.batch_results: RuleToQueue | None = None
        if subscribed is not None:
            # Through the pipeline's own queue, so a run's sync meets bursts, conflicts and quotas like an upload.
            self.batch_results = RuleToQueue(
                naming, env, "batch-results", bus=subscribed.bus,
                event_pattern=batch_results_pattern(subscribed.source, self.bucket_name, settings.document_prefix),
                queue=self.queue, retry=TargetRetry(), alarm_topic_arn=alarm_topic_arn,
                description=f"Successful batch runs whose results are documents of {settings.knowledge_base_id}",
                opts=child)

        if uses_events:
            notifications.watch(bucket_physical, owner=naming.pipeline, filters=settings.s3_filters,
                                queue_arn=self.queue.arn, queue_policy=self.queue.policy, bucket_ref=self.bucket_name)
        if uses_schedule:
            # A tick Scheduler could not deliver goes to the source queue's DLQ: its body is the schedule's payload,
            # which a redrive turns into a sync request. A run that fails inside the worker arrives as Lambda's
            # destination record, which the worker would reject on a redrive: it waits in a queue of its own.
            self.schedule = invoke_on_schedule(
                self, naming, env, "schedule", function=self.worker.function, function_arn=self.worker.arn,
                invoked="Worker", expression=settings.schedule_expression, dead_letter_arn=self.queue.dlq_arn,
                failed_run_max_age_seconds=defaults.TARGET_MAX_EVENT_AGE_SECONDS // 4,
                failed_run_destination_arn=self.failed_runs_arn, key=key,
                dead_letter_arn_value=self.queue.dlq_arn_value)
        self.dashboard = PipelineDashboard(naming, env, sections=self._dashboard(naming), opts=child)
        self.register_outputs({"queueUrl": self.queue.url, "functionName": self.worker.function.name,
                               "bucketName": self.bucket_name, "dashboardName": self.dashboard.dashboard_name})

    def _dashboard(self, naming: Naming) -> list[tuple[str, list[Widget]]]:
        def worker(metric: str, stat: str = "Sum") -> Metric:
            return custom_metric(naming, "worker", metric, stat=stat)

        syncs = [metrics_widget("ingestion jobs started and follow-ups",
                                [worker("IngestionJobsStarted"), worker("IngestionJobsCompleted"),
                                 worker("IngestionJobConflicts"), worker("IngestionQuotaWaits"),
                                 worker("FollowUpsSent"), worker("FollowUpsExhausted"), worker("ScheduledRuns"),
                                 worker("SyncFailures")]),
                 metrics_widget("document changes", [worker("ObjectsCreated"), worker("ObjectsRemoved"),
                                                     worker("BurstsDeferred"), worker("MessagesRejected")]),
                 metrics_widget("documents ingested directly", [worker("DocumentsSubmittedCreated"),
                                                                worker("DocumentsSubmittedRemoved"),
                                                                worker("DirectDocumentsDone"),
                                                                worker("DirectDocumentsRetried")]),
                 batch_size_widget(worker("MessagesReceived", "Average"), worker("MessagesReceived", "Maximum"),
                                   self.worker.settings.batch_size),
                 *(alarm_widget(alarm) for alarm in self.failure_alarms)]
        if self.failed_runs_alarm is not None:
            syncs.append(alarm_widget(self.failed_runs_alarm))
        queue = self.queue.widgets()
        if self.batch_results is not None:
            queue.append(alarm_widget(self.batch_results.undelivered_alarm))
        return [("Document changes queue", queue), ("Worker", self.worker.widgets()), ("Syncs", syncs)]

    def _failed_runs_queue(self, naming: Naming, env: AwsEnv, alarm_topic_arn: pulumi.Input[str],
                           key: StackKey | None) -> pulumi.Output[str]:
        """Where Lambda puts a scheduled run that failed all its attempts: encrypted, TLS-only, kept 14 days,
        alarmed on its first message. Its records say which tick failed and why; the next tick syncs anyway, and
        a record's ``requestPayload`` invoked on the function re-runs that tick."""
        child = pulumi.ResourceOptions(parent=self)
        name = naming.name("failed-runs", max_length=80)
        queue = aws.sqs.Queue(naming.logical("failed-runs"), name=name,
                              message_retention_seconds=defaults.DLQ_RETENTION_SECONDS,
                              **encryption(key), tags=naming.tags, opts=child)
        arn = env.sqs_queue(queue.name)
        aws.sqs.QueuePolicy(naming.logical("failed-runs-policy"), queue_url=env.sqs_queue_url(queue.name),
                            policy=PolicyDocument([deny_insecure_transport(["sqs:*"], [arn])]).to_json(), opts=child)
        self.failed_runs_alarm = notifying_alarm(
            naming, "failed-runs-depth", watch=queue_metric(queue.name, "ApproximateNumberOfMessagesVisible"),
            topic_arn=alarm_topic_arn, threshold=defaults.DLQ_ALARM_THRESHOLD, title="scheduled runs that failed",
            description=f"A scheduled sync failed inside the worker after Lambda's retries; its record waits in "
                        f"{name}", parent=self)
        return arn
