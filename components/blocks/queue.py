"""A queue with its dead-letter queue, TLS-only policies and the two alarms that say something is stuck."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components import defaults
from components.blocks.alarms import Alarm, notifying_alarm, queue_metric
from components.blocks.dashboard import Widget, alarm_widget, metrics_widget
from components.blocks.iam import AwsEnv, PolicyDocument, Statement, deny_insecure_transport, service_may
from components.blocks.key import StackKey, key_use
from components.blocks.naming import Naming
from components.config import QueueSettings


@dataclass(frozen=True)
class QueueProducer:
    """An AWS service allowed to send to the queue, from one source (a bucket, a rule, a schedule)."""

    sid: str
    service: str  # e.g. "s3.amazonaws.com"
    source_arn: pulumi.Input[str]


# What a producer and a consumer of a queue encrypted with a customer-managed key need of the key (AWS: "Amazon SQS
# key management"); SQS binds each data key to the queue (encryption context aws:sqs:arn).
SEND_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
RECEIVE_ACTIONS = ("kms:Decrypt",)
QUEUE_CONTEXT = "aws:sqs:arn"


def encryption(key: StackKey | None) -> dict[str, Any]:
    """A queue's encryption arguments: the stack's key when there is one, else SSE-SQS."""
    if key is None:
        return {"sqs_managed_sse_enabled": defaults.SQS_MANAGED_ENCRYPTION}
    return {"kms_master_key_id": key.alias_ref}


def admit_producer(key: StackKey | None, service: str, queue_arn: str) -> None:
    """Let `service` put messages on the queue `queue_arn` encrypted with `key` (nothing without a key), bound to that
    queue by the encryption context SQS sets on every data key. No aws:SourceArn/aws:SourceAccount: the queue policy
    holds those (QueueProducer); AWS documents them for the KMS requests of neither S3's nor EventBridge's delivery
    to an encrypted queue, and a condition on an absent key would drop every delivery."""
    if key is not None:
        key.admit_service(service, SEND_ACTIONS, "StringEquals", f"kms:EncryptionContext:{QUEUE_CONTEXT}",
                          [queue_arn])


def key_to_send(key: StackKey | None, sid: str, queue_arns: list[str]) -> list[Statement]:
    """The key statement of a role that sends to `queue_arns` (none without a key)."""
    return key_use(key, sid, SEND_ACTIONS, via="sqs", context={QUEUE_CONTEXT: queue_arns})


class QueueWithDlq(pulumi.ComponentResource):
    """A source queue and its DLQ, both encrypted (SSE-SQS) and TLS-only.

    The DLQ keeps messages for 14 days, longer than its source, and accepts redrives only from its source. It
    alarms on its first message; the source alarms when its oldest message gets old and, with a backlog threshold
    (the config's ``backlogAlarmMessages``, else the pipeline's ``backlog_alarm_messages``), when too many messages
    wait for five minutes. The visibility timeout is
    passed in, derived by the caller from the consumer's timeout (never configured by hand).

    >>> jobs = QueueWithDlq(naming, env, "jobs", settings=QueueSettings(), visibility_timeout_seconds=360,
    ...                     alarm_topic_arn=topic.arn)  # doctest: +SKIP
    """

    def __init__(self, naming: Naming, env: AwsEnv, purpose: str, *, settings: QueueSettings,
                 visibility_timeout_seconds: int, alarm_topic_arn: pulumi.Input[str],
                 producers: Sequence[QueueProducer] = (), age_alarm_seconds: int = defaults.QUEUE_AGE_ALARM_SECONDS,
                 backlog_alarm_messages: int | None = None, key: StackKey | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ai-pipelines:blocks:QueueWithDlq", naming.logical(purpose), None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.name = naming.name(purpose, max_length=80)
        self.purpose = purpose
        dlq_name = naming.name(f"{purpose}-dlq", max_length=80)
        source_arn = env.arn("sqs", self.name)

        self.dlq = aws.sqs.Queue(
            naming.logical(f"{purpose}-dlq"),
            name=dlq_name,
            message_retention_seconds=defaults.DLQ_RETENTION_SECONDS,
            **encryption(key),
            redrive_allow_policy=json.dumps({"redrivePermission": "byQueue", "sourceQueueArns": [source_arn]}),
            tags=naming.tags,
            opts=child,
        )
        self.dlq_arn: pulumi.Output[str] = env.sqs_queue(self.dlq.name)
        self.queue = aws.sqs.Queue(
            naming.logical(purpose),
            name=self.name,
            visibility_timeout_seconds=visibility_timeout_seconds,
            message_retention_seconds=settings.retention_seconds,
            delay_seconds=settings.delay_seconds,
            receive_wait_time_seconds=defaults.LONG_POLL_SECONDS,
            **encryption(key),
            redrive_policy=pulumi.Output.json_dumps({"deadLetterTargetArn": self.dlq_arn,
                                                     "maxReceiveCount": settings.max_receive_count}),
            tags=naming.tags,
            opts=child,
        )
        self.arn: pulumi.Output[str] = env.sqs_queue(self.queue.name)
        self.url: pulumi.Output[str] = env.sqs_queue_url(self.queue.name)
        self.dlq_url: pulumi.Output[str] = env.sqs_queue_url(self.dlq.name)
        self.key = key
        # The ARNs as plain values, for the key policy: the queues wait for the key, so it cannot wait for them.
        self.arn_value, self.dlq_arn_value = source_arn, env.arn("sqs", dlq_name)
        for producer in producers:
            admit_producer(key, producer.service, self.arn_value)

        grants = [service_may(p.sid, p.service, ["sqs:SendMessage"], [self.arn], env, source_arn=p.source_arn)
                  for p in producers]
        self.policy = aws.sqs.QueuePolicy(
            naming.logical(f"{purpose}-policy"), queue_url=self.url,
            policy=PolicyDocument([*grants, deny_insecure_transport(["sqs:*"], [self.arn])]).to_json(), opts=child)
        self.dlq_policy = aws.sqs.QueuePolicy(
            naming.logical(f"{purpose}-dlq-policy"), queue_url=self.dlq_url,
            policy=PolicyDocument([deny_insecure_transport(["sqs:*"], [self.dlq_arn])]).to_json(), opts=child)

        visible = queue_metric(self.queue.name, "ApproximateNumberOfMessagesVisible")
        self.in_flight = queue_metric(self.queue.name, "ApproximateNumberOfMessagesNotVisible")
        self.dlq_alarm = notifying_alarm(
            naming, f"{purpose}-dlq-depth", watch=queue_metric(self.dlq.name, "ApproximateNumberOfMessagesVisible"),
            topic_arn=alarm_topic_arn, threshold=defaults.DLQ_ALARM_THRESHOLD, title=f"{purpose} dead letters",
            description=f"Messages from {self.name} reached its dead-letter queue {dlq_name}", parent=self)
        self.age_alarm = notifying_alarm(
            naming, f"{purpose}-age", watch=queue_metric(self.queue.name, "ApproximateAgeOfOldestMessage"),
            topic_arn=alarm_topic_arn, threshold=age_alarm_seconds, title=f"{purpose} oldest message (s)",
            description=f"The oldest message in {self.name} is older than {age_alarm_seconds} s", parent=self)
        self.alarms: list[Alarm] = [self.dlq_alarm, self.age_alarm]
        self.backlog_alarm: Alarm | None = None
        self.visible = visible
        backlog = settings.backlog_alarm_messages or backlog_alarm_messages
        if backlog is not None:
            # Where backlog matters (work someone waits for), a deep queue pages before its oldest message is old:
            # a burst far beyond what the worker drains shows at once, not fifteen minutes later.
            self.backlog_alarm = notifying_alarm(
                naming, f"{purpose}-backlog", watch=visible, topic_arn=alarm_topic_arn,
                threshold=backlog, title=f"{purpose} messages waiting",
                evaluation_periods=defaults.BACKLOG_ALARM_EVALUATION_PERIODS,
                description=f"More than {backlog} messages have waited in {self.name} for "
                            f"{defaults.BACKLOG_ALARM_EVALUATION_PERIODS} minutes", parent=self)
            self.alarms.append(self.backlog_alarm)
        self.register_outputs({"url": self.url, "arn": self.arn, "dlqUrl": self.dlq_url})

    def widgets(self) -> list[Widget]:
        """Depth (waiting and in flight; the backlog alarm's threshold when it has one), the oldest message's age
        and the dead letters, each alarm drawn from its own signal."""
        depth = (alarm_widget(self.backlog_alarm, extra=[self.in_flight]) if self.backlog_alarm is not None
                 else metrics_widget(f"{self.purpose} messages waiting", [self.visible, self.in_flight]))
        return [depth, alarm_widget(self.age_alarm), alarm_widget(self.dlq_alarm)]

    def statement_to_send(self, sid: str) -> Statement:
        """The statement a function needs to put messages back on this queue (e.g. a delayed follow-up)."""
        return Statement(sid, ["sqs:SendMessage"], [self.arn])

    def statements_to_send(self, sid: str) -> list[Statement]:
        """`statement_to_send` and, with a key, the key statement sending needs (``<sid>Encrypted``)."""
        return [self.statement_to_send(sid), *key_to_send(self.key, f"{sid}Encrypted", [self.arn_value])]

    def key_to_receive(self, sid: str) -> list[Statement]:
        """The key statement of this queue's consumer (none without a key)."""
        return key_use(self.key, sid, RECEIVE_ACTIONS, via="sqs", context={QUEUE_CONTEXT: [self.arn_value]})

    def key_to_dead_letter(self, sid: str) -> list[Statement]:
        """The key statement of a role that sends to this queue's DLQ (none without a key)."""
        return key_to_send(self.key, sid, [self.dlq_arn_value])
