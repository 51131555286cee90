"""S3 buckets: no public access, encryption at rest, TLS only, and notifications that cannot loop."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from fnmatch import fnmatchcase
from typing import Any

from pulumi_policy import PolicyResource, Severity

from . import relations
from .core import aws_defaults, documents, globs, types
from .core.frameworks import cis, well_architected
from .core.rule import Rule, StackContext, describe
from .core.values import as_list, get_path, truthy, unless_computed

_PUBLIC_ACCESS_FLAGS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")


def _public_access_problems(ctx: StackContext, bucket: PolicyResource) -> list[str]:
    """What the bucket's BucketPublicAccessBlock resources turn off. Without one, S3's default for a new bucket
    holds: all four settings on (aws_defaults.S3_NEW_BUCKET_BLOCKS_PUBLIC_ACCESS). A block resource writes all four,
    so a flag it leaves unset is written false (the provider's default), as good as turned off."""
    blocks = ctx.index.referrers(bucket, types.BUCKET_PUBLIC_ACCESS_BLOCK, key="bucket")
    if not blocks and not aws_defaults.S3_NEW_BUCKET_BLOCKS_PUBLIC_ACCESS:
        return ["has no public access block"]
    problems = []
    for block in blocks:
        off = [flag for flag in _PUBLIC_ACCESS_FLAGS if not truthy(block.props.get(flag))]
        if off:
            problems.append(f"{describe(block)} turns {', '.join(off)} off (S3 turns all four on for a new bucket; "
                            f"this block overrides that)")
    return problems


def _encrypted(ctx: StackContext, bucket: PolicyResource) -> bool:
    if not ctx.settings["requireExplicitEncryption"]:
        return True  # S3 encrypts every new object with SSE-S3 unless told otherwise
    for config in ctx.index.referrers(bucket, *types.BUCKET_ENCRYPTIONS, key="bucket"):
        if any(get_path(rule, "applyServerSideEncryptionByDefault", "sseAlgorithm")
               for rule in as_list(config.props.get("rules"))):
            return True
    # Set inline, or computed when left unset (unknown at preview: `unless_computed` reads that as not set).
    return bool(get_path(unless_computed(bucket, "serverSideEncryptionConfiguration"), "rule",
                         "applyServerSideEncryptionByDefault", "sseAlgorithm"))


def _tls_only(ctx: StackContext, bucket: PolicyResource) -> bool:
    """The bucket policy in force: a BucketPolicy resource if the stack uses one (then the bucket's own `policy`
    is computed from it, unknown at preview), else the bucket's `policy`, which is computed when left unset
    (`unless_computed` tells that from a program's own unknown document, which gives no verdict)."""
    attached = ctx.index.referrers(bucket, types.BUCKET_POLICY, key="bucket")
    policies = ([p.props.get("policy") for p in attached] if attached
                else [unless_computed(bucket, "policy")])
    return any(documents.denies_insecure_transport(p, ["s3:*"]) for p in policies)


def _check_bucket(ctx: StackContext, bucket: PolicyResource) -> None:
    subject = describe(bucket)
    for problem in _public_access_problems(ctx, bucket):
        ctx.violation(bucket, f"{subject}: {problem}")
    if not _encrypted(ctx, bucket):
        ctx.violation(bucket, f"{subject} has no server-side encryption configuration (inline or "
                              f"BucketServerSideEncryptionConfiguration) with an sseAlgorithm")
    if not _tls_only(ctx, bucket):
        ctx.violation(bucket, f"{subject} has no bucket policy denying s3:* when aws:SecureTransport is false")


def _pick(candidates: Sequence[PolicyResource], arn: Any) -> PolicyResource | None:
    """The candidate an entry's ARN names: the only one, else the one whose physical name ends the ARN."""
    if len(candidates) == 1:
        return candidates[0]
    name = str(arn or "").rsplit(":", 1)[-1]
    return next((c for c in candidates if c.props.get("name") == name), None)


def _writes_under(ctx: StackContext, function: PolicyResource, bucket_name: str) -> list[tuple[str, str]]:
    """(where, key pattern) for every object-write grant of the function's role on `bucket_name`."""
    writes = []
    for where, document in relations.identity_documents(ctx.index, function):
        for statement in documents.statements(document):
            if not documents.is_allow(statement):
                continue
            if not any(fnmatchcase("s3:putobject", a.lower()) for a in documents.actions(statement)):
                continue
            for resource in documents.resources(statement):
                path = "*/*" if resource == "*" else resource.split(":::", 1)[-1]
                bucket_pattern, _, key_pattern = path.partition("/")
                if key_pattern and fnmatchcase(bucket_name, bucket_pattern):
                    writes.append((where, key_pattern))
    return writes


def _triggered_functions(ctx: StackContext, notification: PolicyResource, entry: Mapping[str, Any], kind: str
                         ) -> list[tuple[PolicyResource, str]]:
    """(function, path) for each function an entry of the notification ends up invoking."""
    if kind == "queues":
        queue = _pick(ctx.index.deps(notification, "queues", types.QUEUE), entry.get("queueArn"))
        if queue is None:
            return []
        return [(link.function, f"{describe(queue)}, consumed by {describe(link.function)}")
                for link in relations.mappings_of(ctx.index, queue) if link.function is not None]
    function = _pick(ctx.index.deps(notification, "lambdaFunctions", types.FUNCTION), entry.get("lambdaFunctionArn"))
    return [(function, describe(function))] if function is not None else []


def _check_notification(ctx: StackContext, notification: PolicyResource) -> None:
    buckets = ctx.index.deps(notification, "bucket", *types.BUCKETS)
    bucket_name = str(buckets[0].props.get("bucket") or "") if buckets else str(notification.props.get("bucket"))
    for kind in ("queues", "lambdaFunctions"):
        for entry in as_list(notification.props.get(kind)):
            prefix, suffix = str(entry.get("filterPrefix") or ""), str(entry.get("filterSuffix") or "")
            events = [str(e) for e in as_list(entry.get("events"))]
            if kind == "queues" and not prefix:
                ctx.violation(notification, f"{describe(notification)} sends {', '.join(events)} from bucket "
                                            f"'{bucket_name}' to a queue ({entry.get('queueArn')}) without a "
                                            f"filterPrefix, so every object in the bucket becomes a message")
            if not any("ObjectCreated" in e for e in events):
                continue
            trigger = globs.wildcard(f"{prefix}*{suffix}")
            for function, path in _triggered_functions(ctx, notification, entry, kind):
                for where, key_pattern in _writes_under(ctx, function, bucket_name):
                    if globs.overlap(globs.wildcard(key_pattern), trigger):
                        ctx.violation(notification, (
                            f"{describe(notification)} sends {', '.join(events)} for '{bucket_name}/{prefix}*"
                            f"{suffix}' to {path}, whose {where} writes '{bucket_name}/{key_pattern}': the "
                            f"objects it writes trigger it again (notification loop)"))


def _bucket_guardrails(ctx: StackContext) -> None:
    for bucket in ctx.index.of_type(*types.BUCKETS):
        with ctx.about(bucket):
            _check_bucket(ctx, bucket)
    for notification in ctx.index.of_type(types.BUCKET_NOTIFICATION):
        with ctx.about(notification):
            _check_notification(ctx, notification)


RULES = (
    Rule(
        name="s3-bucket-guardrails",
        what="No BucketPublicAccessBlock turns a block setting off (S3 blocks public access on new buckets by "
             "default); buckets are encrypted at rest and deny non-TLS access; a notification to a queue has a "
             "prefix filter; no function is triggered by the prefix it writes under.",
        why="Pipeline buckets hold source documents and model output; a notification loop re-invokes a "
            "function on its own output until someone notices the bill.",
        scope="stack",
        check=_bucket_guardrails,
        severity=Severity.HIGH,
        frameworks=(
            cis("2.1.1", "2.1.4", spec="S3 bucket policy denies HTTP requests; S3 buckets block public access"),
            well_architected("SEC08-BP02", "SEC09-BP02",
                spec="Enforce encryption at rest; enforce encryption in transit"),
        ),
        remediation=(
            "Keep every BucketPublicAccessBlock setting on, add a BucketServerSideEncryptionConfiguration "
            "and a BucketPolicy denying s3:* when aws:SecureTransport is false; give queue notifications "
            "a filterPrefix, and write outputs under a prefix the notification does not watch."
        ),
        url="https://docs.aws.amazon.com/AmazonS3/latest/userguide/security-best-practices.html",
        settings={"requireExplicitEncryption": {
            "type": "boolean", "default": True,
            "description": "Require an explicit encryption configuration rather than rely on S3's default SSE-S3."}},
        relations=("BucketPublicAccessBlock.bucket -> Bucket", "BucketServerSideEncryptionConfiguration.bucket -> "
                   "Bucket", "BucketPolicy.bucket -> Bucket", "BucketNotification.bucket -> Bucket",
                   "BucketNotification.queues -> Queue", "BucketNotification.lambdaFunctions -> Function",
                   "EventSourceMapping.eventSourceArn -> Queue", "EventSourceMapping.functionName -> Function",
                   "Function.role -> Role", "RolePolicy.role -> Role", "RolePolicyAttachment.role -> Role",
                   "RolePolicyAttachment.policyArn -> Policy"),
    ),
)
