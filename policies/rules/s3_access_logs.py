"""Buckets record who accessed them: S3 server access logs into a log bucket that admits only S3's log delivery.

A bucket logs through a BucketLogging (followed through its `bucket` and `targetBucket`), else through its own
deprecated inline `logging`. A bucket that receives logs is not asked to log itself (its own records would be
delivered into it and logged again), and must not log into itself. A log bucket with object ownership enforced (ACLs
off, as every bucket should be) admits S3's log delivery only through its bucket policy: an Allow of s3:PutObject to
`logging.s3.amazonaws.com`, which, like every grant to a service principal, names its source (`aws:SourceArn` or
`aws:SourceAccount`) so no other account's bucket can log into it (S3 User Guide, "Enabling Amazon S3 server
access logging").

Whether buckets must log is the stack's choice (`required`; the stack config's `accessLogs.enabled`); the log
buckets' checks hold either way.
"""

from __future__ import annotations

from typing import Final

from pulumi_policy import PolicyResource, Severity

from .core import documents, types
from .core.frameworks import well_architected
from .core.rule import Rule, StackContext, describe
from .core.values import as_list, get_path, unless_computed

LOGGING_SERVICE: Final = "logging.s3.amazonaws.com"
_SOURCE_KEYS: Final = {"aws:sourcearn", "aws:sourceaccount"}


def _targets(ctx: StackContext, bucket: PolicyResource) -> list[PolicyResource | str]:
    """Where the bucket's logs go: the target bucket resources (or, for a target outside the stack, its name)."""
    found: list[PolicyResource | str] = []
    for logging in ctx.index.referrers(bucket, *types.BUCKET_LOGGINGS, key="bucket"):
        linked = ctx.index.deps(logging, "targetBucket", *types.BUCKETS)
        found.extend(linked or [str(logging.props.get("targetBucket") or "")])
    if found:
        return found
    # The bucket's own `logging` is computed when left unset (unknown at preview: read as not set).
    inline = get_path(unless_computed(bucket, "logging"), "targetBucket")
    return [str(inline)] if inline else []


def _admits_log_delivery(ctx: StackContext, bucket: PolicyResource) -> list[str]:
    """Problems with the log bucket's grant to S3's log delivery (none when some grant is right)."""
    grants = []
    for policy in ctx.index.referrers(bucket, types.BUCKET_POLICY, key="bucket"):
        for statement in documents.statements(policy.props.get("policy")):
            principal = statement.get("Principal")
            services = as_list(get_path(principal, "Service")) if isinstance(principal, dict) else []
            if (documents.is_allow(statement) and LOGGING_SERVICE in services
                    and documents.covers(documents.actions(statement), "s3:PutObject")):
                grants.append(statement)
    if not grants:
        return [f"no bucket policy allows {LOGGING_SERVICE} s3:PutObject, so S3 delivers no access logs to it "
                f"(with object ownership enforced, a bucket policy is the only way to admit log delivery)"]
    unscoped = [documents.sid(s, i) for i, s in enumerate(grants) if not documents.condition_keys(s) & _SOURCE_KEYS]
    if unscoped:
        return [f"its bucket policy's {', '.join(unscoped)} allows {LOGGING_SERVICE} without aws:SourceArn or "
                f"aws:SourceAccount, so any account's bucket could deliver its logs here"]
    return []


def _access_logging(ctx: StackContext) -> None:
    required = bool(ctx.settings["required"])
    buckets = ctx.index.of_type(*types.BUCKETS)
    log_buckets: dict[str, PolicyResource] = {}
    logged: dict[str, list[PolicyResource | str]] = {}
    for bucket in buckets:
        with ctx.about(bucket):
            targets = _targets(ctx, bucket)
            logged[bucket.urn] = targets
            log_buckets.update({t.urn: t for t in targets if not isinstance(t, str)})
    for bucket in buckets:
        with ctx.about(bucket):
            subject = describe(bucket)
            targets = logged.get(bucket.urn, [])
            if any(not isinstance(t, str) and t.urn == bucket.urn for t in targets):
                ctx.violation(bucket, f"{subject} delivers its access logs into itself: every delivery is a request "
                                      f"that is logged and delivered again")
            if bucket.urn in log_buckets:
                for problem in _admits_log_delivery(ctx, bucket):
                    ctx.violation(bucket, f"{subject} receives access logs but {problem}")
            elif required and not targets:
                ctx.violation(bucket, f"{subject} has no server access logging (a BucketLogging to the stack's log "
                                      f"bucket), so nobody can tell who read or changed its objects")


RULES = (
    Rule(
        name="s3-access-logging",
        what="Every bucket logs its requests (S3 server access logs, a BucketLogging) to a log bucket, unless the "
             "stack's config turns this off; a log bucket does not log into itself and admits S3's log delivery "
             "only through a bucket-policy grant scoped by aws:SourceArn or aws:SourceAccount.",
        why="The pipelines' buckets hold source documents, corpora and model output; without access logs nobody "
            "can say who read or changed them, which audits and incident response ask first.",
        scope="stack",
        check=_access_logging,
        notes="Whether buckets must log is per stack (`required`, to match the stack config's `accessLogs.enabled`); "
              "the shipped stacks both require it. An existing bucket the stack only names is not a resource of the "
              "stack and is not judged.",
        severity=Severity.MEDIUM,
        frameworks=(
            well_architected("SEC04-BP01", spec="Configure service and application logging"),
        ),
        remediation="Add an aws.s3.BucketLogging for the bucket with a targetBucket in the stack (not the bucket "
                     "itself); give the log bucket a BucketPolicy allowing logging.s3.amazonaws.com s3:PutObject "
                     "under the target prefix, conditioned on aws:SourceArn (the source bucket) and "
                     "aws:SourceAccount.",
        url="https://docs.aws.amazon.com/AmazonS3/latest/userguide/enable-server-access-logging.html",
        settings={"required": {"type": "boolean", "default": True,
                               "description": "Every bucket must log (set it as the stack's accessLogs.enabled)."}},
        relations=("BucketLogging.bucket -> Bucket", "BucketLogging.targetBucket -> Bucket",
                   "BucketPolicy.bucket -> Bucket"),
    ),
)
