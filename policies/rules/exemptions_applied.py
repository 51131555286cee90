"""The advisory report of every exemption applied during this analysis (runs after all other policies)."""

from __future__ import annotations

from pulumi_policy import EnforcementLevel, Severity

from .core import exemptions
from .core.rule import Rule, StackContext


def _report_applied(ctx: StackContext) -> None:
    for applied in exemptions.LEDGER.drain():
        exemption = applied.exemption
        ctx.violation(applied.urn, f"{applied.policy} exempted until {exemption.expires} "
                                   f"({exemption.reason}); suppressed: {applied.suppressed}")


EXEMPTIONS_APPLIED = Rule(
    name="exemptions-applied",
    what="Lists every exemption that suppressed a violation, with its reason and expiry.",
    why="An exemption is a decision someone must be able to see and revisit; silence would hide it.",
    scope="stack",
    check=_report_applied,
    severity=Severity.LOW,
    remediation=(
        "Review each listed exemption: fix the resource before the exemption expires, or renew the "
        "exemption with a new date and reason."
    ),
    url="https://www.pulumi.com/docs/iac/using-pulumi/crossguard/configuration/",
    level=EnforcementLevel.ADVISORY,
)
