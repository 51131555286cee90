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
}
