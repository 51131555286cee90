"""Settle a unit of work's records through the ledger: claims first, then effects only for what this unit owns.

Every unit (a mode A shard, a mode B batch, the sharder's rejected lines, a failed unit in the finalizer) ends
the same way: each record is claimed; a record id the unit has already seen, or that another unit of the run
holds, is a duplicate and goes to the failure lane; this unit's failures not yet on the failure lane are sent and
marked; its successes go into its results object.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from batch_inference import lane
from batch_inference.lane import LaneRecord
from batch_inference.ledger import Claim, Ledger


@dataclass
class Counts:
    records: int = 0
    succeeded: int = 0
    failed: int = 0
    duplicates: int = 0
    lane_sent: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(vars(self))

    def __add__(self, other: Counts) -> Counts:
        return Counts(**{name: value + getattr(other, name) for name, value in self.as_dict().items()})


@dataclass
class Settlement:
    counts: Counts = field(default_factory=Counts)
    succeeded: list[str] = field(default_factory=list)  # record ids this unit owns and succeeded, in order


def settle_unit(ledger: Ledger, lane_client: Any, lane_url: str, *, owner: str, order: list[str],
                succeeded: set[str] | Mapping[str, Any], failures: Mapping[str, LaneRecord],
                claims: Mapping[str, Claim] | None = None, source: Mapping[str, str] | None = None) -> Settlement:
    """Claim `order`'s records (unless `claims` are given), send this unit's new failures, settle outcomes.

    `order` is every record of the unit as it came, repeats included. A record id seen before in this unit, or held
    by another unit of the run, is a duplicate: the corpus carries that id more than once, and only its first
    occurrence is processed. Each duplicate occurrence goes to the failure lane (reason ``duplicate_record_id``,
    with `source`), gated by a ledger item of its own, so it is counted and visible, never silently dropped.
    """
    if claims is None:
        claims = ledger.claim_all(order, owner)
    settlement = Settlement()
    counts = settlement.counts
    to_send: list[LaneRecord] = []
    outcomes: dict[str, tuple[str, str | None]] = {}
    where = source or {}
    occurrences: dict[str, int] = {}
    duplicates: dict[str, LaneRecord] = {}
    for record_id in order:
        counts.records += 1
        claim = claims[record_id]
        seen = occurrences.get(record_id, 0)
        occurrences[record_id] = seen + 1
        if seen or not claim.mine:
            counts.duplicates += 1
            key = f"dup#{owner}#{record_id}#{seen}"
            duplicates[key] = LaneRecord(
                ledger.run_id, "unit", "duplicate_record_id",
                f"recordId {record_id!r} is in the corpus more than once; only its first occurrence "
                f"(in {claim.holder if not claim.mine else owner}) is processed"[:500],
                dedupe_key=key, record_id=record_id, bucket=where.get("bucket"), key=where.get("key"))
            continue
        if record_id in succeeded:
            counts.succeeded += 1
            settlement.succeeded.append(record_id)
            if claim.outcome != "succeeded":
                outcomes[record_id] = ("succeeded", None)
            continue
        counts.failed += 1
        if claim.outcome != "failed":
            outcomes[record_id] = ("failed", None)
        if not claim.lane_sent:
            to_send.append(failures[record_id])
    markers = ledger.markers()
    repeats: list[LaneRecord] = []
    if duplicates:
        duplicate_claims = markers.claim_all(duplicates, owner)
        repeats = [record for key, record in duplicates.items() if not duplicate_claims[key].lane_sent]
    if outcomes:
        ledger.settle_all(outcomes, owner)
    if to_send or repeats:
        lane.send(lane_client, lane_url, [*to_send, *repeats])
        ledger.mark_lane_sent([r.dedupe_key for r in to_send], owner)
        markers.mark_lane_sent([r.dedupe_key for r in repeats], owner)
        counts.lane_sent = len(to_send) + len(repeats)
    return settlement
