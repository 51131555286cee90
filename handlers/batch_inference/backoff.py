"""What a failed model call means for its record, and the sync worker's retry of it (`common.retry`'s policy with
the worker's parameters from `config`). Pure (the clock and randomness are injected).

The delay before attempt ``n + 1`` (``n`` from 1) is uniform in ``[0, min(cap, base * 2**n)]`` (AWS's "full
jitter"), so concurrent workers spread out instead of retrying in lockstep. Only errors `classify` calls retryable
are retried.

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
from dataclasses import dataclass
from typing import Literal, TypeVar

from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError

from batch_inference.config import SYNC_BACKOFF_BASE_SECONDS, SYNC_BACKOFF_CAP_SECONDS, sync_backoff
from common.retry import RETRYABLE_CODES, TRANSPORT_ERRORS, error_code, retry

T = TypeVar("T")
Kind = Literal["throttled", "timeout", "transient", "record", "systemic"]
RETRYABLE: frozenset[str] = frozenset({"throttled", "timeout", "transient"})

# The retryable codes that mean throttling (its rate limit, a quota full for the moment), counted apart from
# timeouts and server-side failures.
THROTTLING_CODES: frozenset[str] = frozenset({"ThrottlingException", "TooManyRequestsException",
                                              "ServiceQuotaExceededException"})
_TIMEOUT = {"ModelTimeoutException"}
_SYSTEMIC = {"AccessDeniedException", "ResourceNotFoundException", "UnrecognizedClientException",
             "ExpiredTokenException"}


def classify(error: BaseException) -> Kind:
    """What a failed Converse call means for its record: retryable ones by `common.retry`'s table of Bedrock's
    codes, told apart for the worker's counts."""
    if isinstance(error, ReadTimeoutError | ConnectTimeoutError):
        return "timeout"
    if isinstance(error, TRANSPORT_ERRORS):
        return "transient"
    if isinstance(error, ClientError):
        code = error_code(error)
        if code in THROTTLING_CODES:
            return "throttled"
        if code in _TIMEOUT:
            return "timeout"
        if code in RETRYABLE_CODES["bedrock-runtime"]:
            return "transient"
        if code in _SYSTEMIC:
            return "systemic"
    return "record"  # ValidationException, ModelErrorException, an unreadable answer: this record alone


@dataclass(frozen=True)
class _Draws:
    rand: Callable[[], float]

    def random(self) -> float:
        return self.rand()


def with_backoff(call: Callable[[], T], *, classify: Callable[[BaseException], str], max_attempts: int,
                 base_seconds: float = SYNC_BACKOFF_BASE_SECONDS, cap_seconds: float = SYNC_BACKOFF_CAP_SECONDS,
                 sleep: Callable[[float], None] = time.sleep, rand: Callable[[], float] = random.random) -> T:
    """`call()`, retried on retryable errors up to `max_attempts` attempts; the last error is raised. The worker's
    deadline is checked in `sleep` (no pause unless the attempt after it still fits)."""
    return retry(call, retryable=lambda error: classify(error) in RETRYABLE, max_attempts=max_attempts,
                 backoff=sync_backoff(base_seconds, cap_seconds), sleep=sleep, rng=_Draws(rand))
