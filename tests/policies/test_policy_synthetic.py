"""The benchmark's synthetic stack is compliant, so timing it exercises every rule over resources it must read
and relate, not an early exit."""

from __future__ import annotations

from collections import Counter

from offline.analyzer import PolicyPackProcess
from tests.policies.builders import synthetic_stack


def test_synthetic_stack_is_compliant_and_covers_every_rule_type(pack: PolicyPackProcess) -> None:
    records = synthetic_stack(300)
    assert len(records) == 300
    types = Counter(r.type for r in records)
    for needed in ("aws:sqs/queue:Queue", "aws:lambda/eventSourceMapping:EventSourceMapping",
                   "aws:s3/bucket:Bucket", "aws:cloudwatch/eventTarget:EventTarget",
                   "aws:sfn/stateMachine:StateMachine", "aws:dynamodb/table:Table", "aws:iam/rolePolicy:RolePolicy",
                   "aws:cloudwatch/metricAlarm:MetricAlarm"):
        assert types[needed] > 1, needed
    report = pack.analyze(records)
    assert report.violations == [] and report.skipped == []
