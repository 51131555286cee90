"""The knowledge-base sync component, asserted on recorded registrations in preview and update modes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.blocks.alarm_topic import AlarmTopic
from components.blocks.event_bus import EventBus
from components.blocks.iam import AwsEnv
from components.blocks.naming import Naming
from components.blocks.notifications import BucketNotifications
from components.config import ConfigError, KnowledgeBaseSyncSettings
from components.pipelines.knowledge_base_sync import BatchResults, KnowledgeBaseSync
from offline.check import contains_unknown
from offline.synth import Synthesis, SynthesisError, run_program
from tests.blocks.programs import fake_code

REGION, ACCOUNT = "eu-west-1", "123456789012"
NAMING = Naming("ai-pipelines", "test", "shared", owner="platform")
KB_ARN = f"arn:aws:bedrock:{REGION}:{ACCOUNT}:knowledge-base/KB12345678"


def settings(**overrides: Any) -> KnowledgeBaseSyncSettings:
    return KnowledgeBaseSyncSettings.model_validate(
        {"knowledgeBaseId": "KB12345678", "dataSourceId": "DS12345678", **overrides})


def program(*pipelines: tuple[str, KnowledgeBaseSyncSettings], protect: bool = False,
            result_bus: bool = False) -> None:
    env = AwsEnv.lookup()
    topic = AlarmTopic(NAMING, env)
    hub = BucketNotifications()
    batch = BatchResults(EventBus(NAMING.child("batchinf"), env, "results"), "ai-pipelines.batch-inference") \
        if result_bus else None
    for name, config in pipelines:
        KnowledgeBaseSync(NAMING.child(name), env, config, code=fake_code(), alarm_topic_arn=topic.arn,
                          notifications=hub, log_retention_days=30, protect_data=protect, batch_results=batch)
    hub.build()


def synth(*pipelines: tuple[str, KnowledgeBaseSyncSettings], mode: str = "preview", protect: bool = False,
          result_bus: bool = False) -> Synthesis:
    return run_program(lambda: program(*pipelines, protect=protect, result_bus=result_bus), project="ai-pipelines",
                       stack="test", mode=mode, config={"aws:region": REGION})  # type: ignore[arg-type]


def policy(record_policy: str) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in json.loads(record_policy)["Statement"]}


@pytest.mark.parametrize("mode", ["preview", "update"])
def test_events_mode_wires_bucket_queue_worker(mode: str) -> None:
    result = synth(("kbsync", settings()), mode=mode)
    bucket = result.named("kbsync-docs")
    queue = result.named("kbsync-changes")
    notification = result.of_type("aws:s3/bucketNotification:BucketNotification")
    assert len(notification) == 1
    rules = notification[0].inputs["queues"]
    assert rules == [{"id": "kbsync-documents/", "queueArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:"
                      "ai-pipelines-test-kbsync-changes", "events": ["s3:ObjectCreated:*", "s3:ObjectRemoved:*"],
                      "filterPrefix": "documents/"}]
    assert notification[0].property_dependencies["queues"] == [queue.urn]
    assert notification[0].property_dependencies["bucket"] == [bucket.urn]
    # S3 validates the queue policy when the notification is created: it must exist first.
    assert result.named("kbsync-changes-policy").urn in notification[0].dependencies
    grant = policy(result.named("kbsync-changes-policy").inputs["policy"])["BucketSendsChanges"]
    assert grant["Condition"]["ArnLike"]["aws:SourceArn"] == f"arn:aws:s3:::{bucket.inputs['bucket']}"
    assert grant["Condition"]["StringEquals"]["aws:SourceAccount"] == ACCOUNT
    # No delay and a 20 s batching window: a small change is requested within a minute (benchmarks.kb_sync).
    assert queue.inputs["delaySeconds"] == 0
    assert queue.inputs["visibilityTimeoutSeconds"] == 6 * 60 + 20
    mapping = result.named("kbsync-worker-source")
    assert mapping.inputs["batchSize"] == 1000 and mapping.inputs["maximumBatchingWindowInSeconds"] == 20
    assert result.of_type("aws:scheduler/schedule:Schedule") == []
    assert not contains_unknown(result.named("kbsync-worker-policy").inputs["policy"])


def test_worker_may_start_ingestion_on_its_knowledge_base_only() -> None:
    result = synth(("kbsync", settings()))
    granted = policy(result.named("kbsync-worker-policy").inputs["policy"])
    assert granted["SyncThisKnowledgeBase"] == {
        "Sid": "SyncThisKnowledgeBase", "Effect": "Allow",
        "Action": ["bedrock:DeleteKnowledgeBaseDocuments", "bedrock:GetIngestionJob",
                   "bedrock:GetKnowledgeBaseDocuments", "bedrock:IngestKnowledgeBaseDocuments",
                   "bedrock:ListIngestionJobs", "bedrock:StartIngestionJob"],
        "Resource": [KB_ARN]}
    assert granted["RequestFollowUpSync"]["Resource"] == [f"arn:aws:sqs:{REGION}:{ACCOUNT}:"
                                                          "ai-pipelines-test-kbsync-changes"]
    env = result.named("kbsync-worker").inputs["environment"]["variables"]
    assert env["KNOWLEDGE_BASE_ID"] == "KB12345678" and env["DATA_SOURCE_ID"] == "DS12345678"
    # The handler rejects notifications of any other bucket or prefix.
    bucket = result.named("kbsync-docs").inputs["bucket"]
    assert (env["DOCUMENT_BUCKET"], env["DOCUMENT_PREFIX"]) == (bucket, "documents/")
    assert env["FOLLOW_UP_QUEUE_URL"] == f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/ai-pipelines-test-kbsync-changes"


@pytest.mark.parametrize("mode", ["jobs", "direct", "auto"])
def test_the_mode_and_its_bounds_reach_the_worker(mode: str) -> None:
    result = synth(("kbsync", settings(mode=mode, burstThresholdDocuments=40, burstSettleSeconds=90,
                                       checkDelaySeconds=300, maxJobChecks=288, maxDocumentRetries=1)))
    env = result.named("kbsync-worker").inputs["environment"]["variables"]
    assert {k: env[k] for k in ("SYNC_MODE", "BURST_THRESHOLD_DOCUMENTS", "BURST_SETTLE_SECONDS", "CHECK_DELAY_SECONDS",
                                "MAX_JOB_CHECKS", "MAX_DOCUMENT_RETRIES")} == {
        "SYNC_MODE": mode, "BURST_THRESHOLD_DOCUMENTS": "40", "BURST_SETTLE_SECONDS": "90",
        "CHECK_DELAY_SECONDS": "300", "MAX_JOB_CHECKS": "288", "MAX_DOCUMENT_RETRIES": "1"}


def test_an_unknown_mode_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="mode"):
        settings(mode="sometimes")


def test_failed_jobs_failed_documents_and_failed_direct_ingestions_each_page_on_the_first() -> None:
    result = synth(("kbsync", settings()))
    topic = result.named("shared-alarms-topic")
    for purpose, metric in (("failed-ingestion-jobs", "IngestionJobsFailed"),
                            ("failed-ingestion-documents", "IngestionDocumentsFailed"),
                            ("failed-direct-documents", "DirectDocumentsFailed")):
        alarm = result.named(f"kbsync-{purpose}-alarm").inputs
        assert (alarm["namespace"], alarm["metricName"], alarm["statistic"]) == ("ai-pipelines", metric, "Sum")
        assert alarm["dimensions"] == {"service": "ai-pipelines-test-kbsync-worker"}
        assert (alarm["threshold"], alarm["comparisonOperator"]) == (0, "GreaterThanThreshold")
        assert result.named(f"kbsync-{purpose}-alarm").property_dependencies["alarmActions"] == [topic.urn]


@pytest.mark.parametrize("mode", ["preview", "update"])
def test_batch_results_subscribe_the_queue_to_successful_runs_under_the_prefix(mode: str) -> None:
    result = synth(("kbsync", settings(batchResults=True)), mode=mode, result_bus=True)
    rule = result.named("kbsync-batch-results-rule")
    assert rule.inputs["eventBusName"] == "ai-pipelines-test-batchinf-results"
    bucket = result.named("kbsync-docs").inputs["bucket"]
    assert json.loads(rule.inputs["eventPattern"]) == {
        "source": ["ai-pipelines.batch-inference"], "detail-type": ["BatchRunCompleted"],
        "detail": {"status": ["SUCCEEDED"],
                   "output": {"bucket": [bucket], "resultsPrefix": [{"prefix": "documents/"}]}}}
    target = result.named("kbsync-batch-results-target").inputs
    assert target["arn"] == f"arn:aws:sqs:{REGION}:{ACCOUNT}:ai-pipelines-test-kbsync-changes"
    # The queue admits the rule alone, by its ARN.
    grant = policy(result.named("kbsync-changes-policy").inputs["policy"])["BatchRunsRequestSync"]
    assert grant["Principal"] == {"Service": "events.amazonaws.com"}
    assert grant["Condition"]["ArnLike"]["aws:SourceArn"] == (
        f"arn:aws:events:{REGION}:{ACCOUNT}:rule/ai-pipelines-test-batchinf-results/ai-pipelines-test-kbsync-batch-results")


def test_without_batch_results_there_is_no_rule_and_no_grant() -> None:
    result = synth(("kbsync", settings()), result_bus=True)
    assert [r for r in result.resources if "batch-results" in r.name] == []
    assert "BatchRunsRequestSync" not in policy(result.named("kbsync-changes-policy").inputs["policy"])


def test_batch_results_need_batch_inference_in_the_stack() -> None:
    from components.config import parse_stack_config

    with pytest.raises(ConfigError, match="batchResults subscribes to the batch-inference result bus, but "
                                          "batchInference is not enabled"):
        parse_stack_config({"owner": "data", "knowledgeBaseSync": {
            "knowledgeBaseId": "KB12345678", "dataSourceId": "DS12345678", "batchResults": True}}, stack="dev")


def test_created_bucket_is_private_encrypted_tls_only_and_protected_when_asked() -> None:
    result = synth(("kbsync", settings()), protect=True)
    bucket = result.named("kbsync-docs")
    assert bucket.protect is True
    block = result.named("kbsync-docs-public-access").inputs
    assert all(block[flag] is True for flag in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls",
                                               "restrictPublicBuckets"))
    encryption = result.named("kbsync-docs-encryption").inputs["rules"][0]
    assert encryption["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"
    assert "DenyInsecureTransport" in policy(result.named("kbsync-docs-policy").inputs["policy"])
    assert synth(("kbsync", settings())).named("kbsync-docs").protect is False


def test_created_bucket_keeps_documents_and_expires_old_versions_an_existing_one_is_left_alone() -> None:
    rules = synth(("kbsync", settings())).named("kbsync-docs-lifecycle").inputs["rules"]
    assert [(r["id"], r["filter"], r["expiration"]) for r in rules] == [
        ("abort-uploads-expire-noncurrent-versions", {}, {"expiredObjectDeleteMarker": True})]
    assert rules[0]["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 1}
    assert rules[0]["noncurrentVersionExpiration"] == {"noncurrentDays": 30}
    shorter = synth(("kbsync", settings(bucket={"noncurrentVersionDays": 7, "objectRetentionDays": 400})))
    rules = shorter.named("kbsync-docs-lifecycle").inputs["rules"]
    assert rules[0]["noncurrentVersionExpiration"] == {"noncurrentDays": 7}
    assert rules[1] == {"id": "expire-objects", "status": "Enabled", "filter": {"prefix": ""},
                        "expiration": {"days": 400}}
    existing = synth(("kbsync", settings(bucket={"existingName": "corp-docs"})))
    assert existing.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration") == []
    with pytest.raises(ValueError, match="noncurrentVersionDays set with existingName corp-docs: the lifecycle of an "
                                         "existing bucket is its owner's"):
        settings(bucket={"existingName": "corp-docs", "noncurrentVersionDays": 7})


def test_schedule_mode_invokes_only_the_worker_with_retries_and_dlq() -> None:
    result = synth(("kbsync", settings(trigger="schedule", scheduleExpression="rate(2 hours)")))
    assert result.of_type("aws:s3/bucketNotification:BucketNotification") == []
    schedule = result.named("kbsync-schedule").inputs
    worker_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:ai-pipelines-test-kbsync-worker"
    assert schedule["scheduleExpression"] == "rate(2 hours)"
    assert schedule["target"]["arn"] == worker_arn
    assert schedule["target"]["retryPolicy"]["maximumRetryAttempts"] > 0
    assert schedule["target"]["deadLetterConfig"]["arn"].endswith(":ai-pipelines-test-kbsync-changes-dlq")
    granted = policy(result.named("kbsync-schedule-policy").inputs["policy"])
    assert granted["InvokeOnlyTheWorker"]["Resource"] == [worker_arn]
    assert granted["InvokeOnlyTheWorker"]["Action"] == ["lambda:InvokeFunction"]
    trust = json.loads(result.named("kbsync-schedule-role").inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    schedule_arn = trust["Condition"]["ArnLike"]["aws:SourceArn"]
    assert schedule_arn.endswith(":schedule/default/ai-pipelines-test-kbsync-schedule")


def test_two_pipelines_sharing_a_bucket_get_one_notification_configuration() -> None:
    shared = {"bucket": {"existingName": "corp-documents"}}
    result = synth(("kbhr", settings(documentPrefix="hr/", **shared)),
                   ("kblegal", settings(documentPrefix="legal/", **shared)))
    notifications = result.of_type("aws:s3/bucketNotification:BucketNotification")
    assert len(notifications) == 1
    assert notifications[0].inputs["bucket"] == "corp-documents"
    assert sorted(rule["filterPrefix"] for rule in notifications[0].inputs["queues"]) == ["hr/", "legal/"]
    assert result.of_type("aws:s3/bucket:Bucket") == []  # existing bucket: referenced, not created


def test_overlapping_prefixes_on_a_shared_bucket_fail_the_program_naming_both_pipelines() -> None:
    shared = {"bucket": {"existingName": "corp-documents"}}
    with pytest.raises((ConfigError, SynthesisError), match="overlaps that of kbhr"):
        synth(("kbhr", settings(documentPrefix="docs/", **shared)),
              ("kball", settings(documentPrefix="docs/legal/", **shared)))


def test_a_scheduled_run_that_fails_inside_the_function_reaches_an_alarmed_queue_of_its_own() -> None:
    result = synth(("kbsync", settings(trigger="schedule")))
    invoke_config = result.named("kbsync-schedule-failures").inputs
    failed_runs_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:ai-pipelines-test-kbsync-failed-runs"
    # Not the source queue's DLQ: Lambda's destination records are not messages the worker understands, so a
    # redrive of that DLQ (its documented recovery) must never carry them back to the source queue.
    assert invoke_config["destinationConfig"] == {"onFailure": {"destination": failed_runs_arn}}
    assert invoke_config["maximumRetryAttempts"] == 2
    queue = result.named("kbsync-failed-runs").inputs
    assert queue["name"] == "ai-pipelines-test-kbsync-failed-runs" and queue["sqsManagedSseEnabled"] is True
    assert queue["messageRetentionSeconds"] == 14 * 24 * 3600 and "redrivePolicy" not in queue
    alarm = result.named("kbsync-failed-runs-depth-alarm").inputs
    assert alarm["dimensions"] == {"QueueName": "ai-pipelines-test-kbsync-failed-runs"}
    assert (alarm["comparisonOperator"], alarm["threshold"]) == ("GreaterThanThreshold", 0) and alarm["alarmActions"]
    assert "DenyInsecureTransport" in policy(result.named("kbsync-failed-runs-policy").inputs["policy"])
    granted = policy(result.named("kbsync-worker-policy").inputs["policy"])
    assert granted["DeadLetterFailedScheduledRuns"]["Resource"] == [failed_runs_arn]
    # Ticks Scheduler could not deliver carry the schedule's own payload, which the source queue does accept.
    dlq_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:ai-pipelines-test-kbsync-changes-dlq"
    assert result.named("kbsync-schedule").inputs["target"]["deadLetterConfig"]["arn"] == dlq_arn
    events_only = synth(("kbsync", settings()))
    assert [r for r in events_only.of_type("aws:sqs/queue:Queue") if r.name == "kbsync-failed-runs"] == []
    assert json.loads(result.named("kbsync-schedule").inputs["target"]["input"])["scheduledTime"] == \
        "<aws.scheduler.scheduled-time>"
    events_only = policy(synth(("kbsync", settings())).named("kbsync-worker-policy").inputs["policy"])
    assert "DeadLetterFailedScheduledRuns" not in events_only
