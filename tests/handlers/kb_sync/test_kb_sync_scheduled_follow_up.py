"""A scheduled run refused by a running job is carried by a follow-up of the first generation, like a change."""

from __future__ import annotations

import pytest

from kb_sync.planning import plan_scheduled_run, resolve_conflict

# The job path: every change through StartIngestionJob (direct ingestion has its own tests).
pytestmark = pytest.mark.usefixtures("jobs_mode")


@pytest.mark.parametrize("max_follow_ups", [1, 3])
def test_a_refused_scheduled_run_is_carried_by_a_first_generation_follow_up(max_follow_ups: int) -> None:
    plan = plan_scheduled_run("run-1", "KB12345678", "DS12345678")
    [obligation] = plan.obligations
    assert obligation.generation == 0 and obligation.message_id is None

    resolution = resolve_conflict(plan, max_follow_ups=max_follow_ups)

    assert resolution.follow_up is not None and resolution.follow_up.generation == 1
    assert resolution.follow_up.origin == plan.client_token
    assert resolution.carried == plan.obligations and resolution.exhausted == ()
