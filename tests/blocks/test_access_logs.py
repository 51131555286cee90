"""The access-log block: every registered bucket logs into one locked-down log bucket that admits exactly them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.blocks.access_logs import LOGGING_SERVICE, AccessLogs
from components.blocks.bucket import DataBucket, Retention
from components.blocks.iam import AwsEnv
from components.config import AccessLogSettings, ConfigError, parse_stack_config
from offline.synth import Synthesis, run_program
from tests.blocks.programs import NAMING

REGION, ACCOUNT = "eu-west-1", "123456789012"
LOG_BUCKET = f"ai-pipelines-test-demo-access-logs-{ACCOUNT}-{REGION}"


def synth(settings: AccessLogSettings, mode: str = "preview", sources: tuple[str, ...] = ("docs", "runs")
          ) -> Synthesis:
    def program() -> None:
        env = AwsEnv.lookup()
        logs = AccessLogs(NAMING, env, settings=settings, protect=False)
        for purpose in sources:
            DataBucket(NAMING, env, purpose, retention=Retention(30), protect=False, access_logs=logs)
        logs.build()

    return run_program(program, project="ai-pipelines", stack="test", mode=mode,  # type: ignore[arg-type]
                       config={"aws:region": REGION})


@pytest.fixture(scope="module", params=["preview", "update"])
def stack(request: pytest.FixtureRequest) -> Synthesis:
    return synth(AccessLogSettings(retentionDays=90), request.param)


def source_name(purpose: str) -> str:
    return f"ai-pipelines-test-demo-{purpose}-{ACCOUNT}-{REGION}"


def policy(stack: Synthesis, name: str) -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = json.loads(stack.named(name).inputs["policy"])["Statement"]
    return statements


def test_each_source_logs_into_its_own_folder_of_the_log_bucket(stack: Synthesis) -> None:
    for purpose in ("docs", "runs"):
        logging = stack.named(f"demo-{purpose}-access-logging").inputs
        assert logging["bucket"] == source_name(purpose) and logging["targetBucket"] == LOG_BUCKET
        assert logging["targetPrefix"] == f"{source_name(purpose)}/"
        assert logging["targetObjectKeyFormat"] == {"partitionedPrefix": {"partitionDateSource": "EventTime"}}


def test_the_log_bucket_admits_only_s3_log_delivery_from_each_source(stack: Synthesis) -> None:
    grants = [s for s in policy(stack, "demo-access-logs-policy") if s["Effect"] == "Allow"]
    assert grants == [{
        "Sid": f"DeliverAccessLogs{index}", "Effect": "Allow", "Principal": {"Service": LOGGING_SERVICE},
        "Action": ["s3:PutObject"], "Resource": [f"arn:aws:s3:::{LOG_BUCKET}/{source_name(purpose)}/*"],
        "Condition": {"StringEquals": {"aws:SourceAccount": ACCOUNT},
                      "ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{source_name(purpose)}"}}}
        for index, purpose in enumerate(("docs", "runs"), start=1)]


def test_the_log_bucket_is_locked_down_kept_for_its_retention_and_not_logged(stack: Synthesis) -> None:
    assert stack.named("demo-access-logs-public-access").inputs["restrictPublicBuckets"] is True
    assert stack.named("demo-access-logs-ownership").inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    assert any(s["Effect"] == "Deny" and s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
               for s in policy(stack, "demo-access-logs-policy"))
    rules = {rule["id"]: rule for rule in stack.named("demo-access-logs-lifecycle").inputs["rules"]}
    assert rules["expire-access-logs"]["expiration"] == {"days": 90}
    loggings = stack.of_type("aws:s3/bucketLogging:BucketLogging")
    assert LOG_BUCKET not in {r.inputs["bucket"] for r in loggings} and len(loggings) == 2


def test_delivery_starts_only_after_the_policy_admits_it(stack: Synthesis) -> None:
    policy_urn = stack.named("demo-access-logs-policy").urn
    assert all(policy_urn in r.dependencies for r in stack.of_type("aws:s3/bucketLogging:BucketLogging"))


def test_switched_off_or_without_sources_nothing_is_built() -> None:
    for built in (synth(AccessLogSettings(enabled=False)), synth(AccessLogSettings(), sources=())):
        assert not built.of_type("aws:s3/bucketLogging:BucketLogging")
        assert not [r for r in built.of_type("aws:s3/bucket:Bucket") if r.inputs["bucket"] == LOG_BUCKET]


def test_retention_is_bounded() -> None:
    with pytest.raises(ConfigError, match=r"accessLogs\.retentionDays = 0"):
        parse_stack_config({"owner": "team", "accessLogs": {"retentionDays": 0}}, stack="prod")
