"""The boto3 clients, created on first use and reused for the life of the execution environment.

Created lazily, not at import, so tests can install moto or a botocore ``Stubber`` first; ``reset()`` drops them
between tests. Timeouts and SDK retries are bounded: the model client makes one attempt per call because
``batch_inference.backoff`` owns that retry policy; the others leave transient retries to the SDK's standard mode
and everything beyond to Step Functions, SQS or the schedule.
"""

from __future__ import annotations

import functools
from typing import Any

from botocore.config import Config

from common.aws_clients import new_client
from common.bedrock import runtime_client as bedrock_runtime

_CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"mode": "standard", "max_attempts": 3},
                 max_pool_connections=32)


@functools.cache
def s3() -> Any:
    return new_client("s3", _CONFIG)


@functools.cache
def sqs() -> Any:
    return new_client("sqs", _CONFIG)


@functools.cache
def dynamodb() -> Any:
    return new_client("dynamodb", _CONFIG)


@functools.cache
def bedrock() -> Any:
    return new_client("bedrock", _CONFIG)


@functools.cache
def stepfunctions() -> Any:
    return new_client("stepfunctions", _CONFIG)


@functools.cache
def events() -> Any:
    return new_client("events", _CONFIG)


def reset() -> None:
    """Forget the clients so the next call creates new ones (for tests)."""
    for cached in (s3, sqs, dynamodb, bedrock, stepfunctions, events, bedrock_runtime):
        cached.cache_clear()
