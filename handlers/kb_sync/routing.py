"""Choose how a batch reaches the knowledge base: direct ingestion, one ingestion job now, or a burst's job later.

Pure. ``SYNC_MODE`` decides:

| mode     | small change set (at most ``BURST_THRESHOLD_DOCUMENTS``) | burst (more)                 |
|----------|-----------------------------------------------------------|------------------------------|
| `jobs`   | a job now                                                 | a job after the settle time  |
| `direct` | direct ingestion                                          | direct ingestion             |
| `auto`   | direct ingestion                                          | a job after the settle time  |

Direct ingestion (``IngestKnowledgeBaseDocuments`` / ``DeleteKnowledgeBaseDocuments``) makes a few documents
searchable without waiting behind the data source's one running job. A burst is cheaper and safer as one
incremental job, and a job that waits ``BURST_SETTLE_SECONDS`` sees the rest of the burst too, so a burst split
over several batches still starts one job. A batch that carries a re-request (a follow-up, a schedule tick, a
failed direct ingestion handed over) always goes to a job now: those stand for whole-data-source syncs, and a
burst's own follow-up must not wait twice. So does a change whose key could not be decoded: it names no URI.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from kb_sync.classify import SyncRequested
from kb_sync.planning import QueuedMessage, SyncPlan, latest_changes


class Route(StrEnum):
    DIRECT = "direct"
    JOB = "job"
    BURST = "burst"


def choose_route(plan: SyncPlan, messages: Sequence[QueuedMessage], *, mode: str, burst_threshold: int,
                 settle_seconds: int) -> Route:
    """Where ``plan`` (the batch's sync) goes under ``mode``."""
    if any(isinstance(message.verdict, SyncRequested) for message in messages):
        return Route.JOB
    if any(change.key_is_raw for change in latest_changes(messages)):
        return Route.JOB
    burst = plan.documents > burst_threshold
    if mode == "direct" or (mode == "auto" and not burst):
        return Route.DIRECT
    return Route.BURST if burst and settle_seconds > 0 else Route.JOB
