"""Every policy the pack serves carries Pulumi's reporting metadata: severity, the frameworks it maps to, remediation
steps and a documentation URL, as GetAnalyzerInfo sends them and the catalogue prints them."""

from __future__ import annotations

import re

from offline.analyzer import DEFAULT_PACK_DIR, PolicyPackProcess

SEVERITIES = {"low", "medium", "high", "critical"}
FRAMEWORK_TAG = re.compile(r"^(cis-aws-foundations:\d+(\.\d+)+|well-architected:[A-Z]{3,4}\d\d-BP\d\d|"
                           r"serverless-lens:[A-Z]{3,4} \d)$")


def test_every_policy_has_severity_remediation_and_url(pack: PolicyPackProcess) -> None:
    readme = (DEFAULT_PACK_DIR / "README.md").read_text(encoding="utf-8")
    for policy in pack.policies():
        assert policy.severity in SEVERITIES, policy.name
        assert policy.remediation, policy.name
        assert policy.url.startswith("https://"), policy.name
        section = readme.split(f"### `{policy.name}`", 1)[1].split("\n### ", 1)[0]
        assert f"Severity: {policy.severity}." in section
        assert f"**Remediation.** {policy.remediation}" in section and f"<{policy.url}>" in section


def test_frameworks_are_sent_as_the_policy_framework_and_as_tags(pack: PolicyPackProcess) -> None:
    served = {p.name: p for p in pack.info().policies}
    bucket = served["s3-bucket-guardrails"]
    assert (bucket.framework.name, bucket.framework.version, bucket.framework.reference) == (
        "CIS AWS Foundations Benchmark", "3.0.0", "2.1.1, 2.1.4")
    assert {"cis-aws-foundations:2.1.1", "cis-aws-foundations:2.1.4", "well-architected:SEC08-BP02",
            "well-architected:SEC09-BP02"} <= set(bucket.tags)
    assert served["iam-no-broad-managed-policies"].framework.reference == "1.16"
    # Every rule but the exemptions report maps to a framework; every framework tag names a control.
    mapped = [name for name, p in served.items() if p.framework.name]
    assert set(served) - set(mapped) == {"exemptions-applied"}
    for name in mapped:
        tags = [t for t in served[name].tags if ":" in t]
        assert tags and all(FRAMEWORK_TAG.match(t) for t in tags), (name, tags)
