"""Names and configuration shared by the kb_sync tests and their fixtures."""

from __future__ import annotations

FUNCTION = "kb_sync"  # the handler package; the infrastructure's function runs kb_sync.app.handler
KNOWLEDGE_BASE_ID = "KB12345678"
DATA_SOURCE_ID = "DS12345678"
BUCKET = "kb-docs-bucket"
PREFIX = "docs/"
QUEUE = "kb-sync-changes"
DLQ = "kb-sync-changes-dlq"
MAX_RECEIVE_COUNT = 3
ACCOUNT = "123456789012"  # moto's default account
REGION = "us-east-1"
QUEUE_URL = f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{QUEUE}"

# The function's environment, as the infrastructure sets it.
ENVIRONMENT = {
    "KNOWLEDGE_BASE_ID": KNOWLEDGE_BASE_ID,
    "DATA_SOURCE_ID": DATA_SOURCE_ID,
    "FOLLOW_UP_QUEUE_URL": QUEUE_URL,
    "FOLLOW_UP_DELAY_SECONDS": "300",
    "MAX_FOLLOW_UPS": "6",
    "POWERTOOLS_SERVICE_NAME": "kb-sync-tests",
    "POWERTOOLS_METRICS_NAMESPACE": "ai-pipelines-tests",
    "LOG_LEVEL": "INFO",
}
