"""Violation messages that say the finding, not the rule's description again.

The Python policy SDK builds each violation's message as "<policy description>\\n<finding>"
(pulumi_policy/policy.py, `_PolicyAnalyzerServicer._create_report_violation`), so every message a reader sees opens
with the same general sentence, and the finding, which names the resource and what is wrong, comes second. The
diagnostic already carries the description in its own `description` field and the policy's name beside the message,
so `report_findings_first` makes the message the finding alone.
"""

from __future__ import annotations

from typing import Any

from pulumi_policy import policy as sdk_policy


def report_findings_first() -> None:
    """Make the SDK's violation messages the finding alone (the description stays in the diagnostic's own field)."""
    servicer = getattr(sdk_policy, "_PolicyAnalyzerServicer", None)
    original = getattr(servicer, "_create_report_violation", None)
    if servicer is None or original is None or getattr(servicer, "_reports_findings_first", False):
        return  # another SDK layout: the message test in tests/policies says so

    def create(self: Any, response: Any, *args: Any, **kwargs: Any) -> Any:
        report = original(self, response, *args, **kwargs)

        def report_violation(message: str, urn: str | None = None) -> None:
            report(message, urn)
            if message:  # the SDK appended this finding's diagnostic last
                response.diagnostics[-1].message = message

        return report_violation

    servicer._create_report_violation = create
    servicer._reports_findings_first = True
