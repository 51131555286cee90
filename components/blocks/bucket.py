"""A private, encrypted, TLS-only bucket with a lifecycle that bounds what it keeps, or a reference to an existing
one by name."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import pulumi
import pulumi_aws as aws

from components import defaults
from components.blocks.iam import AwsEnv, PolicyDocument, Statement, deny_insecure_transport
from components.blocks.key import StackKey, key_use
from components.blocks.naming import Naming
from components.config import BucketSettings
from components.config.sections import retention_days

if TYPE_CHECKING:
    from components.blocks.access_logs import AccessLogs

# The rule every bucket gets: over the whole bucket, abort incomplete uploads, expire noncurrent versions and remove
# delete markers nothing is left behind.
WHOLE_BUCKET_RULE = "abort-uploads-expire-noncurrent-versions"
# What S3 asks of a bucket's KMS key for a caller (AWS: "Using server-side encryption with AWS KMS keys"): reading an
# object decrypts its data key, writing one generates it, a multipart upload does both. With a bucket key the
# encryption context is the bucket's ARN.
READ_OBJECTS: Final = ("kms:Decrypt",)
WRITE_OBJECTS: Final = ("kms:GenerateDataKey",)
WRITE_OBJECTS_IN_PARTS: Final = ("kms:Decrypt", "kms:GenerateDataKey")
BUCKET_CONTEXT: Final = "aws:s3:arn"


def key_to_use(key: StackKey | None, sid: str, actions: Sequence[str],
               bucket_arns: Sequence[str]) -> list[Statement]:
    """The key statement of a role that reads or writes objects of `bucket_arns` (none without a key)."""
    return key_use(key, sid, actions, via="s3", context={BUCKET_CONTEXT: list(bucket_arns)})


@dataclass(frozen=True)
class Expiry:
    """Objects under `prefix` ("" for every object) expire `days` after they are written. In a versioned bucket an
    expired object becomes a noncurrent version, which goes `noncurrent_version_days` later."""

    rule_id: str
    prefix: str
    days: int


@dataclass(frozen=True)
class Retention:
    """What a bucket keeps and for how long: noncurrent versions for `noncurrent_version_days`, incomplete
    multipart uploads for `abort_incomplete_upload_days`, and the objects of each `expiries` entry for its days
    (everything else until it is deleted). Where prefixes overlap, S3 applies the shorter expiry."""

    noncurrent_version_days: int
    expiries: Sequence[Expiry] = ()
    abort_incomplete_upload_days: int = defaults.S3_ABORT_INCOMPLETE_UPLOAD_DAYS

    def __post_init__(self) -> None:
        ids = [e.rule_id for e in self.expiries]
        if WHOLE_BUCKET_RULE in ids or len(set(ids)) != len(ids):
            raise ValueError(f"lifecycle rule ids must be unique: {ids}")
        if self.noncurrent_version_days < 1 or self.abort_incomplete_upload_days < 1 or any(
                e.days < 1 for e in self.expiries):
            raise ValueError("lifecycle days must be at least 1")

    @classmethod
    def of(cls, settings: BucketSettings) -> Retention:
        """The retention a pipeline's bucket settings ask for."""
        days = retention_days(settings.object_retention_days)
        return cls(settings.noncurrent_version_days,
                   expiries=() if days is None else (Expiry("expire-objects", "", days),))

    def rules(self) -> list[aws.s3.BucketLifecycleConfigurationRuleArgs]:
        whole = aws.s3.BucketLifecycleConfigurationRuleArgs(
            id=WHOLE_BUCKET_RULE, status="Enabled", filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(),
            abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                days_after_initiation=self.abort_incomplete_upload_days),
            noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
                noncurrent_days=self.noncurrent_version_days),
            expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(expired_object_delete_marker=True))
        return [whole, *(aws.s3.BucketLifecycleConfigurationRuleArgs(
            id=expiry.rule_id, status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=expiry.prefix),
            expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=expiry.days))
            for expiry in self.expiries)]


class DataBucket(pulumi.ComponentResource):
    """A bucket that blocks public access (all four flags), encrypts at rest (with the stack's key and a bucket key
    when `key` is given, else SSE-S3), versions objects, keeps them as its
    `retention` says (a lifecycle configuration) and denies plain HTTP. With `protect`, the bucket can't be deleted
    by `pulumi destroy` or a replacement. With `access_logs`, its server access logs go to the stack's log bucket;
    `policy_statements` are further grants of its bucket policy.

    >>> docs = DataBucket(naming, env, "docs", retention=Retention(30), protect=True)  # doctest: +SKIP
    >>> docs.name  # the physical name, known at preview  # doctest: +SKIP
    """

    def __init__(self, naming: Naming, env: AwsEnv, purpose: str, *, retention: Retention, protect: bool,
                 key: StackKey | None = None, access_logs: AccessLogs | None = None,
                 policy_statements: Sequence[Statement] = (), opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ai-pipelines:blocks:DataBucket", naming.logical(purpose), None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.logical_name = naming.logical(purpose)
        self.name = self.physical_name(naming, env, purpose)
        self.bucket = aws.s3.Bucket(naming.logical(purpose), bucket=self.name, tags=naming.tags,
                                    opts=pulumi.ResourceOptions(parent=self, protect=protect))
        self.arn: pulumi.Output[str] = env.s3_bucket(self.bucket.bucket)
        self.bucket_name: pulumi.Output[str] = self.bucket.bucket
        self.arn_value = env.arn("s3", self.name, regional=False, with_account=False)  # for the key policy
        aws.s3.BucketPublicAccessBlock(naming.logical(f"{purpose}-public-access"), bucket=self.bucket.bucket,
                                       block_public_acls=True, block_public_policy=True,
                                       ignore_public_acls=True, restrict_public_buckets=True, opts=child)
        aws.s3.BucketOwnershipControls(naming.logical(f"{purpose}-ownership"), bucket=self.bucket.bucket,
                                       rule={"object_ownership": "BucketOwnerEnforced"}, opts=child)
        aws.s3.BucketServerSideEncryptionConfiguration(
            naming.logical(f"{purpose}-encryption"), bucket=self.bucket.bucket,
            rules=[{"apply_server_side_encryption_by_default": (
                {"sse_algorithm": "aws:kms", "kms_master_key_id": key.alias_arn} if key is not None
                else {"sse_algorithm": "AES256"}),
                    "bucket_key_enabled": True}], opts=child)
        versioning = aws.s3.BucketVersioning(naming.logical(f"{purpose}-versioning"), bucket=self.bucket.bucket,
                                             versioning_configuration={"status": "Enabled"}, opts=child)
        # After versioning: S3 accepts noncurrent-version rules on any bucket, but the provider's docs ask for the
        # order so a new bucket's first rules apply to a versioned bucket.
        self.lifecycle = aws.s3.BucketLifecycleConfiguration(
            naming.logical(f"{purpose}-lifecycle"), bucket=self.bucket.bucket, rules=retention.rules(),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]))
        objects = env.s3_objects(self.bucket.bucket)
        self.policy = aws.s3.BucketPolicy(
            naming.logical(f"{purpose}-policy"), bucket=self.bucket.bucket,
            policy=PolicyDocument([deny_insecure_transport(["s3:*"], [self.arn, objects]),
                                   *policy_statements]).to_json(), opts=child)
        if access_logs is not None:
            access_logs.log(self)
        self.register_outputs({"name": self.bucket_name})

    @staticmethod
    def physical_name(naming: Naming, env: AwsEnv, purpose: str) -> str:
        """The bucket's name, known before it is created. Bucket names are global: the account and region keep
        them unique across accounts and regions."""
        return naming.name(f"{purpose}-{env.account_id}-{env.region}", max_length=63)


def existing_or_new_bucket(naming: Naming, env: AwsEnv, purpose: str, *, settings: BucketSettings, protect: bool,
                           key: StackKey | None = None, access_logs: AccessLogs | None = None,
                           opts: pulumi.ResourceOptions | None = None) -> tuple[pulumi.Output[str], str]:
    """(The bucket's name as an output, its physical name known at preview): the bucket ``settings.existing_name``
    when the config names one (its lifecycle and encryption are its owner's), else a new ``DataBucket`` kept as
    ``settings`` say and encrypted with ``key`` when given (the output then carries the dependency on it)."""
    if settings.existing_name:
        return pulumi.Output.from_input(settings.existing_name), settings.existing_name
    bucket = DataBucket(naming, env, purpose, retention=Retention.of(settings), protect=protect, key=key,
                        access_logs=access_logs, opts=opts)
    return bucket.bucket_name, bucket.name
