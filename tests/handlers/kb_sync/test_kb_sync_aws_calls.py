"""What the function asks of AWS, as the least-privilege check will see it, and the recorder itself."""

from __future__ import annotations

import json

import boto3
import pytest

from tests.handlers.kb_sync.names import (
    ACCOUNT,
    DELAY_SECONDS,
    ENVIRONMENT,
    FUNCTION,
    KNOWLEDGE_BASE_ID,
    PREFIX,
    QUEUE,
    REGION,
)
from tests.support.aws_calls import RESOLVERS, AwsCall, CallRegistry, recording, resource_arns

# The job path: every change through StartIngestionJob (direct ingestion has its own tests).
pytestmark = pytest.mark.usefixtures("jobs_mode")

START = AwsCall(
    "bedrock-agent", "StartIngestionJob", f"arn:aws:bedrock:{REGION}:{ACCOUNT}:knowledge-base/{KNOWLEDGE_BASE_ID}"
)
FOLLOW_UP = AwsCall("sqs", "SendMessage", f"arn:aws:sqs:{REGION}:{ACCOUNT}:{QUEUE}")
LIST_RUNNING = AwsCall(
    "bedrock-agent", "ListIngestionJobs", f"arn:aws:bedrock:{REGION}:{ACCOUNT}:knowledge-base/{KNOWLEDGE_BASE_ID}"
)
CHECK = FOLLOW_UP  # a job check is a message on the same queue


def test_the_function_calls_exactly_start_list_and_send_message(
    pipeline, event_source, bedrock, clock, invoke
):
    bedrock.start_elsewhere()
    pipeline.put(f"{PREFIX}doc.pdf")
    event_source.poll(raise_errors=True)  # conflict: a follow-up is sent
    bedrock.finish_running_job()
    clock.advance(DELAY_SECONDS + 1)
    event_source.poll(raise_errors=True)  # the follow-up starts the job, and its first check is sent

    # Receiving and deleting is the event source's job, not the code's. The running job started before the change,
    # so it does not cover it.
    assert invoke.calls == [START, LIST_RUNNING, FOLLOW_UP, START, CHECK]


def test_the_tests_own_setup_is_not_recorded(aws, aws_calls):
    registry = CallRegistry()
    sqs = boto3.client("sqs", region_name=REGION)
    sqs.create_queue(QueueName="setup-only")
    with aws_calls("probe", registry=registry) as calls:
        sqs.get_queue_url(QueueName="setup-only")

    assert calls == [AwsCall("sqs", "GetQueueUrl", f"arn:aws:sqs:{REGION}:{ACCOUNT}:setup-only")]
    assert registry.summary("probe") == [{**vars(calls[0]), "count": 1}]


def test_the_registry_writes_one_sorted_document_per_function(tmp_path):
    registry = CallRegistry()
    for call in (FOLLOW_UP, START, START):
        registry.record(FUNCTION, call)

    (path,) = registry.write(tmp_path)

    assert path.name == f"{FUNCTION}.json"
    assert json.loads(path.read_text()) == {
        "function": FUNCTION,
        "environment": {},
        "calls": [{**vars(START), "count": 2}, {**vars(FOLLOW_UP), "count": 1}],
    }


def test_resource_arns_of_common_requests():
    def arns(service, **params):
        return resource_arns(service, params, region="eu-west-1", account="111122223333")

    assert arns("sqs", QueueUrl="https://sqs.eu-west-1.amazonaws.com/444455556666/q") == [
        "arn:aws:sqs:eu-west-1:444455556666:q"
    ]
    assert arns("bedrock-agent", knowledgeBaseId="KB1", dataSourceId="DS1") == [
        "arn:aws:bedrock:eu-west-1:111122223333:knowledge-base/KB1"
    ]
    assert arns("s3", Bucket="b", Key="k/x y") == ["arn:aws:s3:::b/k/x y"]
    assert arns("s3", Bucket="b") == ["arn:aws:s3:::b"]
    assert arns("dynamodb", RequestItems={"t1": [], "t2": []}) == [
        "arn:aws:dynamodb:eu-west-1:111122223333:table/t1",
        "arn:aws:dynamodb:eu-west-1:111122223333:table/t2",
    ]
    assert arns("events", Entries=[{"EventBusName": "results"}, {}]) == [
        "arn:aws:events:eu-west-1:111122223333:event-bus/default",
        "arn:aws:events:eu-west-1:111122223333:event-bus/results",
    ]
    assert arns("states", stateMachineArn="arn:aws:states:eu-west-1:1:stateMachine:m", input="{}") == [
        "arn:aws:states:eu-west-1:1:stateMachine:m"
    ]
    assert arns("sts") == []
    assert resource_arns("sqs", {"QueueName": "q"}, region="cn-north-1", account="1") == [
        "arn:aws-cn:sqs:cn-north-1:1:q"
    ]


def test_a_resolver_can_be_registered_for_another_service(monkeypatch):
    monkeypatch.setitem(RESOLVERS, "secretsmanager", lambda params, *_: [f"secret:{params['SecretId']}"])

    assert resource_arns("secretsmanager", {"SecretId": "db"}, region=REGION, account=ACCOUNT) == ["secret:db"]


def test_calls_translate_to_another_stacks_configuration():
    registry = CallRegistry()
    with recording(FUNCTION, environment=ENVIRONMENT, registry=registry):
        pass
    registry.record(FUNCTION, START)
    registry.record(FUNCTION, FOLLOW_UP)
    prod = {
        **ENVIRONMENT,
        "KNOWLEDGE_BASE_ID": "KBPRD00001",
        "FOLLOW_UP_QUEUE_URL": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/ai-pipelines-prod-kbsync-changes",
    }

    assert [call.resource for call in registry.calls_under(FUNCTION, prod)] == [
        f"arn:aws:bedrock:{REGION}:{ACCOUNT}:knowledge-base/KBPRD00001",
        f"arn:aws:sqs:{REGION}:{ACCOUNT}:ai-pipelines-prod-kbsync-changes",
    ]
    assert registry.calls_under(FUNCTION, ENVIRONMENT) == [START, FOLLOW_UP]
