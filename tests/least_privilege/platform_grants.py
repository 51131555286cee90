"""Granted actions that no handler code calls, each with the reason it is granted anyway. The one place."""

from __future__ import annotations

PLATFORM_GRANTS: dict[str, str] = {
    "sqs:ReceiveMessage": "Lambda's SQS event source mapping polls the queue with the function's role",
    "sqs:DeleteMessage": "the event source mapping deletes the messages a batch processed successfully",
    "sqs:GetQueueAttributes": "the event source mapping reads the queue's attributes when it is created",
    "logs:CreateLogStream": "the Lambda runtime creates the function's log streams with its role",
    "logs:PutLogEvents": "the Lambda runtime writes the function's logs with its role",
    "xray:PutTraceSegments": "active tracing: the Lambda runtime sends trace segments with the function's role",
    "xray:PutTelemetryRecords": "active tracing: the Lambda runtime sends X-Ray telemetry with the function's role",
    "iam:PassRole": "no API of its own: CreateModelInvocationJob names the batch service role, which the caller must "
                    "be allowed to pass (only that role, only to bedrock.amazonaws.com)",
    # A function in a VPC: Lambda creates, describes and deletes its network interfaces with the function's role.
    "ec2:CreateNetworkInterface": "VPC function: Lambda creates the function's network interfaces in its subnets",
    "ec2:DescribeNetworkInterfaces": "VPC function: Lambda looks up the function's network interfaces",
    "ec2:DescribeSubnets": "VPC function: Lambda reads the configured subnets when it places the interfaces",
    "ec2:DeleteNetworkInterface": "VPC function: Lambda deletes network interfaces the function no longer uses",
    "ec2:AssignPrivateIpAddresses": "VPC function: Lambda assigns addresses to the function's network interfaces",
    "ec2:UnassignPrivateIpAddresses": "VPC function: Lambda releases addresses of the function's network interfaces",
}
