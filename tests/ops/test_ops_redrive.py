from __future__ import annotations

import json
import time

import pytest
from conftest import Deployed
from stubs import PartialStub

from ops.__main__ import main

KB_DLQ = "ai-pipelines-dev-kbsync-changes-dlq"
KB_SOURCE_ARN = "arn:aws:sqs:us-east-1:123456789012:ai-pipelines-dev-kbsync-changes"
KB_DLQ_ARN = f"{KB_SOURCE_ARN}-dlq"


def s3_event(key: str) -> str:
    return json.dumps({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put",
                                    "s3": {"bucket": {"name": "docs"}, "object": {"key": key}}}]})


def dead_letter_three(deployed: Deployed) -> list[str]:
    sqs, url = deployed.client("sqs"), deployed.queue_url(KB_DLQ)
    ids = [sqs.send_message(QueueUrl=url, MessageBody=s3_event(f"documents/{n}.pdf"))["MessageId"] for n in range(3)]
    logs, group = deployed.client("logs"), "/aws/lambda/ai-pipelines-dev-kbsync-worker"
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    logs.put_log_events(logGroupName=group, logStreamName="s", logEvents=[{"timestamp": int(time.time() * 1000),
        "message": json.dumps({"level": "ERROR", "message": "Rejected message; reported as a batch item failure",
                               "messageId": ids[0], "reason": "invalid-fields", "detail": "Records.0.s3: missing"})}])
    return ids


def visible(deployed: Deployed, name: str) -> int:
    return int(deployed.client("sqs").get_queue_attributes(QueueUrl=deployed.queue_url(name), AttributeNames=[
        "ApproximateNumberOfMessages"])["Attributes"]["ApproximateNumberOfMessages"])


def test_redrive_shows_the_count_and_why_then_starts_sqs_own_move_task(deployed: Deployed,
                                                                        capsys: pytest.CaptureFixture[str]) -> None:
    ids = dead_letter_three(deployed)
    stub = PartialStub(deployed.client("sqs"))
    stub.add_response("ListMessageMoveTasks", {"Results": []})
    stub.add_response("StartMessageMoveTask", {"TaskHandle": "handle-1"})

    code = main(["redrive", "--outputs", str(deployed.outputs_file), "--pipeline", "kbsync", "--yes"],
                clients=deployed.clients)

    out = capsys.readouterr().out
    assert code == 0
    assert f"{KB_DLQ}: 3 waiting" in out
    assert f"{ids[0]}: S3 notification: ObjectCreated:Put s3://docs/documents/0.pdf" in out
    assert "Rejected message; reported as a batch item failure (reason=invalid-fields" in out
    assert stub.called("StartMessageMoveTask") == [{"SourceArn": KB_DLQ_ARN, "DestinationArn": KB_SOURCE_ARN}]
    assert "handle-1" in out
    assert visible(deployed, KB_DLQ) == 3  # the sample was peeked, not consumed


def test_a_dry_run_or_a_no_moves_nothing(deployed: Deployed, monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    dead_letter_three(deployed)
    stub = PartialStub(deployed.client("sqs"))  # no responses: any move-task call fails the test
    stub.add_response("ListMessageMoveTasks", {"Results": []})
    arguments = ["redrive", "--outputs", str(deployed.outputs_file), "--pipeline", "kbsync"]
    assert main([*arguments, "--dry-run"], clients=deployed.clients) == 0
    assert "dry run: would move 3 message(s)" in capsys.readouterr().out
    monkeypatch.setattr("ops.confirm.ask", lambda question: "n")
    assert main(arguments, clients=deployed.clients) == 1
    assert stub.called("StartMessageMoveTask") == [] and stub.called("ListMessageMoveTasks") == []


def test_a_move_task_already_running_is_reported_not_doubled(deployed: Deployed,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    dead_letter_three(deployed)
    stub = PartialStub(deployed.client("sqs"))
    stub.add_response("ListMessageMoveTasks", {"Results": [{
        "TaskHandle": "h", "Status": "RUNNING", "SourceArn": KB_DLQ_ARN, "ApproximateNumberOfMessagesMoved": 1,
        "ApproximateNumberOfMessagesToMove": 3, "StartedTimestamp": 1}]})
    code = main(["redrive", "--outputs", str(deployed.outputs_file), "--pipeline", "kbsync", "--yes", "--rate", "5"],
                clients=deployed.clients)
    assert code == 3
    assert "already running (1 of 3 moved)" in capsys.readouterr().out
    assert stub.called("StartMessageMoveTask") == []


def test_events_eventbridge_could_not_deliver_go_to_the_work_queue_without_its_error_attributes(
        deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    sqs = deployed.client("sqs")
    event = json.dumps({"id": "e-1", "source": "com.example.documents", "detail-type": "DocumentSubmitted",
                        "detail": {"itemId": "doc-1", "content": "x"}})
    for _ in range(12):
        sqs.send_message(QueueUrl=deployed.queue_url("ai-pipelines-dev-eventproc-intake-undelivered"),
                         MessageBody=event, MessageAttributes={
                             "ERROR_CODE": {"DataType": "String", "StringValue": "SQS_NOT_AUTHORIZED"},
                             "ERROR_MESSAGE": {"DataType": "String", "StringValue": "queue policy denies"}})

    code = main(["redrive", "--outputs", str(deployed.outputs_file), "--pipeline", "eventproc",
                 "--lane", "intake-undelivered", "--yes"], clients=deployed.clients)

    out = capsys.readouterr().out
    assert code == 0
    assert "event: com.example.documents / DocumentSubmitted id e-1" in out
    assert "SQS_NOT_AUTHORIZED: queue policy denies" in out
    assert "moved 12 message(s) to ai-pipelines-dev-eventproc-work" in out
    assert visible(deployed, "ai-pipelines-dev-eventproc-intake-undelivered") == 0
    moved = sqs.receive_message(QueueUrl=deployed.queue_url("ai-pipelines-dev-eventproc-work"),
                                MaxNumberOfMessages=10, MessageAttributeNames=["All"])["Messages"]
    assert {m["Body"] for m in moved} == {event}
    assert all("MessageAttributes" not in m for m in moved)


def test_an_empty_pipeline_has_nothing_to_redrive(deployed: Deployed, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["redrive", "--outputs", str(deployed.outputs_file), "--pipeline", "batchinf"],
                clients=deployed.clients) == 0
    out = capsys.readouterr().out
    assert out.count(" waiting, ") == 5 and "nothing to redrive" in out


def test_the_move_task_stub_answers_only_shapes_botocore_accepts(deployed: Deployed) -> None:
    from botocore.exceptions import ParamValidationError

    with pytest.raises(ParamValidationError):
        PartialStub(deployed.client("sqs")).add_response("StartMessageMoveTask", {"TaskHandle": 42})
