"""The pure decisions of direct ingestion and watching: routing by mode, a document's last change, how a job and a
document ended."""

from __future__ import annotations

import pytest

from kb_sync.classify import Changed, ChangeKind, ObjectChange, SyncRequested
from kb_sync.messages import DocumentChange
from kb_sync.planning import QueuedMessage, SyncPlan, latest_changes, plan_batch
from kb_sync.routing import Route, choose_route
from kb_sync.watch import JobEnd, judge_documents, judge_job

BUCKET = "docs-bucket"


def change(key: str, kind: ChangeKind = ChangeKind.CREATED, sequencer: str | None = None,
           raw: bool = False) -> ObjectChange:
    return ObjectChange(kind, BUCKET, key, key_is_raw=raw, sequencer=sequencer)


def batch(*changes: ObjectChange, extra: tuple[QueuedMessage, ...] = ()) -> list[QueuedMessage]:
    return [QueuedMessage(f"m{n}", Changed((c,))) for n, c in enumerate(changes)] + list(extra)


def plan(messages: list[QueuedMessage]) -> SyncPlan:
    planned = plan_batch(messages, "KB12345678", "DS12345678")
    assert planned is not None
    return planned


def route(messages: list[QueuedMessage], mode: str, threshold: int = 3, settle: int = 60) -> Route:
    return choose_route(plan(messages), messages, mode=mode, burst_threshold=threshold, settle_seconds=settle)


@pytest.mark.parametrize(("mode", "documents", "expected"), [
    ("auto", 3, Route.DIRECT), ("auto", 4, Route.BURST), ("direct", 4, Route.DIRECT), ("direct", 1, Route.DIRECT),
    ("jobs", 3, Route.JOB), ("jobs", 4, Route.BURST)])
def test_the_mode_and_the_threshold_choose_the_route(mode: str, documents: int, expected: Route) -> None:
    assert route(batch(*(change(f"d/{n}") for n in range(documents))), mode) is expected


def test_the_threshold_counts_documents_not_events() -> None:
    # Four events on three documents: still a small change set.
    messages = batch(change("d/0"), change("d/1"), change("d/2"), change("d/0", ChangeKind.REMOVED))
    assert route(messages, "auto") is Route.DIRECT


def test_a_burst_without_settling_starts_its_job_at_once() -> None:
    assert route(batch(*(change(f"d/{n}") for n in range(4))), "auto", settle=0) is Route.JOB


def test_a_re_request_or_an_undecodable_key_always_goes_to_a_job() -> None:
    follow_up = QueuedMessage("f", SyncRequested(generation=1, origin="a" * 64))
    assert route(batch(change("d/0"), extra=(follow_up,)), "direct") is Route.JOB
    assert route(batch(change("d/%FF", raw=True)), "auto") is Route.JOB


def test_a_document_s_last_change_follows_s3_s_sequencer_not_delivery_order() -> None:
    messages = batch(change("d/a", ChangeKind.REMOVED, sequencer="0A"), change("d/a", sequencer="9"),
                     change("d/b", sequencer="0055"), change("d/b", ChangeKind.REMOVED, sequencer="56"))
    kinds = {c.key: c.kind for c in latest_changes(messages)}
    # "0A" > "9" once padded to equal length (S3's rule); "56" > "0055".
    assert kinds == {"d/a": ChangeKind.REMOVED, "d/b": ChangeKind.REMOVED}
    unordered = batch(change("d/c"), change("d/c", ChangeKind.REMOVED))
    assert [c.kind for c in latest_changes(unordered)] == [ChangeKind.REMOVED]  # no sequencer: the later wins
    for first, second in ((change("d/e", sequencer="01"), change("d/e", ChangeKind.REMOVED)),
                          (change("d/e"), change("d/e", ChangeKind.REMOVED, sequencer="01"))):
        assert [c.kind for c in latest_changes(batch(first, second))] == [ChangeKind.REMOVED]  # one of the two: too


def test_a_plan_knows_when_its_newest_change_happened() -> None:
    """What lets a running job cover a batch (a job started after it saw every change): a notification's change
    happened before SQS received it (its SentTimestamp); a follow-up carries the time of the changes it stands for,
    not its own sending time; one obligation that cannot say makes the plan unable to say."""
    notified = QueuedMessage("m1", Changed((change("d/a"),)), sent_at=1_000)
    follow_up = QueuedMessage("m2", SyncRequested(generation=1, origin="a" * 64, changed_before=500), sent_at=9_000)
    assert plan([notified]).changed_before == 1_000
    assert plan([follow_up]).changed_before == 500
    assert plan([notified, follow_up]).changed_before == 1_000
    unknown = QueuedMessage("m3", Changed((change("d/b"),)))  # no SentTimestamp
    assert plan([notified, unknown]).changed_before is None


def test_two_copies_of_a_batch_run_s_end_plan_one_job_and_two_requests_two() -> None:
    """EventBridge may deliver a run's end twice (two SQS messages): both copies name the run, so they plan the same
    client token and Bedrock starts one job. Two sync requests that name no run are two requests."""
    def token(message_id: str, run_id: str | None) -> str:
        return plan([QueuedMessage(message_id, SyncRequested(generation=0, run_id=run_id))]).client_token

    assert token("m1", "run-1") == token("m2", "run-1")
    assert token("m1", "run-1") != token("m1", "run-2")
    assert token("m1", None) != token("m2", None)


def job(status: str, failed: int = 0) -> dict:
    return {"status": status, "statistics": {"numberOfDocumentsFailed": failed}, "failureReasons": ["why"]}


@pytest.mark.parametrize("status", ["STARTING", "IN_PROGRESS", "STOPPING"])
def test_a_running_job_is_checked_again_until_the_last_check(status: str) -> None:
    assert judge_job(job(status), check=1, max_checks=2).end is None
    verdict = judge_job(job(status), check=2, max_checks=2)
    assert verdict.end is JobEnd.UNFINISHED and verdict.failed


@pytest.mark.parametrize(("status", "end", "failed"), [
    ("COMPLETE", JobEnd.COMPLETE, False), ("FAILED", JobEnd.FAILED, True), ("STOPPED", JobEnd.STOPPED, True),
    ("SOMETHING_NEW", JobEnd.FAILED, True)])
def test_how_a_job_ended(status: str, end: JobEnd, failed: bool) -> None:
    verdict = judge_job(job(status, failed=2), check=1, max_checks=5)
    assert (verdict.end, verdict.failed, verdict.failed_documents) == (end, failed, 2)
    assert verdict.failure_reasons == ("why",)


def test_documents_are_judged_by_what_their_change_asked() -> None:
    created = DocumentChange(kind="created", uri=f"s3://{BUCKET}/d/a")
    removed = DocumentChange(kind="removed", uri=f"s3://{BUCKET}/d/b")
    pending = DocumentChange(kind="created", uri=f"s3://{BUCKET}/d/c")
    gone = DocumentChange(kind="created", uri=f"s3://{BUCKET}/d/d")
    broken = DocumentChange(kind="created", uri=f"s3://{BUCKET}/d/e")
    found = {created.uri: ("PARTIALLY_INDEXED", ""), pending.uri: ("IN_PROGRESS", ""),
             broken.uri: ("FAILED", "unparsable")}
    verdicts = judge_documents([created, removed, pending, gone, broken], found)
    assert verdicts.done == (created, removed)  # a deleted document is gone (NOT_FOUND)
    assert verdicts.pending == (pending,)
    assert verdicts.failed == ((gone, "NOT_FOUND"), (broken, "FAILED: unparsable"))
