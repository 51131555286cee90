"""The recordId ledger: a conditional write gates every downstream effect of a record, so nothing happens twice.

The ledger is kept per run: its key is ``<runId>#<recordId>``. Within a run, a retry, a replayed event or a
redrive must change nothing twice; a new run is new work (another corpus that reuses the same ids, or the same
corpus under another prompt or model), so nothing of an earlier run may keep a record of it from being processed.
Items that gate only a failure-lane message (a bad corpus line, a repeated record id) live beside the records, under
``<runId>!<name>`` (`markers`): a run id holds neither ``#`` nor ``!``, so no record id, whatever its text, can meet
one of them.

A record is *claimed* by an owner: the unit of work that processes it (``<runId>/<shardId>`` in mode A,
``<runId>/<batchKey>`` in mode B, ``<runId>/rejected`` for the sharder's bad lines). The claim is one conditional
``UpdateItem``: it succeeds when nobody holds the record or this same owner does (a retry of the same unit), and
fails when another owner of the run does (the same recordId twice in the corpus: `settle_unit` sends the second to
the failure lane). The old item comes back with the claim, so a retry knows what its earlier attempt finished:

* ``outcome`` (succeeded/failed) and, in mode B, the model's ``output``: a retried batch does not call the model
  again for a record it already answered;
* ``laneSent``: a failure already on the failure lane is not sent again.

Items expire (TTL ``expiresAt``) after the retention the stack configures; the table has point-in-time recovery.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import ClientError

from batch_inference.threads import map_in_context

KEY = "recordId"
CONCURRENCY = 16


@dataclass(frozen=True)
class Claim:
    record_id: str
    mine: bool
    outcome: str | None = None  # what an earlier attempt of this owner settled
    output: str | None = None
    lane_sent: bool = False
    holder: str | None = None  # the other owner, when not mine


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

    def key(self, record_id: str) -> dict[str, Any]:
        return {KEY: {"S": f"{self.run_id}{self.separator}{record_id}"}}

    def claim(self, record_id: str, owner: str) -> Claim:
        try:
            response = self.client.update_item(
                TableName=self.table, Key=self.key(record_id),
                UpdateExpression="SET #owner = :owner, runId = if_not_exists(runId, :run), expiresAt = :expires",
                ConditionExpression="attribute_not_exists(recordId) OR #owner = :owner",
                ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":owner": {"S": owner}, ":run": {"S": self.run_id},
                                           ":expires": {"N": str(int(time.time()) + self.ttl_seconds)}},
                ReturnValues="ALL_OLD", ReturnValuesOnConditionCheckFailure="ALL_OLD")
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
            holder = error.response.get("Item", {}).get("owner", {}).get("S")
            return Claim(record_id, mine=False, holder=holder)
        old = response.get("Attributes", {})
        return Claim(record_id, mine=True, outcome=_s(old, "outcome"), output=_s(old, "output"),
                     lane_sent=bool(old.get("laneSent", {}).get("BOOL", False)))

    def claim_all(self, record_ids: Iterable[str], owner: str) -> dict[str, Claim]:
        ids = list(dict.fromkeys(record_ids))
        claims = map_in_context(lambda i: self.claim(i, owner), ids, workers=CONCURRENCY)
        return dict(zip(ids, claims, strict=True))

    def settle(self, record_id: str, owner: str, outcome: str, output: str | None = None) -> None:
        """Record the outcome (and mode B's output) of a claimed record."""
        names = {"#owner": "owner"}
        values: dict[str, Any] = {":owner": {"S": owner}, ":outcome": {"S": outcome}}
        expression = "SET outcome = :outcome"
        if output is not None:
            expression += ", #output = :output"
            names["#output"] = "output"
            values[":output"] = {"S": output}
        self.client.update_item(TableName=self.table, Key=self.key(record_id), UpdateExpression=expression,
                                ConditionExpression="#owner = :owner", ExpressionAttributeNames=names,
                                ExpressionAttributeValues=values)

    def settle_all(self, outcomes: Mapping[str, tuple[str, str | None]], owner: str) -> None:
        map_in_context(lambda item: self.settle(item[0], owner, item[1][0], item[1][1]), outcomes.items(),
                       workers=CONCURRENCY)

    def mark_lane_sent(self, record_ids: Iterable[str], owner: str) -> None:
        ids = list(record_ids)

        def mark(record_id: str) -> None:
            self.client.update_item(
                TableName=self.table, Key=self.key(record_id), UpdateExpression="SET laneSent = :sent",
                ConditionExpression="#owner = :owner", ExpressionAttributeNames={"#owner": "owner"},
                ExpressionAttributeValues={":sent": {"BOOL": True}, ":owner": {"S": owner}})

        map_in_context(mark, ids, workers=CONCURRENCY)


def _s(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name, {}).get("S")
    return str(value) if value is not None else None
