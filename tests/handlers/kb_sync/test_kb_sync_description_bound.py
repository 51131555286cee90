"""A job's description: what the batch changed, counted by kind, and cut to Bedrock's 200-character bound, not
shorter (a scheduled run's long id fills it)."""

from __future__ import annotations

from kb_sync.classify import Changed, ChangeKind, ObjectChange, SyncRequested
from kb_sync.planning import QueuedMessage, plan_batch, plan_scheduled_run


def test_a_scheduled_runs_description_is_cut_at_200_characters() -> None:
    run_id = "r" * 300
    description = plan_scheduled_run(run_id, "KB12345678", "DS12345678").description
    assert description == f"kb-sync: scheduled run {run_id}"[:200]
    assert len(description) == 200


def test_a_batchs_description_counts_creations_removals_and_re_requests() -> None:
    def change(kind: ChangeKind, key: str) -> ObjectChange:
        return ObjectChange(kind, "bucket", key)

    messages = [
        QueuedMessage("m-1", Changed((change(ChangeKind.CREATED, "a"), change(ChangeKind.REMOVED, "b")))),
        QueuedMessage("m-2", Changed((change(ChangeKind.CREATED, "c"),))),
        QueuedMessage("m-3", SyncRequested(generation=1, origin="token")),
    ]
    plan = plan_batch(messages, "KB12345678", "DS12345678")
    assert plan is not None
    assert plan.description == "kb-sync: 2 created, 1 removed, 1 re-requests"
