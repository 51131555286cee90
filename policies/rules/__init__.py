"""The pack's rules, grouped by service, and the Pulumi policies built from them.

`RULES` is the single list both the pack (`__main__.py`) and the catalogue (`catalogue.py`) read.
`exemptions-applied` comes last: the SDK runs stack policies in order, and it reports what the others suppressed.
"""

from __future__ import annotations

from pulumi_policy import Policy

from . import (
    cloudwatch,
    dynamodb,
    events,
    iam,
    kms,
    lambda_,
    lambda_async,
    lambda_concurrency,
    observability,
    rds,
    s3,
    s3_access_logs,
    s3_lifecycle,
    secretsmanager,
    sqs,
    stepfunctions,
)
from .core import diagnostics, manifest, process
from .core.rule import Rule, to_policy
from .exemptions_applied import EXEMPTIONS_APPLIED

PACK_NAME = "ai-pipelines-guardrails"

RULES: tuple[Rule, ...] = (
    *iam.RULES,
    *sqs.RULES,
    *lambda_.RULES,
    *lambda_async.RULES,
    *lambda_concurrency.RULES,
    *s3.RULES,
    *s3_lifecycle.RULES,
    *s3_access_logs.RULES,
    *events.RULES,
    *stepfunctions.RULES,
    *dynamodb.RULES,
    *rds.RULES,
    *kms.RULES,
    *secretsmanager.RULES,
    *cloudwatch.RULES,
    *observability.RULES,
    EXEMPTIONS_APPLIED,
)


def policies() -> list[Policy]:
    """The policies of a running pack (this also tunes the pack's process for the analysis workload, has the SDK
    report the manifest's version, and has its violation messages say the finding alone)."""
    process.tune_for_analysis()
    manifest.report_manifest_version()
    diagnostics.report_findings_first()
    return [to_policy(rule) for rule in RULES]
