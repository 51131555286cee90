"""The checkov gate's judgement of failures against the written skips (checkov itself runs in `make checkov`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tools.checkov_gate import Failure, failures_of, judge, load_skips

SKIPS = {
    "CKV_A": [{"reason": "everywhere"}],
    "CKV_B": [{"reason": "dev only", "stacks": ["dev"]}],
    "CKV_C": [{"reason": "one resource", "resources": ["aws_s3_bucket.logs"]}],
}


def test_a_skip_covers_its_check_in_its_stacks_and_on_its_resources_only() -> None:
    failures = [Failure("CKV_A", "aws_x.a", "a"), Failure("CKV_B", "aws_x.b", "b"),
                Failure("CKV_C", "aws_s3_bucket.logs", "c"), Failure("CKV_C", "aws_s3_bucket.data", "c"),
                Failure("CKV_D", "aws_x.d", "d")]
    prod = judge(failures, SKIPS, "prod")
    assert [(f.check_id, f.resource) for f in prod.unskipped] == [
        ("CKV_B", "aws_x.b"), ("CKV_C", "aws_s3_bucket.data"), ("CKV_D", "aws_x.d")]
    assert prod.stale == []
    dev = judge(failures, SKIPS, "dev")
    assert [f.check_id for f in dev.unskipped] == ["CKV_C", "CKV_D"]


def test_a_skip_that_matches_nothing_in_a_stack_it_applies_to_is_stale() -> None:
    verdict = judge([Failure("CKV_A", "aws_x.a", "a")], SKIPS, "dev")
    assert verdict.stale == ["CKV_B", "CKV_C"]
    assert judge([Failure("CKV_A", "aws_x.a", "a")], SKIPS, "prod").stale == ["CKV_C"]


def test_a_check_can_be_skipped_for_one_reason_in_one_stack_and_another_elsewhere() -> None:
    skips = {"CKV_K": [{"reason": "dev keys", "stacks": ["dev"]},
                       {"reason": "log bucket", "stacks": ["prod"], "resources": ["aws_s3_bucket.logs"]}]}
    failures = [Failure("CKV_K", "aws_s3_bucket.logs", "k"), Failure("CKV_K", "aws_s3_bucket.data", "k")]
    assert judge(failures, skips, "dev").unskipped == []
    prod = judge(failures, skips, "prod")
    assert [f.resource for f in prod.unskipped] == ["aws_s3_bucket.data"] and prod.stale == []
    assert judge(failures[1:], skips, "prod").stale == ["CKV_K (entry 2)"]


def test_a_skip_without_a_reason_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "skips.json"
    path.write_text(json.dumps({"skips": {"CKV_A": [{"reason": "fine"}, {"reason": " "}]}}))
    with pytest.raises(ValueError, match="CKV_A has no reason"):
        load_skips(path)


def test_the_shipped_skips_each_give_a_reason_and_name_shipped_stacks() -> None:
    skips = load_skips()
    assert skips and all(check_id.startswith(("CKV_AWS_", "CKV2_AWS_")) for check_id in skips)
    assert all(set(entry.get("stacks", ["prod", "dev"])) <= {"prod", "dev"}
               for entries in skips.values() for entry in entries)


def test_failures_are_read_from_one_report_or_a_list_of_them() -> None:
    report = {"results": {"failed_checks": [{"check_id": "CKV_A", "resource": "aws_x.a", "check_name": "A"}]}}
    assert failures_of(report) == failures_of([report, {"results": {}}]) == [Failure("CKV_A", "aws_x.a", "A")]
