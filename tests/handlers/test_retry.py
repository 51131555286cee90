"""`common.retry`: one policy for every handler that retries (the callers' own tests hold their parameters)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from common.retry import Backoff, Budget, BudgetExhaustedError, ManualClock, retry, retryable


def _error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, "Call")


def test_each_service_has_its_own_table_of_retryable_codes() -> None:
    runtime, control = retryable("bedrock-runtime"), retryable("bedrock")
    assert runtime(_error("ModelNotReadyException")) and not control(_error("ModelNotReadyException"))
    # The concurrent-jobs quota frees up in hours: the submitter waits for it in the state machine instead.
    assert not control(_error("ServiceQuotaExceededException"))
    assert runtime(EndpointConnectionError(endpoint_url="https://bedrock-runtime"))
    assert control(_error("ThrottlingException"))
    assert not runtime(_error("ValidationException"))
    with pytest.raises(KeyError):
        retryable("no-such-service")


def test_attempts_and_budget_bound_the_retries_whichever_comes_first() -> None:
    def throttled() -> None:
        raise _error("ThrottlingException")

    clock = ManualClock(now=0)
    with pytest.raises(ClientError):  # three attempts, well inside the budget: the last error itself
        retry(throttled, retryable=retryable("bedrock"), backoff=Backoff(1, 4), budget=Budget(clock, 1000),
              max_attempts=3)
    assert len(clock.slept) == 2 and all(0 <= d <= c for d, c in zip(clock.slept, (1, 2), strict=True))
    clock = ManualClock(now=0)
    with pytest.raises(BudgetExhaustedError) as exhausted:  # the budget ends first
        retry(throttled, retryable=retryable("bedrock"), backoff=Backoff(1, 4), budget=Budget(clock, 10),
              attempt_seconds=4, max_attempts=100)
    assert 1 < exhausted.value.attempts < 100 and clock.now <= 10


def test_the_delay_is_a_full_jitter_draw_under_the_ceiling() -> None:
    class Fixed:
        def random(self) -> float:
            return 0.5

    backoff = Backoff(base_seconds=0.25, cap_seconds=1)
    assert [backoff.delay(n, Fixed()) for n in range(4)] == [0.125, 0.25, 0.5, 0.5]
