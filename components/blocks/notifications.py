"""One S3 notification configuration per bucket, however many pipelines watch it.

S3 keeps a single notification configuration per bucket: two `BucketNotification` resources on one bucket
overwrite each other, and the last one applied silently wins. Pipelines therefore register their queue rules
here, and the stack creates one configuration per bucket at the end. S3 also rejects rules whose filters
overlap for the same event type; that is caught here, before anything is created, with both owners named.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.config import ConfigError


@dataclass(frozen=True)
class QueueNotification:
    owner: str  # the pipeline that registered it, for error messages
    queue_arn: pulumi.Input[str]
    events: tuple[str, ...]
    prefix: str
    suffix: str = ""
    depends_on: tuple[pulumi.Resource, ...] = ()  # the queue policy S3 must see before it can validate


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
        for other in self._rules[bucket]:
            if _overlaps(other, rule):
                raise ConfigError(
                    f"bucket {bucket}: the notification of {rule.owner} (prefix '{rule.prefix}', suffix "
                    f"'{rule.suffix}') overlaps that of {other.owner} (prefix '{other.prefix}', suffix "
                    f"'{other.suffix}') for the same events; S3 rejects overlapping filters. Give each pipeline "
                    "a prefix the other's doesn't start with.")
        self._rules[bucket].append(rule)
        if bucket_ref is not None:
            self._bucket_resources[bucket] = bucket_ref

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


def _overlaps(a: QueueNotification, b: QueueNotification) -> bool:
    same_events = bool(set(_event_families(a.events)) & set(_event_families(b.events)))
    prefixes_overlap = a.prefix.startswith(b.prefix) or b.prefix.startswith(a.prefix)
    suffixes_overlap = a.suffix.endswith(b.suffix) or b.suffix.endswith(a.suffix)
    return same_events and prefixes_overlap and suffixes_overlap


def _event_families(events: Sequence[str]) -> list[str]:
    # "s3:ObjectCreated:*" and "s3:ObjectCreated:Put" are the same family for overlap purposes.
    return [":".join(e.split(":")[:2]) for e in events]
