"""S3 event-notification filters and the overlap rule S3 enforces on one bucket's configuration.

S3 rejects a notification configuration in which two rules for the same event type have overlapping key
filters (one prefix starts with the other and one suffix ends with the other). Checking it here lets a stack
fail before anything is created instead of halfway through `pulumi up`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations


@dataclass(frozen=True)
class S3Filter:
    """One rule of a bucket's notification configuration, and who asked for it."""

    owner: str
    events: tuple[str, ...]
    prefix: str
    suffix: str = ""

    def describe(self) -> str:
        return f"{self.owner} (prefix '{self.prefix}', suffix '{self.suffix}')"


def _event_families(events: Sequence[str]) -> set[str]:
    # "s3:ObjectCreated:*" and "s3:ObjectCreated:Put" belong to the same family for S3's overlap check.
    return {":".join(event.split(":")[:2]) for event in events}


def overlap(a: S3Filter, b: S3Filter) -> bool:
    """Whether S3 would reject `a` and `b` in one bucket's configuration.

    >>> overlap(S3Filter("a", ("s3:ObjectCreated:*",), "docs/"), S3Filter("b", ("s3:ObjectCreated:Put",), "docs/hr/"))
    True
    """
    return (bool(_event_families(a.events) & _event_families(b.events))
            and (a.prefix.startswith(b.prefix) or b.prefix.startswith(a.prefix))
            and (a.suffix.endswith(b.suffix) or b.suffix.endswith(a.suffix)))


def overlap_message(bucket: str, filters: Sequence[S3Filter]) -> str | None:
    """A message naming the first two overlapping filters on `bucket`, or None when all are disjoint."""
    for a, b in combinations(filters, 2):
        if overlap(a, b):
            return (f"bucket {bucket}: the notification of {b.describe()} overlaps that of {a.describe()} for the "
                    "same events; S3 rejects overlapping filters. Give each a prefix the other's doesn't start with.")
    return None
