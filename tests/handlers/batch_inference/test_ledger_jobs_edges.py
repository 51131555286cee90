"""The jobs table, the ledger and the resumption at their edges: names and tokens that must not change, the bounds
of each lease and claim (held through its last second, free the next), expiry times, DynamoDB's condition failures
as answers rather than errors, and what a waiting child is told. Fast: each test talks to the tables directly."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from batch_inference import clients, jobs, ledger, resume
from batch_inference.exceptions import ShardBusyError
from tests.handlers.batch_inference.conftest import JOBS_TABLE, LEDGER_TABLE, RUN, Storage
from tests.handlers.batch_inference.fakes import FakeStepFunctions
from tests.support.stacks import shipped_stack

NAME = "job-shard-0000"
TTL = 86_400
T = 1_800_000_000  # the frozen clock's "now"
_TOKEN_PATTERN = re.compile(r"[a-zA-Z0-9]{1,256}(-*[a-zA-Z0-9]){0,256}")  # CreateModelInvocationJob's, botocore's


class Clock:
    """`time.time()` as a module sees it, moved by hand."""

    def __init__(self, now: int) -> None:
        self.now = now

    def install(self, monkeypatch: pytest.MonkeyPatch, module: Any) -> None:
        monkeypatch.setattr(module, "time", SimpleNamespace(time=lambda: float(self.now)))


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    frozen = Clock(T)
    frozen.install(monkeypatch, jobs)
    frozen.install(monkeypatch, ledger)
    return frozen


@pytest.fixture
def table(storage: Storage) -> jobs.JobsTable:
    return jobs.JobsTable(storage.ddb, JOBS_TABLE, TTL)


def _remember(table: jobs.JobsTable, name: str = NAME) -> jobs.JobRecord:
    return table.remember_token(name, run_id=RUN, shard_id="0000", shard_key="shards/0000.jsonl", records=4,
                                task_token="token-1")


def _item(storage: Storage, key: str) -> dict[str, Any]:
    item = storage.job_item(key)
    assert item is not None, f"no jobs-table item {key}"
    return item


# --- names and tokens ---------------------------------------------------------------------------------------------


def test_job_names_and_request_tokens_are_the_same_in_every_release() -> None:
    """A shard's job name and client request token are pinned: a submission retried after a deployment must name
    the same job and send the same token (Bedrock ignores a repeated token; the jobs table is keyed by the name),
    so any change to how they are made would start a second job for a shard already running one."""
    assert jobs.job_name("ai-pipelines-dev-batchinf-job", "run-2026-06-27", "00003") == \
        "ai-pipelines-dev-batchinf-job-9d185991ee04-00003"
    assert jobs.client_request_token("run-2026-06-27", "00003") == "run-2026-06-27-00003"
    assert jobs.client_request_token("run_2026.06/27", "00003") == \
        "run-2026-06-27-00003-24e67adad1342c2aaf2665ad2a13606a"
    long_run = "r" * 150 + "x" * 100
    assert jobs.client_request_token(long_run, "00003") == "r" * 150 + "-6ef46a8fbdc2dfcf89cefa463f4dfbd3"


def test_a_job_name_of_exactly_63_characters_is_accepted_and_one_more_is_refused_naming_the_limit() -> None:
    """Bedrock's jobName is at most 63 characters (botocore's model): the longest prefix that fits is usable."""
    fits = "p" * (63 - len("-9d185991ee04-00003"))
    assert len(jobs.job_name(fits, "run", "00003")) == 63
    with pytest.raises(ValueError, match="longer than 63 characters: shorten the prefix"):
        jobs.job_name(fits + "p", "run", "00003")


def test_a_token_of_200_characters_is_kept_as_it_is_and_a_longer_one_is_hashed_within_bedrocks_limits() -> None:
    """A safe token up to 200 characters stays readable (it is the run and shard ids); a longer one is cut and
    hashed, and stays a distinct, valid token (at most 256 characters, Bedrock's alphabet)."""
    kept = jobs.client_request_token("r" * 194, "00003")
    assert kept == "r" * 194 + "-00003" and len(kept) == 200
    hashed = jobs.client_request_token("r" * 195, "00003")
    assert hashed != "r" * 195 + "-00003"
    assert len(hashed) <= 256 and _TOKEN_PATTERN.fullmatch(hashed)
    assert hashed != jobs.client_request_token("r" * 195, "00004")


# --- the shard's item ---------------------------------------------------------------------------------------------


def test_a_remembered_shard_expires_after_the_tables_retention(storage: Storage, table: jobs.JobsTable,
                                                               clock: Clock) -> None:
    _remember(table)
    assert int(_item(storage, NAME)["expiresAt"]) == T + TTL  # TTL deletes it then, not at once


def test_reading_a_shard_asks_dynamodb_for_a_consistent_read(storage: Storage, table: jobs.JobsTable) -> None:
    """`get` must read the shard's latest write: a copy that has just taken the settling lease reads the shard to
    learn whether another copy settled it a moment earlier. DynamoDB's GetItem is eventually consistent unless it
    asks for `ConsistentRead` (moto always answers consistently, so only the request can show it)."""
    asked: list[dict[str, Any]] = []

    def remember(params: dict[str, Any], **_: Any) -> None:
        asked.append(dict(params))

    storage.ddb.meta.events.register("provide-client-params.dynamodb.GetItem", remember)
    _remember(table)
    record = table.get(NAME)
    assert record is not None and record.task_token == "token-1"
    assert [p.get("ConsistentRead") for p in asked] == [True]


def test_marking_a_shard_submitted_after_it_was_settled_changes_nothing_and_raises_nothing(
        storage: Storage, table: jobs.JobsTable) -> None:
    """The job's completion can outrun the submitter's write of its ARN: the late write is refused by its
    condition, which is an answer, not an error."""
    _remember(table)
    assert table.lease(NAME, "copy-a", 900)
    table.settle(NAME, "copy-a", jobs.PROCESSED, {"succeeded": 4}, "arn-settled")
    table.mark_submitted(NAME, "arn-late")
    item = _item(storage, NAME)
    assert (item["status"], item["jobArn"]) == (jobs.PROCESSED, "arn-settled")


def test_a_shard_switches_to_synchronous_calls_only_while_no_job_was_submitted_for_it(
        storage: Storage, table: jobs.JobsTable) -> None:
    _remember(table)
    assert table.switch_to_sync(NAME) is True
    record = table.get(NAME)
    assert record is not None and record.switched
    other = "job-shard-0001"
    _remember(table, other)
    table.mark_submitted(other, "arn-1")
    assert table.switch_to_sync(other) is False  # a job runs for it: it never switches
    assert "switchedAt" not in _item(storage, other)
    assert table.switch_to_sync("job-never-remembered") is False
    assert storage.job_item("job-never-remembered") is None


# --- the settling lease -------------------------------------------------------------------------------------------


def test_no_lease_is_taken_on_a_shard_without_an_item_and_none_is_created(storage: Storage,
                                                                         table: jobs.JobsTable) -> None:
    """A completion for a shard whose item expired (or was never written here) must not leave a stub item."""
    assert table.lease("job-gone", "copy-a", 900) is False
    assert storage.job_item("job-gone") is None
    with pytest.raises(ShardBusyError, match="job-gone"), table.settling("job-gone"):
        pytest.fail("the body ran without a lease")


def test_the_settling_lease_lasts_exactly_the_settling_functions_timeout(storage: Storage, table: jobs.JobsTable,
                                                                        clock: Clock) -> None:
    """A crashed holder blocks the shard for the timeout of the functions that settle (the completion handler
    and the finalizer, as the stack deploys them), no longer; and no other copy settles it before."""
    stack = shipped_stack("dev")
    timeouts = {int(stack.named(name).inputs["timeout"]) for name in ("batchinf-completion", "batchinf-finalizer")}
    _remember(table)
    with table.settling(NAME):
        lasts = int(_item(storage, NAME)["leaseUntil"]) - T
        clock.now = T + lasts  # its last second: still held
        assert not table.lease(NAME, "copy-b", 900)
        clock.now = T + lasts + 1
        assert table.lease(NAME, "copy-b", 900)
    assert {lasts} == timeouts


def test_a_settled_shard_is_given_back_at_once(table: jobs.JobsTable) -> None:
    """A copy that finds the shard settled (a second delivery) frees the lease: a third copy need not wait."""
    _remember(table)
    assert table.lease(NAME, "copy-a", 900)
    table.settle(NAME, "copy-a", jobs.PROCESSED, {"succeeded": 4}, "arn")
    with table.settling(NAME) as lease:
        assert lease.record is not None and lease.record.status == jobs.PROCESSED
    assert table.lease(NAME, "copy-c", 900)


def test_a_shard_whose_item_expires_under_the_lease_is_left_alone(storage: Storage, table: jobs.JobsTable,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """TTL may delete the item between the lease and the read: the body gets no record and the settling ends
    without an error and without writing the item back."""
    _remember(table)
    leased = jobs.JobsTable.lease

    def lease_then_expire(self: jobs.JobsTable, job_key: str, owner: str, seconds: int) -> bool:
        taken = leased(self, job_key, owner, seconds)
        storage.ddb.delete_item(TableName=JOBS_TABLE, Key={"jobKey": {"S": job_key}})
        return taken

    monkeypatch.setattr(jobs.JobsTable, "lease", lease_then_expire)
    with table.settling(NAME) as lease:
        assert lease.record is None
    assert storage.job_item(NAME) is None


def test_a_retried_settlement_writes_the_same_counts_whatever_order_they_come_in(storage: Storage,
                                                                                 table: jobs.JobsTable) -> None:
    """Settling is idempotent: a retry (another copy, which builds its counts in its own order) writes the item as
    the first settlement did."""
    _remember(table)
    assert table.lease(NAME, "copy-a", 900)
    table.settle(NAME, "copy-a", jobs.PROCESSED, {"succeeded": 3, "failed": 1}, "arn")
    first = _item(storage, NAME)["counts"]
    assert table.lease(NAME, "copy-b", 900)
    table.settle(NAME, "copy-b", jobs.PROCESSED, {"failed": 1, "succeeded": 3}, "arn")
    assert _item(storage, NAME)["counts"] == first
    assert json.loads(first) == {"succeeded": 3, "failed": 1}


# --- the run's publication claims ---------------------------------------------------------------------------------


def test_a_publication_claim_holds_for_its_lease_and_is_free_again_after_it(
        storage: Storage, table: jobs.JobsTable, clock: Clock) -> None:
    """One copy publishes a run's ending at a time; a crashed claimer's claim is free again
    PUBLICATION_LEASE_SECONDS (300 s) later, not before; the claim item expires with the table's retention."""
    assert table.claim_publication(RUN, jobs.SUCCEEDED, "copy-a") == jobs.CLAIMED
    assert table.claim_publication(RUN, jobs.SUCCEEDED, "copy-b") == jobs.BUSY
    item = _item(storage, f"run#{RUN}#{jobs.SUCCEEDED}")
    assert (item["runId"], int(item["expiresAt"])) == (RUN, T + TTL)
    clock.now = T + 300
    assert table.claim_publication(RUN, jobs.SUCCEEDED, "copy-b") == jobs.BUSY
    clock.now = T + 301
    assert table.claim_publication(RUN, jobs.SUCCEEDED, "copy-b") == jobs.CLAIMED


def test_an_unsuccessful_ending_is_claimed_when_no_success_was_claimed(table: jobs.JobsTable, clock: Clock) -> None:
    assert table.claim_publication(RUN, "FAILED#1", "copy-a") == jobs.CLAIMED
    assert not table.publication_settled(RUN, "FAILED#1")


def test_an_unsuccessful_ending_waits_while_the_success_is_being_published_through_its_claims_last_second(
        storage: Storage, table: jobs.JobsTable, clock: Clock) -> None:
    """The next stage must not hear of a failure after the success: while a copy holds the success's claim (300 s,
    its last second included, as every claim of `common.claim`) an unsuccessful ending is BUSY and gives its own
    claim back; once the success's claim runs out unpublished, the ending is claimed."""
    assert table.claim_publication(RUN, jobs.SUCCEEDED, "success") == jobs.CLAIMED
    clock.now = T + 300
    assert table.claim_publication(RUN, "FAILED#1", "ending") == jobs.BUSY
    assert "claimToken" not in _item(storage, f"run#{RUN}#FAILED#1")  # given back: nobody waits for it
    clock.now = T + 301
    assert table.claim_publication(RUN, "FAILED#1", "ending") == jobs.CLAIMED


def test_published_and_superseded_endings_are_settled(table: jobs.JobsTable, clock: Clock) -> None:
    assert not table.publication_settled(RUN, jobs.SUCCEEDED)
    assert table.claim_publication(RUN, jobs.SUCCEEDED, "copy-a") == jobs.CLAIMED
    table.mark_published(RUN, jobs.SUCCEEDED, "copy-a", "event-1")
    assert table.publication_settled(RUN, jobs.SUCCEEDED)
    assert table.claim_publication(RUN, jobs.SUCCEEDED, "copy-b") == jobs.PUBLISHED
    assert table.claim_publication(RUN, "FAILED#1", "copy-c") == jobs.SUPERSEDED
    assert table.publication_settled(RUN, "FAILED#1")
    assert table.claim_publication(RUN, "FAILED#1", "copy-d") == jobs.SUPERSEDED


# --- the ledger ---------------------------------------------------------------------------------------------------


def test_a_ledger_claim_expires_after_the_ledgers_retention(storage: Storage, clock: Clock) -> None:
    ledger.Ledger(storage.ddb, LEDGER_TABLE, TTL, RUN).claim("DOC0001", f"{RUN}/00000")
    assert int(storage.ledger()["DOC0001"]["expiresAt"]) == T + TTL


# --- resuming the waiting child -----------------------------------------------------------------------------------


def _record(status: str | None, counts: dict[str, int] | None, token: str | None = "token-1") -> jobs.JobRecord:
    return jobs.JobRecord(NAME, RUN, "0000", "shards/0000.jsonl", 4, status, token, "arn-1", counts)


@pytest.fixture
def sfn(states: FakeStepFunctions) -> Callable[..., None]:
    """Expect one SendTaskFailure with exactly this cause."""

    def expects_failure_with(cause: str) -> None:
        states.stubber.add_response("send_task_failure", {}, {"taskToken": "token-1", "error": resume.JOB_FAILED_ERROR,
                                                              "cause": cause})

    return expects_failure_with


def test_a_failed_shards_child_is_told_the_cause_or_else_its_counts(sfn: Callable[..., None]) -> None:
    counts = {"failed": 4, "succeeded": 0}
    sfn("Failed: the role cannot read the input")
    assert resume.resume(clients.stepfunctions(), _record(jobs.FAILED, counts),
                         cause="Failed: the role cannot read the input") is True
    sfn(json.dumps(counts))
    assert resume.resume(clients.stepfunctions(), _record(jobs.FAILED, counts)) is True


def test_a_failure_cause_is_cut_to_32000_characters_within_step_functions_limit(sfn: Callable[..., None]) -> None:
    """SendTaskFailure takes a cause of at most 32,768 characters (botocore's model); a Bedrock message is cut to
    the first 32,000, and one that fits is sent whole."""
    sfn("x" * 32_000)
    assert resume.resume(clients.stepfunctions(), _record(jobs.FAILED, {}), cause="x" * 32_000 + "y" * 8_000)
    sfn("z" * 32_000)
    assert resume.resume(clients.stepfunctions(), _record(jobs.FAILED, {}), cause="z" * 32_000)


def test_a_processed_shards_child_gets_its_counts(states: FakeStepFunctions) -> None:
    counts = {"failed": 1, "succeeded": 3}
    states.expects_success("token-1", json.dumps({"shardId": "0000", "jobArn": "arn-1", "status": jobs.PROCESSED,
                                                  "counts": counts}))
    assert resume.resume(clients.stepfunctions(), _record(jobs.PROCESSED, counts)) is True


def test_nothing_is_resumed_without_a_token_or_once_step_functions_forgot_it(states: FakeStepFunctions) -> None:
    assert resume.resume(clients.stepfunctions(), _record(jobs.PROCESSED, {}, token=None)) is False  # no call made
    states.token_gone("send_task_success")
    assert resume.resume(clients.stepfunctions(), _record(jobs.PROCESSED, {})) is False
