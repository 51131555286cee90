"""One claim protocol for DynamoDB items: claim with an owner token and a lease, renew, release and complete only
by the owner, observe. Every handler that must keep two copies of itself from doing the same work side by side (a
redelivered message, a retried task, a slow invocation whose message became visible again) uses this, so there is
one protocol to learn and to test.

An item's claim lives in two of its attributes, named per table (deployed tables keep their names): the *owner*
(a token naming one copy, or one unit of work) and, for a lease, *until* (when the claim runs out, in the caller's
clock units: seconds or milliseconds since the epoch). Each operation is a single conditional write, so DynamoDB
serialises them per item and every interleaving of copies is some order of these writes.

Invariants (held by `tests/handlers/test_claim.py` against every interleaving hypothesis finds):

1. **One holder.** A claim succeeds only when the item has no live claim (never claimed, released, or its lease
   has run out at the claimant's ``now``) or the claimant already holds it; so at any moment at most one owner
   holds a live claim.
2. **Only the owner.** Renew, release, record and complete are conditioned on the owner attribute equal to the
   caller's token. A copy whose lease ran out and passed to another gets ``False`` and changes nothing: it can
   never clear or finish the claim the other copy holds.
3. **Done is final.** Once one of the table's *done* attributes is set (by `complete`), no claim succeeds.
4. **The old item comes back** with every claim, taken or refused, so the claimant learns in the same request what
   an earlier attempt finished or who holds the item.

What the caller owes: an owner token unique per copy (a request id, a random token), unless the same unit of work
retried is meant to be the same owner (the batch ledger); and to stop acting on a lease before ``until`` by its own
clock: the table compares ``until`` with the next claimant's ``now``, so clocks must agree to within the margin a
lease leaves.

>>> claims = ClaimTable(client, "jobs", key="jobKey", names=ClaimAttributes(owner="leaseOwner", until="leaseUntil"))
>>> claims.claim("shard-1", "copy-a", now=100, until=1000).mine          # doctest: +SKIP
True
>>> claims.release("shard-1", "copy-b")                                  # doctest: +SKIP
False
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

CONDITION_FAILED = "ConditionalCheckFailedException"
Item = dict[str, Any]  # an item in DynamoDB's attribute-value JSON: {"name": {"S": "value"}, ...}


class ClaimLostError(Exception):
    """A write meant to happen under a claim found the claim held by another owner."""


@dataclass(frozen=True)
class ClaimAttributes:
    """Where a table keeps its claims. ``until=None``: a claim that never runs out (held for good, or until
    released); ``done``: the attributes whose presence means the work is finished, so nothing is claimed again."""

    owner: str
    until: str | None = None
    done: tuple[str, ...] = ()


@dataclass(frozen=True)
class Claimed:
    mine: bool
    item: Item = field(default_factory=dict)  # the item as it was before the claim ({} when there was none)
    holder: str | None = None  # who held the item when the claim was refused


class _Expression:
    """Placeholders for one request's names and values, so callers' attribute names never collide."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def name(self, attribute: str) -> str:
        for placeholder, known in self.names.items():
            if known == attribute:
                return placeholder
        placeholder = f"#n{len(self.names)}"
        self.names[placeholder] = attribute
        return placeholder

    def value(self, value: Any) -> str:
        placeholder = f":v{len(self.values)}"
        self.values[placeholder] = value
        return placeholder

    def request(self) -> dict[str, Any]:
        request: dict[str, Any] = {"ExpressionAttributeNames": self.names}
        if self.values:
            request["ExpressionAttributeValues"] = self.values
        return request


@dataclass(frozen=True)
class ClaimTable:
    """The claims of one table whose partition key is ``key`` (a string)."""

    client: Any
    table: str
    key: str
    names: ClaimAttributes

    def _key(self, key: str) -> Item:
        return {self.key: {"S": key}}

    def _free(self, expr: _Expression, owner: str, now: int | None) -> str:
        """The condition "nobody else holds a live claim, and the work is not done"."""
        mine = f"{expr.name(self.names.owner)} = {expr.value({'S': owner})}"
        if self.names.until is None:
            free = f"(attribute_not_exists({expr.name(self.names.owner)}) OR {mine})"
        else:
            if now is None:
                raise ValueError(f"table {self.table}: a claim with a lease needs `now`")
            until = expr.name(self.names.until)
            free = f"(attribute_not_exists({until}) OR {until} < {expr.value({'N': str(now)})} OR {mine})"
        return " AND ".join([*(f"attribute_not_exists({expr.name(d)})" for d in self.names.done), free])

    def claim(self, key: str, owner: str, *, now: int | None = None, until: int | None = None,
              must_exist: bool = False, also: Mapping[str, Any] | None = None,
              if_absent: Mapping[str, Any] | None = None) -> Claimed:
        """Take the item's claim for `owner` (until `until`, for a lease), writing `also` with it and `if_absent`
        where the item has no such attribute yet. `must_exist`: only an item that is already there is claimed."""
        expr = _Expression()
        sets = [f"{expr.name(self.names.owner)} = {expr.value({'S': owner})}"]
        if self.names.until is not None:
            if until is None:
                raise ValueError(f"table {self.table}: a claim with a lease needs `until`")
            sets.append(f"{expr.name(self.names.until)} = {expr.value({'N': str(until)})}")
        sets += [f"{expr.name(n)} = {expr.value(v)}" for n, v in (also or {}).items()]
        sets += [f"{expr.name(n)} = if_not_exists({expr.name(n)}, {expr.value(v)})"
                 for n, v in (if_absent or {}).items()]
        condition = self._free(expr, owner, now)
        if must_exist:
            condition = f"attribute_exists({expr.name(self.key)}) AND {condition}"
        try:
            response = self.client.update_item(
                TableName=self.table, Key=self._key(key), UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=condition, ReturnValues="ALL_OLD",
                ReturnValuesOnConditionCheckFailure="ALL_OLD", **expr.request())
        except ClientError as error:
            if _code(error) != CONDITION_FAILED:
                raise
            return self._refused(error)
        return Claimed(True, dict(response.get("Attributes") or {}))

    def create(self, item: Item, owner: str, *, until: int | None = None) -> Claimed:
        """Write `item` whole, claimed by `owner`, only if no item has its key; refused, the existing item comes
        back (for a stored result that must win over a recomputed one)."""
        claimed = {**item, self.names.owner: {"S": owner}}
        if self.names.until is not None:
            if until is None:
                raise ValueError(f"table {self.table}: a claim with a lease needs `until`")
            claimed[self.names.until] = {"N": str(until)}
        try:
            self.client.put_item(TableName=self.table, Item=claimed, ConditionExpression="attribute_not_exists(#k)",
                                 ExpressionAttributeNames={"#k": self.key},
                                 ReturnValuesOnConditionCheckFailure="ALL_OLD")
        except ClientError as error:
            if _code(error) != CONDITION_FAILED:
                raise
            return self._refused(error)
        return Claimed(True, {})

    def renew(self, key: str, owner: str, *, until: int) -> bool:
        """Move the owner's lease to `until`; False when the claim is no longer `owner`'s (or the work is done)."""
        if self.names.until is None:
            raise ValueError(f"table {self.table}: its claims have no lease to renew")
        expr = _Expression()
        return self._as_owner(key, owner, expr, f"SET {expr.name(self.names.until)} = {expr.value({'N': str(until)})}")

    def release(self, key: str, owner: str) -> bool:
        """Give the claim up (a failed attempt, so a retry need not wait for the lease); False when it is not
        `owner`'s: a claim that ran out and passed to another copy is that copy's."""
        expr = _Expression()
        return self._as_owner(key, owner, expr, f"REMOVE {', '.join(expr.name(n) for n in self._claim_names())}")

    def record(self, key: str, owner: str, values: Mapping[str, Any]) -> bool:
        """Write `values` while `owner` holds the claim, which it keeps (progress under the claim)."""
        expr = _Expression()
        return self._as_owner(key, owner, expr, _sets(expr, values))

    def complete(self, key: str, owner: str, values: Mapping[str, Any]) -> bool:
        """Write `values` (among them a *done* attribute, when the table has them) and end the claim, only while
        `owner` holds it; False, changing nothing, when it does not."""
        expr = _Expression()
        removes = ", ".join(expr.name(n) for n in self._claim_names())
        return self._as_owner(key, owner, expr, f"{_sets(expr, values)} REMOVE {removes}")

    def observe(self, key: str) -> Item:
        """The item as it is now (a consistent read); {} when there is none."""
        item: Item = self.client.get_item(TableName=self.table, Key=self._key(key), ConsistentRead=True).get("Item")
        return item or {}

    def _refused(self, error: ClientError) -> Claimed:
        item: Item = dict(error.response.get("Item") or {})  # type: ignore[typeddict-item]
        holder = item.get(self.names.owner, {}).get("S")
        return Claimed(False, item, None if holder is None else str(holder))

    def _claim_names(self) -> list[str]:
        return [self.names.owner, *([self.names.until] if self.names.until else [])]

    def _as_owner(self, key: str, owner: str, expr: _Expression, update: str) -> bool:
        condition = " AND ".join([f"{expr.name(self.names.owner)} = {expr.value({'S': owner})}",
                                  *(f"attribute_not_exists({expr.name(d)})" for d in self.names.done)])
        try:
            self.client.update_item(TableName=self.table, Key=self._key(key), UpdateExpression=update,
                                    ConditionExpression=condition, **expr.request())
        except ClientError as error:
            if _code(error) != CONDITION_FAILED:
                raise
            return False
        return True


def _sets(expr: _Expression, values: Mapping[str, Any]) -> str:
    if not values:
        raise ValueError("nothing to write")
    return "SET " + ", ".join(f"{expr.name(n)} = {expr.value(v)}" for n, v in values.items())


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "Unknown"))
