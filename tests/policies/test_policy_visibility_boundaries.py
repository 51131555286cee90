"""sqs-visibility-timeout-covers-consumer at its boundary: one second below 6 x timeout + window is refused, the
threshold itself is accepted, and the window counts whole whatever its length (not only the 20 s elsewhere)."""

from __future__ import annotations

import pytest

from offline.analyzer import PolicyPackProcess
from tests.policies.reports import findings, only
from tests.policies.test_policy_queues import worker_stack

RULE = "sqs-visibility-timeout-covers-consumer"


@pytest.mark.parametrize(("timeout", "window"), [(60, 0), (60, 20), (60, 21), (10, 300)])
def test_one_second_below_the_threshold_is_refused_and_the_threshold_accepted(
        pack: PolicyPackProcess, timeout: int, window: int) -> None:
    needed = 6 * timeout + window
    below, _, _ = worker_stack(queue={"visibilityTimeoutSeconds": needed - 1}, function={"timeout": timeout},
                               mapping={"maximumBatchingWindowInSeconds": window})
    message = only(pack.analyze(below.records), RULE).message
    assert (f"visibilityTimeoutSeconds {needed - 1} s < 6 x function 'worker' timeout {timeout} s + mapping "
            f"'worker-source' maximumBatchingWindowInSeconds {window} s = {needed} s") in message

    at, _, _ = worker_stack(queue={"visibilityTimeoutSeconds": needed}, function={"timeout": timeout},
                            mapping={"maximumBatchingWindowInSeconds": window})
    assert not findings(pack.analyze(at.records), RULE)
