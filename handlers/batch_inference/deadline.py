"""A run's deadline. Pure.

A run may have one: ``deadline`` in the execution's input (ISO 8601 with a time zone), else RUN_DEADLINE_HOURS after
the execution started, else none. A shard whose job cannot start now (the concurrent-jobs quota is full) switches to
synchronous calls when a job started now would end after the deadline (`would_miss`: DEADLINE_JOB_HOURS, how long
a job is expected to take once it runs).

>>> run_deadline({"deadline": "2026-06-28T06:00:00Z"}, "2026-06-27T03:00:00.000Z", 0)
'2026-06-28T06:00:00+00:00'
>>> run_deadline({}, "2026-06-27T03:00:00.000Z", 12)
'2026-06-27T15:00:00+00:00'
>>> would_miss("2026-06-27T15:00:00+00:00", 6, now=datetime(2026, 6, 27, 10, tzinfo=UTC))
True
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any


class DeadlineError(ValueError):
    """A deadline that is not an ISO 8601 time with a zone."""


def parse(value: str) -> datetime:
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise DeadlineError(f"deadline {value[:64]!r} is not an ISO 8601 time") from None
    if moment.tzinfo is None:
        raise DeadlineError(f"deadline {value[:64]!r} has no time zone (add Z or an offset)")
    return moment.astimezone(UTC)


def run_deadline(options: Mapping[str, Any] | None, start_time: str | None, default_hours: int) -> str | None:
    """The run's deadline (ISO 8601, UTC), or None."""
    given = (options or {}).get("deadline")
    if isinstance(given, str) and given:
        return parse(given).isoformat()
    if given is not None:
        raise DeadlineError("deadline must be an ISO 8601 time in a string")
    if default_hours and start_time:
        return (parse(start_time) + timedelta(hours=default_hours)).isoformat()
    return None


def would_miss(deadline: str | None, job_hours: int, *, now: datetime | None = None) -> bool:
    """Whether a job that starts now, expected to take `job_hours`, would end after `deadline`."""
    if not deadline:
        return False
    return (now or datetime.now(UTC)) + timedelta(hours=job_hours) > parse(deadline)
