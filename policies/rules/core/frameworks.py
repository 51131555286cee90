"""The compliance frameworks a rule maps to, as the catalogue and the policy metadata name them.

Pulumi's policy metadata carries one framework per policy (`PolicyComplianceFramework`): a rule's first framework
goes there, with its controls joined as the reference; every framework's controls also go into the policy's tags
(`cis-aws-foundations:1.16`, `well-architected:SEC03-BP02`, `serverless-lens:REL 2`), so a report can filter on any.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True)
class Framework:
    name: str
    version: str
    tag: str  # the tag prefix its controls carry
    url: str  # where its controls are published
    controls: tuple[str, ...]
    specification: str  # what the controls ask, in short

    @property
    def reference(self) -> str:
        return ", ".join(self.controls)

    def tags(self) -> list[str]:
        return [f"{self.tag}:{control}" for control in self.controls]


CIS_NAME: Final = "CIS AWS Foundations Benchmark"
WELL_ARCHITECTED_NAME: Final = "AWS Well-Architected Framework"
SERVERLESS_LENS_NAME: Final = "AWS Well-Architected Serverless Applications Lens"


def cis(*controls: str, spec: str) -> Framework:
    """CIS AWS Foundations Benchmark v3.0.0 recommendations (the version AWS Security Hub maps its controls to)."""
    return Framework(CIS_NAME, "3.0.0", "cis-aws-foundations",
                     "https://www.cisecurity.org/benchmark/amazon_web_services", controls, spec)


def well_architected(*best_practices: str, spec: str) -> Framework:
    """AWS Well-Architected Framework best practices (pillar ids: SEC security, REL reliability, SUS sustainability)."""
    return Framework(WELL_ARCHITECTED_NAME, "", "well-architected",
                     "https://docs.aws.amazon.com/wellarchitected/latest/framework/", best_practices, spec)


def serverless_lens(*questions: str, spec: str) -> Framework:
    """Questions of the AWS Well-Architected Serverless Applications Lens."""
    return Framework(SERVERLESS_LENS_NAME, "", "serverless-lens",
                     "https://docs.aws.amazon.com/wellarchitected/latest/serverless-applications-lens/", questions,
                     spec)


# The controls every rule about the breadth of an identity policy maps to (wildcard actions, broad managed policies).
LEAST_PRIVILEGE: tuple[Framework, ...] = (
    cis("1.16", spec="No IAM policy allowing full '*:*' administrative privileges is attached"),
    well_architected("SEC03-BP02", spec="Grant least privilege access"),
    serverless_lens("SEC 2", spec="Managing the security boundaries of a serverless application"),
)
