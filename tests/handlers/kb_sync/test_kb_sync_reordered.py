"""Direct ingestion with the notifications of one key applied out of order: the index ends as S3 is.

A standard queue may reorder messages and two workers run at once, and S3's sequencer orders a key's events only
within one batch. The reliability tests start with a document ingested, indexed and checked, change it twice in
S3, and have the handler apply the two notifications apart: the later change first, applied and checked before the
earlier one comes, or at once (one worker lists the bucket just before the other worker's change). The fake
knowledge base's documents are the index; every check is followed to its end and counted."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.handlers.kb_sync.names import BUCKET, PREFIX
from tests.handlers.kb_sync.test_kb_sync_direct import CHECK_DELAY, metric_sums
from tests.support import aws_calls, faults

REORDERED = "notifications of one key applied out of order"
KEY = f"{PREFIX}policies/leave.pdf"
URI = f"s3://{BUCKET}/{KEY}"
INGEST, DELETE = "IngestKnowledgeBaseDocuments", "DeleteKnowledgeBaseDocuments"
_DELETING = "provide-client-params.bedrock-agent.DeleteKnowledgeBaseDocuments"
_WAITING = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed")


def run_every_check(pipeline: Any, event_source: Any, bedrock: Any, clock: Any) -> None:
    """Let Bedrock finish and deliver every check (and a re-submission's checks) until none is waiting."""
    for _ in range(5):
        bedrock.settle_documents()
        clock.advance(CHECK_DELAY + 1)
        while (delivery := event_source.poll(raise_errors=True)) is not None:
            assert delivery.failed_ids == []
        if not any(pipeline.attribute(name) for name in _WAITING):
            return
    raise AssertionError("checks still waiting after five rounds")


def indexed(pipeline: Any, event_source: Any, bedrock: Any, clock: Any) -> None:
    """The document uploaded, ingested directly, indexed and checked: nothing about it is left to do."""
    pipeline.put(KEY, b"version 1")
    assert event_source.poll(raise_errors=True).failed_ids == []  # with S3's test event
    run_every_check(pipeline, event_source, bedrock, clock)
    assert bedrock.documents == {URI: "INDEXED"}


def change(pipeline: Any, what: str) -> None:
    if what == "put":
        pipeline.put(KEY, b"version 2")
    else:
        pipeline.delete(KEY)


def made_by(message: dict[str, Any]) -> str:
    """The S3 operation a notification reports: put or delete."""
    return "put" if json.loads(message["Body"])["Records"][0]["eventName"].startswith("ObjectCreated") else "delete"


def deliver_apart(event_source: Any, invoke: Any, messages: list[dict[str, Any]]) -> None:
    """Each message in a batch of its own, in the order given, each acknowledged as Lambda's mapping would."""
    for message in messages:
        assert invoke(event_source.event([message])) == {"batchItemFailures": []}
        with aws_calls.paused():
            event_source._sqs.delete_message(QueueUrl=event_source.queue_url, ReceiptHandle=message["ReceiptHandle"])


@faults.injects("notifications of one key applied out of order")
@pytest.mark.parametrize(("changes", "in_s3"), [
    pytest.param(("delete", "put"), True, id="deleted-then-uploaded-again"),
    pytest.param(("put", "delete"), False, id="uploaded-again-then-deleted"),
])
def test_reliability_the_later_change_of_a_key_applied_first_leaves_the_index_as_s3_is(
        pipeline, event_source, bedrock, invoke, clock, capsys, changes, in_s3):
    indexed(pipeline, event_source, bedrock, clock)
    capsys.readouterr()  # the scenario's metrics alone
    for what in changes:
        change(pipeline, what)
    event_source.visibility_timeout = 3600  # a worker holds the earlier change's batch (slow, or retried) ...
    earlier, later = sorted(event_source.receive(), key=lambda message: changes.index(made_by(message)))
    event_source.visibility_timeout = 30

    faults.injected(REORDERED, f"the {changes[1]} of a key was applied and checked before its {changes[0]}, "
                               "which came in another batch")
    deliver_apart(event_source, invoke, [later])
    run_every_check(pipeline, event_source, bedrock, clock)  # ... while the later change is applied and checked
    deliver_apart(event_source, invoke, [earlier])
    run_every_check(pipeline, event_source, bedrock, clock)

    assert bedrock.documents == ({URI: "INDEXED"} if in_s3 else {})  # the index holds what S3 holds
    # Both batches submitted the document as S3 held it when they ran, whatever their notification said.
    operation = INGEST if in_s3 else DELETE
    assert bedrock.submissions == [(INGEST, [URI]), (operation, [URI]), (operation, [URI])]
    metrics = metric_sums(capsys)
    # The earlier change's batch, run second, found S3 changed since; each batch's check found its document done.
    assert (metrics["DocumentsSuperseded"], metrics["DirectDocumentsDone"]) == (1, 2)
    assert "DirectDocumentsFailed" not in metrics and "DirectDocumentsRetried" not in metrics
    assert bedrock.jobs == [] and pipeline.dead_letters() == []
    assert pipeline.attribute("ApproximateNumberOfMessagesNotVisible") == 0


@faults.injects("notifications of one key applied out of order")
def test_reliability_a_removal_listed_before_the_re_upload_and_applied_after_its_ingestion_is_repaired(
        pipeline, event_source, bedrock, invoke, clock, capsys):
    """Two workers: one lists the bucket for a removal, the key is uploaded again and the other worker ingests it,
    then the first one's deletion reaches Bedrock. The re-upload's check finds its document gone and submits it
    again, as the bucket holds it."""
    indexed(pipeline, event_source, bedrock, clock)
    capsys.readouterr()
    pipeline.delete(KEY)
    (removal,) = event_source.receive()
    events = bedrock.client.meta.events

    def re_uploaded_meanwhile(**_: Any) -> None:
        events.unregister(_DELETING, re_uploaded_meanwhile)
        with aws_calls.paused():
            pipeline.put(KEY, b"version 2")
            (upload,) = event_source.receive()
        faults.injected(REORDERED, "a removal listed before the re-upload reached Bedrock after the re-upload's "
                                   "ingestion by another worker")
        deliver_apart(event_source, invoke, [upload])

    events.register_first(_DELETING, re_uploaded_meanwhile)
    deliver_apart(event_source, invoke, [removal])
    bedrock.settle_documents()
    assert bedrock.documents == {}  # the race: S3 holds the key, the index lost it

    run_every_check(pipeline, event_source, bedrock, clock)

    assert bedrock.documents == {URI: "INDEXED"}
    assert [operation for operation, _ in bedrock.submissions] == [INGEST, INGEST, DELETE, INGEST]
    metrics = metric_sums(capsys)
    # The removal's check and the re-submission's check are done; the re-upload's first check submitted it again.
    assert (metrics["DirectDocumentsRetried"], metrics["DirectDocumentsDone"]) == (1, 2)
    assert "DirectDocumentsFailed" not in metrics and bedrock.jobs == [] and pipeline.dead_letters() == []


def test_a_document_deleted_before_its_ingestion_is_checked_is_not_ingested_again(
        pipeline, event_source, bedrock, clock, capsys):
    """In order, but the ingestion's check comes after the deletion: it finds the document gone and the bucket
    agrees, so it is done; the document is neither submitted again nor handed to a job (no page)."""
    pipeline.put(KEY, b"version 1")
    event_source.poll(raise_errors=True)
    bedrock.settle_documents()
    pipeline.delete(KEY)
    assert event_source.poll(raise_errors=True).failed_ids == []  # before the ingestion's check is due

    run_every_check(pipeline, event_source, bedrock, clock)

    assert bedrock.documents == {}
    assert [operation for operation, _ in bedrock.submissions] == [INGEST, DELETE]
    metrics = metric_sums(capsys)
    assert (metrics["DocumentsSuperseded"], metrics["DirectDocumentsDone"]) == (1, 2)
    assert "DirectDocumentsFailed" not in metrics and "DirectDocumentsRetried" not in metrics
    assert bedrock.jobs == []
