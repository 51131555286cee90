"""Direct invocations: EventBridge Scheduler's payload, and anything else that is not an SQS batch."""

from __future__ import annotations

import json

import pytest

from kb_sync.exceptions import FollowUpsExhaustedError, UnrecognisedInvocationError
from kb_sync.messages import SCHEDULE_PAYLOAD_TEMPLATE
from tests.handlers.kb_sync.names import DELAY_SECONDS, ENVIRONMENT, KNOWLEDGE_BASE_ID, PREFIX

# The job path: every change through StartIngestionJob (direct ingestion has its own tests).
pytestmark = pytest.mark.usefixtures("jobs_mode")

TICK = {"source": "schedule", "scheduledTime": "2025-01-01T10:00:00Z"}


def test_a_schedule_tick_starts_a_job(pipeline, bedrock, invoke):
    answer = invoke(TICK)

    assert answer == {"outcome": "covered-by-job", "ingestionJobId": bedrock.jobs[0]["ingestionJobId"]}
    assert bedrock.requests[0]["description"] == "kb-sync: scheduled run 2025-01-01T10:00:00Z"


def test_a_retried_tick_starts_no_second_job(pipeline, bedrock, invoke):
    first, retry = invoke(TICK), invoke(TICK)

    assert first == retry and len(bedrock.jobs) == 1
    assert bedrock.tokens[0] == bedrock.tokens[1]


def test_the_next_tick_is_a_new_run(pipeline, bedrock, invoke):
    invoke(TICK)
    bedrock.finish_running_job()
    invoke({**TICK, "scheduledTime": "2025-01-01T11:00:00Z"})

    assert len(bedrock.jobs) == 2


def test_the_bare_payload_falls_back_to_the_request_id(pipeline, bedrock, invoke, lambda_context_factory):
    context = lambda_context_factory()
    invoke({"source": "schedule"}, context)
    invoke({"source": "schedule"}, context)  # a retry that reuses the request id

    assert len(bedrock.jobs) == 1 and bedrock.requests[0]["description"].endswith(context.aws_request_id)


def test_the_documented_payload_template_is_a_valid_tick(pipeline, bedrock, invoke):
    payload = json.loads(SCHEDULE_PAYLOAD_TEMPLATE.replace("<aws.scheduler.scheduled-time>", "2025-01-01T12:00:00Z"))

    assert invoke(payload)["outcome"] == "covered-by-job"


def test_a_tick_during_a_running_job_sends_a_follow_up(pipeline, event_source, bedrock, invoke, clock):
    bedrock.start_elsewhere()

    answer = invoke(TICK)

    assert answer["outcome"] == "carried-by-follow-up"
    bedrock.finish_running_job()
    clock.advance(DELAY_SECONDS + 1)
    delivery = event_source.poll(raise_errors=True)
    assert [json.loads(r["body"])["generation"] for r in delivery.event["Records"] if "source" in r["body"]] == [1]
    assert len(bedrock.jobs) == 2


def test_a_tick_with_no_follow_up_allowed_fails_for_the_schedules_retry_and_dlq(pipeline, bedrock, invoke, configure):
    configure(max_follow_ups=0)
    bedrock.start_elsewhere()

    with pytest.raises(FollowUpsExhaustedError, match=KNOWLEDGE_BASE_ID):
        invoke(TICK)


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"source": "aws.events", "detail-type": "Scheduled Event"},
        {"source": "schedule", "scheduledTime": 12},
        {"Records": [{"eventSource": "aws:s3", "s3": {}}]},  # S3 wired straight to the function
        [],
        "schedule",
        None,
    ],
)
def test_an_unrecognised_invocation_fails_naming_the_knowledge_base(pipeline, bedrock, invoke, logs, event):
    with pytest.raises(UnrecognisedInvocationError, match=KNOWLEDGE_BASE_ID):
        invoke(event)

    assert bedrock.requests == []
    (failed,) = logs.named("Invocation failed")
    assert failed["errorType"] == "UnrecognisedInvocationError"


def test_metrics_count_what_happened(pipeline, event_source, bedrock, capsys):
    pipeline.put(f"{PREFIX}a.pdf")
    pipeline.delete(f"{PREFIX}a.pdf")
    event_source.poll(raise_errors=True)

    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    (blob,) = emitted
    assert blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] == ENVIRONMENT["POWERTOOLS_METRICS_NAMESPACE"]
    assert {name: blob[name] for name in ("ObjectsCreated", "ObjectsRemoved", "MessagesSkipped")} == {
        "ObjectsCreated": [1.0],
        "ObjectsRemoved": [1.0],
        "MessagesSkipped": [1.0],
    }
    assert blob["IngestionJobsStarted"] == [1.0]
