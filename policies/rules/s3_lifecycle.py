"""Versioned buckets expire what they keep: noncurrent versions and incomplete multipart uploads.

A versioned bucket keeps every overwritten or deleted object as a noncurrent version, and S3 keeps the parts of an
upload that never completed; both are billed and invisible in a listing until a lifecycle rule removes them. Both
settings are read from the resource the stack uses to set them: a BucketVersioning and a BucketLifecycleConfiguration
(followed through their `bucket`), else the bucket's own deprecated `versioning` and `lifecycleRules`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import EnforcementLevel, PolicyResource, Severity

from .core import types
from .core.frameworks import well_architected
from .core.rule import Rule, StackContext, describe
from .core.values import as_list, fmt, get_path, truthy, unless_computed


def _versioned(ctx: StackContext, bucket: PolicyResource) -> bool:
    separate = ctx.index.referrers(bucket, *types.BUCKET_VERSIONINGS, key="bucket")
    if separate:
        return any(get_path(v.props, "versioningConfiguration", "status") == "Enabled" for v in separate)
    return truthy(get_path(unless_computed(bucket, "versioning"), "enabled"))


def _whole_bucket(rule: Mapping[str, Any]) -> bool:
    """A rule without a filter, or whose filter selects every object (an empty prefix, no tags, no size bounds)."""
    if rule.get("prefix"):
        return False
    rule_filter = rule.get("filter")
    return not rule_filter or not any(value not in (None, "", [], {}) for value in rule_filter.values())


def _rules(ctx: StackContext, bucket: PolicyResource) -> list[tuple[int | None, int | None]]:
    """(abort-incomplete-upload days, noncurrent-version days) of each enabled rule covering the whole bucket."""
    found: list[tuple[int | None, int | None]] = []
    configs = ctx.index.referrers(bucket, *types.BUCKET_LIFECYCLES, key="bucket")
    for config in configs:
        for rule in as_list(config.props.get("rules")):
            if rule.get("status") == "Enabled" and _whole_bucket(rule):
                abort = get_path(rule, "abortIncompleteMultipartUpload", "daysAfterInitiation")
                noncurrent = get_path(rule, "noncurrentVersionExpiration", "noncurrentDays")
                found.append((None if abort is None else int(abort), None if noncurrent is None else int(noncurrent)))
    if configs:
        return found
    for rule in as_list(unless_computed(bucket, "lifecycleRules")):
        if truthy(rule.get("enabled")) and not rule.get("prefix") and not rule.get("tags"):
            abort = rule.get("abortIncompleteMultipartUploadDays")
            noncurrent = get_path(rule, "noncurrentVersionExpiration", "days")
            found.append((None if abort is None else int(abort), None if noncurrent is None else int(noncurrent)))
    return found


def _problems(ctx: StackContext, bucket: PolicyResource) -> list[str]:
    max_abort = float(ctx.settings["maxAbortIncompleteUploadDays"])
    max_noncurrent = float(ctx.settings["maxNoncurrentVersionDays"])
    rules = _rules(ctx, bucket)
    problems = []
    aborts = [days for days, _ in rules if days is not None]
    if not aborts or min(aborts) > max_abort:
        got = f" (shortest {fmt(min(aborts))} days)" if aborts else ""
        problems.append(f"no enabled whole-bucket lifecycle rule aborts incomplete multipart uploads within "
                        f"{fmt(max_abort)} days{got}")
    noncurrent = [days for _, days in rules if days is not None]
    if not noncurrent or min(noncurrent) > max_noncurrent:
        got = f" (shortest {fmt(min(noncurrent))} days)" if noncurrent else ""
        problems.append(f"no enabled whole-bucket lifecycle rule expires noncurrent versions within "
                        f"{fmt(max_noncurrent)} days{got}")
    return problems


def _versioned_bucket_lifecycle(ctx: StackContext) -> None:
    for bucket in ctx.index.of_type(*types.BUCKETS):
        with ctx.about(bucket):
            if not _versioned(ctx, bucket):
                continue
            problems = _problems(ctx, bucket)
            if problems:
                ctx.violation(bucket, f"{describe(bucket)} is versioned but {'; and '.join(problems)}, so what it "
                                      f"keeps grows without bound")


RULES = (
    Rule(
        name="s3-versioned-bucket-lifecycle",
        what="A versioned bucket has an enabled lifecycle rule covering the whole bucket that aborts incomplete "
             "multipart uploads and one that expires noncurrent versions, each within the configured days.",
        why="The pipelines' buckets are versioned and rewritten by every run; noncurrent versions and abandoned "
            "upload parts are billed forever and hold data past its retention unless a rule removes them.",
        scope="stack",
        check=_versioned_bucket_lifecycle,
        notes="Mandatory: every bucket the shipped stacks create carries such a rule (the bucket block's lifecycle, "
              "from the retention settings); an existing bucket the stack only names is not a resource of the "
              "stack and is not judged.",
        level=EnforcementLevel.MANDATORY,
        severity=Severity.LOW,
        frameworks=(
            well_architected("SUS04-BP03", "COST04-BP05",
                             spec="Use policies to manage the lifecycle of your datasets; enforce data retention "
                                  "policies"),
        ),
        remediation="Add an aws.s3.BucketLifecycleConfiguration for the bucket with an enabled rule (no filter) "
                    "setting abortIncompleteMultipartUpload.daysAfterInitiation and "
                    "noncurrentVersionExpiration.noncurrentDays.",
        url="https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-configuration-examples.html",
        settings={
            "maxAbortIncompleteUploadDays": {"type": "integer", "minimum": 1, "default": 7,
                                             "description": "Longest wait, in days, before incomplete multipart "
                                                            "uploads are aborted."},
            "maxNoncurrentVersionDays": {"type": "integer", "minimum": 1, "default": 365,
                                         "description": "Longest time, in days, a noncurrent version is kept."},
        },
        relations=("BucketVersioning.bucket -> Bucket", "BucketLifecycleConfiguration.bucket -> Bucket"),
    ),
)
