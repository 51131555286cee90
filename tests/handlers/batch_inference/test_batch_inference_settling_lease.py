"""The shard's settling lease: only the copy that holds it can give it up or settle under it. Before each copy had
its own token, a copy whose lease had run out cleared the lease of the copy that took the shard over (both tests
failed), so a third copy could settle the shard beside the second."""

from __future__ import annotations

import pytest

from batch_inference import jobs
from batch_inference.exceptions import ShardBusyError
from tests.handlers.batch_inference.conftest import JOBS_TABLE, Storage
from tests.handlers.batch_inference.helpers import RUN

NAME = "job-shard-0000"


@pytest.fixture
def table(storage: Storage) -> jobs.JobsTable:
    table = jobs.JobsTable(storage.ddb, JOBS_TABLE, 86400)
    table.remember_token(NAME, run_id=RUN, shard_id="0000", shard_key="k", records=1, task_token="t")
    return table


def _run_out(storage: Storage) -> None:
    storage.ddb.update_item(TableName=JOBS_TABLE, Key={"jobKey": {"S": NAME}},
                            UpdateExpression="SET leaseUntil = :past", ExpressionAttributeValues={":past": {"N": "1"}})


def test_a_holder_whose_lease_ran_out_cannot_clear_the_lease_another_copy_holds(
        storage: Storage, table: jobs.JobsTable) -> None:
    assert table.lease(NAME, "copy-a", 900)
    _run_out(storage)  # A is slow: its lease runs out
    assert table.lease(NAME, "copy-b", 900)  # B takes the shard
    assert not table.release(NAME, "copy-a")  # A, late, gives up what it thinks is its lease
    assert not table.lease(NAME, "copy-c", 900)  # C still finds the shard held by B
    assert storage.job_item(NAME)["leaseOwner"] == "copy-b"  # type: ignore[index]


def test_a_holder_whose_lease_ran_out_cannot_settle_over_another_copy(storage: Storage, table: jobs.JobsTable) -> None:
    assert table.lease(NAME, "copy-a", 900)
    _run_out(storage)
    assert table.lease(NAME, "copy-b", 900)
    with pytest.raises(ShardBusyError, match="passed to another copy"):
        table.settle(NAME, "copy-a", jobs.PROCESSED, {"succeeded": 1}, "arn")  # A, late
    assert not table.lease(NAME, "copy-c", 900)
    item = storage.job_item(NAME)
    assert item is not None and "status" not in item  # B settles it, not A
    table.settle(NAME, "copy-b", jobs.PROCESSED, {"succeeded": 1}, "arn")
    item = storage.job_item(NAME)
    assert item is not None and item["status"] == jobs.PROCESSED and "leaseUntil" not in item


def test_the_settling_context_gives_its_own_lease_back_when_the_body_fails(storage: Storage,
                                                                           table: jobs.JobsTable) -> None:
    with pytest.raises(RuntimeError), table.settling(NAME) as lease:
        assert lease.record is not None and lease.record.shard_id == "0000"
        raise RuntimeError("the body failed")
    assert table.lease(NAME, "retry", 900)  # free at once, not after the lease
