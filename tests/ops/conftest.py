"""A deployed dev stack in moto: the queues, buckets, functions and alarms the program creates, named as the
offline synthesis of the shipped dev stack names them, and the outputs `pulumi stack output --json` would print."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from ops.aws import Clients
from ops.stack import StackOutputs
from tests.support.stacks import TEST_REGION, function_roles, shipped_stack


@pytest.fixture(autouse=True)
def _fake_aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": TEST_REGION}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@dataclass
class Deployed:
    outputs: StackOutputs
    outputs_file: Path
    clients: Clients
    resources: dict[str, Any]

    def client(self, service: str) -> Any:
        return self.clients(service)

    def queue_url(self, name: str) -> str:
        return str(self.client("sqs").get_queue_url(QueueName=name)["QueueUrl"])


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "def handler(event, context):\n    return None\n")
    return buffer.getvalue()


@pytest.fixture
def deployed(tmp_path: Path) -> Iterator[Deployed]:
    synthesis = shipped_stack("dev")
    with mock_aws():
        outputs = StackOutputs.parse(synthesis.outputs)
        clients = Clients(outputs.region)
        sqs, s3 = clients("sqs"), clients("s3")
        queues = synthesis.of_type("aws:sqs/queue:Queue")
        for queue in sorted(queues, key=lambda q: "redrivePolicy" in q.inputs):  # DLQs first
            attributes = {"RedrivePolicy": queue.inputs["redrivePolicy"]} if queue.inputs.get("redrivePolicy") else {}
            sqs.create_queue(QueueName=queue.inputs["name"], Attributes=attributes)
        for bucket in (outputs.value(p, k) for p, k in (("kbsync", "bucketName"), ("fileingest", "bucketName"),
                                                         ("batchinf", "inputBucket"), ("batchinf", "outputBucket"))):
            s3.create_bucket(Bucket=bucket)
        for config in synthesis.of_type("aws:s3/bucketNotification:BucketNotification"):
            s3.put_bucket_notification_configuration(Bucket=config.inputs["bucket"], NotificationConfiguration={
                "QueueConfigurations": [{"QueueArn": q["queueArn"], "Events": q["events"], "Filter": {"Key": {
                    "FilterRules": [{"Name": n, "Value": q[k]} for n, k in (("prefix", "filterPrefix"),
                                                                           ("suffix", "filterSuffix")) if q.get(k)]}}}
                    for q in config.inputs.get("queues", [])]})
        role = boto3.client("iam").create_role(RoleName="fn", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                    "Principal": {"Service": "lambda.amazonaws.com"}}]}))["Role"]["Arn"]
        for function in function_roles(synthesis):
            inputs = function.function.inputs
            clients("lambda").create_function(
                FunctionName=inputs["name"], Runtime="python3.12", Role=role, Handler="app.handler",
                Code={"ZipFile": _zip()},
                Environment={"Variables": dict(inputs.get("environment", {}).get("variables", {}))})
        for group in synthesis.of_type("aws:cloudwatch/logGroup:LogGroup"):
            clients("logs").create_log_group(logGroupName=group.inputs["name"])
        path = tmp_path / "outputs.json"
        path.write_text(json.dumps(dict(synthesis.outputs)), encoding="utf-8")
        yield Deployed(outputs, path, clients, {"alarms": synthesis.of_type("aws:cloudwatch/metricAlarm:MetricAlarm")})
