"""Retry one model call with exponential backoff and full jitter. Pure (the clock and randomness are injected).

The delay before attempt ``n`` (from 1) is uniform in ``[0, min(cap, base * 2**n)]`` (AWS's "full jitter"), so
concurrent workers spread out instead of retrying in lockstep. Only errors `classify` calls retryable are retried.

>>> calls = iter([RuntimeError("ThrottlingException"), "answer"])
>>> def call():
...     value = next(calls)
...     if isinstance(value, Exception):
...         raise value
...     return value
>>> slept = []
>>> with_backoff(call, classify=lambda e: "throttled", max_attempts=3, sleep=slept.append, rand=lambda: 0.5)
'answer'
>>> slept
[1.0]
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Literal, TypeVar

from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError

T = TypeVar("T")
Kind = Literal["throttled", "timeout", "transient", "record", "systemic"]
RETRYABLE: frozenset[str] = frozenset({"throttled", "timeout", "transient"})

# Bedrock's "not now" answers: its rate limit, and a quota that is full for the moment (concurrent batch jobs,
# tokens per minute). Shared with the submitter, so both modes wait on the same codes.
THROTTLING_CODES: frozenset[str] = frozenset({"ThrottlingException", "TooManyRequestsException",
                                              "ServiceQuotaExceededException"})
_TIMEOUT = {"ModelTimeoutException"}
_TRANSIENT = {"ServiceUnavailableException", "InternalServerException", "ModelNotReadyException"}
_SYSTEMIC = {"AccessDeniedException", "ResourceNotFoundException", "UnrecognizedClientException",
             "ExpiredTokenException"}


def classify(error: BaseException) -> Kind:
    """What a failed Converse call means for its record."""
    if isinstance(error, ReadTimeoutError | ConnectTimeoutError):
        return "timeout"
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        if code in THROTTLING_CODES:
            return "throttled"
        if code in _TIMEOUT:
            return "timeout"
        if code in _TRANSIENT:
            return "transient"
        if code in _SYSTEMIC:
            return "systemic"
    return "record"  # ValidationException, ModelErrorException, an unreadable answer: this record alone


def with_backoff(call: Callable[[], T], *, classify: Callable[[BaseException], str], max_attempts: int,
                 base_seconds: float = 1.0, cap_seconds: float = 20.0, sleep: Callable[[float], None] = time.sleep,
                 rand: Callable[[], float] = random.random) -> T:
    """`call()`, retried on retryable errors up to `max_attempts` attempts; the last error is raised."""
    attempt = 0
    while True:
        attempt += 1
        try:
            return call()
        except Exception as error:
            if classify(error) not in RETRYABLE or attempt >= max_attempts:
                raise
            sleep(rand() * min(cap_seconds, base_seconds * 2 ** attempt))
