"""A private, encrypted, TLS-only bucket, or a reference to an existing one by name."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.blocks.iam import AwsEnv, PolicyDocument, deny_insecure_transport
from components.blocks.naming import Naming


class DataBucket(pulumi.ComponentResource):
    """A bucket that blocks public access (all four flags), encrypts at rest, versions objects and denies
    plain HTTP. With `protect`, the bucket can't be deleted by `pulumi destroy` or a replacement.

    >>> docs = DataBucket(naming, env, "docs", protect=True)  # doctest: +SKIP
    >>> docs.name  # the physical name, known at preview  # doctest: +SKIP
    """

    def __init__(self, naming: Naming, env: AwsEnv, purpose: str, *, protect: bool,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ai-pipelines:blocks:DataBucket", naming.logical(purpose), None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # Bucket names are global: the account and region keep them unique across accounts and regions.
        self.name = naming.name(f"{purpose}-{env.account_id}-{env.region}", max_length=63)
        self.bucket = aws.s3.Bucket(naming.logical(purpose), bucket=self.name, tags=naming.tags,
                                    opts=pulumi.ResourceOptions(parent=self, protect=protect))
        self.arn: pulumi.Output[str] = env.s3_bucket(self.bucket.bucket)
        self.bucket_name: pulumi.Output[str] = self.bucket.bucket
        aws.s3.BucketPublicAccessBlock(naming.logical(f"{purpose}-public-access"), bucket=self.bucket.bucket,
                                       block_public_acls=True, block_public_policy=True,
                                       ignore_public_acls=True, restrict_public_buckets=True, opts=child)
        aws.s3.BucketOwnershipControls(naming.logical(f"{purpose}-ownership"), bucket=self.bucket.bucket,
                                       rule={"object_ownership": "BucketOwnerEnforced"}, opts=child)
        aws.s3.BucketServerSideEncryptionConfiguration(
            naming.logical(f"{purpose}-encryption"), bucket=self.bucket.bucket,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"},
                    "bucket_key_enabled": True}], opts=child)
        aws.s3.BucketVersioning(naming.logical(f"{purpose}-versioning"), bucket=self.bucket.bucket,
                                versioning_configuration={"status": "Enabled"}, opts=child)
        objects = env.s3_objects(self.bucket.bucket)
        aws.s3.BucketPolicy(naming.logical(f"{purpose}-policy"), bucket=self.bucket.bucket,
                            policy=PolicyDocument([deny_insecure_transport(["s3:*"], [self.arn, objects])]).to_json(),
                            opts=child)
        self.register_outputs({"name": self.bucket_name})


def existing_or_new_bucket(naming: Naming, env: AwsEnv, purpose: str, *, existing_name: str | None, protect: bool,
                           opts: pulumi.ResourceOptions | None = None) -> tuple[pulumi.Output[str], str]:
    """(The bucket's name as an output, its physical name known at preview): the bucket ``existing_name`` when the
    config names one, else a new ``DataBucket`` (the output then carries the dependency on it)."""
    if existing_name:
        return pulumi.Output.from_input(existing_name), existing_name
    bucket = DataBucket(naming, env, purpose, protect=protect, opts=opts)
    return bucket.bucket_name, bucket.name
