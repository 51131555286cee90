"""One S3 notification configuration per bucket, however many pipelines watch it.

S3 keeps a single notification configuration per bucket: two `BucketNotification` resources on one bucket
overwrite each other, and the last one applied silently wins. Pipelines therefore register their queue rules
here, and the stack creates one configuration per bucket at the end. S3 also rejects rules whose filters
overlap for the same event type: the stack config rejects that for shared existing buckets before anything is
created (`StackConfig`), and this hub checks every bucket again as rules arrive, naming both owners.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.config import ConfigError
from components.s3_filters import S3Filter, overlap_message


@dataclass(frozen=True)
class QueueNotification:
    owner: str  # the pipeline that registered it, for error messages
    queue_arn: pulumi.Input[str]
    events: tuple[str, ...]
    prefix: str
    suffix: str = ""
    depends_on: tuple[pulumi.Resource, ...] = ()  # the queue policy S3 must see before it can validate

    @property
    def filter(self) -> S3Filter:
        return S3Filter(self.owner, self.events, self.prefix, self.suffix)


class BucketNotifications:
    """Collects queue notifications per bucket and builds one configuration for each.

    >>> hub = BucketNotifications()
    >>> hub.add("docs-bucket", QueueNotification("kbsync", "arn:aws:sqs:eu-west-1:1:q", ("s3:ObjectCreated:*",),
    ...                                          "docs/"))
    >>> hub.buckets()
    ['docs-bucket']
    """

    def __init__(self) -> None:
        self._rules: dict[str, list[QueueNotification]] = defaultdict(list)
        self._bucket_resources: dict[str, pulumi.Input[str]] = {}

    def add(self, bucket: str, rule: QueueNotification, bucket_ref: pulumi.Input[str] | None = None) -> None:
        """Register `rule` on `bucket` (a physical name); `bucket_ref` relates it to a bucket the stack creates."""
        problem = overlap_message(bucket, [r.filter for r in [*self._rules[bucket], rule]])
        if problem:
            raise ConfigError(problem)
        self._rules[bucket].append(rule)
        if bucket_ref is not None:
            self._bucket_resources[bucket] = bucket_ref

    def watch(self, bucket: str, *, owner: str, filters: Sequence[S3Filter], queue_arn: pulumi.Input[str],
              queue_policy: pulumi.Resource, bucket_ref: pulumi.Input[str] | None = None) -> None:
        """Send what `filters` match on `bucket` to one queue (whose policy S3 must see first)."""
        for wanted in filters:
            self.add(bucket, QueueNotification(owner=owner, queue_arn=queue_arn, events=wanted.events,
                                               prefix=wanted.prefix, suffix=wanted.suffix,
                                               depends_on=(queue_policy,)), bucket_ref=bucket_ref)

    def buckets(self) -> list[str]:
        return sorted(self._rules)

    def build(self, parent: pulumi.Resource | None = None) -> list[aws.s3.BucketNotification]:
        """Create one `BucketNotification` per bucket with every registered rule."""
        created = []
        for bucket in self.buckets():
            rules = self._rules[bucket]
            depends: list[pulumi.Resource] = [d for r in rules for d in r.depends_on]
            created.append(aws.s3.BucketNotification(
                f"{bucket}-notifications",
                bucket=self._bucket_resources.get(bucket, bucket),
                queues=[{"id": f"{r.owner}-{r.prefix}{r.suffix}", "queue_arn": r.queue_arn, "events": list(r.events),
                         "filter_prefix": r.prefix, "filter_suffix": r.suffix or None} for r in rules],
                opts=pulumi.ResourceOptions(parent=parent, depends_on=depends)))
        return created

