"""One retry policy for every handler: exponential backoff with full jitter, inside a time budget, on one table of
retryable AWS error codes per service. Pure (the clock and the randomness are injected).

A throttled or timed-out call is retried after a random delay in ``[0, min(cap, base * 2**n)]``, ``n`` counting the
retries from 0 (AWS's "full jitter": concurrent workers spread out instead of retrying in lockstep), but only while
the budget still holds the delay plus one more worst-case attempt, and, when the caller bounds them, for at most
``max_attempts`` attempts. Then the call fails: the caller's queue or state machine redelivers it later, which is
the longer, cheaper wait. Each caller keeps its own base, cap and attempts in its config.

botocore's own retries are not used for this: its standard mode has no time budget and knows nothing of a Lambda
invocation's deadline, so clients make one attempt and this module decides.

>>> clock = ManualClock()
>>> budget = Budget(clock, deadline=clock.time() + 10)
>>> calls = iter([TimeoutError(), "answer"])
>>> def call():
...     value = next(calls)
...     if isinstance(value, Exception):
...         raise value
...     return value
>>> retry(call, retryable=lambda e: isinstance(e, TimeoutError), backoff=Backoff(0.25, 8), budget=budget,
...       attempt_seconds=1)
'answer'
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

T = TypeVar("T")

# Per service, the error codes that mean "not now": the same request may succeed after a wait. Codes from botocore's
# service models (``bedrock-runtime`` Converse/InvokeModel, ``bedrock`` CreateModelInvocationJob) plus the quota
# answers Bedrock's APIs give for a quota that is full for the moment.
RETRYABLE_CODES: Mapping[str, frozenset[str]] = {
    "bedrock-runtime": frozenset({
        "ThrottlingException",  # over the model's tokens or requests per minute
        "TooManyRequestsException", "ServiceQuotaExceededException",  # a quota full for the moment
        "ModelTimeoutException",  # the model took too long this time
        "ModelNotReadyException",  # the model is being loaded
        "ServiceUnavailableException", "InternalServerException",
    }),
    # ServiceQuotaExceededException here is the concurrent-jobs quota: slots free up in hours, not seconds, so the
    # submitter waits for it in its state machine rather than retrying in the invocation.
    "bedrock": frozenset({"ThrottlingException", "TooManyRequestsException", "ServiceUnavailableException",
                          "InternalServerException"}),
}
# PutEvents reports per-entry error codes that its model does not enumerate (InternalFailure, ThrottlingException,
# ...), so for EventBridge the table lists the codes a retry cannot fix: the entry itself is wrong.
PERMANENT_CODES: Mapping[str, frozenset[str]] = {
    "events": frozenset({"MalformedDetail", "InvalidArgument", "ValidationException", "AccessDeniedException"}),
}
# Transport failures: the request may never have reached the service, or its answer was lost.
TRANSPORT_ERRORS = (ReadTimeoutError, ConnectTimeoutError, EndpointConnectionError, ConnectionClosedError)


def error_code(error: BaseException) -> str:
    """The AWS error code of a ClientError; the exception's type name for anything else."""
    if isinstance(error, ClientError):
        return str(error.response.get("Error", {}).get("Code", "Unknown"))
    return type(error).__name__


def retryable(service: str) -> Callable[[BaseException], bool]:
    """Whether an error of a call to `service` is worth retrying: a transport failure, or a "not now" code."""
    codes = RETRYABLE_CODES[service]

    def check(error: BaseException) -> bool:
        return isinstance(error, TRANSPORT_ERRORS) or (isinstance(error, ClientError) and error_code(error) in codes)

    return check


class Draws(Protocol):
    """A source of uniform draws in [0, 1): a ``random.Random``, or a test's fixed sequence."""

    def random(self) -> float: ...


class Clock(Protocol):
    def time(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """Wall-clock time (deadlines and claims are compared across invocations, so epoch seconds)."""

    def time(self) -> float:
        return time.time()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass
class ManualClock:
    """A clock that moves only when slept on or advanced: backoff without waiting."""

    now: float = field(default_factory=time.time)
    slept: list[float] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.slept.append(seconds)
            self.now += seconds

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds


@dataclass(frozen=True)
class Budget:
    """Time left for retries: up to ``deadline`` (epoch seconds) on ``clock``."""

    clock: Clock
    deadline: float

    def remaining(self) -> float:
        return self.deadline - self.clock.time()


@dataclass(frozen=True)
class Backoff:
    base_seconds: float
    cap_seconds: float

    def ceiling(self, retry_number: int) -> float:
        """The longest delay before retry `retry_number` (from 0): min(cap, base * 2**retry_number)."""
        return min(self.cap_seconds, self.base_seconds * (2 ** min(retry_number, 32)))

    def delay(self, retry_number: int, rng: Draws | None = None) -> float:
        """Full jitter: uniform in [0, ceiling] (a draw in [0, 1) scaled, as ``random.uniform`` computes it)."""
        return self.ceiling(retry_number) * (rng or random).random()


class BudgetExhaustedError(Exception):
    """The last retryable error, once the budget leaves no room for another attempt."""

    def __init__(self, last: BaseException, attempts: int) -> None:
        super().__init__(f"gave up after {attempts} attempt(s): {last}")
        self.last = last
        self.attempts = attempts


def retry(
    call: Callable[[], T],
    *,
    retryable: Callable[[BaseException], bool],
    backoff: Backoff,
    budget: Budget | None = None,
    attempt_seconds: float = 0.0,
    max_attempts: int | None = None,
    sleep: Callable[[float], None] | None = None,
    rng: Draws | None = None,
    on_retry: Callable[[int, float, BaseException], None] | None = None,
) -> T:
    """Call until it succeeds, a non-retryable error is raised, the attempts run out (the last error is raised) or
    the budget does (`BudgetExhaustedError`).

    ``attempt_seconds`` is how long one attempt may take at worst (the request timeout). With a budget, no attempt
    starts unless it fits: with no room even for the first one, ``BudgetExhaustedError`` is raised without calling.
    ``sleep`` defaults to the budget's clock (else ``time.sleep``); a caller with its own deadline checks it there.
    """
    pause = sleep or (budget.clock.sleep if budget is not None else time.sleep)
    if budget is not None and budget.remaining() < attempt_seconds:
        raise BudgetExhaustedError(
            TimeoutError(f"{budget.remaining():.1f} s left, an attempt needs {attempt_seconds:.1f} s"), attempts=0
        )
    attempt = 0
    while True:
        try:
            return call()
        except Exception as error:
            if not retryable(error):
                raise
            if max_attempts is not None and attempt + 1 >= max_attempts:
                raise
            delay = backoff.delay(attempt, rng)
            attempt += 1
            if budget is not None and budget.remaining() < delay + attempt_seconds:
                raise BudgetExhaustedError(error, attempts=attempt) from error
            if on_retry is not None:
                on_retry(attempt, delay, error)
            pause(delay)
