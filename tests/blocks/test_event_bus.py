"""The event bus and rule-to-queue blocks, asserted on recorded registrations in preview and update modes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.blocks.alarm_topic import AlarmTopic
from components.blocks.event_bus import EventBus, RuleToQueue, TargetRetry, event_pattern
from components.blocks.iam import AwsEnv
from components.blocks.queue import QueueProducer, QueueWithDlq
from components.config import QueueSettings
from offline.check import contains_unknown
from offline.synth import Synthesis, run_program
from tests.blocks.programs import NAMING

REGION, ACCOUNT = "eu-west-1", "123456789012"
PREFIX = "ai-pipelines-test-demo"
RULE_ARN = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{PREFIX}-input/{PREFIX}-intake"


def program(retry: TargetRetry) -> None:
    env = AwsEnv.lookup()
    topic = AlarmTopic(NAMING, env)
    bus = EventBus(NAMING, env, "input", description="items")
    rule_arn = RuleToQueue.rule_arn(NAMING, env, "intake", bus)
    queue = QueueWithDlq(NAMING, env, "jobs", settings=QueueSettings(), visibility_timeout_seconds=60,
                         alarm_topic_arn=topic.arn,
                         producers=[QueueProducer("RuleSends", "events.amazonaws.com", rule_arn)])
    RuleToQueue(NAMING, env, "intake", bus=bus, event_pattern=event_pattern(["com.example"], ["Submitted"]),
                queue=queue, retry=retry, alarm_topic_arn=topic.arn)


def synth(mode: str, retry: TargetRetry | None = None) -> Synthesis:
    return run_program(lambda: program(retry or TargetRetry()), project="ai-pipelines", stack="test",
                       mode=mode, config={"aws:region": REGION})  # type: ignore[arg-type]


@pytest.fixture(scope="module", params=["preview", "update"])
def stack(request: pytest.FixtureRequest) -> Synthesis:
    return synth(request.param)


def statements(stack: Synthesis, name: str) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in json.loads(stack.named(name).inputs["policy"])["Statement"]}


def test_the_bus_is_named_and_tagged_from_project_stack_and_pipeline(stack: Synthesis) -> None:
    bus = stack.named("demo-input-bus").inputs
    assert bus["name"] == f"{PREFIX}-input" and bus["description"] == "items"
    assert bus["tags"] == {"project": "ai-pipelines", "stack": "test", "pipeline": "demo", "owner": "platform"}


def test_the_rule_arn_known_before_the_rule_is_the_one_it_gets() -> None:
    update = synth("update")
    assert update.named("demo-intake-rule").outputs["arn"] == RULE_ARN
    grant = statements(update, "demo-jobs-policy")["RuleSends"]
    assert grant["Condition"]["ArnLike"]["aws:SourceArn"] == RULE_ARN


def test_the_rule_matches_the_pattern_on_its_bus(stack: Synthesis) -> None:
    rule = stack.named("demo-intake-rule")
    assert json.loads(rule.inputs["eventPattern"]) == {"source": ["com.example"], "detail-type": ["Submitted"]}
    assert rule.property_dependencies["eventBusName"] == [stack.named("demo-input-bus").urn]


def test_the_target_retries_explicitly_and_dead_letters_to_its_own_queue(stack: Synthesis) -> None:
    target = stack.named("demo-intake-target")
    undelivered = stack.named("demo-intake-undelivered")
    assert target.inputs["retryPolicy"] == {"maximumRetryAttempts": 185, "maximumEventAgeInSeconds": 86400}
    assert target.property_dependencies["deadLetterConfig"] == [undelivered.urn]
    assert target.property_dependencies["arn"] == [stack.named("demo-jobs").urn]
    assert target.property_dependencies["rule"] == [stack.named("demo-intake-rule").urn]
    assert undelivered.inputs["sqsManagedSseEnabled"] is True
    assert undelivered.inputs["messageRetentionSeconds"] == 1_209_600


def test_a_configured_retry_policy_is_used_as_given() -> None:
    target = synth("preview", TargetRetry(3, 600)).named("demo-intake-target")
    assert target.inputs["retryPolicy"] == {"maximumRetryAttempts": 3, "maximumEventAgeInSeconds": 600}


def test_only_the_rule_may_dead_letter_and_only_over_tls(stack: Synthesis) -> None:
    policy = statements(stack, "demo-intake-undelivered-policy")
    assert policy["RuleDeadLetters"]["Principal"] == {"Service": "events.amazonaws.com"}
    assert policy["RuleDeadLetters"]["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT},
                                                      "ArnLike": {"aws:SourceArn": RULE_ARN}}
    assert policy["DenyInsecureTransport"]["Effect"] == "Deny"
    assert not contains_unknown(stack.named("demo-intake-undelivered-policy").inputs["policy"])


def test_an_undelivered_event_pages_at_once(stack: Synthesis) -> None:
    alarm = stack.named("demo-intake-undelivered-depth-alarm")
    assert alarm.inputs["metricName"] == "ApproximateNumberOfMessagesVisible"
    assert alarm.inputs["dimensions"] == {"QueueName": f"{PREFIX}-intake-undelivered"}
    assert alarm.property_dependencies["dimensions"] == [stack.named("demo-intake-undelivered").urn]
    assert (alarm.inputs["comparisonOperator"], alarm.inputs["threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm.inputs["alarmActions"] == [f"arn:aws:sns:{REGION}:{ACCOUNT}:{PREFIX}-alarms"]


def test_a_bus_grants_put_events_on_itself_only() -> None:
    def check() -> None:
        bus = EventBus(NAMING, AwsEnv(ACCOUNT, REGION), "out")
        statement = bus.statement_to_put_events("Publish")
        assert statement.actions == ["events:PutEvents"]
        bus.arn.apply(lambda arn: assert_equal(arn, f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{PREFIX}-out"))

    run_program(check, project="ai-pipelines", stack="test", config={"aws:region": REGION})


def assert_equal(actual: object, expected: object) -> None:
    assert actual == expected
