"""Fault injection that is checked: a test says which fault it drives the code through, and fails unless it did.

A reliability test is decorated with the fault it claims (one of ``FAULTS``, the faults every pipeline's rows of
docs/reliability.md's table cover, or of ``PIPELINE_FAULTS``)::

    @faults.injects("expired visibility during a slow batch")
    def test_...(...): ...

and the code that actually breaks something (a helper that lets a message's visibility run out while an invocation
is still working, that kills an invocation after its side effect, that fails a dependency) calls
``faults.injected(fault, how)`` at the moment it does. When the test body returns, the decorator checks that its
fault was injected during that test: a test that only claims a fault fails, naming what it did inject. The
decorator also sets the ``fault`` attribute the table test (``tests/test_reliability_table.py``) reads, so every
row's test is known to carry its row's fault.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

FAULTS = frozenset({
    "poison message", "duplicate delivery", "concurrent duplicate",
    "crash after the side effect, before the acknowledgement", "downstream throttling", "downstream outage",
    "database down mid-batch", "partial PutEvents failure", "missed completion event",
    "expired visibility during a slow batch",
})
# Faults only some pipelines have, each in its own row of the table.
PIPELINE_FAULTS = frozenset({"crash between PutEvents and the publication mark", "credentials rotated mid-batch",
                             "notifications of one key applied out of order"})
KNOWN = FAULTS | PIPELINE_FAULTS

_Test = TypeVar("_Test", bound=Callable[..., Any])

# Faults injected while the current test runs (fault -> how), reset by each decorated test.
_injected: dict[str, list[str]] | None = None


class FaultNotInjectedError(AssertionError):
    """A test claimed a fault it never injected."""


def injected(fault: str, how: str) -> None:
    """Record that ``fault`` has just been injected (``how``: what was broken). Called by fault injectors only."""
    if fault not in KNOWN:
        raise ValueError(f"unknown fault {fault!r}; the faults are {sorted(KNOWN)}")
    if _injected is not None:
        _injected.setdefault(fault, []).append(how)


def injects(fault: str) -> Callable[[_Test], _Test]:
    """Mark a test as driving the code through ``fault``; it fails unless ``injected(fault, ...)`` ran in it."""
    if fault not in KNOWN:
        raise ValueError(f"unknown fault {fault!r}; the faults are {sorted(KNOWN)}")

    def decorate(test: _Test) -> _Test:
        if inspect.iscoroutinefunction(test):
            raise TypeError("injects() decorates synchronous tests")

        @functools.wraps(test)
        def run(*args: Any, **kwargs: Any) -> Any:
            global _injected
            _injected = {}
            try:
                outcome = test(*args, **kwargs)
                if fault not in _injected:
                    raise FaultNotInjectedError(
                        f"{test.__name__} claims {fault!r} but never injected it (injected: {_injected or 'nothing'})")
                return outcome
            finally:
                _injected = None

        run.fault = fault  # type: ignore[attr-defined]
        return run  # type: ignore[return-value]

    return decorate
