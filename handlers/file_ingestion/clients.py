"""boto3 clients, created on first use and reused for the life of the execution environment.

Lazy so tests can start moto first; ``reset()`` drops them between tests. Timeouts and retries are bounded so a
slow dependency fails well inside the function timeout, leaving the retry to SQS. The S3 client's connection
pool is as large as the number of concurrent reads.
"""

from __future__ import annotations

import functools
from typing import Any

from botocore.config import Config

from common.aws_clients import new_client


def _config(pool: int = 10) -> Config:
    return Config(connect_timeout=5, read_timeout=20, retries={"mode": "standard", "max_attempts": 3},
                  max_pool_connections=pool)


@functools.cache
def s3(pool: int = 16) -> Any:
    return new_client("s3", _config(pool))


@functools.cache
def secretsmanager() -> Any:
    return new_client("secretsmanager", _config())


def reset() -> None:
    s3.cache_clear()
    secretsmanager.cache_clear()
