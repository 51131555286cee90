"""The AWS account, region and partition a stack is synthesized for, and ARNs in AWS's formats."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AwsAccount:
    account_id: str
    region: str
    partition: str = "aws"
    dns_suffix: str = "amazonaws.com"

    def arn(self, service: str, resource: str, *, regional: bool = True, with_account: bool = True) -> str:
        return (f"arn:{self.partition}:{service}:{self.region if regional else ''}:"
                f"{self.account_id if with_account else ''}:{resource}")
