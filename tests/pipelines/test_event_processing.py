"""The event-processing component, asserted on recorded registrations in preview and update modes, and the rules of
its config section."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.blocks.alarm_topic import AlarmTopic
from components.blocks.iam import AwsEnv
from components.blocks.naming import Naming
from components.config import ConfigError, EventProcessingSettings, parse_stack_config
from components.pipelines.event_processing import EventProcessor
from offline.check import contains_unknown
from offline.model import ResourceRecord
from offline.synth import Synthesis, run_program
from tests.blocks.programs import fake_code

REGION, ACCOUNT = "eu-west-1", "123456789012"
NAMING = Naming("ai-pipelines", "test", "shared", owner="platform")
PREFIX = "ai-pipelines-test-eventproc"
MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
MINIMAL = {"intake": {"sources": ["com.example.documents"], "detailTypes": ["DocumentSubmitted"]},
           "model": {"modelId": MODEL, "labels": ["invoice", "other"]}}
# The alias points at the key by its provider-assigned id, which no policy reads.
UNKNOWN_AT_PREVIEW_BY_DESIGN = {("aws:kms/alias:Alias", "targetKeyId")}


def settings(**overrides: Any) -> EventProcessingSettings:
    raw = json.loads(json.dumps(MINIMAL))
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return EventProcessingSettings.model_validate(raw)


def synth(config: EventProcessingSettings | None = None, *, mode: str = "preview", protect: bool = False
          ) -> Synthesis:
    def program() -> None:
        env = AwsEnv.lookup()
        topic = AlarmTopic(NAMING, env)
        EventProcessor(NAMING.child("eventproc"), env, config or settings(), code=fake_code(),
                       alarm_topic_arn=topic.arn, log_retention_days=30, protect_data=protect)

    return run_program(program, project="ai-pipelines", stack="test", mode=mode,  # type: ignore[arg-type]
                       config={"aws:region": REGION})


@pytest.fixture(scope="module", params=["preview", "update"])
def stack(request: pytest.FixtureRequest) -> Synthesis:
    return synth(settings(), mode=request.param)


def arn(service: str, resource: str, *, account: str = ACCOUNT, region: str = REGION) -> str:
    return f"arn:aws:{service}:{region}:{account}:{resource}"


def statements(record: ResourceRecord, prop: str = "policy") -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in json.loads(record.inputs[prop])["Statement"]}


def test_every_input_is_known_at_preview() -> None:
    preview = synth(settings())
    unknown = [(r.type, key) for r in preview.resources for key, value in r.inputs.items()
               if contains_unknown(value) and (r.type, key) not in UNKNOWN_AT_PREVIEW_BY_DESIGN]
    assert unknown == []


def test_the_input_rule_matches_the_configured_events_on_the_input_bus(stack: Synthesis) -> None:
    bus, rule = stack.named("eventproc-input-bus"), stack.named("eventproc-intake-rule")
    assert bus.inputs["name"] == f"{PREFIX}-input"
    assert rule.inputs["eventBusName"] == f"{PREFIX}-input" and rule.property_dependencies["eventBusName"] == [bus.urn]
    assert json.loads(rule.inputs["eventPattern"]) == {"source": ["com.example.documents"],
                                                       "detail-type": ["DocumentSubmitted"]}
    assert rule.inputs["state"] == "ENABLED"


def test_the_rule_delivers_to_the_work_queue_with_retries_and_its_own_dlq(stack: Synthesis) -> None:
    target = stack.named("eventproc-intake-target")
    queue, undelivered = stack.named("eventproc-work"), stack.named("eventproc-intake-undelivered")
    assert target.inputs["arn"] == arn("sqs", f"{PREFIX}-work")
    assert target.property_dependencies["arn"] == [queue.urn]
    assert target.inputs["retryPolicy"] == {"maximumRetryAttempts": 185, "maximumEventAgeInSeconds": 86400}
    assert target.inputs["deadLetterConfig"] == {"arn": arn("sqs", f"{PREFIX}-intake-undelivered")}
    assert target.property_dependencies["deadLetterConfig"] == [undelivered.urn]
    # Delivery is allowed before the target exists: it depends on both queue policies.
    assert {stack.named("eventproc-work-policy").urn, stack.named("eventproc-intake-undelivered-policy").urn} <= set(
        target.dependencies)
    assert undelivered.inputs["sqsManagedSseEnabled"] is True
    assert undelivered.inputs["messageRetentionSeconds"] == 14 * 24 * 3600


def test_only_the_rule_may_send_to_the_work_queue_and_its_dlq(stack: Synthesis) -> None:
    rule_arn = arn("events", f"rule/{PREFIX}-input/{PREFIX}-intake")
    for policy, queue in (("eventproc-work-policy", "work"), ("eventproc-intake-undelivered-policy",
                                                               "intake-undelivered")):
        granted = statements(stack.named(policy))
        (grant,) = [s for sid, s in granted.items() if sid != "DenyInsecureTransport"]
        assert grant["Principal"] == {"Service": "events.amazonaws.com"} and grant["Action"] == ["sqs:SendMessage"]
        assert grant["Resource"] == [arn("sqs", f"{PREFIX}-{queue}")]
        assert grant["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT},
                                      "ArnLike": {"aws:SourceArn": rule_arn}}
        assert granted["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_the_work_queue_dead_letters_and_its_visibility_is_derived(stack: Synthesis) -> None:
    queue = stack.named("eventproc-work")
    assert json.loads(queue.inputs["redrivePolicy"]) == {"deadLetterTargetArn": arn("sqs", f"{PREFIX}-work-dlq"),
                                                         "maxReceiveCount": 5}
    assert queue.inputs["visibilityTimeoutSeconds"] == 6 * 120 + 0
    assert queue.inputs["sqsManagedSseEnabled"] is True


def test_the_worker_is_bounded_and_reports_partial_batch_failures(stack: Synthesis) -> None:
    function, mapping = stack.named("eventproc-worker"), stack.named("eventproc-worker-source")
    assert function.inputs["reservedConcurrentExecutions"] == 20
    assert function.inputs["timeout"] == 120 and function.inputs["memorySize"] == 512
    assert mapping.inputs["batchSize"] == 10 and mapping.inputs["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping.inputs["scalingConfig"] == {"maximumConcurrency": 20}
    assert mapping.property_dependencies["eventSourceArn"] == [stack.named("eventproc-work").urn]


def test_the_worker_gets_its_model_task_prompt_tables_and_bus(stack: Synthesis) -> None:
    env = stack.named("eventproc-worker").inputs["environment"]["variables"]
    assert env["MODEL_ID"] == MODEL and env["TASK"] == "classify"
    assert "{{content}}" in env["PROMPT_TEMPLATE"] and "{{labels}}" in env["PROMPT_TEMPLATE"]
    assert json.loads(env["LABELS"]) == ["invoice", "other"]
    assert env["IDEMPOTENCY_TABLE"] == f"{PREFIX}-idempotency" and env["RESULTS_TABLE"] == f"{PREFIX}-results"
    assert env["RESULT_BUS_NAME"] == f"{PREFIX}-results" and env["RESULT_SOURCE"] == "ai-pipelines.event-processing"
    assert env["IDEMPOTENCY_TTL_SECONDS"] == "86400" and json.loads(env["IDEMPOTENCY_KEY_FIELDS"]) == []
    assert json.loads(env["ACCEPTED_SOURCES"]) == ["com.example.documents"]
    assert json.loads(env["ACCEPTED_DETAIL_TYPES"]) == ["DocumentSubmitted"]
    assert env["RECORD_CONCURRENCY"] == "10" and env["MODEL_TIMEOUT_SECONDS"] == "30"
    assert sum(len(k) + len(v) for k, v in env.items()) < 4096  # Lambda's limit on a function's environment


def test_the_idempotency_table_expires_records_and_the_results_table_can_be_restored(stack: Synthesis) -> None:
    seen, results = stack.named("eventproc-idempotency-table"), stack.named("eventproc-results-table")
    assert seen.inputs["hashKey"] == "id" and seen.inputs["ttl"] == {"attributeName": "expiration", "enabled": True}
    assert seen.inputs["tags"]["purpose"] == "idempotency"
    assert results.inputs["hashKey"] == "resultId" and results.inputs["pointInTimeRecovery"] == {"enabled": True}
    assert results.inputs["tags"]["purpose"] == "results"
    for table in (seen, results):
        assert table.inputs["billingMode"] == "PAY_PER_REQUEST"
        assert table.inputs["serverSideEncryption"] == {"enabled": True}
        assert table.inputs["tags"]["pipeline"] == "eventproc" and table.inputs["deletionProtectionEnabled"] is False


def test_protected_data_protects_both_tables() -> None:
    result = synth(protect=True)
    for name in ("eventproc-idempotency-table", "eventproc-results-table"):
        assert result.named(name).protect is True
        assert result.named(name).inputs["deletionProtectionEnabled"] is True


def test_the_worker_may_invoke_only_its_model_write_only_its_tables_and_publish_only_on_the_result_bus(
        stack: Synthesis) -> None:
    granted = statements(stack.named("eventproc-worker-policy"))
    assert set(granted) == {"ConsumeOwnQueue", "WriteOwnLogs", "WriteTraces", "InvokeTheConfiguredModel",
                            "RecordIdempotency", "WriteResults", "PublishOnResultBus"}
    assert granted["InvokeTheConfiguredModel"]["Action"] == ["bedrock:InvokeModel"]
    assert granted["InvokeTheConfiguredModel"]["Resource"] == [
        f"arn:aws:bedrock:{REGION}::foundation-model/{MODEL}"]
    assert granted["RecordIdempotency"] == {
        "Sid": "RecordIdempotency", "Effect": "Allow",
        "Action": ["dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:UpdateItem"],
        "Resource": [arn("dynamodb", f"table/{PREFIX}-idempotency")]}
    assert granted["WriteResults"]["Action"] == ["dynamodb:PutItem", "dynamodb:UpdateItem"]
    assert granted["WriteResults"]["Resource"] == [arn("dynamodb", f"table/{PREFIX}-results")]
    assert granted["PublishOnResultBus"]["Action"] == ["events:PutEvents"]
    assert granted["PublishOnResultBus"]["Resource"] == [arn("events", f"event-bus/{PREFIX}-results")]
    wildcards = [sid for sid, s in granted.items() if "*" in s["Resource"]]
    assert wildcards == ["WriteTraces"]  # X-Ray has no resource-level permissions
    policy = stack.named("eventproc-worker-policy")
    for table in ("eventproc-idempotency-table", "eventproc-results-table"):
        assert stack.named(table).urn in policy.property_dependencies["policy"]
    assert stack.named("eventproc-results-bus").urn in policy.property_dependencies["policy"]


def test_an_inference_profile_adds_the_profile_and_the_model_in_its_regions_only() -> None:
    profile = f"eu.{MODEL}"
    result = synth(settings(model={"inferenceProfileId": profile,
                                   "inferenceProfileRegions": ["eu-central-1", "eu-west-3"]}))
    granted = statements(result.named("eventproc-worker-policy"))["InvokeTheConfiguredModel"]
    assert granted["Resource"] == [
        f"arn:aws:bedrock:eu-central-1::foundation-model/{MODEL}",
        f"arn:aws:bedrock:eu-west-1::foundation-model/{MODEL}",
        f"arn:aws:bedrock:eu-west-3::foundation-model/{MODEL}",
        arn("bedrock", f"inference-profile/{profile}")]
    assert result.named("eventproc-worker").inputs["environment"]["variables"]["MODEL_ID"] == profile
    assert result.named("eventproc-model-throttles-alarm").inputs["dimensions"] == {"ModelId": profile}


def test_the_result_bus_has_an_example_subscriber_with_retries_and_a_dlq(stack: Synthesis) -> None:
    rule, target = stack.named("eventproc-completed-rule"), stack.named("eventproc-completed-target")
    assert rule.inputs["eventBusName"] == f"{PREFIX}-results"
    assert json.loads(rule.inputs["eventPattern"]) == {"source": ["ai-pipelines.event-processing"],
                                                       "detail-type": ["ProcessingCompleted"]}
    assert target.inputs["arn"] == arn("sqs", f"{PREFIX}-subscriber")
    assert target.inputs["deadLetterConfig"] == {"arn": arn("sqs", f"{PREFIX}-completed-undelivered")}
    assert target.inputs["retryPolicy"]["maximumRetryAttempts"] > 0
    queue = stack.named("eventproc-subscriber")
    assert json.loads(queue.inputs["redrivePolicy"])["deadLetterTargetArn"] == arn("sqs", f"{PREFIX}-subscriber-dlq")
    grant = statements(stack.named("eventproc-subscriber-policy"))["CompletedRuleSends"]
    assert grant["Condition"]["ArnLike"]["aws:SourceArn"] == arn("events",
                                                                  f"rule/{PREFIX}-results/{PREFIX}-completed")


def test_without_the_example_subscriber_the_result_bus_has_no_rule() -> None:
    result = synth(settings(resultSubscriber=False))
    assert [r.inputs["name"] for r in result.of_type("aws:cloudwatch/eventRule:EventRule")] == [f"{PREFIX}-intake"]
    (dashboard,) = result.of_type("aws:cloudwatch/dashboard:Dashboard")
    assert "subscriber" not in dashboard.inputs["dashboardBody"]


ALARMS = {
    "eventproc-work-age-alarm": ("AWS/SQS", "ApproximateAgeOfOldestMessage", {"QueueName": f"{PREFIX}-work"}),
    "eventproc-work-dlq-depth-alarm": ("AWS/SQS", "ApproximateNumberOfMessagesVisible",
                                       {"QueueName": f"{PREFIX}-work-dlq"}),
    "eventproc-intake-undelivered-depth-alarm": ("AWS/SQS", "ApproximateNumberOfMessagesVisible",
                                                 {"QueueName": f"{PREFIX}-intake-undelivered"}),
    "eventproc-work-backlog-alarm": ("AWS/SQS", "ApproximateNumberOfMessagesVisible", {"QueueName": f"{PREFIX}-work"}),
    "eventproc-worker-throttles-alarm": ("AWS/Lambda", "Throttles", {"FunctionName": f"{PREFIX}-worker"}),
    "eventproc-model-throttles-alarm": ("AWS/Bedrock", "InvocationThrottles", {"ModelId": MODEL}),
    # The worker's own metric (Powertools, dimension service): a model answer that failed validation.
    "eventproc-invalid-answers-alarm": ("ai-pipelines", "InvalidModelAnswers", {"service": f"{PREFIX}-worker"}),
    "eventproc-subscriber-dlq-depth-alarm": ("AWS/SQS", "ApproximateNumberOfMessagesVisible",
                                             {"QueueName": f"{PREFIX}-subscriber-dlq"}),
    "eventproc-completed-undelivered-depth-alarm": ("AWS/SQS", "ApproximateNumberOfMessagesVisible",
                                                    {"QueueName": f"{PREFIX}-completed-undelivered"}),
}


@pytest.mark.parametrize("name", sorted(ALARMS))
def test_every_signal_has_an_alarm_that_pages(stack: Synthesis, name: str) -> None:
    alarm = stack.named(name)
    namespace, metric, dimensions = ALARMS[name]
    assert (alarm.inputs["namespace"], alarm.inputs["metricName"], alarm.inputs["dimensions"]) == (
        namespace, metric, dimensions)
    topic = arn("sns", "ai-pipelines-test-shared-alarms")
    assert alarm.inputs["alarmActions"] == [topic] and alarm.inputs["okActions"] == [topic]


def test_dead_letter_alarms_fire_on_the_first_message_and_throttles_above_the_threshold(stack: Synthesis) -> None:
    for name in ("eventproc-work-dlq-depth-alarm", "eventproc-intake-undelivered-depth-alarm"):
        alarm = stack.named(name).inputs
        assert (alarm["comparisonOperator"], alarm["threshold"]) == ("GreaterThanThreshold", 0)
    invalid = stack.named("eventproc-invalid-answers-alarm").inputs
    assert (invalid["comparisonOperator"], invalid["threshold"], invalid["statistic"]) == (
        "GreaterThanThreshold", 0, "Sum")
    throttles = stack.named("eventproc-model-throttles-alarm").inputs
    assert (throttles["statistic"], throttles["threshold"]) == ("Sum", 10)
    custom = synth(settings(model={"throttleAlarmThreshold": 50})).named("eventproc-model-throttles-alarm")
    assert custom.inputs["threshold"] == 50


def test_the_worker_pages_on_its_error_rate_and_the_queue_on_its_backlog(stack: Synthesis) -> None:
    rate = stack.named("eventproc-worker-error-rate-alarm").inputs
    queries = {q["id"]: q for q in rate["metricQueries"]}
    assert {query_id: q["metric"]["metricName"] for query_id, q in queries.items() if "metric" in q} == {
        "errors": "Errors", "invocations": "Invocations"}
    assert queries["value"]["expression"] == "IF(invocations >= 20, 100 * FILL(errors, 0) / invocations, 0)"
    assert (rate["threshold"], rate["comparisonOperator"]) == (5, "GreaterThanThreshold")
    assert [r for r in stack.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")
            if r.inputs["name"] == f"{PREFIX}-worker-errors"] == []
    backlog = stack.named("eventproc-work-backlog-alarm").inputs
    assert (backlog["threshold"], backlog["evaluationPeriods"], backlog["statistic"]) == (10_000, 5, "Maximum")
    chosen = synth(settings(queue={"backlogAlarmMessages": 500}, worker={"errors": {"pageOn": "count"}}))
    assert chosen.named("eventproc-work-backlog-alarm").inputs["threshold"] == 500
    assert chosen.named("eventproc-worker-errors-alarm").inputs["metricName"] == "Errors"


def test_the_dashboard_shows_backlog_dead_letters_worker_model_and_results(stack: Synthesis) -> None:
    dashboard = stack.named("eventproc-dashboard")
    body = json.loads(dashboard.inputs["dashboardBody"])
    headings = [w["properties"]["markdown"] for w in body["widgets"] if w["type"] == "text"]
    assert headings == ["## Work queue", "## Worker", "## Model", "## Results", "## Example subscriber"]
    titles = [w["properties"]["title"] for w in body["widgets"] if w["type"] == "metric"]
    assert {"work messages waiting", "worker duration (ms) against its timeout", "model latency (ms)",
            "batch sizes (messages per invocation)"} <= set(titles)
    metrics = json.dumps(body)
    assert f"{PREFIX}-work" in metrics and "InvocationThrottles" in metrics and MODEL in metrics


# --- config rules ---------------------------------------------------------------------------------------------


def error_for(section: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_stack_config({"owner": "data", "eventProcessing": section}, stack="prod")
    message = str(caught.value)
    assert message.startswith("Pulumi.prod.yaml: invalid configuration")
    return message


def section(**overrides: Any) -> dict[str, Any]:
    raw = json.loads(json.dumps(MINIMAL))
    for key, value in overrides.items():
        raw[key] = {**raw[key], **value} if isinstance(value, dict) and isinstance(raw.get(key), dict) else value
    return raw


def test_defaults_are_valid_and_enable_the_pipeline() -> None:
    config = parse_stack_config({"owner": "data", "eventProcessing": MINIMAL}, stack="dev")
    assert config.enabled_pipelines == ["eventProcessing"]
    processing = config.event_processing
    assert processing is not None and processing.worker.reserved_concurrency == 20
    assert processing.idempotency.ttl_seconds == 24 * 3600 and processing.model.invoked_id == MODEL
    assert parse_stack_config({"owner": "data", "eventProcessing": {**MINIMAL, "enabled": False}},
                              stack="dev").enabled_pipelines == []


@pytest.mark.parametrize(("overrides", "expected"), [
    ({"worker": {"batchSize": 4}}, "ai-pipelines:eventProcessing: worker.batchSize 4 is outside 5..10"),
    ({"worker": {"batchSize": 20, "batchingWindowSeconds": 5}},
     "ai-pipelines:eventProcessing: worker.batchSize 20 is outside 5..10"),
    ({"worker": {"batchSize": 5}, "recordConcurrency": 8},
     "ai-pipelines:eventProcessing: recordConcurrency 8 exceeds worker.batchSize 5"),
    ({"worker": {"timeoutSeconds": 30}},
     "ai-pipelines:eventProcessing: worker.timeoutSeconds 30 is below model.requestTimeoutSeconds 30 + 10 s"),
    ({"idempotency": {"ttlSeconds": 3600}, "worker": {"timeoutSeconds": 300}},
     "ai-pipelines:eventProcessing: idempotency.ttlSeconds 3600 is below the time SQS keeps redelivering a "
     "message (1800 s visibility x 5 receives = 9000 s)"),
    ({"model": {"inferenceProfileId": "eu.amazon.nova-lite-v1:0", "inferenceProfileRegions": ["eu-west-1"]}},
     f"ai-pipelines:eventProcessing.model: inferenceProfileId eu.amazon.nova-lite-v1:0 must be <geography>.{MODEL}"),
    ({"model": {"inferenceProfileId": f"eu.{MODEL}"}}, f"inferenceProfileId eu.{MODEL} needs inferenceProfileRegions"),
    ({"model": {"inferenceProfileRegions": ["eu-west-1"]}}, "inferenceProfileRegions is set without an "
                                                            "inferenceProfileId"),
    ({"model": {"promptTemplate": "Summarize this item please"}}, "promptTemplate has no {{content}}"),
    ({"model": {"labels": []}}, "the classify prompt uses {{labels}} but labels is empty"),
    ({"model": {"labels": ["ok", "ok"]}}, "duplicate labels: ok"),
    ({"model": {"temperature": 1.5}}, "ai-pipelines:eventProcessing.model.temperature = 1.5"),
    ({"model": {"modelId": "Claude 3"}}, "ai-pipelines:eventProcessing.model.modelId = \"Claude 3\""),
    ({"intake": {"sources": []}}, "ai-pipelines:eventProcessing.intake.sources = []"),
    ({"intake": {"sources": ["bad source!"]}}, "not event sources"),
    ({"intake": {"retryAttempts": 500}}, "ai-pipelines:eventProcessing.intake.retryAttempts = 500"),
    ({"idempotency": {"keyFields": ["detail"]}}, "not event fields"),
    ({"recordConcurrency": 0}, "ai-pipelines:eventProcessing.recordConcurrency = 0"),
    ({"resultSubscribers": True}, "ai-pipelines:eventProcessing.resultSubscribers: unknown key; did you mean "
                                  "'resultSubscriber'?"),
])
def test_each_config_rule_names_the_key_the_value_and_the_rule(overrides: dict[str, Any], expected: str) -> None:
    assert expected in error_for(section(**overrides))


def test_a_task_without_labels_in_its_prompt_needs_none() -> None:
    config = settings(model={"task": "summarize", "labels": []})
    assert "{{labels}}" not in config.model.prompt and "{{content}}" in config.model.prompt


def test_key_fields_and_the_model_reach_the_worker() -> None:
    result = synth(settings(idempotency={"keyFields": ["source", "detail.itemId"], "ttlSeconds": 7200},
                            model={"task": "moderate", "labels": [], "maxOutputTokens": 64}))
    env = result.named("eventproc-worker").inputs["environment"]["variables"]
    assert json.loads(env["IDEMPOTENCY_KEY_FIELDS"]) == ["source", "detail.itemId"]
    assert env["IDEMPOTENCY_TTL_SECONDS"] == "7200" and env["TASK"] == "moderate"
    assert env["MAX_OUTPUT_TOKENS"] == "64" and "flagged" in env["PROMPT_TEMPLATE"]
