"""The Terraform-plan view of a stack (tools/terraform_plan.py), which checkov's terraform_plan rules read."""

from __future__ import annotations

from typing import Any

from tests.policies.builders import Stack, access_log_bucket, alarm_topic, data_bucket, queue_with_dlq, worker
from tools.terraform_plan import plan, terraform_type


def resources(stack: Stack) -> dict[str, dict[str, Any]]:
    return {r["address"]: r for r in plan(stack.records)["planned_values"]["root_module"]["resources"]}


def test_type_tokens_become_terraform_types() -> None:
    assert terraform_type("aws:s3/bucketLogging:BucketLogging") == "aws_s3_bucket_logging"
    assert terraform_type("aws:lambda/eventSourceMapping:EventSourceMapping") == "aws_lambda_event_source_mapping"
    assert terraform_type("aws:rds/instance:Instance") == "aws_db_instance"
    assert terraform_type("ai-pipelines:blocks:DataBucket") is None


def test_attributes_blocks_and_maps_follow_terraform() -> None:
    stack = Stack()
    topic = alarm_topic(stack)
    worker(stack, "worker", queue_with_dlq(stack, "jobs", topic), topic)
    data_bucket(stack, "data", versioned=True)
    found = resources(stack)
    function = found["aws_lambda_function.worker"]["values"]
    assert function["reserved_concurrent_executions"] == 2
    assert function["tracing_config"] == [{"mode": "Active"}]  # an object is a one-element block list
    assert function["tags"]["pipeline"] == "test"  # a map keeps its keys
    lifecycle = found["aws_s3_bucket_lifecycle_configuration.data_lifecycle"]["values"]
    assert lifecycle["rule"][0]["abort_incomplete_multipart_upload"] == [{"days_after_initiation": 7}]


def test_an_unreserved_function_is_planned_without_a_reservation() -> None:
    stack = Stack()
    topic = alarm_topic(stack)
    worker(stack, "worker", queue_with_dlq(stack, "jobs", topic), topic, function={"reservedConcurrentExecutions": -1})
    assert "reserved_concurrent_executions" not in resources(stack)["aws_lambda_function.worker"]["values"]


def test_property_dependencies_become_references() -> None:
    stack = Stack()
    access_log_bucket(stack, "logs", [data_bucket(stack, "data")])
    config = {r["address"]: r for r in plan(stack.records)["configuration"]["root_module"]["resources"]}
    expressions = config["aws_s3_bucket_logging.data_access_logging"]["expressions"]
    assert expressions["bucket"]["references"] == ["aws_s3_bucket.data.id", "aws_s3_bucket.data"]
    assert expressions["target_bucket"]["references"] == ["aws_s3_bucket.logs.id", "aws_s3_bucket.logs"]
