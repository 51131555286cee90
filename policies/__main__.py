"""The ai-pipelines-guardrails policy pack: Pulumi runs this file (`pulumi preview --policy-pack policies`)."""

from pulumi_policy import EnforcementLevel, PolicyPack
from rules import PACK_NAME, policies

PolicyPack(name=PACK_NAME, policies=policies(), enforcement_level=EnforcementLevel.MANDATORY)
