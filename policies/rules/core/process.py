"""Settings of the pack's own process (Pulumi runs a policy pack in a process of its own)."""

from __future__ import annotations

import gc

# The SDK converts every resource's properties into fresh dicts and proxies once per policy, on every Analyze and
# AnalyzeStack call: tens of thousands of short-lived containers per analysis, freed by reference counting as soon
# as a policy is done with them. With the default generation-0 threshold (700 allocations) the cycle collector
# runs thousands of times over them; a higher threshold cuts about a fifth of the pack's time on a 2,000-resource
# stack (see benchmarks/policy_pack.py) and changes nothing about what is eventually collected.
_GENERATION0_THRESHOLD = 10_000


def tune_for_analysis() -> None:
    _, generation1, generation2 = gc.get_threshold()
    gc.set_threshold(_GENERATION0_THRESHOLD, generation1, generation2)
