"""Retries with exponential backoff and full jitter, inside the invocation's time budget. Pure.

A throttled or timed-out model call is retried after a random delay in ``[0, min(cap, base * 2**attempt)]``
(AWS's "full jitter": concurrent workers spread out instead of retrying in lockstep), but only while the budget
still holds the delay plus one more worst-case attempt. Then the record fails: SQS redelivers it after the
visibility timeout, which is the longer, cheaper wait. The budget ends before the function's timeout by the time
the batch needs to store and publish its results.

>>> clock = ManualClock()
>>> budget = Budget(clock, deadline=clock.time() + 10)
>>> calls = iter([TimeoutError(), "answer"])
>>> def call():
...     value = next(calls)
...     if isinstance(value, Exception):
...         raise value
...     return value
>>> retry(call, retryable=lambda e: isinstance(e, TimeoutError), budget=budget, attempt_seconds=1)
'answer'
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

T = TypeVar("T")


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
    base_seconds: float = 0.25
    cap_seconds: float = 8.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
        ceiling = min(self.cap_seconds, self.base_seconds * (2 ** min(attempt, 32)))
        return (rng or random).uniform(0, ceiling)


DEFAULT_BACKOFF = Backoff()


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
    budget: Budget,
    attempt_seconds: float,
    backoff: Backoff = DEFAULT_BACKOFF,
    rng: random.Random | None = None,
    on_retry: Callable[[int, float, BaseException], None] | None = None,
) -> T:
    """Call until it succeeds, a non-retryable error is raised, or the budget runs out.

    ``attempt_seconds`` is how long one attempt may take at worst (the request timeout). No attempt starts
    unless it fits: with no room even for the first one, ``BudgetExhaustedError`` is raised without calling.
    """
    attempt = 0
    if budget.remaining() < attempt_seconds:
        raise BudgetExhaustedError(
            TimeoutError(f"{budget.remaining():.1f} s left, an attempt needs {attempt_seconds:.1f} s"), attempts=0
        )
    while True:
        try:
            return call()
        except Exception as error:
            if not retryable(error):
                raise
            delay = backoff.delay(attempt, rng)
            attempt += 1
            if budget.remaining() < delay + attempt_seconds:
                raise BudgetExhaustedError(error, attempts=attempt) from error
            if on_retry is not None:
                on_retry(attempt, delay, error)
            budget.clock.sleep(delay)
