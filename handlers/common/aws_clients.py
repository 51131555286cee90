"""boto3 clients created one at a time, from whichever thread asks first.

``boto3.client`` builds the client on boto3's default session, which is not safe to use from several threads at
once (boto3's own guidance), and a handler's first calls often come from several threads together (concurrent S3
reads, a database writer fetching its secret, bounded model calls). Creation is rare (once per client per
execution environment), so one process-wide lock costs nothing measurable.
"""

from __future__ import annotations

import threading
from typing import Any

import boto3
from botocore.config import Config

_creating = threading.Lock()


def new_client(service: str, config: Config) -> Any:
    with _creating:
        return boto3.client(service, config=config)  # type: ignore[call-overload]
