"""Custom EventBridge buses, and rules that deliver to an SQS queue without ever dropping an event.

EventBridge gives up on an event it cannot deliver once its retry policy runs out; unless the target has a
dead-letter queue, the event is gone. `RuleToQueue` therefore always builds the target with an explicit retry
policy and its own dead-letter queue ("undelivered"): encrypted, TLS-only, writable only by EventBridge on behalf
of that one rule, kept for 14 days and alarmed on its first message.

The rule's ARN is derived from names (`rule_arn`), so the destination queue's policy can allow exactly that rule
before the rule exists and every policy document is known at preview.

>>> bus = EventBus(naming, env, "input")  # doctest: +SKIP
>>> arn = RuleToQueue.rule_arn(naming, env, "intake", bus)  # doctest: +SKIP
>>> queue = QueueWithDlq(..., producers=[QueueProducer("RuleSends", "events.amazonaws.com", arn)])  # doctest: +SKIP
>>> RuleToQueue(naming, env, "intake", bus=bus, event_pattern={"source": ["com.example"]}, queue=queue,
...             retry=TargetRetry(185, 86400), alarm_topic_arn=topic.arn)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components import defaults
from components.blocks.alarms import notifying_alarm, queue_metric
from components.blocks.iam import AwsEnv, PolicyDocument, Statement, deny_insecure_transport, service_may
from components.blocks.naming import Naming
from components.blocks.queue import QueueWithDlq, admit_producer, encryption

EVENTS_SERVICE = "events.amazonaws.com"


class EventBus(pulumi.ComponentResource):
    """A custom event bus, named from project, stack and pipeline so its ARN is known at preview."""

    def __init__(self, naming: Naming, env: AwsEnv, purpose: str, *, description: str = "",
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ai-pipelines:blocks:EventBus", naming.logical(f"{purpose}-bus"), None, opts)
        self.name = naming.name(purpose, max_length=256)
        self.bus = aws.cloudwatch.EventBus(naming.logical(f"{purpose}-bus"), name=self.name,
                                           description=description or None, tags=naming.tags,
                                           opts=pulumi.ResourceOptions(parent=self))
        self.bus_name: pulumi.Output[str] = self.bus.name
        self.arn: pulumi.Output[str] = env.event_bus(self.bus.name)
        self.register_outputs({"name": self.bus.name, "arn": self.arn})

    def statement_to_put_events(self, sid: str) -> Statement:
        """The statement a function needs to publish on this bus (and no other)."""
        return Statement(sid, ["events:PutEvents"], [self.arn])


@dataclass(frozen=True)
class TargetRetry:
    """How long EventBridge keeps trying a failing delivery before it dead-letters the event."""

    maximum_retry_attempts: int = defaults.TARGET_MAX_RETRY_ATTEMPTS
    maximum_event_age_in_seconds: int = defaults.TARGET_MAX_EVENT_AGE_SECONDS


DEFAULT_BUS = "default"


class RuleToQueue(pulumi.ComponentResource):
    """A rule on `bus` matching `event_pattern`, delivering to `queue` with retries and its own DLQ.

    `bus` None is the account's default bus, where AWS services (Bedrock's job state changes, for one) put events.
    """

    def __init__(self, naming: Naming, env: AwsEnv, purpose: str, *, bus: EventBus | None,
                 event_pattern: Mapping[str, Any], queue: QueueWithDlq, retry: TargetRetry,
                 alarm_topic_arn: pulumi.Input[str], description: str = "",
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ai-pipelines:blocks:RuleToQueue", naming.logical(purpose), None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.rule_name = naming.name(purpose, max_length=64)
        rule_arn = self.rule_arn(naming, env, purpose, bus)

        undelivered_name = naming.name(f"{purpose}-undelivered", max_length=80)
        self.undelivered = aws.sqs.Queue(
            naming.logical(f"{purpose}-undelivered"),
            name=undelivered_name,
            message_retention_seconds=defaults.DLQ_RETENTION_SECONDS,
            **encryption(queue.key),  # the destination's key: the stack's, when it has one
            tags=naming.tags,
            opts=child,
        )
        self.undelivered_arn: pulumi.Output[str] = env.sqs_queue(self.undelivered.name)
        admit_producer(queue.key, EVENTS_SERVICE, env.arn("sqs", undelivered_name))
        self.undelivered_policy = aws.sqs.QueuePolicy(
            naming.logical(f"{purpose}-undelivered-policy"),
            queue_url=env.sqs_queue_url(self.undelivered.name),
            policy=PolicyDocument([
                service_may("RuleDeadLetters", EVENTS_SERVICE, ["sqs:SendMessage"], [self.undelivered_arn], env,
                            source_arn=rule_arn),
                deny_insecure_transport(["sqs:*"], [self.undelivered_arn]),
            ]).to_json(),
            opts=child,
        )
        self.undelivered_alarm = notifying_alarm(
            naming, f"{purpose}-undelivered-depth",
            watch=queue_metric(self.undelivered.name, "ApproximateNumberOfMessagesVisible"), topic_arn=alarm_topic_arn,
            threshold=defaults.DLQ_ALARM_THRESHOLD, title=f"{purpose} events EventBridge could not deliver",
            description=f"EventBridge could not deliver events of rule {self.rule_name} to {queue.name}; they wait "
                        f"in {undelivered_name}",
            parent=self)

        bus_name: pulumi.Input[str] = bus.bus_name if bus is not None else DEFAULT_BUS
        self.rule = aws.cloudwatch.EventRule(
            naming.logical(f"{purpose}-rule"),
            name=self.rule_name,
            event_bus_name=bus_name,
            # An Output when the pattern names a resource by its ARN (built from names, so known at preview).
            event_pattern=pulumi.Output.json_dumps(dict(event_pattern), sort_keys=True),
            description=description or None,
            state="ENABLED",
            tags=naming.tags,
            opts=child,
        )
        self.arn: pulumi.Output[str] = env.event_rule(self.rule.name, bus=bus.name if bus else DEFAULT_BUS)
        self.target = aws.cloudwatch.EventTarget(
            naming.logical(f"{purpose}-target"),
            rule=self.rule.name,
            event_bus_name=bus_name,
            target_id="queue",
            arn=queue.arn,
            retry_policy=aws.cloudwatch.EventTargetRetryPolicyArgs(
                maximum_retry_attempts=retry.maximum_retry_attempts,
                maximum_event_age_in_seconds=retry.maximum_event_age_in_seconds),
            dead_letter_config=aws.cloudwatch.EventTargetDeadLetterConfigArgs(arn=self.undelivered_arn),
            # EventBridge can deliver only once the queue policies allow it.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[queue.policy, self.undelivered_policy]),
        )
        self.register_outputs({"ruleArn": self.arn, "undeliveredUrl": env.sqs_queue_url(self.undelivered.name)})

    @staticmethod
    def rule_arn(naming: Naming, env: AwsEnv, purpose: str, bus: EventBus | None) -> str:
        """The ARN the rule `purpose` on `bus` (None: the default bus) will have, known before it exists."""
        name = naming.name(purpose, max_length=64)
        return env.arn("events", f"rule/{bus.name}/{name}" if bus is not None else f"rule/{name}")


def event_pattern(sources: Sequence[str], detail_types: Sequence[str]) -> dict[str, list[str]]:
    """The pattern matching any of `sources` with any of `detail_types`."""
    return {"source": list(sources), "detail-type": list(detail_types)}
