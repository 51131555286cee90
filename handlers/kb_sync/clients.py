"""The boto3 clients, created on first use and then reused for the life of the execution environment.

Created lazily, not at import, so tests can install moto or a botocore ``Stubber`` first; ``reset()`` drops
them between tests. Timeouts and retries are bounded so a slow dependency fails the invocation well inside the
function timeout, leaving the retry to SQS.
"""

from __future__ import annotations

import functools
from typing import Any

from botocore.config import Config

from common.aws_clients import new_client

_CONFIG = Config(
    connect_timeout=5,
    read_timeout=15,
    retries={"mode": "standard", "max_attempts": 3},
)


@functools.cache
def bedrock_agent() -> Any:
    return new_client("bedrock-agent", _CONFIG)


@functools.cache
def sqs() -> Any:
    return new_client("sqs", _CONFIG)


@functools.cache
def s3() -> Any:
    return new_client("s3", _CONFIG)


def reset() -> None:
    """Forget the clients so the next call creates new ones (for tests)."""
    bedrock_agent.cache_clear()
    sqs.cache_clear()
    s3.cache_clear()
