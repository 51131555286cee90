"""The blocks, asserted on the registrations the recording monitor saw, in preview and update modes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.config import WorkerSettings
from offline.check import JSON_DOCUMENT_PROPERTIES, contains_unknown
from offline.model import ResourceRecord
from offline.synth import Synthesis, run_program
from tests.blocks.programs import worker_program

REGION = "eu-west-1"
ACCOUNT = "123456789012"
# The alias points at the key by its provider-assigned id, which no policy reads.
UNKNOWN_AT_PREVIEW_BY_DESIGN = {("aws:kms/alias:Alias", "targetKeyId")}


def synth(mode: str, **kwargs: Any) -> Synthesis:
    return run_program(lambda: worker_program(**kwargs), project="ai-pipelines", stack="test", mode=mode,  # type: ignore[arg-type]
                       config={"aws:region": REGION})


@pytest.fixture(scope="module")
def preview() -> Synthesis:
    return synth("preview")


@pytest.fixture(scope="module")
def update() -> Synthesis:
    return synth("update")


def doc(record: ResourceRecord, prop: str = "policy") -> dict[str, Any]:
    return json.loads(record.inputs[prop])


def statements(record: ResourceRecord, prop: str = "policy") -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in doc(record, prop)["Statement"]}


def test_every_input_is_known_at_preview(preview: Synthesis) -> None:
    unknown = [(r.type, key) for r in preview.resources for key, value in r.inputs.items()
               if contains_unknown(value) and (r.type, key) not in UNKNOWN_AT_PREVIEW_BY_DESIGN]
    assert unknown == []
    documents = [r for r in preview.resources if r.type in JSON_DOCUMENT_PROPERTIES]
    assert len(documents) >= 6  # role, role policy, two queue policies, topic policy, key policy...
    for record in documents:
        for prop in JSON_DOCUMENT_PROPERTIES[record.type]:
            if prop in record.inputs and prop != "definition":
                json.loads(record.inputs[prop])  # a JSON string, as the provider holds it


def test_dlq_redrive_encryption_and_retention(preview: Synthesis) -> None:
    queue, dlq = preview.named("demo-jobs"), preview.named("demo-jobs-dlq")
    redrive = json.loads(queue.inputs["redrivePolicy"])
    assert redrive == {"deadLetterTargetArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:ai-pipelines-test-demo-jobs-dlq",
                       "maxReceiveCount": 5}
    assert queue.property_dependencies["redrivePolicy"] == [dlq.urn]
    assert queue.inputs["sqsManagedSseEnabled"] is True and dlq.inputs["sqsManagedSseEnabled"] is True
    assert dlq.inputs["messageRetentionSeconds"] == 1_209_600 > queue.inputs["messageRetentionSeconds"]
    source_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:ai-pipelines-test-demo-jobs"
    assert json.loads(dlq.inputs["redriveAllowPolicy"]) == {"redrivePermission": "byQueue",
                                                            "sourceQueueArns": [source_arn]}
    assert queue.inputs["visibilityTimeoutSeconds"] == 6 * 30 + 5
    assert queue.inputs["receiveWaitTimeSeconds"] == 20


def test_queue_policies_are_tls_only_and_producers_are_scoped(preview: Synthesis) -> None:
    policy = statements(preview.named("demo-jobs-policy"))
    deny = policy["DenyInsecureTransport"]
    assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    grant = policy["S3Sends"]
    assert grant["Principal"] == {"Service": "s3.amazonaws.com"} and grant["Action"] == ["sqs:SendMessage"]
    assert grant["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT},
                                  "ArnLike": {"aws:SourceArn": "arn:aws:s3:::demo-bucket"}}
    assert "DenyInsecureTransport" in statements(preview.named("demo-jobs-dlq-policy"))


def test_alarms_watch_the_dlq_and_queue_age_and_notify(preview: Synthesis) -> None:
    topic_arn = f"arn:aws:sns:{REGION}:{ACCOUNT}:ai-pipelines-test-demo-alarms"
    dlq_alarm = preview.named("demo-jobs-dlq-depth-alarm")
    assert dlq_alarm.inputs["metricName"] == "ApproximateNumberOfMessagesVisible"
    assert dlq_alarm.inputs["threshold"] == 0 and dlq_alarm.inputs["comparisonOperator"] == "GreaterThanThreshold"
    assert dlq_alarm.inputs["dimensions"] == {"QueueName": "ai-pipelines-test-demo-jobs-dlq"}
    assert dlq_alarm.property_dependencies["dimensions"] == [preview.named("demo-jobs-dlq").urn]
    age = preview.named("demo-jobs-age-alarm")
    assert age.inputs["metricName"] == "ApproximateAgeOfOldestMessage"
    for alarm in preview.of_type("aws:cloudwatch/metricAlarm:MetricAlarm"):
        assert alarm.inputs["alarmActions"] == [topic_arn] and alarm.inputs["okActions"] == [topic_arn]
    assert {a.inputs["metricName"] for a in preview.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")} == {
        "ApproximateNumberOfMessagesVisible", "ApproximateAgeOfOldestMessage", "Errors", "Throttles"}


def test_alarm_topic_is_encrypted_with_its_own_key_and_tls_only(preview: Synthesis) -> None:
    topic = preview.named("demo-alarms-topic")
    assert topic.inputs["kmsMasterKeyId"] == "alias/ai-pipelines-test-demo-alarms"
    policy = statements(preview.named("demo-alarms-topic-policy"))
    assert policy["CloudWatchPublishes"]["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    this_stacks_alarms = {"aws:SourceArn": "arn:aws:cloudwatch:eu-west-1:123456789012:alarm:ai-pipelines-test-*"}
    assert policy["CloudWatchPublishes"]["Condition"]["ArnLike"] == this_stacks_alarms
    assert "DenyInsecureTransport" in policy
    key_grants = statements(preview.named("demo-alarms-key"))
    assert key_grants["CloudWatchPublishes"]["Action"] == ["kms:Decrypt", "kms:GenerateDataKey*"]
    assert key_grants["CloudWatchPublishes"]["Condition"]["ArnLike"] == this_stacks_alarms
    assert preview.named("demo-alarms-key").inputs["enableKeyRotation"] is True
    assert preview.named("demo-alarms-email-0").inputs["endpoint"] == "oncall@example.com"


def test_worker_function_mapping_and_log_group(preview: Synthesis) -> None:
    function = preview.named("demo-worker")
    assert function.inputs["reservedConcurrentExecutions"] == 4
    assert function.inputs["tracingConfig"] == {"mode": "Active"}
    assert function.inputs["architectures"] == ["arm64"] and function.inputs["runtime"] == "python3.13"
    assert function.inputs["loggingConfig"]["logGroup"] == "/aws/lambda/ai-pipelines-test-demo-worker"
    logs = preview.named("demo-worker-logs")
    assert logs.inputs["retentionInDays"] == 30
    assert function.property_dependencies["loggingConfig"] == [logs.urn]
    mapping = preview.named("demo-worker-source")
    assert mapping.inputs["batchSize"] == 50 and mapping.inputs["maximumBatchingWindowInSeconds"] == 5
    assert mapping.inputs["functionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping.inputs["scalingConfig"] == {"maximumConcurrency": 3}
    assert mapping.inputs["metricsConfig"] == {"metrics": ["EventCount"]}
    assert mapping.property_dependencies["eventSourceArn"] == [preview.named("demo-jobs").urn]
    assert mapping.property_dependencies["functionName"] == [function.urn]


def test_worker_role_trust_and_exact_statements(preview: Synthesis) -> None:
    trust = doc(preview.named("demo-worker-role"), "assumeRolePolicy")["Statement"]
    assert trust == [{"Sid": "TrustService", "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                      "Action": ["sts:AssumeRole"], "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT}}}]
    granted = statements(preview.named("demo-worker-policy"))
    assert set(granted) == {"ConsumeOwnQueue", "WriteOwnLogs", "WriteTraces", "ReadDocs"}
    assert granted["ConsumeOwnQueue"]["Resource"] == [f"arn:aws:sqs:{REGION}:{ACCOUNT}:ai-pipelines-test-demo-jobs"]
    assert granted["WriteOwnLogs"]["Resource"] == [
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/lambda/ai-pipelines-test-demo-worker:log-stream:*"]


def test_every_taggable_resource_is_tagged(preview: Synthesis) -> None:
    untagged = [r.name for r in preview.resources if r.custom and "tags" not in r.inputs
                and r.type not in {"aws:iam/rolePolicy:RolePolicy", "aws:sqs/queuePolicy:QueuePolicy",
                                   "aws:sns/topicPolicy:TopicPolicy", "aws:kms/alias:Alias",
                                   "aws:sns/topicSubscription:TopicSubscription"}]
    assert untagged == []
    tags = preview.named("demo-jobs").inputs["tags"]
    assert tags == {"project": "ai-pipelines", "stack": "test", "pipeline": "demo", "owner": "platform"}


def test_preview_leaves_provider_outputs_unknown_update_makes_them_real(preview: Synthesis,
                                                                       update: Synthesis) -> None:
    assert contains_unknown(preview.named("demo-worker").outputs["arn"])
    assert update.named("demo-worker").outputs["arn"] == \
        f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ai-pipelines-test-demo-worker"
    assert update.named("demo-jobs").id == f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/ai-pipelines-test-demo-jobs"
    assert not any(contains_unknown(r.outputs) for r in update.resources)


def test_mapping_without_max_concurrency_leaves_scaling_unset() -> None:
    result = synth("preview", settings=WorkerSettings(timeout_seconds=10, memory_mb=128, reserved_concurrency=2,
                                                      batch_size=10))
    mapping = result.named("demo-worker-source")
    assert "scalingConfig" not in mapping.inputs
    assert result.named("demo-jobs").inputs["visibilityTimeoutSeconds"] == 60
