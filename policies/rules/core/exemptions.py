"""Exemptions with a reason and an expiry, and the record of those applied during one analysis.

A rule's config may exempt resources: `{"resource": "<name or URN glob>", "reason": "...", "expires": "YYYY-MM-DD"}`.
While it is valid (through its expiry date), the rule's violation for a matching resource is suppressed and
recorded here; the `exemptions-applied` stack policy, which runs after every other policy, reports each record as
an advisory diagnostic with its reason. Once expired, the exemption no longer suppresses anything and the
violation says which exemption lapsed.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any


@dataclass(frozen=True)
class Exemption:
    resource: str
    reason: str
    expires: dt.date | None
    problem: str | None = None  # why the entry cannot apply (malformed), if it cannot

    def matches(self, name: str, urn: str) -> bool:
        return fnmatchcase(name, self.resource) or fnmatchcase(urn, self.resource)

    def active(self, today: dt.date) -> bool:
        return self.problem is None and self.expires is not None and today <= self.expires


@dataclass(frozen=True)
class Applied:
    policy: str
    urn: str
    exemption: Exemption
    suppressed: str


def parse(entries: Sequence[Mapping[str, Any]] | None) -> list[Exemption]:
    parsed = []
    for entry in entries or []:
        resource = str(entry.get("resource") or "")
        reason = str(entry.get("reason") or "")
        expires, problem = None, None
        try:
            expires = dt.date.fromisoformat(str(entry.get("expires")))
        except ValueError:
            problem = f"expires {entry.get('expires')!r} is not a YYYY-MM-DD date"
        if not reason:
            problem = "it has no reason"
        if resource:
            parsed.append(Exemption(resource, reason, expires, problem))
    return parsed


def today() -> dt.date:
    return dt.date.today()


def find(exemptions: Sequence[Exemption], name: str, urn: str) -> Exemption | None:
    """The exemption that decides for this resource: an active one if any, else the first that matches."""
    matching = [e for e in exemptions if e.matches(name, urn)]
    return next((e for e in matching if e.active(today())), matching[0] if matching else None)


def lapse_note(exemption: Exemption) -> str:
    if exemption.problem:
        return f" (exemption for '{exemption.resource}' ignored: {exemption.problem})"
    return f" (exemption for '{exemption.resource}' expired on {exemption.expires}: {exemption.reason})"


class Ledger:
    """Applied exemptions, collected across the Analyze calls and drained by AnalyzeStack.

    The analyzer serves calls on a thread pool, so access is locked; duplicates (the same violation
    suppressed twice) are recorded once.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._applied: dict[tuple[str, str, str], Applied] = {}

    def record(self, applied: Applied) -> None:
        with self._lock:
            self._applied.setdefault((applied.policy, applied.urn, applied.suppressed), applied)

    def drain(self) -> list[Applied]:
        with self._lock:
            applied, self._applied = list(self._applied.values()), {}
        return applied


LEDGER = Ledger()
