from __future__ import annotations

import time
from datetime import UTC, datetime

import boto3
import pytest
from botocore.stub import ANY, Stubber
from conftest import Deployed

from ops.__main__ import main

KB, DS = "KBDEV00001", "DSDEV00001"  # the dev stack's ids, read from the worker's environment


def job(status: str, job_id: str = "JOB0000001") -> dict[str, object]:
    return {"knowledgeBaseId": KB, "dataSourceId": DS, "ingestionJobId": job_id, "status": status,
            "startedAt": datetime(2026, 1, 1, tzinfo=UTC), "updatedAt": datetime(2026, 1, 1, tzinfo=UTC),
            "statistics": {"numberOfNewDocumentsIndexed": 2}}


def listing(*jobs: dict[str, object]) -> tuple[str, dict[str, object], dict[str, object]]:
    return ("list_ingestion_jobs", {"ingestionJobSummaries": list(jobs)},
            {"knowledgeBaseId": KB, "dataSourceId": DS, "sortBy": {"attribute": "STARTED_AT", "order": "DESCENDING"},
             "maxResults": ANY})


@pytest.fixture
def agent(deployed: Deployed) -> Stubber:
    client = boto3.client("bedrock-agent", region_name="us-east-1")
    deployed.clients._clients["bedrock-agent"] = client
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def test_resync_starts_an_ingestion_job_of_the_stacks_knowledge_base(deployed: Deployed, agent: Stubber,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    agent.add_response(*listing(job("COMPLETE")))
    agent.add_response("start_ingestion_job", {"ingestionJob": {**job("STARTING", "JOB0000002")}},
                       {"knowledgeBaseId": KB, "dataSourceId": DS, "clientToken": ANY, "description": ANY})
    assert main(["resync", "--outputs", str(deployed.outputs_file), "--yes"], clients=deployed.clients) == 0
    assert "started ingestion job JOB0000002 (STARTING)" in capsys.readouterr().out


def test_resync_meets_a_running_job_and_says_so(deployed: Deployed, agent: Stubber,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    agent.add_response(*listing(job("IN_PROGRESS")))
    agent.add_client_error("start_ingestion_job", service_error_code="ConflictException", http_status_code=409,
                           service_message="an ingestion job is in progress")
    agent.add_response(*listing(job("IN_PROGRESS")))
    assert main(["resync", "--outputs", str(deployed.outputs_file), "--yes"], clients=deployed.clients) == 3
    out = capsys.readouterr().out
    assert "not started: an ingestion job is already running" in out
    assert "running: JOB0000001 IN_PROGRESS" in out


def test_resync_dry_run_starts_nothing(deployed: Deployed, agent: Stubber, capsys: pytest.CaptureFixture[str]) -> None:
    agent.add_response(*listing(job("IN_PROGRESS")))
    assert main(["resync", "--outputs", str(deployed.outputs_file), "--dry-run"], clients=deployed.clients) == 0
    assert "one is running: Bedrock would refuse" in capsys.readouterr().out


def test_status_shows_alarms_with_their_answer_depths_ages_runs_and_jobs(deployed: Deployed, agent: Stubber,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    cloudwatch, sqs = deployed.client("cloudwatch"), deployed.client("sqs")
    for alarm in deployed.resources["alarms"]:
        inputs = alarm.inputs
        # A metric-math alarm (the state machine's, over three metrics) is put with its first metric: status reads
        # alarms by name and state only.
        metric = inputs.get("metricQueries", [{}])[0].get("metric", {})
        cloudwatch.put_metric_alarm(AlarmName=inputs["name"], MetricName=inputs.get("metricName", metric.get(
                                        "metricName")), Namespace=inputs.get("namespace", metric.get("namespace")),
                                    Statistic=inputs.get("statistic", metric.get("stat")), Period=60,
                                    EvaluationPeriods=1, Threshold=float(inputs["threshold"]),
                                    ComparisonOperator=inputs["comparisonOperator"])
    cloudwatch.set_alarm_state(AlarmName="ai-pipelines-dev-kbsync-changes-dlq-depth", StateValue="ALARM",
                               StateReason="Threshold Crossed: 1 datapoint [2.0]")
    cloudwatch.set_alarm_state(AlarmName="ai-pipelines-dev-batchinf-runs-failed", StateValue="ALARM",
                               StateReason="Threshold Crossed")
    sqs.send_message(QueueUrl=deployed.queue_url("ai-pipelines-dev-kbsync-changes-dlq"), MessageBody="{}")
    cloudwatch.put_metric_data(Namespace="AWS/SQS", MetricData=[{
        "MetricName": "ApproximateAgeOfOldestMessage", "Value": 1234.0, "Timestamp": datetime.now(UTC),
        "Dimensions": [{"Name": "QueueName", "Value": "ai-pipelines-dev-kbsync-changes"}]}])
    agent.add_response(*listing(job("IN_PROGRESS")))

    assert main(["status", "--outputs", str(deployed.outputs_file), "--pipeline", "kbsync"],
                clients=deployed.clients) == 0
    out = capsys.readouterr().out
    assert "alarms in ALARM: 1" in out  # the batch alarm belongs to another pipeline
    assert ("ai-pipelines-dev-kbsync-changes-dlq-depth since" in out
            and "-> python -m ops redrive --pipeline kbsync --lane changes-dlq" in out)
    assert "ai-pipelines-dev-kbsync-changes: 1 waiting, 0 in flight, 0 delayed; oldest 1234 s" in out  # S3's test event
    assert "ai-pipelines-dev-kbsync-changes-dlq: 1 waiting" in out
    assert "JOB0000001 IN_PROGRESS" in out
    region = deployed.outputs.region
    assert (f"dashboard: ai-pipelines-dev-kbsync-dashboard https://{region}.console.aws.amazon.com/cloudwatch/home"
            f"?region={region}#dashboards/dashboard/ai-pipelines-dev-kbsync-dashboard") in out


def test_status_lists_the_runs_in_progress(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    sfn = deployed.client("stepfunctions")
    machine = deployed.outputs.value("batchinf", "stateMachineArn")
    sfn.create_state_machine(name=machine.rsplit(":", 1)[1], definition='{"StartAt": "A", "States": {"A": '
                             '{"Type": "Pass", "End": true}}}', roleArn="arn:aws:iam::123456789012:role/sfn")
    sfn.start_execution(stateMachineArn=machine, name="run-2026-06-27", input="{}")
    time.sleep(0)
    assert main(["status", "--outputs", str(deployed.outputs_file), "--pipeline", "batchinf"],
                clients=deployed.clients) == 0
    out = capsys.readouterr().out
    assert "runs in progress: 1" in out and "run-2026-06-27 started" in out
    assert out.count("ai-pipelines-dev-batchinf-") >= 8
