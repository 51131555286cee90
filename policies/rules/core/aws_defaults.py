"""What AWS uses when a property is absent, so a rule judges the value the resource will really have."""

from __future__ import annotations

from typing import Final

SQS_VISIBILITY_TIMEOUT_SECONDS: Final = 30
SQS_MESSAGE_RETENTION_SECONDS: Final = 345_600  # 4 days
LAMBDA_TIMEOUT_SECONDS: Final = 3
SQS_MAPPING_BATCH_SIZE: Final = 10
MAPPING_BATCHING_WINDOW_SECONDS: Final = 0
STATE_MACHINE_TYPE: Final = "STANDARD"
# Lambda reports an unreserved function as -1 (and a program may leave the property out).
UNRESERVED_CONCURRENCY: Final = -1
