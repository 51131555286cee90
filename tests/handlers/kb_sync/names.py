"""Names and configuration shared by the kb_sync tests and their fixtures.

The function's environment is the one the shipped dev stack gives it (synthesized offline in moto's account and
region), so the handler is tested with exactly its real configuration, and the calls it makes name the very
resources its role is granted on.
"""

from __future__ import annotations

from urllib.parse import urlparse

from tests.support.stacks import function_environment

FUNCTION = "kb_sync"  # the handler package; the infrastructure's function runs kb_sync.app.handler
ENVIRONMENT = function_environment(FUNCTION, "dev")

KNOWLEDGE_BASE_ID = ENVIRONMENT["KNOWLEDGE_BASE_ID"]
DATA_SOURCE_ID = ENVIRONMENT["DATA_SOURCE_ID"]
QUEUE_URL = ENVIRONMENT["FOLLOW_UP_QUEUE_URL"]
ACCOUNT, QUEUE = urlparse(QUEUE_URL).path.strip("/").split("/")
REGION = urlparse(QUEUE_URL).hostname.split(".")[1]
DELAY_SECONDS = int(ENVIRONMENT["FOLLOW_UP_DELAY_SECONDS"])

# The handler rejects notifications of any other bucket or prefix, so the tests use the stack's.
BUCKET = ENVIRONMENT["DOCUMENT_BUCKET"]
PREFIX = ENVIRONMENT["DOCUMENT_PREFIX"]
DLQ = f"{QUEUE}-dlq"
MAX_RECEIVE_COUNT = 3
