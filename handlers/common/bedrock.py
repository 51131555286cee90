"""The Bedrock runtime client of the handlers that call a model, one per execution environment and settings.

One attempt per call: each handler's own backoff owns the retry policy (with its time budget in view), so the SDK
must not retry underneath it. One connection per call that may run at the same time.
"""

from __future__ import annotations

import functools
from typing import Any

from botocore.config import Config

from common.aws_clients import new_client


@functools.cache
def runtime_client(read_timeout_seconds: int, connections: int) -> Any:
    config = Config(connect_timeout=5, read_timeout=read_timeout_seconds,
                    retries={"mode": "standard", "max_attempts": 1}, max_pool_connections=max(10, connections))
    return new_client("bedrock-runtime", config)
