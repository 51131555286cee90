"""The hand-off from batch inference: a BatchRunCompleted on the result bus, matched by the rule the component builds
and delivered by EventBridge to the pipeline's queue (moto), starts one sync like any other request."""

from __future__ import annotations

import json

import boto3
import pytest

from components.pipelines.knowledge_base_sync import BATCH_RUN_COMPLETED, batch_results_pattern
from tests.handlers.kb_sync.names import BUCKET, PREFIX, REGION

SOURCE = "ai-pipelines.batch-inference"
BUS = "ai-pipelines-dev-batchinf-results"


@pytest.fixture
def result_bus(pipeline):
    """The batch-inference result bus with the rule the component builds, targeting the pipeline's queue."""
    events = boto3.client("events", region_name=REGION)
    events.create_event_bus(Name=BUS)
    events.put_rule(Name="kbsync-batch-results", EventBusName=BUS,
                    EventPattern=json.dumps(batch_results_pattern(SOURCE, BUCKET, PREFIX)))
    queue_arn = pipeline.sqs.get_queue_attributes(QueueUrl=pipeline.queue_url,
                                                  AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_targets(Rule="kbsync-batch-results", EventBusName=BUS, Targets=[{"Id": "queue", "Arn": queue_arn}])

    def publish(run_id: str, status: str = "SUCCEEDED", bucket: str = BUCKET,
                results: str = f"{PREFIX}batch/") -> None:
        detail = {"runId": run_id, "status": status, "mode": "batch",
                  "output": {"bucket": bucket, "resultsPrefix": f"{results}{run_id}/"}}
        answer = events.put_events(Entries=[{"EventBusName": BUS, "Source": SOURCE, "DetailType": BATCH_RUN_COMPLETED,
                                             "Detail": json.dumps(detail)}])
        assert answer["FailedEntryCount"] == 0

    return publish


def test_a_successful_run_under_the_prefix_starts_one_job(pipeline, event_source, bedrock, result_bus, logs):
    event_source.receive()  # S3's test event, out of the way
    result_bus("run-1")
    result_bus("run-1")  # EventBridge delivers at least once: a copy of the same run's event

    delivery = event_source.poll(raise_errors=True)

    assert len(delivery.message_ids) == 2 and delivery.failed_ids == []
    assert len(bedrock.jobs) == 1 and bedrock.called("IngestKnowledgeBaseDocuments") == []
    assert logs.named("Batch settled")[-1]["outcomes"] == {"covered-by-job": 2}


def test_the_copies_of_one_run_s_event_share_a_client_token(pipeline, event_source, bedrock, result_bus, clock):
    event_source.receive()
    event_source.batch_size = 1
    result_bus("run-1")
    result_bus("run-1")
    event_source.poll(raise_errors=True)
    bedrock.finish_running_job()
    event_source.poll(raise_errors=True)

    assert len(bedrock.requests) == 2 and bedrock.tokens[0] == bedrock.tokens[1] and len(bedrock.jobs) == 1


def test_failed_runs_and_results_elsewhere_never_reach_the_queue(pipeline, event_source, bedrock, result_bus):
    event_source.receive()
    result_bus("run-2", status="FAILED")
    result_bus("run-3", results="elsewhere/")
    result_bus("run-4", bucket="another-bucket")

    assert event_source.poll() is None and bedrock.requests == []


def test_a_forged_run_event_sent_straight_to_the_queue_is_rejected_alone(pipeline, event_source, bedrock):
    event_source.receive()
    forged = {"version": "0", "id": "1", "detail-type": BATCH_RUN_COMPLETED, "source": SOURCE, "detail": {
        "runId": "run-5", "status": "SUCCEEDED", "output": {"bucket": "another-bucket", "resultsPrefix": PREFIX}}}
    pipeline.send(json.dumps(forged))

    delivery = event_source.poll()

    assert delivery.failed_ids == delivery.message_ids and bedrock.requests == []
