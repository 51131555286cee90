"""A job's description is cut to Bedrock's 200-character bound, not shorter: a scheduled run's long id fills it."""

from __future__ import annotations

from kb_sync.planning import plan_scheduled_run


def test_a_scheduled_runs_description_is_cut_at_200_characters() -> None:
    run_id = "r" * 300
    description = plan_scheduled_run(run_id, "KB12345678", "DS12345678").description
    assert description == f"kb-sync: scheduled run {run_id}"[:200]
    assert len(description) == 200
