"""The bucket block: every bucket it creates carries a lifecycle that bounds what it keeps."""

from __future__ import annotations

from typing import Any

import pytest

from components.blocks.bucket import WHOLE_BUCKET_RULE, DataBucket, Expiry, Retention, existing_or_new_bucket
from components.blocks.iam import AwsEnv
from components.config import BucketSettings
from offline.synth import Synthesis, run_program
from tests.blocks.programs import NAMING

REGION = "eu-west-1"
WHOLE = {"id": WHOLE_BUCKET_RULE, "status": "Enabled", "filter": {},
         "abortIncompleteMultipartUpload": {"daysAfterInitiation": 1},
         "noncurrentVersionExpiration": {"noncurrentDays": 30},
         "expiration": {"expiredObjectDeleteMarker": True}}


def synth(program: Any, mode: str = "preview") -> Synthesis:
    return run_program(program, project="ai-pipelines", stack="test", mode=mode,  # type: ignore[arg-type]
                       config={"aws:region": REGION})


def rules(stack: Synthesis, name: str) -> dict[str, dict[str, Any]]:
    return {rule["id"]: rule for rule in stack.named(name).inputs["rules"]}


@pytest.fixture(scope="module", params=["preview", "update"])
def stack(request: pytest.FixtureRequest) -> Synthesis:
    def program() -> None:
        DataBucket(NAMING, AwsEnv.lookup(), "runs", protect=False, retention=Retention(
            30, expiries=(Expiry("expire-shards", "shards/", 31), Expiry("expire-results", "results/", 365))))

    return synth(program, request.param)


def test_every_bucket_aborts_uploads_after_a_day_and_expires_noncurrent_versions(stack: Synthesis) -> None:
    assert rules(stack, "demo-runs-lifecycle")[WHOLE_BUCKET_RULE] == WHOLE


def test_each_expiry_is_a_rule_on_its_prefix(stack: Synthesis) -> None:
    found = rules(stack, "demo-runs-lifecycle")
    assert set(found) == {WHOLE_BUCKET_RULE, "expire-shards", "expire-results"}
    assert found["expire-shards"] == {"id": "expire-shards", "status": "Enabled", "filter": {"prefix": "shards/"},
                                      "expiration": {"days": 31}}
    assert found["expire-results"]["filter"] == {"prefix": "results/"}
    assert found["expire-results"]["expiration"] == {"days": 365}


def test_the_lifecycle_is_the_buckets_and_follows_its_versioning(stack: Synthesis) -> None:
    lifecycle = stack.named("demo-runs-lifecycle")
    assert lifecycle.inputs["bucket"] == stack.named("demo-runs").inputs["bucket"]
    assert stack.named("demo-runs-versioning").urn in lifecycle.dependencies


def test_settings_give_the_noncurrent_days_and_optionally_expire_every_object() -> None:
    kept = Retention.of(BucketSettings())
    assert (kept.noncurrent_version_days, tuple(kept.expiries), kept.abort_incomplete_upload_days) == (30, (), 1)
    expiring = Retention.of(BucketSettings(noncurrentVersionDays=14, objectRetentionDays=90))
    assert expiring.noncurrent_version_days == 14
    assert tuple(expiring.expiries) == (Expiry("expire-objects", "", 90),)


def test_an_existing_bucket_gets_no_lifecycle_a_created_one_does() -> None:
    def program() -> None:
        env = AwsEnv.lookup()
        _, physical = existing_or_new_bucket(NAMING, env, "landing", settings=BucketSettings(
            existingName="corp-landing"), protect=False)
        assert physical == "corp-landing"
        existing_or_new_bucket(NAMING, env, "docs", settings=BucketSettings(objectRetentionDays=7), protect=False)

    stack = synth(program)
    assert [r.name for r in stack.of_type("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration")] == [
        "demo-docs-lifecycle"]
    found = rules(stack, "demo-docs-lifecycle")
    assert found["expire-objects"] == {"id": "expire-objects", "status": "Enabled", "filter": {"prefix": ""},
                                       "expiration": {"days": 7}}


@pytest.mark.parametrize(("retention", "message"), [
    (lambda: Retention(30, expiries=(Expiry("a", "x/", 1), Expiry("a", "y/", 2))), "unique"),
    (lambda: Retention(30, expiries=(Expiry(WHOLE_BUCKET_RULE, "x/", 1),)), "unique"),
    (lambda: Retention(0), "at least 1"),
    (lambda: Retention(30, expiries=(Expiry("a", "x/", 0),)), "at least 1"),
])
def test_a_retention_that_s3_would_refuse_is_refused_here(retention: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        retention()
