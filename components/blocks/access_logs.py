"""The stack's S3 server access logs: one locked-down log bucket, and the logging of every bucket the stack creates.

S3 delivers server access logs with the logging service principal, and a log bucket whose object ownership is
enforced (ACLs off) admits it only through its bucket policy (S3 User Guide, "Enabling Amazon S3 server access
logging"): s3:PutObject under the source's prefix, for that source bucket (`aws:SourceArn`) of this account
(`aws:SourceAccount`). The policy
must name every source, and sources are created by the pipelines after the stack has begun, so pipelines register
their buckets here and the stack builds the log bucket, its policy and each source's logging at the end, the way it
builds bucket notifications. The log bucket itself is not logged: its own log records would be written into it and
each write logged again. It stays on SSE-S3 even when the stack is set to customer-managed keys: the S3 User Guide
admits default encryption on a server access log destination only with SSE-S3 (AES256), so an SSE-KMS destination
may not receive the logs; the pack rule kms-stores-use-stack-key accepts exactly this bucket on SSE-S3.

>>> logs = AccessLogs(naming, env, settings=AccessLogSettings(), protect=True)  # doctest: +SKIP
>>> DataBucket(naming, env, "docs", retention=Retention(30), protect=True, access_logs=logs)  # doctest: +SKIP
>>> logs.build()  # doctest: +SKIP
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.blocks.bucket import DataBucket, Expiry, Retention
from components.blocks.iam import AwsEnv, service_may
from components.blocks.naming import Naming
from components.config import AccessLogSettings

LOGGING_SERVICE = "logging.s3.amazonaws.com"
PURPOSE = "access-logs"


def log_prefix(source: DataBucket) -> str:
    """Where a source's logs go in the log bucket: a folder per source bucket."""
    return f"{source.name}/"


class AccessLogs:
    """Collects the buckets to log and builds the log bucket and their logging (`build`, once, at the end)."""

    def __init__(self, naming: Naming, env: AwsEnv, *, settings: AccessLogSettings, protect: bool) -> None:
        self.naming, self.env, self.settings, self.protect = naming, env, settings, protect
        self._sources: list[DataBucket] = []
        self.bucket: DataBucket | None = None

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def log(self, source: DataBucket) -> None:
        """Log `source` into the stack's log bucket (nothing, when access logging is off)."""
        if self.enabled:
            self._sources.append(source)

    def build(self) -> list[aws.s3.BucketLogging]:
        """The log bucket (admitting exactly the registered sources) and each source's logging into it; nothing
        when access logging is off or no bucket was registered."""
        if not self._sources:
            return []
        env = self.env
        name = DataBucket.physical_name(self.naming, env, PURPOSE)
        grants = [service_may(f"DeliverAccessLogs{index}", LOGGING_SERVICE, ["s3:PutObject"],
                              [env.s3_objects(name, log_prefix(source))], env, source_arn=source.arn)
                  for index, source in enumerate(self._sources, start=1)]
        retention = Retention(self.settings.noncurrent_version_days,
                              expiries=(Expiry("expire-access-logs", "", self.settings.retention_days),))
        # No key: the destination stays on SSE-S3 (see the module's note).
        log_bucket = DataBucket(self.naming, env, PURPOSE, retention=retention, protect=self.protect,
                                policy_statements=grants)
        self.bucket = log_bucket
        # Delivery starts only once the policy admits it, so no early record is refused.
        return [aws.s3.BucketLogging(
            f"{source.logical_name}-access-logging", bucket=source.bucket_name, target_bucket=log_bucket.bucket_name,
            target_prefix=log_prefix(source),
            # Logs under <prefix><account>/<region>/<bucket>/<yyyy>/<mm>/<dd>/ by the time of the request: a date
            # range is a key prefix, which Athena partition projection and lifecycle filters read directly.
            target_object_key_format={"partitioned_prefix": {"partition_date_source": "EventTime"}},
            opts=pulumi.ResourceOptions(parent=source, depends_on=[log_bucket.policy]))
            for source in self._sources]
