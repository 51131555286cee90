"""Event-driven AI processing: input bus -> SQS -> worker -> Bedrock -> results table -> result bus.

Producers put events on a custom input bus; a rule whose pattern comes from config delivers the matching ones to
the work queue (explicit retry policy, its own dead-letter queue). The queue buffers bursts: the worker's reserved
concurrency is the model's throughput budget, so a 10x spike grows the queue instead of throttling the model.
The worker processes each batch of 5-10 records concurrently, remembers each item in an idempotency table so a
redelivered or duplicated event never calls the model twice, writes the result to a results table
(point-in-time recovery) and announces it on a separate result bus as a `ProcessingCompleted` event that carries
the result and a reference to the input, never the input itself. An example subscriber rule on the result bus
delivers those events to a queue of their own.

Producers: the stack grants none. A producer's role needs ``events:PutEvents`` on the input bus, restricted to
its own source with the ``events:source`` condition key, so that no other principal in the account can put
events under that source (the worker keys results on source and item id; with this, no one else can send a
version of a producer's items)::

    {"Effect": "Allow", "Action": "events:PutEvents",
     "Resource": "arn:aws:events:<region>:<account>:event-bus/<project>-<stack>-eventproc-input",
     "Condition": {"StringEquals": {"events:source": "com.example.documents"}}}

and no other statement granting ``events:PutEvents`` on that bus (``events:*`` or a ``*`` resource included).
A repeated item id with other content is a new version of the item (``handlers/event_processor/keys.py``).

Alarms page through the stack's alarm topic: work-queue age, every dead-letter queue's first message, worker
errors and throttles, Bedrock throttles of the configured model, and any model answer that failed validation.
"""

from __future__ import annotations

import dataclasses
import json

import pulumi

from components import defaults
from components.blocks.alarms import custom_metric, notifying_alarm
from components.blocks.dashboard import PipelineDashboard, Widget, alarm_widget, batch_size_widget, metrics_widget
from components.blocks.event_bus import EVENTS_SERVICE, EventBus, RuleToQueue, TargetRetry, event_pattern
from components.blocks.iam import AwsEnv, Statement
from components.blocks.key import StackKey
from components.blocks.metrics import Metric
from components.blocks.naming import Naming
from components.blocks.packaging import FunctionCode
from components.blocks.queue import QueueProducer, QueueWithDlq
from components.blocks.table import DataTable
from components.blocks.worker import QueueWorker
from components.config import EventProcessingSettings, QueueSettings

HANDLER_PACKAGE = "event_processor"
COMPLETED_DETAIL_TYPE = "ProcessingCompleted"
# Powertools' DynamoDB persistence layer reads and writes these attribute names by default.
IDEMPOTENCY_KEY_ATTRIBUTE = "id"
IDEMPOTENCY_TTL_ATTRIBUTE = "expiration"
RESULTS_KEY_ATTRIBUTE = "resultId"
# The results table's TTL attribute: the worker sets it on every item it writes (resultsRetentionDays).
RESULTS_EXPIRY_ATTRIBUTE = "expiresAt"
# The worker's metric of model answers that failed validation (handlers/event_processor/app.py).
INVALID_ANSWERS_METRIC = "InvalidModelAnswers"
# The example subscriber's queue has no consumer of ours; a day of silence means its consumer is gone.
SUBSCRIBER_VISIBILITY_TIMEOUT_SECONDS = 300
SUBSCRIBER_AGE_ALARM_SECONDS = 24 * 3600
# Results are awaited: ten thousand waiting items is far beyond a burst the worker drains in minutes (the medium
# profile is a million events a month, about 23 a minute), so it pages before the oldest item reaches 15 minutes.
BACKLOG_ALARM_MESSAGES = 10_000
# The worker's errors page on their rate: it runs thousands of invocations a day, each failed one is retried by SQS
# and ends in the alarmed DLQ if it keeps failing, so a single timeout is noise while 5 % failing is an outage.


class EventProcessor(pulumi.ComponentResource):
    """The whole pipeline for one stack.

    >>> EventProcessor(naming.child("eventproc"), env, settings, code=function_code("event_processor"),
    ...                alarm_topic_arn=topic.arn, log_retention_days=30, protect_data=False)  # doctest: +SKIP
    """

    def __init__(self, naming: Naming, env: AwsEnv, settings: EventProcessingSettings, *, code: FunctionCode,
                 alarm_topic_arn: pulumi.Input[str], log_retention_days: int, protect_data: bool,
                 key: StackKey | None = None, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ai-pipelines:pipelines:EventProcessor", naming.pipeline, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        model = settings.model

        self.input_bus = EventBus(naming, env, "input", description="Items to process", opts=child)
        self.result_bus = EventBus(naming, env, "results", description=f"{COMPLETED_DETAIL_TYPE} events",
                                   opts=child)

        intake_rule_arn = RuleToQueue.rule_arn(naming, env, "intake", self.input_bus)
        self.queue = QueueWithDlq(
            naming, env, "work", settings=settings.queue,
            visibility_timeout_seconds=settings.worker.visibility_timeout_seconds, alarm_topic_arn=alarm_topic_arn,
            producers=[QueueProducer("IntakeRuleSends", EVENTS_SERVICE, intake_rule_arn)],
            age_alarm_seconds=defaults.QUEUE_AGE_ALARM_SECONDS + settings.queue.delay_seconds
            + settings.worker.batching_window_seconds, backlog_alarm_messages=BACKLOG_ALARM_MESSAGES,
            key=key, opts=child)
        self.intake = RuleToQueue(
            naming, env, "intake", bus=self.input_bus,
            event_pattern=event_pattern(settings.intake.sources, settings.intake.detail_types), queue=self.queue,
            retry=TargetRetry(settings.intake.retry_attempts, settings.intake.max_event_age_seconds),
            alarm_topic_arn=alarm_topic_arn, description="Items to process, to the work queue", opts=child)

        self.idempotency = DataTable(naming, env, "idempotency", purpose="idempotency",
                                     hash_key=IDEMPOTENCY_KEY_ATTRIBUTE, ttl_attribute=IDEMPOTENCY_TTL_ATTRIBUTE,
                                     protect=protect_data, key=key, opts=child)
        self.results = DataTable(naming, env, "results", purpose="results", hash_key=RESULTS_KEY_ATTRIBUTE,
                                 retention_attribute=RESULTS_EXPIRY_ATTRIBUTE, protect=protect_data, key=key,
                                 opts=child)

        self.worker = QueueWorker(
            naming, env, "worker", queue=self.queue, code=code, settings=settings.worker,
            alarm_topic_arn=alarm_topic_arn, log_retention_days=log_retention_days, errors_by_rate=True,
            statements=[
                Statement("InvokeTheConfiguredModel", ["bedrock:InvokeModel"], model_resources(env, settings)),
                # Powertools' idempotency: in-progress put, completion update, and delete when the work failed.
                *self.idempotency.statements_to_write(
                    "RecordIdempotency", ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"]),
                # Conditional put of a result, then its publication claim and mark.
                *self.results.statements_to_write("WriteResults", ["dynamodb:PutItem", "dynamodb:UpdateItem"]),
                self.result_bus.statement_to_put_events("PublishOnResultBus"),
            ],
            environment=worker_environment(naming, settings, idempotency_table=self.idempotency.table_name,
                                           results_table=self.results.table_name,
                                           result_bus=self.result_bus.bus_name),
            key=key, opts=child)

        self.model_throttle_alarm = notifying_alarm(
            naming, "model-throttles", watch=bedrock_metric(model.invoked_id, "InvocationThrottles"),
            topic_arn=alarm_topic_arn, threshold=model.throttle_alarm_threshold, title="model throttles",
            description=f"Bedrock throttled {model.invoked_id} more than {model.throttle_alarm_threshold} times "
                        "in a minute: the worker's reserved concurrency exceeds the model's quota",
            parent=self)

        # The worker counts every model answer that fails the task's schema or labels (its own metric, through
        # Powertools: namespace the project, dimension service); such an answer is never a result, so one pages.
        self.invalid_answer_alarm = notifying_alarm(
            naming, "invalid-answers", watch=custom_metric(naming, "worker", INVALID_ANSWERS_METRIC),
            topic_arn=alarm_topic_arn, threshold=0, title="invalid model answers",
            description=f"{model.invoked_id} gave answers that failed the {model.task} schema or labels; those "
                        "items are retried, then dead-lettered, never stored or published",
            parent=self)

        self.subscriber_queue: QueueWithDlq | None = None
        if settings.result_subscriber:
            self.subscriber_queue = self._example_subscriber(naming, env, settings, alarm_topic_arn, key)
        self.dashboard = PipelineDashboard(naming, env, sections=self._dashboard(naming, settings), opts=child)
        self.register_outputs({
            "inputBusName": self.input_bus.bus_name, "resultBusName": self.result_bus.bus_name,
            "queueUrl": self.queue.url, "functionName": self.worker.function.name,
            "resultsTable": self.results.table_name, "dashboardName": self.dashboard.dashboard_name,
        })

    def _example_subscriber(self, naming: Naming, env: AwsEnv, settings: EventProcessingSettings,
                            alarm_topic_arn: pulumi.Input[str], key: StackKey | None) -> QueueWithDlq:
        """A downstream consumer's queue fed by a rule on the result bus: the shape every subscriber copies."""
        child = pulumi.ResourceOptions(parent=self)
        rule_arn = RuleToQueue.rule_arn(naming, env, "completed", self.result_bus)
        queue = QueueWithDlq(
            naming, env, "subscriber", settings=QueueSettings(),
            visibility_timeout_seconds=SUBSCRIBER_VISIBILITY_TIMEOUT_SECONDS, alarm_topic_arn=alarm_topic_arn,
            producers=[QueueProducer("CompletedRuleSends", EVENTS_SERVICE, rule_arn)],
            age_alarm_seconds=SUBSCRIBER_AGE_ALARM_SECONDS, key=key, opts=child)
        self.subscriber = RuleToQueue(
            naming, env, "completed", bus=self.result_bus,
            event_pattern=event_pattern([settings.result_source], [COMPLETED_DETAIL_TYPE]), queue=queue,
            retry=TargetRetry(), alarm_topic_arn=alarm_topic_arn,
            description=f"Example subscriber: {COMPLETED_DETAIL_TYPE} events to a queue", opts=child)
        return queue

    def _dashboard(self, naming: Naming, settings: EventProcessingSettings) -> list[tuple[str, list[Widget]]]:
        """Backlog and dead letters, the worker's health, the model's latency and throttling, the results."""
        model_id = settings.model.invoked_id

        def worker(metric: str, stat: str = "Sum") -> Metric:
            return custom_metric(naming, "worker", metric, stat=stat)

        intake = [*self.queue.widgets(), alarm_widget(self.intake.undelivered_alarm)]
        model = [alarm_widget(self.model_throttle_alarm,
                              extra=[bedrock_metric(model_id, "Invocations"),
                                     bedrock_metric(model_id, "InvocationClientErrors"),
                                     bedrock_metric(model_id, "InvocationServerErrors")]),
                 metrics_widget("model latency (ms)", [bedrock_metric(model_id, "InvocationLatency", "Average"),
                                                       bedrock_metric(model_id, "InvocationLatency", "p99")]),
                 alarm_widget(self.invalid_answer_alarm)]
        results = [metrics_widget("results", [worker("ResultsStored"), worker("MessagesReceived")]),
                   batch_size_widget(worker("MessagesReceived", "Average"), worker("MessagesReceived", "Maximum"),
                                     settings.worker.batch_size)]
        sections = [("Work queue", intake), ("Worker", self.worker.widgets()), ("Model", model),
                    ("Results", results)]
        if self.subscriber_queue is not None:
            sections.append(("Example subscriber", [*self.subscriber_queue.widgets(),
                                                    alarm_widget(self.subscriber.undelivered_alarm)]))
        return sections


def bedrock_metric(model_id: str, metric: str, stat: str = "Sum") -> Metric:
    """A Bedrock runtime metric of the invoked model (AWS/Bedrock, dimension ModelId: the profile when one is
    configured, which is what the worker names)."""
    return Metric("AWS/Bedrock", metric, {"ModelId": model_id}, stat=stat)


def model_resources(env: AwsEnv, settings: EventProcessingSettings) -> list[pulumi.Output[str]]:
    """What `bedrock:InvokeModel` may name: the model in this region and every region its inference profile
    routes to, and the profile itself. Nothing else: not another model, not another profile."""
    model = settings.model
    regions = sorted({env.region, *model.inference_profile_regions})
    resources = [dataclasses.replace(env, region=region).foundation_model(model.model_id) for region in regions]
    if model.inference_profile_id is not None:
        resources.append(env.inference_profile(model.inference_profile_id))
    return resources


def worker_environment(naming: Naming, settings: EventProcessingSettings, *, idempotency_table: pulumi.Input[str],
                       results_table: pulumi.Input[str], result_bus: pulumi.Input[str]) -> dict[str, pulumi.Input[str]]:
    """The worker's configuration; `handlers/event_processor/config.py` documents and validates each variable."""
    model = settings.model
    return {
        "IDEMPOTENCY_TABLE": idempotency_table,
        "IDEMPOTENCY_TTL_SECONDS": str(settings.idempotency.ttl_seconds),
        "IDEMPOTENCY_KEY_FIELDS": json.dumps(list(settings.idempotency.key_fields)),
        "RESULTS_TABLE": results_table,
        "RESULTS_RETENTION_DAYS": str(settings.results_retention_days),
        "RESULT_BUS_NAME": result_bus,
        "RESULT_SOURCE": settings.result_source,
        "ACCEPTED_SOURCES": json.dumps(list(settings.intake.sources)),
        "ACCEPTED_DETAIL_TYPES": json.dumps(list(settings.intake.detail_types)),
        "MODEL_ID": model.invoked_id,
        "TASK": model.task,
        "PROMPT_TEMPLATE": model.prompt,
        "LABELS": json.dumps(list(model.labels)),
        "MAX_OUTPUT_TOKENS": str(model.max_output_tokens),
        "TEMPERATURE": str(model.temperature),
        "MODEL_TIMEOUT_SECONDS": str(model.request_timeout_seconds),
        "MAX_INPUT_CHARS": str(model.max_input_chars),
        "RECORD_CONCURRENCY": str(settings.record_concurrency),
        "POWERTOOLS_SERVICE_NAME": naming.name("worker"),
        "POWERTOOLS_METRICS_NAMESPACE": naming.project,
        "LOG_LEVEL": "INFO",
    }
