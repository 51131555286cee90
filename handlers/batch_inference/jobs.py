"""Batch jobs and their task tokens: deterministic names and tokens (pure), and the jobs table (I/O).

A shard's job name and ``clientRequestToken`` are functions of the run id and the shard id only, so a retried or
replayed submission names the same job and Bedrock starts no second one. The jobs table (key ``jobKey`` = the job
name) keeps, per shard, the Step Functions task token to resume, the job's ARN once known, the shard's location,
the settling lease of the copy settling it (``leaseOwner`` until ``leaseUntil``) and, once settled, its status and
counts; its items ``run#<runId>#<ending>`` hold the run's completion-event claims (``claimToken`` until
``claimedUntil``, ended by ``publishedAt`` or ``supersededAt``), one per way the run ended (SUCCEEDED, or an
unsuccessful status of one attempt: a redrive is another). Leases and claims are `common.claim`'s protocol.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from batch_inference.exceptions import ShardBusyError
from common.claim import ClaimAttributes, ClaimTable

KEY = "jobKey"
SUCCEEDED = "SUCCEEDED"
CLAIMED, PUBLISHED, BUSY, SUPERSEDED = "claimed", "published", "busy", "superseded"
# How long a publication claim holds: a manifest write and one PutEvents at their SDK's worst case (three attempts
# of a 5 s connect and a 30 s read each), with room; a crashed claimer's claim is free again after it.
PUBLICATION_LEASE_SECONDS = 300
# The shard's settling lease (its holder a random token per copy) and the run's publication claims (the token the
# caller gives); attribute names as deployed tables hold them.
SETTLING_LEASE = ClaimAttributes(owner="leaseOwner", until="leaseUntil")
PUBLICATION_CLAIM = ClaimAttributes(owner="claimToken", until="claimedUntil", done=("publishedAt", "supersededAt"))
# How long a settling lease lasts: the settling functions' timeout, so a crashed holder blocks the shard no longer.
LEASE_SECONDS = 900
SUBMITTED, PROCESSED, FAILED = "SUBMITTED", "PROCESSED", "FAILED"
SETTLED = (PROCESSED, FAILED)
TERMINAL_JOB_STATUSES = ("Completed", "PartiallyCompleted", "Failed", "Stopped", "Expired")
SUCCESS_JOB_STATUSES = ("Completed", "PartiallyCompleted")
# The tag every job this pipeline creates carries (value: the job name prefix, one per stack); the finalizer's role
# may stop only jobs that carry it (`aws:ResourceTag`), the submitter's create only jobs that do (`aws:RequestTag`).
OWNER_TAG = "ai-pipelines:batch-job-owner"
_TOKEN_SAFE = re.compile(r"[^A-Za-z0-9-]+")
_MAX_JOB_NAME = 63


def _digest(*parts: str, length: int = 12) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:length]


def job_name(prefix: str, run_id: str, shard_id: str) -> str:
    """``<prefix>-<run digest>-<shard id>``, within Bedrock's 63 characters and name pattern."""
    name = f"{prefix}-{_digest(run_id)}-{shard_id}"
    if len(name) > _MAX_JOB_NAME:
        raise ValueError(f"job name {name} is longer than {_MAX_JOB_NAME} characters: shorten the prefix")
    return name


def client_request_token(run_id: str, shard_id: str) -> str:
    """Run id + shard id, reduced to Bedrock's token alphabet (letters, digits, hyphens), hashed if it had to be."""
    raw = f"{run_id}-{shard_id}"
    safe = _TOKEN_SAFE.sub("-", raw).strip("-")
    if safe != raw or len(safe) > 200:
        safe = f"{safe[:150]}-{_digest(run_id, shard_id, length=32)}".strip("-")
    return safe


# The tag naming the run a job belongs to (its value: the run id).
RUN_TAG = "ai-pipelines:run-id"


def owner_tags(prefix: str) -> list[dict[str, str]]:
    """The owner tag of a job created under `prefix`, as CreateModelInvocationJob takes tags."""
    return [{"key": OWNER_TAG, "value": prefix}]


def job_tags(prefix: str, run_id: str, stack_tags: dict[str, str]) -> list[dict[str, str]]:
    """Every tag of a run's job: the owner tag (the stop grant requires it), the run id, and the stack's own tags
    (project, stack, pipeline, owner), as CreateModelInvocationJob takes them."""
    return [*owner_tags(prefix), {"key": RUN_TAG, "value": run_id},
            *({"key": key, "value": value} for key, value in sorted(stack_tags.items())
              if key not in (OWNER_TAG, RUN_TAG))]


def job_id_of(job_arn: str) -> str:
    return job_arn.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class JobRecord:
    job_key: str
    run_id: str
    shard_id: str
    shard_key: str
    records: int
    status: str | None
    task_token: str | None
    job_arn: str | None
    counts: dict[str, int] | None
    switched: bool = False  # switched to synchronous calls to meet the run's deadline: never a job

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> JobRecord:
        def s(name: str) -> str | None:
            value = item.get(name, {}).get("S")
            return None if value is None else str(value)

        counts = s("counts")
        return cls(job_key=str(s(KEY)), run_id=s("runId") or "", shard_id=s("shardId") or "",
                   shard_key=s("shardKey") or "", records=int(item.get("records", {}).get("N", "0")),
                   status=s("status"), task_token=s("taskToken"), job_arn=s("jobArn"),
                   counts=json.loads(counts) if counts else None, switched="switchedAt" in item)


@dataclass(frozen=True)
class JobsTable:
    client: Any
    table: str
    ttl_seconds: int

    def get(self, job_key: str) -> JobRecord | None:
        item = self.client.get_item(TableName=self.table, Key={KEY: {"S": job_key}}, ConsistentRead=True).get("Item")
        return JobRecord.from_item(item) if item else None

    def remember_token(self, job_key: str, *, run_id: str, shard_id: str, shard_key: str, records: int,
                       task_token: str) -> JobRecord:
        """Store the token the shard's waiting child gave (a retried child brings a new one); return the item."""
        response = self.client.update_item(
            TableName=self.table, Key={KEY: {"S": job_key}},
            UpdateExpression="SET taskToken = :token, runId = :run, shardId = :shard, shardKey = :key, "
                             "records = :records, expiresAt = :expires",
            ExpressionAttributeValues={":token": {"S": task_token}, ":run": {"S": run_id}, ":shard": {"S": shard_id},
                                       ":key": {"S": shard_key}, ":records": {"N": str(records)},
                                       ":expires": {"N": str(int(time.time()) + self.ttl_seconds)}},
            ReturnValues="ALL_NEW")
        return JobRecord.from_item(response["Attributes"])

    def mark_submitted(self, job_key: str, job_arn: str) -> None:
        """Record the job's ARN, unless the job was settled meanwhile (its completion can outrun this write)."""
        try:
            self.client.update_item(
                TableName=self.table, Key={KEY: {"S": job_key}},
                UpdateExpression="SET jobArn = :arn, #status = if_not_exists(#status, :submitted)",
                ConditionExpression="attribute_not_exists(#status) OR #status = :submitted",
                ExpressionAttributeNames={"#status": "status"},
                ExpressionAttributeValues={":arn": {"S": job_arn}, ":submitted": {"S": SUBMITTED}})
        except ClientError as error:
            if error.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise

    def switch_to_sync(self, job_key: str) -> bool:
        """Mark the shard switched to synchronous calls, unless a job was submitted for it meanwhile (False)."""
        try:
            self.client.update_item(
                TableName=self.table, Key={KEY: {"S": job_key}}, UpdateExpression="SET switchedAt = if_not_exists("
                "switchedAt, :now)", ConditionExpression="attribute_exists(jobKey) AND attribute_not_exists(jobArn)",
                ExpressionAttributeValues={":now": {"N": str(int(time.time()))}})
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True

    def _claims(self, names: ClaimAttributes) -> ClaimTable:
        return ClaimTable(self.client, self.table, KEY, names)

    def lease(self, job_key: str, owner: str, seconds: int) -> bool:
        """Take the shard's settling lease for `owner` for `seconds` (a function timeout); False while another copy
        holds it.

        Two deliveries of one completion (SQS is at least once; a slow invocation's message becomes visible again)
        would otherwise settle the same shard side by side; the loser is retried and then finds it settled.
        """
        now = int(time.time())
        return self._claims(SETTLING_LEASE).claim(job_key, owner, now=now, until=now + seconds, must_exist=True).mine

    @contextmanager
    def settling(self, job_key: str) -> Iterator[ShardLease]:
        """Hold the shard's settling lease around the body, which gets the shard as read under the lease (``record``,
        None when its item is gone) and settles it (`ShardLease.settle` frees the lease). The lease is given back
        when the body fails or finds the shard settled already; `ShardBusyError` while another copy (a second
        delivery of its completion, or the finalizer giving it up) holds it."""
        owner = uuid.uuid4().hex  # this copy: only it can release or settle under this lease
        if not self.lease(job_key, owner, LEASE_SECONDS):
            raise ShardBusyError(f"shard {job_key} is being settled by another copy; retried later")
        try:
            record = self.get(job_key)
            yield ShardLease(self, job_key, owner, record)
        except BaseException:
            self.release(job_key, owner)  # let the retry settle it at once rather than after the lease
            raise
        if record is None or record.status in SETTLED:
            self.release(job_key, owner)

    def release(self, job_key: str, owner: str) -> bool:
        """Give up `owner`'s settling lease; False (nothing changed) when the lease ran out and passed on."""
        return self._claims(SETTLING_LEASE).release(job_key, owner)

    def settle(self, job_key: str, owner: str, status: str, counts: dict[str, int], job_arn: str) -> None:
        """Record the shard's final status and counts (idempotent: the same values on a retry) and free the lease,
        only while `owner` holds it: a copy whose lease ran out and passed to another leaves it to that copy
        (`ShardBusyError`: its message is retried and then finds the shard settled)."""
        values = {"status": {"S": status}, "counts": {"S": json.dumps(counts, sort_keys=True)},
                  "jobArn": {"S": job_arn}}
        if not self._claims(SETTLING_LEASE).complete(job_key, owner, values):
            raise ShardBusyError(f"shard {job_key}: the settling lease ran out and passed to another copy, which "
                                 "settles it; retried later")

    # --- the run's completion event ------------------------------------------------------------------

    def claim_publication(self, run_id: str, ending: str, token: str) -> str:
        """Claim the publication of the run's `ending` (SUCCEEDED, or an unsuccessful status and attempt) for
        PUBLICATION_LEASE_SECONDS under `token`: CLAIMED, PUBLISHED (done before), BUSY (another copy holds a claim
        that has not run out: retry later) or SUPERSEDED (an unsuccessful ending of a run whose success is
        published: the next stage must not hear of a failure after the success, so it never will of this one)."""
        now = int(time.time())
        claims, key = self._claims(PUBLICATION_CLAIM), _publication_key(run_id, ending)
        claimed = claims.claim(key, token, now=now, until=now + PUBLICATION_LEASE_SECONDS,
                               also={"runId": {"S": run_id}, "expiresAt": {"N": str(now + self.ttl_seconds)}})
        if not claimed.mine:
            item = claimed.item
            return PUBLISHED if "publishedAt" in item else SUPERSEDED if "supersededAt" in item else BUSY
        if ending == SUCCEEDED:
            return CLAIMED
        # Checked after the claim: a success published before it supersedes this ending. A success claimed after
        # this check (a redrive finishing while a late ending of an earlier attempt is reported) may be published
        # before this ending; the events carry the status and the attempt, and the manifest is the last writer's.
        success = claims.observe(_publication_key(run_id, SUCCEEDED))
        if "publishedAt" in success:
            claims.complete(key, token, {"supersededAt": {"N": str(now)}})
            return SUPERSEDED
        if int(success.get("claimedUntil", {}).get("N", "0")) >= now:  # the success is being published right now
            self.release_publication(run_id, ending, token)
            return BUSY
        return CLAIMED  # no success, or one whose publication failed (its claim released or run out)

    def publication_settled(self, run_id: str, ending: str) -> bool:
        """Whether the run's `ending` was published or superseded (nothing more to do for it)."""
        item = self._claims(PUBLICATION_CLAIM).observe(_publication_key(run_id, ending))
        return "publishedAt" in item or "supersededAt" in item

    def release_publication(self, run_id: str, ending: str, token: str) -> None:
        """Give up this copy's claim (a failed write or put), unless the claim has passed to another copy."""
        self._claims(PUBLICATION_CLAIM).release(_publication_key(run_id, ending), token)

    def mark_published(self, run_id: str, ending: str, token: str, event_id: str) -> None:
        """Record the publication, unless the claim has passed to another copy (that copy's to finish)."""
        self._claims(PUBLICATION_CLAIM).complete(_publication_key(run_id, ending), token, {
            "publishedAt": {"N": str(int(time.time()))}, "eventId": {"S": event_id}})


@dataclass(frozen=True)
class ShardLease:
    """One copy's settling lease on a shard: the shard as read under it, and the settlement only it may write."""

    table: JobsTable
    job_key: str
    owner: str
    record: JobRecord | None

    def settle(self, status: str, counts: dict[str, int], job_arn: str) -> None:
        self.table.settle(self.job_key, self.owner, status, counts, job_arn)


def _publication_key(run_id: str, ending: str) -> str:
    return f"run#{run_id}#{ending}"
