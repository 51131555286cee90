"""KMS keys: customer managed symmetric encryption keys rotate their key material."""

from __future__ import annotations

from pulumi_policy import Severity

from .core import types
from .core.frameworks import cis, well_architected
from .core.rule import ResourceContext, Rule
from .core.values import fmt, number, truthy

# Only symmetric encryption keys with AWS-generated material can rotate automatically (KMS rejects
# EnableKeyRotation for asymmetric, HMAC and imported keys; aws:kms/externalKey:ExternalKey is a separate type).
_SYMMETRIC = "SYMMETRIC_DEFAULT"


def _key_rotation(ctx: ResourceContext) -> None:
    spec = ctx.props.get("customerMasterKeySpec") or _SYMMETRIC
    usage = ctx.props.get("keyUsage") or "ENCRYPT_DECRYPT"
    if spec != _SYMMETRIC or usage != "ENCRYPT_DECRYPT":
        return
    if not truthy(ctx.props.get("enableKeyRotation")):
        ctx.violation(f"{ctx.subject} is a symmetric encryption key without enableKeyRotation, so its key material "
                      f"never changes")
        return
    most = float(ctx.settings["maxRotationPeriodDays"])
    period = number(ctx.props.get("rotationPeriodInDays"), 365)
    if period > most:
        ctx.violation(f"{ctx.subject} rotationPeriodInDays {fmt(period)} exceeds {fmt(most)}")


RULES = (
    Rule(
        name="kms-key-rotation",
        what="Customer managed symmetric encryption keys have automatic rotation on, with a rotation period no "
             "longer than the maximum (AWS default 365 days).",
        why="The pipelines' keys encrypt alarm topics and data stores; rotation bounds how much data one key "
            "version protects, at no cost and with no re-encryption.",
        scope="resource",
        resource_types=(types.KMS_KEY,),
        check=_key_rotation,
        severity=Severity.MEDIUM,
        frameworks=(
            cis("3.6", spec="Rotation for customer-created symmetric CMKs is enabled"),
            well_architected("SEC08-BP01", spec="Implement secure key management"),
        ),
        remediation="Set enableKeyRotation true on the aws.kms.Key (and rotationPeriodInDays within the maximum, "
                    "if set).",
        url="https://docs.aws.amazon.com/kms/latest/developerguide/rotate-keys.html",
        settings={"maxRotationPeriodDays": {"type": "integer", "minimum": 90, "maximum": 2560, "default": 365,
                                            "description": "Longest rotation period accepted, in days."}},
    ),
)
