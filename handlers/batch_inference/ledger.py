"""The recordId ledger: a conditional write gates every downstream effect of a record, so nothing happens twice.

The ledger is kept per run: its key is ``<runId>#<recordId>``. Within a run, a retry, a replayed event or a
redrive must change nothing twice; a new run is new work (another corpus that reuses the same ids, or the same
corpus under another prompt or model), so nothing of an earlier run may keep a record of it from being processed.
Items that gate only a failure-lane message (a bad corpus line, a repeated record id) live beside the records, under
``<runId>!<name>`` (`markers`): a run id holds neither ``#`` nor ``!``, so no record id, whatever its text, can meet
one of them.

A record is *claimed* by an owner: the unit of work that processes it (``<runId>/<shardId>`` in mode A,
``<runId>/<batchKey>`` in mode B, ``<runId>/rejected`` for the sharder's bad lines). The claim is
`common.claim`'s, without a lease: one conditional ``UpdateItem`` that succeeds when nobody holds the record or
this same owner does (a retry of the same unit), and fails when another owner of the run does (the same recordId
twice in the corpus: `settle_unit` sends the second to the failure lane). The old item comes back with the
claim, so a retry knows what its earlier attempt finished:

* ``outcome`` (succeeded/failed) and, in mode B, the model's ``output``: a retried batch does not call the model
  again for a record it already answered;
* ``laneSent``: a failure already on the failure lane is not sent again.

A batch of a shard switched to synchronous calls (the deadline fallback) also writes the shard's id on its records
(``shardId``), and a refused claim returns it with the holder: when that shard's child fails, the finalizer tells
the records its own batches hold (settled as those batches) from the same ids held elsewhere in the run
(duplicates).

Items expire (TTL ``expiresAt``) after the retention the stack configures; the table has point-in-time recovery.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from batch_inference.threads import map_in_context
from common.claim import ClaimAttributes, ClaimLostError, ClaimTable

KEY = "recordId"
# A record's owner holds it for good (no lease): a retry of the same unit is the same owner, any other is refused.
RECORD_CLAIMS = ClaimAttributes(owner="owner")
CONCURRENCY = 16


@dataclass(frozen=True)
class Claim:
    record_id: str
    mine: bool
    outcome: str | None = None  # what an earlier attempt of this owner settled
    output: str | None = None
    lane_sent: bool = False
    holder: str | None = None  # the other owner, when not mine
    shard: str | None = None  # when not mine: the switched shard whose synchronous batch holds it, if one does


@dataclass(frozen=True)
class Ledger:
    """The ledger of one run."""

    client: Any
    table: str
    ttl_seconds: int
    run_id: str
    separator: str = "#"  # "#" for records, "!" for the failure-lane markers beside them

    def markers(self) -> Ledger:
        """The same run's ledger of failure-lane markers (bad lines, repeated ids), apart from its records."""
        return replace(self, separator="!")

    def _claims(self) -> ClaimTable:
        return ClaimTable(self.client, self.table, KEY, RECORD_CLAIMS)

    def claim(self, record_id: str, owner: str, shard: str | None = None) -> Claim:
        """Claim the record for `owner`; `shard`: the switched shard `owner` (a synchronous batch) belongs to."""
        first = {"runId": {"S": self.run_id}} | ({"shardId": {"S": shard}} if shard is not None else {})
        claimed = self._claims().claim(
            self._id(record_id), owner, also={"expiresAt": {"N": str(int(time.time()) + self.ttl_seconds)}},
            if_absent=first)
        old = claimed.item
        if not claimed.mine:
            return Claim(record_id, mine=False, holder=claimed.holder, shard=_s(old, "shardId"))
        return Claim(record_id, mine=True, outcome=_s(old, "outcome"), output=_s(old, "output"),
                     lane_sent=bool(old.get("laneSent", {}).get("BOOL", False)))

    def claim_all(self, record_ids: Iterable[str], owner: str, shard: str | None = None) -> dict[str, Claim]:
        ids = list(dict.fromkeys(record_ids))
        claims = map_in_context(lambda i: self.claim(i, owner, shard), ids, workers=CONCURRENCY)
        return dict(zip(ids, claims, strict=True))

    def settle(self, record_id: str, owner: str, outcome: str, output: str | None = None) -> None:
        """Record the outcome (and mode B's output) of a claimed record."""
        values: dict[str, Any] = {"outcome": {"S": outcome}}
        if output is not None:
            values["output"] = {"S": output}
        self._as_owner(record_id, owner, values)

    def settle_all(self, outcomes: Mapping[str, tuple[str, str | None]], owner: str) -> None:
        map_in_context(lambda item: self.settle(item[0], owner, item[1][0], item[1][1]), outcomes.items(),
                       workers=CONCURRENCY)

    def mark_lane_sent(self, record_ids: Iterable[str], owner: str) -> None:
        map_in_context(lambda r: self._as_owner(r, owner, {"laneSent": {"BOOL": True}}), list(record_ids),
                       workers=CONCURRENCY)

    def _as_owner(self, record_id: str, owner: str, values: Mapping[str, Any]) -> None:
        if not self._claims().record(self._id(record_id), owner, values):
            raise ClaimLostError(f"ledger record {record_id!r} of run {self.run_id} is not held by {owner}")

    def _id(self, record_id: str) -> str:
        return f"{self.run_id}{self.separator}{record_id}"


def _s(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name, {}).get("S")
    return str(value) if value is not None else None
