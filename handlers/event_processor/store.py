"""The results table; the only module that writes it.

IAM: ``dynamodb:PutItem`` and ``dynamodb:UpdateItem`` on the results table (and ``UpdateItem`` on the idempotency
table, for the item-version records of ``note_version``).

One item per input, ever: the write is a conditional put on ``resultId`` (the item's idempotency key). Whoever
writes the item also holds the claim (`common.claim`'s protocol) to publish it (``claimOwner`` until
``claimExpiresAt``, the end of that invocation); publishing sets ``publishedAt`` and drops the claim. A copy that
finds the item already there:

* ``publishedAt`` set: nothing left to do (a duplicate, or a retry after a crash past the publish);
* no live claim: the writer crashed between the write and the publish, so this copy takes the claim and
  publishes what is stored (``RECLAIMED``), and the event is not lost;
* a live claim of another copy: that copy is publishing right now; this one fails and is retried later, when it
  will find ``publishedAt``. So one stored result is published once in every path but one: a crash after
  ``PutEvents`` succeeded and before ``publishedAt`` was written, which republishes the same ``resultId``
  (consumers dedupe on it). The function's timeout is not such a crash: no ``PutEvents`` starts without time
  for the marks after it (``app.MARK_SECONDS``); only the environment dying in those seconds remains.

Every item carries its expiry (``expiresAt``, the table's TTL attribute: ``RESULTS_RETENTION_DAYS`` after the write).

The stored result wins over a recomputed one: the copy that publishes always announces what the table holds.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from common.claim import ClaimAttributes, ClaimLostError, ClaimTable
from event_processor.exceptions import PublicationInProgressError, ResultStoreError
from event_processor.results import StoredResult


class Stored(StrEnum):
    NEW = "new"  # written now; this copy publishes it
    RECLAIMED = "reclaimed"  # written before but never published; this copy took the claim and publishes it
    PUBLISHED = "already-published"  # written and published before; nothing to do


@dataclass(frozen=True)
class Claim:
    owner: str  # "<request id>/<message id>": one copy of one item in one invocation
    expires_at_ms: int  # the owner's invocation deadline, epoch milliseconds


@dataclass(frozen=True)
class StoreOutcome:
    state: Stored
    result: StoredResult  # what the table holds: the earlier result when there was one


# The results table's TTL attribute: every item expires after the stack's resultsRetentionDays.
EXPIRY_ATTRIBUTE = "expiresAt"
# The results table's claims, attribute names as deployed: ``publishedAt`` ends them.
RESULT_CLAIMS = ClaimAttributes(owner="claimOwner", until="claimExpiresAt", done=("publishedAt",))


def store(client: Any, table: str, result: StoredResult, claim: Claim, *, now_ms: int,
          expires_at: int) -> StoreOutcome:
    """Write the result once, to expire at `expires_at` (epoch seconds, the table's TTL), and decide who publishes
    it (see the module docstring)."""
    claims = ClaimTable(client, table, "resultId", RESULT_CLAIMS)
    try:
        created = claims.create({**result.item(), EXPIRY_ATTRIBUTE: {"N": str(expires_at)}}, claim.owner,
                                until=claim.expires_at_ms)
        if created.mine:
            return StoreOutcome(Stored.NEW, result)
        if "publishedAt" in created.item:
            return StoreOutcome(Stored.PUBLISHED, _stored(created.item, result))
        stored = _stored(created.item, result)
        reclaimed = claims.claim(result.result_id, claim.owner, now=now_ms, until=claim.expires_at_ms,
                                 must_exist=True)
    except (ClientError, BotoCoreError) as error:
        raise _store_error(table, result.result_id, error) from error
    if reclaimed.mine:
        return StoreOutcome(Stored.RECLAIMED, stored)
    if "publishedAt" in reclaimed.item:
        return StoreOutcome(Stored.PUBLISHED, stored)
    expires = reclaimed.item.get("claimExpiresAt", {}).get("N", "?")
    raise PublicationInProgressError(f"result {result.result_id} is being published by {reclaimed.holder or '?'} "
                                     f"(claim until {expires} ms); this copy is retried later")


def mark_published(client: Any, table: str, result_id: str, claim: Claim, *, event_id: str,
                   published_at: str) -> None:
    """Record the publication and drop the claim, so later copies know there is nothing left to do; only while
    this copy holds the claim (`ClaimLostError` otherwise: the copy that took it over marks it)."""
    if not ClaimTable(client, table, "resultId", RESULT_CLAIMS).complete(
            result_id, claim.owner, {"publishedAt": {"S": published_at}, "completionEventId": {"S": event_id}}):
        raise ClaimLostError(f"result {result_id}: the publication claim of {claim.owner} passed to another copy")


# Prefix of the item-version records kept in the idempotency table beside Powertools' own (``event-processor#``).
VERSION_PREFIX = "item-version#"


def note_version(client: Any, table: str, identity: str, version: str, *, expires_at: int) -> str | None:
    """Record ``version`` as the item's latest in the idempotency table (expiring with its records); returns the
    version recorded before, if any. IAM: ``dynamodb:UpdateItem`` on the idempotency table."""
    response = client.update_item(
        TableName=table, Key={"id": {"S": VERSION_PREFIX + identity}},
        UpdateExpression="SET contentSha256 = :version, expiration = :expires",
        ExpressionAttributeValues={":version": {"S": version}, ":expires": {"N": str(expires_at)}},
        ReturnValues="UPDATED_OLD")
    previous = response.get("Attributes", {}).get("contentSha256", {}).get("S")
    return str(previous) if previous is not None else None


def release(client: Any, table: str, result_id: str, claim: Claim) -> None:
    """Give up the claim after a failed publication, so the retry need not wait for it to expire."""
    ClaimTable(client, table, "resultId", RESULT_CLAIMS).release(result_id, claim.owner)


def _stored(existing: dict[str, Any], fallback: StoredResult) -> StoredResult:
    try:
        return StoredResult.from_item(existing)
    except (KeyError, ValueError):
        return fallback  # an item written by an older version: announce the fresh result rather than nothing


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", "Unknown"))


def _store_error(table: str, result_id: str, error: Exception) -> ResultStoreError:
    code = _code(error) if isinstance(error, ClientError) else type(error).__name__
    return ResultStoreError(f"results table {table}: writing result {result_id} failed ({code}: {error})")
