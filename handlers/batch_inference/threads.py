"""Bounded parallel calls whose threads run in a copy of the caller's context, as ``asyncio.to_thread`` would:
context-local state (the tracing segment, whatever instruments the clients) follows each call into its thread."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def map_in_context(function: Callable[[T], R], items: Iterable[T], *, workers: int) -> list[R]:
    """``[function(item) for item in items]``, at most `workers` at a time, results in the items' order."""
    pending = list(items)
    if len(pending) <= 1 or workers <= 1:
        return [function(item) for item in pending]
    context = contextvars.copy_context()
    with ThreadPoolExecutor(max_workers=min(workers, len(pending))) as pool:
        return list(pool.map(lambda item: context.copy().run(function, item), pending))
