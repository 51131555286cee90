"""KMS keys: customer managed symmetric encryption keys rotate their key material, and, where a stack is set to
customer-managed keys, every store of the stack is encrypted with a rotating key of the stack."""

from __future__ import annotations

from pulumi_policy import PolicyResource, Severity

from .core import types
from .core.frameworks import cis, well_architected
from .core.rule import ResourceContext, Rule, StackContext, describe
from .core.values import as_list, fmt, get_path, number, truthy

# Only symmetric encryption keys with AWS-generated material can rotate automatically (KMS rejects
# EnableKeyRotation for asymmetric, HMAC and imported keys; aws:kms/externalKey:ExternalKey is a separate type).
_SYMMETRIC = "SYMMETRIC_DEFAULT"
# What KMS rotates by when rotationPeriodInDays is left out (EnableKeyRotation, RotationPeriodInDays).
_KMS_ROTATION_PERIOD_DAYS = 365


def _key_rotation(ctx: ResourceContext) -> None:
    spec = ctx.props.get("customerMasterKeySpec") or _SYMMETRIC
    usage = ctx.props.get("keyUsage") or "ENCRYPT_DECRYPT"
    if spec != _SYMMETRIC or usage != "ENCRYPT_DECRYPT":
        return
    if not truthy(ctx.props.get("enableKeyRotation")):
        ctx.violation(f"{ctx.subject} is a symmetric encryption key without enableKeyRotation, so its key material "
                      f"never changes")
        return
    most = float(ctx.settings["maxRotationPeriodDays"])
    period = number(ctx.props.get("rotationPeriodInDays"), _KMS_ROTATION_PERIOD_DAYS)
    if period > most:
        unset = " (unset: KMS's default)" if ctx.props.get("rotationPeriodInDays") is None else ""
        ctx.violation(f"{ctx.subject} rotationPeriodInDays {fmt(period)}{unset} exceeds {fmt(most)}")


# Each store type and the input that names its key. The key is related through property dependencies (the input was
# built from a key or an alias of this stack), never by reading the value: a key's ARN is unknown at preview.
_STORE_KEYS: dict[str, str] = {
    types.QUEUE: "kmsMasterKeyId",
    types.TOPIC: "kmsMasterKeyId",
    types.TABLE: "serverSideEncryption",
    types.LOG_GROUP: "kmsKeyId",
    types.SECRET: "kmsKeyId",
    types.SCHEDULE: "kmsKeyArn",
    types.STATE_MACHINE: "encryptionConfiguration",
}


def _keys_behind(ctx: StackContext, resource: PolicyResource, key: str) -> list[PolicyResource]:
    """The stack's KMS keys the input `key` of `resource` was built from, directly or through an alias."""
    keys = {k.urn: k for k in ctx.index.deps(resource, key, types.KMS_KEY)}
    for alias in ctx.index.deps(resource, key, types.KMS_ALIAS):
        keys.update((k.urn, k) for k in ctx.index.deps(alias, "targetKeyId", types.KMS_KEY))
    return list(keys.values())


def _problem(ctx: StackContext, resource: PolicyResource, key: str) -> str | None:
    keys = _keys_behind(ctx, resource, key)
    if not keys:
        return f"its {key} names no customer-managed key of this stack"
    if not any(truthy(k.props.get("enableKeyRotation")) for k in keys):
        # Which of the keys its input was built from it names is not known at preview, so name them all.
        return f"its key does not rotate (built from {', '.join(describe(k) for k in keys)})"
    return None


def _is_access_log_destination(ctx: StackContext, bucket: PolicyResource) -> bool:
    """Whether a BucketLogging of the stack delivers server access logs into `bucket` (its `targetBucket`)."""
    return any(bucket.urn in {target.urn for target in ctx.index.deps(logging, "targetBucket", *types.BUCKETS)}
               for logging in ctx.index.of_type(*types.BUCKET_LOGGINGS))


def _sse_s3_only(configs: list[PolicyResource]) -> bool:
    """Whether every rule of every encryption configuration is SSE-S3 (and there is at least one rule)."""
    rules = [rule for config in configs for rule in as_list(config.props.get("rules"))]
    return bool(rules) and all(get_path(rule, "applyServerSideEncryptionByDefault", "sseAlgorithm") == "AES256"
                               for rule in rules)


def _bucket_problem(ctx: StackContext, bucket: PolicyResource) -> str | None:
    configs = ctx.index.referrers(bucket, *types.BUCKET_ENCRYPTIONS, key="bucket")
    if not configs:
        return "has no encryption configuration naming a customer-managed key of this stack"
    # The one store kept off the key: a server access log destination, on SSE-S3 (AES256). The S3 User Guide
    # ("Enabling Amazon S3 server access logging") admits default encryption on the destination bucket only with
    # SSE-S3, so logs into an SSE-KMS bucket may not be delivered. Any other encryption of it is still checked.
    if _is_access_log_destination(ctx, bucket) and _sse_s3_only(configs):
        return None
    for config in configs:
        rules = as_list(config.props.get("rules"))
        if not rules or any(get_path(rule, "applyServerSideEncryptionByDefault", "sseAlgorithm") != "aws:kms"
                            for rule in rules):
            return f"{describe(config)} does not encrypt with aws:kms"
        if not all(truthy(get_path(rule, "bucketKeyEnabled")) for rule in rules):
            return f"{describe(config)} has no bucket key (every object would call KMS)"
        problem = _problem(ctx, config, "rules")
        if problem:
            return f"{describe(config)}: {problem}"
    return None


def _stores_use_stack_key(ctx: StackContext) -> None:
    if not ctx.settings["requireCustomerManagedKey"]:
        return
    if not ctx.index.of_type(types.KMS_KEY):
        ctx.violation("", "the stack is set to customer-managed keys but creates no KMS key")
        return
    for store_type, key in _STORE_KEYS.items():
        for store in ctx.index.of_type(store_type):
            with ctx.about(store):
                problem = _problem(ctx, store, key)
                if problem:
                    ctx.violation(store, f"{describe(store)}: {problem}")
    for bucket in ctx.index.of_type(*types.BUCKETS):
        with ctx.about(bucket):
            problem = _bucket_problem(ctx, bucket)
            if problem:
                ctx.violation(bucket, f"{describe(bucket)}: {problem}")


RULES = (
    Rule(
        name="kms-key-rotation",
        what="Customer managed symmetric encryption keys have automatic rotation on, with a rotation period no "
             "longer than the maximum (AWS default 365 days).",
        why="The pipelines' keys encrypt alarm topics and data stores; rotation bounds how much data one key "
            "version protects, at no cost and with no re-encryption.",
        scope="resource",
        resource_types=(types.KMS_KEY,),
        check=_key_rotation,
        severity=Severity.MEDIUM,
        frameworks=(
            cis("3.6", spec="Rotation for customer-created symmetric CMKs is enabled"),
            well_architected("SEC08-BP01", spec="Implement secure key management"),
        ),
        remediation="Set enableKeyRotation true on the aws.kms.Key (and rotationPeriodInDays within the maximum; "
                    "left unset, KMS rotates every 365 days).",
        url="https://docs.aws.amazon.com/kms/latest/developerguide/rotate-keys.html",
        settings={"maxRotationPeriodDays": {"type": "integer", "minimum": 90, "maximum": 2560, "default": 365,
                                            "description": "Longest rotation period accepted, in days."}},
    ),
    Rule(
        name="kms-stores-use-stack-key",
        what="With requireCustomerManagedKey (a stack set to customer-managed keys), every queue, topic, bucket "
             "(SSE-KMS with a bucket key), table, log group, secret, schedule and state machine is encrypted with a "
             "customer-managed KMS key of the stack that rotates. The one exception is a bucket that receives S3 "
             "server access logs (the targetBucket of a BucketLogging): it is accepted on SSE-S3 (AES256).",
        why="Regulated teams must hold the key to their data: revoke it, audit every use in CloudTrail and rotate "
            "it. One store left on an AWS-managed or AWS-owned key escapes all three. The S3 User Guide admits "
            "default encryption on a server access log destination only with SSE-S3, so that bucket stays on it.",
        scope="stack",
        check=_stores_use_stack_key,
        severity=Severity.HIGH,
        frameworks=(
            well_architected("SEC08-BP01", spec="Implement secure key management"),
            well_architected("SEC08-BP02", spec="Enforce encryption at rest"),
        ),
        remediation="Pass the stack's key to the store (kmsMasterKeyId, kmsKeyId, kmsKeyArn, serverSideEncryption, "
                    "encryptionConfiguration, or a BucketServerSideEncryptionConfiguration with aws:kms and a "
                    "bucket key), built from the aws.kms.Key or its aws.kms.Alias so the dependency is recorded.",
        url="https://docs.aws.amazon.com/kms/latest/developerguide/concepts.html#customer-cmk",
        settings={"requireCustomerManagedKey": {
            "type": "boolean", "default": False,
            "description": "The stack is set to customer-managed keys (ai-pipelines:encryption customer-managed): "
                           "require every store to use a rotating key of the stack."}},
        relations=("Queue.kmsMasterKeyId -> Key | Alias", "Topic.kmsMasterKeyId -> Key | Alias",
                   "Table.serverSideEncryption -> Key", "LogGroup.kmsKeyId -> Key", "Secret.kmsKeyId -> Key",
                   "Schedule.kmsKeyArn -> Key", "StateMachine.encryptionConfiguration -> Key",
                   "BucketServerSideEncryptionConfiguration.bucket -> Bucket, .rules -> Key | Alias",
                   "BucketLogging.targetBucket -> Bucket", "Alias.targetKeyId -> Key"),
    ),
)
