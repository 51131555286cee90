"""The edges of the event processor's idempotency: what makes two events one item (`keys`), and how the results
table decides who publishes a stored result when copies meet there (`store`), on moto's DynamoDB with the tables
the dev stack declares. Fast: no handler, no queue."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import boto3
import pytest
from botocore.exceptions import EndpointConnectionError
from botocore.stub import Stubber

from event_processor import store
from event_processor.events import InputReference, ModelAnswer, Usage
from event_processor.exceptions import PublicationInProgressError, ResultStoreError
from event_processor.intake import Accepted, classify
from event_processor.keys import MissingKeyFieldError, content_version, idempotency_key
from event_processor.results import StoredResult
from tests.handlers.conftest import REGION
from tests.handlers.event_processor.conftest import IDEMPOTENCY_TABLE, RESULTS_TABLE
from tests.handlers.event_processor.test_event_processor_core import RULES

RESULTS, IDEMPOTENCY = RESULTS_TABLE["name"], IDEMPOTENCY_TABLE["name"]
NOW_MS = 1_700_000_000_000
EXPIRES_AT = NOW_MS // 1000 + 86_400


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# --- keys ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("event_id", ["", 42, None])
def test_an_empty_or_non_string_event_id_is_no_identity(event_id: Any) -> None:
    with pytest.raises(MissingKeyFieldError, match="field id is missing"):
        idempotency_key({"id": event_id, "source": "s"}, ())


def test_a_key_field_holding_an_object_names_one_item_whatever_the_order_of_its_keys() -> None:
    """JSON objects are unordered: two producers (or two serialisations by one) may send the same object with
    its keys in another order, and that is still one item."""
    fields = ("source", "detail.customer")
    one = {"source": "s", "detail": {"customer": {"tenant": "t-1", "number": 7}}}
    reordered = {"source": "s", "detail": {"customer": {"number": 7, "tenant": "t-1"}}}
    other = {"source": "s", "detail": {"customer": {"tenant": "t-1", "number": 8}}}
    assert idempotency_key(one, fields) == idempotency_key(reordered, fields) != idempotency_key(other, fields)


def test_versions_and_identities_are_the_same_digests_in_every_release() -> None:
    """Results are keyed by identity and version, and ``input.itemVersion`` is announced to consumers: a release
    that digested the same item differently would process and announce every redelivered or duplicate item again.
    The canonical forms, spelt out: compact JSON, keys sorted, non-ASCII text as UTF-8 (not ``\\u`` escapes)."""
    assert content_version("Grüße aus 東京", "s3://bücher/k") == _sha256(
        '{"content":"Grüße aus 東京","reference":"s3://bücher/k"}')
    event = {"id": "e-1", "source": "com.example.documents", "detail": {"itemId": "Straße-7"}}
    assert idempotency_key(event, ("source", "detail.itemId")) == _sha256(
        '[["source","com.example.documents"],["detail.itemId","Straße-7"]]')


def test_a_key_field_that_is_not_valid_unicode_still_names_one_item() -> None:
    """JSON may escape a lone surrogate (``\\ud800``), which has no UTF-8 form; a key field the event model does not
    validate can hold one. It is digested as its escape, as a version is, instead of failing the record for ever; the
    literal six characters ``\\ud800`` stay another item."""
    rules = replace(RULES, key_fields=("source", "detail.tenant"))

    def delivered(tenant_json: str) -> str:
        return ('{"id": "e-1", "source": "com.example.documents", "detail-type": "DocumentSubmitted", '
                f'"detail": {{"itemId": "doc-1", "content": "hello", "tenant": "{tenant_json}"}}}}')

    lone = classify(delivered("t-\\ud800"), rules)
    again = classify(delivered("t-\\ud800"), rules)
    literal = classify(delivered("t-\\\\ud800"), rules)
    assert isinstance(lone, Accepted) and isinstance(again, Accepted) and isinstance(literal, Accepted)
    assert lone.identity == again.identity != literal.identity


# --- the results table ----------------------------------------------------------------------------------------


@pytest.fixture
def dynamodb(aws: None) -> Any:
    client = boto3.client("dynamodb", region_name=REGION)
    for table in (RESULTS_TABLE, IDEMPOTENCY_TABLE):
        client.create_table(TableName=table["name"], BillingMode="PAY_PER_REQUEST",
                            KeySchema=[{"AttributeName": table["hashKey"], "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": table["hashKey"], "AttributeType": "S"}])
    return client


def _result(text: str = "") -> StoredResult:
    return StoredResult(
        result_id="r-1", task="classify", model_id="m",
        answer=ModelAnswer(text=text, stopReason="tool_use", usage=Usage(inputTokens=3, outputTokens=4),
                           completedAt="2025-01-01T00:00:00.000+00:00", structured={"label": "invoice"}),
        input=InputReference(eventId="e-1", source="s", detailType="d", itemId="doc-1"))


def _copy(name: str, *, until_ms: int = NOW_MS + 60_000) -> store.Claim:
    return store.Claim(owner=f"{name}/message-1", expires_at_ms=until_ms)


def _store(client: Any, result: StoredResult, claim: store.Claim, now_ms: int = NOW_MS) -> store.StoreOutcome:
    return store.store(client, RESULTS, result, claim, now_ms=now_ms, expires_at=EXPIRES_AT)


def _stored_item(client: Any) -> dict[str, Any]:
    return dict(client.get_item(TableName=RESULTS, Key={"resultId": {"S": "r-1"}}).get("Item") or {})


def _before_the_reclaim(client: Any, act: Callable[[], None]) -> None:
    """Run `act` once, between the refused put of a copy and its claim of the stored result (another copy's write
    landing in that gap)."""
    def once(**_: Any) -> None:
        client.meta.events.unregister("before-call.dynamodb.UpdateItem", once)
        act()
    client.meta.events.register("before-call.dynamodb.UpdateItem", once)


def test_the_item_version_record_hands_back_the_version_noted_before(dynamodb: Any) -> None:
    assert store.note_version(dynamodb, IDEMPOTENCY, "item-1", "v1", expires_at=EXPIRES_AT) is None
    assert store.note_version(dynamodb, IDEMPOTENCY, "item-1", "v2", expires_at=EXPIRES_AT) == "v1"
    assert store.note_version(dynamodb, IDEMPOTENCY, "item-2", "v1", expires_at=EXPIRES_AT) is None  # its own record
    record = dynamodb.get_item(TableName=IDEMPOTENCY, Key={"id": {"S": "item-version#item-1"}})["Item"]
    assert record == {"id": {"S": "item-version#item-1"}, "contentSha256": {"S": "v2"},
                      "expiration": {"N": str(EXPIRES_AT)}}


def test_a_copy_meeting_another_that_is_publishing_is_retried_and_names_it(dynamodb: Any) -> None:
    assert _store(dynamodb, _result(), _copy("request-a")).state is store.Stored.NEW
    with pytest.raises(PublicationInProgressError, match=r"being published by request-a/message-1 \(claim until "
                                                         rf"{NOW_MS + 60_000} ms\)"):
        _store(dynamodb, _result(), _copy("request-b"), now_ms=NOW_MS + 1_000)


def test_a_result_published_just_before_the_reclaim_is_not_published_again(dynamodb: Any) -> None:
    """Copy A stored the result and its claim ran out; copy B finds it unpublished, and A publishes it before B's
    claim lands: B's claim is refused and B has nothing left to do."""
    first = _copy("request-a", until_ms=NOW_MS - 1)
    assert _store(dynamodb, _result(), first).state is store.Stored.NEW
    _before_the_reclaim(dynamodb, lambda: store.mark_published(
        dynamodb, RESULTS, "r-1", first, event_id="completion-a", published_at="2025-01-01T00:00:01Z"))
    outcome = _store(dynamodb, _result(), _copy("request-b"))
    assert outcome.state is store.Stored.PUBLISHED and outcome.result == _result()
    assert _stored_item(dynamodb)["completionEventId"] == {"S": "completion-a"}


def test_a_stored_result_gone_before_the_reclaim_is_not_written_back_without_its_result(dynamodb: Any) -> None:
    """The table's TTL may delete an unpublished result between a copy's refused put and its claim. The claim then
    finds no item and writes none: a claim alone would hold no result and no expiry (the table would keep it for
    ever), and the copy, retried, stores its result afresh."""
    assert _store(dynamodb, _result(), _copy("request-a", until_ms=NOW_MS - 1)).state is store.Stored.NEW
    _before_the_reclaim(dynamodb, lambda: dynamodb.delete_item(TableName=RESULTS, Key={"resultId": {"S": "r-1"}}))
    with pytest.raises(PublicationInProgressError, match=r"being published by \?"):
        _store(dynamodb, _result(), _copy("request-b"))
    assert _stored_item(dynamodb) == {}
    assert _store(dynamodb, _result(), _copy("request-b")).state is store.Stored.NEW


@pytest.mark.parametrize("older", [
    pytest.param(lambda item: {k: v for k, v in item.items() if k != "answer"}, id="an attribute missing"),
    pytest.param(lambda item: {**item, "answer": {"S": "not json"}}, id="an answer that does not parse"),
])
def test_an_unpublished_item_of_an_older_version_is_published_as_the_fresh_result(
        dynamodb: Any, older: Callable[[dict[str, Any]], dict[str, Any]]) -> None:
    dynamodb.put_item(TableName=RESULTS, Item=older(_result("old").item()))
    outcome = _store(dynamodb, _result("fresh"), _copy("request-b"))
    assert outcome.state is store.Stored.RECLAIMED and outcome.result == _result("fresh")


def test_a_refused_write_names_the_table_the_result_and_the_error_code() -> None:
    """An error DynamoDB's model does not declare (a missing grant) reaches botocore as a bare ``ClientError``: the
    message names its code, not the class."""
    client = boto3.client("dynamodb", region_name=REGION)
    with Stubber(client) as stubber:
        stubber.add_client_error("put_item", service_error_code="AccessDeniedException",
                                 service_message="not authorized to perform: dynamodb:PutItem")
        with pytest.raises(ResultStoreError, match=rf"results table {RESULTS}: writing result r-1 failed "
                                                   r"\(AccessDeniedException: .*dynamodb:PutItem"):
            _store(client, _result(), _copy("request-a"))


def test_an_unreachable_table_is_a_store_error_naming_the_failure() -> None:
    class Unreachable:
        def put_item(self, **_: Any) -> None:
            raise EndpointConnectionError(endpoint_url=f"https://dynamodb.{REGION}.amazonaws.com")

    with pytest.raises(ResultStoreError, match=r"writing result r-1 failed \(EndpointConnectionError: "):
        _store(Unreachable(), _result(), _copy("request-a"))

