"""The boto3 clients and the idempotency store, created on first use and reused for the execution environment.

Created lazily, not at import, so tests can install moto or a botocore ``Stubber`` first; ``reset()`` drops
them between tests. The model client makes a single attempt per call (``common.retry`` owns the retry
policy, with the time budget in view) and keeps a connection per concurrently processed record.
"""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools.utilities.idempotency import DynamoDBPersistenceLayer
from botocore.config import Config

from common.aws_clients import new_client
from common.bedrock import runtime_client as bedrock_runtime
from event_processor.config import Settings

_AWS_CONFIG = Config(connect_timeout=5, read_timeout=10, retries={"mode": "standard", "max_attempts": 3},
                     max_pool_connections=20)


@functools.cache
def dynamodb() -> Any:
    return new_client("dynamodb", _AWS_CONFIG)


@functools.cache
def events() -> Any:
    return new_client("events", _AWS_CONFIG)


def idempotency_store(table: str) -> DynamoDBPersistenceLayer:
    """A persistence layer for one idempotent call (sharing the cached DynamoDB client).

    Not cached: Powertools reconfigures the layer on every call (its key expression, its context), so one layer
    shared by the batch's concurrent records races and fails a record with "'NoneType' object has no attribute
    'search'". Building one is cheap.
    """
    return DynamoDBPersistenceLayer(table_name=table, boto3_client=dynamodb())


def model_client(settings: Settings) -> Any:
    return bedrock_runtime(settings.model_timeout_seconds, settings.record_concurrency)


def reset() -> None:
    """Forget the clients so the next call creates new ones (for tests)."""
    for cached in (bedrock_runtime, dynamodb, events):
        cached.cache_clear()
