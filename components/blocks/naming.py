"""Physical names and tags derived from project, stack and pipeline.

Names are explicit and known at preview, so every ARN built from them is known too (design principle 1).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Naming:
    """Builds physical names `<project>-<stack>-<pipeline>-<purpose>` within AWS's length limits.

    >>> Naming("ai-pipelines", "dev", "kbsync", owner="data").name("worker")
    'ai-pipelines-dev-kbsync-worker'
    """

    project: str
    stack: str
    pipeline: str
    owner: str

    def name(self, purpose: str, max_length: int = 64) -> str:
        full = f"{self.project}-{self.stack}-{self.pipeline}-{purpose}"
        if len(full) <= max_length:
            return full
        # Too long for the service: keep a readable head and a stable hash of the whole, so names stay unique.
        digest = hashlib.sha256(full.encode()).hexdigest()[:8]
        return f"{full[: max_length - 9]}-{digest}"

    def logical(self, purpose: str) -> str:
        """Logical (Pulumi) name, unique within the stack."""
        return f"{self.pipeline}-{purpose}"

    @property
    def tags(self) -> dict[str, str]:
        return {"project": self.project, "stack": self.stack, "pipeline": self.pipeline, "owner": self.owner}

    def child(self, pipeline: str) -> Naming:
        return Naming(self.project, self.stack, pipeline, self.owner)
