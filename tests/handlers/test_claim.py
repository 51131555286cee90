"""`common.claim` against every interleaving hypothesis finds: copies claim, renew, record, release and complete one
item in any order while the clock moves, on moto's DynamoDB (its condition expressions are the semantics the
protocol relies on). Each request is atomic in DynamoDB, so an interleaving of copies is an order of requests; the
state machine below drives such orders and checks the module's invariants after every step."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from moto import mock_aws

from common.claim import ClaimAttributes, Claimed, ClaimTable

TABLE, KEY, ITEM = "claims", "k", "item-1"
NAMES = ClaimAttributes(owner="claimOwner", until="claimUntil", done=("doneAt",))
copies = st.sampled_from(["copy-a", "copy-b", "copy-c"])
lengths = st.integers(min_value=0, max_value=20)


def _table(client: Any) -> None:
    client.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                        AttributeDefinitions=[{"AttributeName": KEY, "AttributeType": "S"}],
                        KeySchema=[{"AttributeName": KEY, "KeyType": "HASH"}])


class Interleavings(RuleBasedStateMachine):
    """The model: who holds the item and until when, whether the work is done, and what each copy believes it holds
    (a copy acts on its lease until its own ``until``; the table never sees that belief)."""

    client: Any = None  # moto's, started once for the module (`_moto`)

    def __init__(self) -> None:
        super().__init__()
        self.claims = ClaimTable(self.client, TABLE, KEY, NAMES)
        self.client.delete_item(TableName=TABLE, Key={KEY: {"S": ITEM}})  # each example starts from nothing
        self.now = 1_000
        self.owner: str | None = None
        self.until = 0
        self.done = False
        self.believes: dict[str, int] = {}  # copy -> the until of the lease it took
        self.work: str | None = None  # the last copy that wrote under its claim

    @initialize(exists=st.booleans())
    def start(self, exists: bool) -> None:
        if exists:  # an item written before any claim (a stored result, a shard's item)
            self.claims.client.put_item(TableName=TABLE, Item={KEY: {"S": ITEM}})

    def _may_claim(self, copy: str) -> bool:
        return not self.done and (self.owner is None or self.until < self.now or self.owner == copy)

    def _holds(self, copy: str) -> bool:
        return not self.done and self.owner == copy

    def _unchanged_if_refused(self, ok: bool, before: dict[str, Any]) -> None:
        if not ok:
            assert self.claims.observe(ITEM) == before  # a refused write changes nothing

    @rule(copy=copies, length=lengths)
    def claim(self, copy: str, length: int) -> None:
        before = self.claims.observe(ITEM)
        claimed: Claimed = self.claims.claim(ITEM, copy, now=self.now, until=self.now + length,
                                             also={"lastClaim": {"S": copy}})
        assert claimed.mine == self._may_claim(copy)
        assert claimed.item == before  # the old item comes back, taken or refused
        if claimed.mine:
            self.owner, self.until = copy, self.now + length
            self.believes[copy] = self.until
        else:
            assert claimed.holder == self.owner
        self._unchanged_if_refused(claimed.mine, before)

    @rule(copy=copies, length=lengths)
    def renew(self, copy: str, length: int) -> None:
        before = self.claims.observe(ITEM)
        ok = self.claims.renew(ITEM, copy, until=self.now + length)
        assert ok == self._holds(copy)
        if ok:
            self.until = self.believes[copy] = self.now + length
        self._unchanged_if_refused(ok, before)

    @rule(copy=copies)
    def record(self, copy: str) -> None:
        before = self.claims.observe(ITEM)
        ok = self.claims.record(ITEM, copy, {"work": {"S": copy}})
        assert ok == self._holds(copy)
        if ok:
            self.work = copy
        self._unchanged_if_refused(ok, before)

    @rule(copy=copies)
    def release(self, copy: str) -> None:
        before = self.claims.observe(ITEM)
        ok = self.claims.release(ITEM, copy)
        assert ok == self._holds(copy)
        if ok:
            self.owner = None
            self.believes.pop(copy, None)
        self._unchanged_if_refused(ok, before)

    @rule(copy=copies)
    def complete(self, copy: str) -> None:
        before = self.claims.observe(ITEM)
        ok = self.claims.complete(ITEM, copy, {"doneAt": {"N": str(self.now)}, "work": {"S": copy}})
        assert ok == self._holds(copy)
        if ok:
            self.done, self.owner, self.work = True, None, copy
            self.believes.pop(copy, None)
        self._unchanged_if_refused(ok, before)

    @rule(seconds=st.integers(min_value=0, max_value=25))
    def time_passes(self, seconds: int) -> None:
        self.now += seconds

    @invariant()
    def one_holder_at_most(self) -> None:
        live = [copy for copy, until in self.believes.items() if until >= self.now]
        assert len(live) <= 1, f"{live} all believe they hold a live lease at {self.now}"
        if live and not self.done:
            assert live == [self.owner]

    @invariant()
    def the_item_is_the_model(self) -> None:
        item = self.claims.observe(ITEM)
        assert item.get("claimOwner", {}).get("S") == self.owner
        if self.owner is not None:
            assert int(item["claimUntil"]["N"]) == self.until
        else:
            assert "claimUntil" not in item
        assert ("doneAt" in item) == self.done
        assert item.get("work", {}).get("S") == self.work


@pytest.fixture(scope="module", autouse=True)
def _moto() -> Iterator[None]:
    with mock_aws():
        Interleavings.client = boto3.client("dynamodb", region_name="us-east-1")
        _table(Interleavings.client)
        yield
    Interleavings.client = None


Interleavings.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None,
                                           suppress_health_check=[HealthCheck.too_slow])
test_claims_hold_their_invariants_in_every_interleaving = Interleavings.TestCase


@pytest.fixture
def claims() -> ClaimTable:
    Interleavings.client.delete_item(TableName=TABLE, Key={KEY: {"S": ITEM}})
    return ClaimTable(Interleavings.client, TABLE, KEY, ClaimAttributes(owner="owner"))


def test_a_claim_without_a_lease_is_held_for_good_and_names_its_holder(claims: ClaimTable) -> None:
    assert claims.claim(ITEM, "unit-1", also={"n": {"N": "1"}}, if_absent={"first": {"S": "unit-1"}}).mine
    again = claims.claim(ITEM, "unit-1", if_absent={"first": {"S": "unit-1-retry"}})
    assert again.mine and again.item["first"] == {"S": "unit-1"}  # a retry of the same unit sees what it wrote
    refused = claims.claim(ITEM, "unit-2")
    assert not refused.mine and refused.holder == "unit-1"
    with pytest.raises(ValueError, match="no lease to renew"):
        claims.renew(ITEM, "unit-1", until=5)


def test_a_lease_needs_its_clock(claims: ClaimTable) -> None:
    leased = ClaimTable(claims.client, TABLE, KEY, NAMES)
    with pytest.raises(ValueError, match="needs `now`"):
        leased.claim(ITEM, "copy-a", until=10)
    with pytest.raises(ValueError, match="needs `until`"):
        leased.claim(ITEM, "copy-a", now=10)


def test_create_writes_the_item_once_and_hands_back_the_one_stored(claims: ClaimTable) -> None:
    leased = ClaimTable(claims.client, TABLE, KEY, NAMES)
    assert leased.create({KEY: {"S": ITEM}, "value": {"S": "first"}}, "copy-a", until=10).mine
    second = leased.create({KEY: {"S": ITEM}, "value": {"S": "second"}}, "copy-b", until=10)
    assert not second.mine and second.holder == "copy-a" and second.item["value"] == {"S": "first"}
    assert int(second.item["claimUntil"]["N"]) == 10  # the item was written with its lease


def test_create_needs_the_lease_of_a_leased_table_and_none_of_a_lease_less_one(claims: ClaimTable) -> None:
    leased = ClaimTable(claims.client, TABLE, KEY, NAMES)
    with pytest.raises(ValueError, match="needs `until`"):
        leased.create({KEY: {"S": ITEM}}, "copy-a")
    assert claims.observe(ITEM) == {}  # refused before anything was written
    assert claims.create({KEY: {"S": ITEM}}, "unit-1").mine
    assert claims.observe(ITEM) == {KEY: {"S": ITEM}, "owner": {"S": "unit-1"}}  # held for good: no lease


def test_observe_asks_for_a_consistent_read() -> None:
    """Callers read right after a conditional write and decide on what they read (the batch finalizer observes a
    run's success just after claiming a failure's publication, to supersede it). DynamoDB's default read is
    eventually consistent and may return the item as it was before that write; moto always answers with the latest
    state, so the request itself is checked."""
    client = boto3.client("dynamodb", region_name="us-east-1")
    with Stubber(client) as stubber:
        stubber.add_response("get_item", {"Item": {KEY: {"S": ITEM}}},
                             expected_params={"TableName": TABLE, "Key": {KEY: {"S": ITEM}}, "ConsistentRead": True})
        assert ClaimTable(client, TABLE, KEY, NAMES).observe(ITEM) == {KEY: {"S": ITEM}}
        stubber.assert_no_pending_responses()
