"""How the offline preview scales: the dev stack with 1, 5 and 20 copies of every enabled pipeline.

Run: `python -m benchmarks.offline_preview` from the repository root. Each size is synthesized and analyzed by
one policy pack process (started once, as a pull-request check would reuse nothing but pays the start once per
run; the start is timed separately in the end-to-end line). A stack policy that scans every resource for each
resource shows up as a ratio t(20)/t(1) far above the resource ratio.

Copy 1 is the real stack; copy k > 1 is the same program with every pipeline name (the shared one included)
suffixed with k, so logical and physical names stay unique and each copy's resources relate to each other as the
real ones do. The copies share one account/region lookup, as one stack program does. Production code is
unchanged: the benchmark swaps the names `Naming` and `AwsEnv` inside `components.stack` while it runs.
The last line is machine-readable:

    RESULT resources=<n at 20x> seconds_20x=<s> ratio_20x_vs_1x=<r>
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import components.stack
from components.blocks.iam import AwsEnv
from components.blocks.naming import Naming
from components.stack import build_stack
from offline.analyzer import PolicyPackProcess
from offline.cli import batch_gc
from offline.model import ResourceRecord
from offline.synth import REPO, load_stack_files, run_program

SIZES = (1, 5, 20)


def _suffixed_naming(suffix: str) -> type[Naming]:
    class SuffixedNaming(Naming):
        def __init__(self, project: str, stack: str, pipeline: str, owner: str) -> None:
            super().__init__(project, stack, pipeline + suffix, owner)

        def child(self, pipeline: str) -> Naming:
            return SuffixedNaming(self.project, self.stack, pipeline, self.owner)

    return SuffixedNaming


@contextmanager
def _replaced(name: str, value: object) -> Iterator[None]:
    """`components.stack.<name>` replaced for the duration (the stack module looks its helpers up by name)."""
    original = getattr(components.stack, name)
    setattr(components.stack, name, value)
    try:
        yield
    finally:
        setattr(components.stack, name, original)


def _shared_env_lookup() -> type[AwsEnv]:
    """`AwsEnv` whose lookup answers every copy with the first copy's result.

    A stack program looks its account and region up once, before it registers anything. A synchronous invoke made
    after many registrations pumps the SDK's whole ready queue, so looking up again in every copy would charge the
    copies an O(n^2) cost that no real program pays.
    """
    found: list[AwsEnv] = []

    class SharedEnv(AwsEnv):
        @classmethod
        def lookup(cls) -> AwsEnv:
            if not found:
                found.append(AwsEnv.lookup())
            return found[0]

    return SharedEnv


def copies_program(copies: int) -> Callable[[], None]:
    """The stack program with every enabled pipeline built `copies` times under distinct names."""

    def program() -> None:
        with _replaced("AwsEnv", _shared_env_lookup()):
            build_stack()
            for copy in range(2, copies + 1):
                with _replaced("Naming", _suffixed_naming(str(copy))):
                    build_stack()

    return program


def synthesize_copies(stack: str, copies: int) -> list[ResourceRecord]:
    files = load_stack_files(stack)
    return run_program(copies_program(copies), project=files.project, stack=stack, mode="preview",
                       config=files.config).resources


@dataclass
class Timing:
    copies: int
    resources: int
    synth_s: float
    analyze_s: float
    cpu_s: float  # this process and the policy pack, synthesis and analysis

    @property
    def total_s(self) -> float:
        return self.synth_s + self.analyze_s

    @property
    def per_100(self) -> float:
        return 100 * self.total_s / self.resources


def cpu_seconds() -> float:
    """CPU time of this process plus its live children (the policy pack), read from /proc where it exists.

    Wall time is what a user waits, but on a shared machine other processes stretch a long run more than a short
    one; CPU time shows how the work itself grows.
    """
    total = time.process_time()
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended while we looked
        if int(fields[1]) == os.getpid():  # fields after the command: state, ppid, ..., utime (12th), stime (13th)
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def measure(pack: PolicyPackProcess, stack: str, copies: int, repeats: int) -> Timing:
    """The best of `repeats` runs: noise (a busy neighbour on a shared machine) only ever adds time."""
    runs = []
    for _ in range(repeats):
        cpu_before = cpu_seconds()
        started = time.perf_counter()
        resources = synthesize_copies(stack, copies)
        synthesized = time.perf_counter()
        report = pack.analyze(resources)
        analyzed = time.perf_counter()
        if report.skipped:
            raise SystemExit(f"{len(report.skipped)} policies skipped at {copies}x: the benchmark would flatter")
        runs.append(Timing(copies, len(resources), synthesized - started, analyzed - synthesized,
                           cpu_seconds() - cpu_before))
    return min(runs, key=lambda t: t.total_s)


def end_to_end(stack: str) -> float:
    """`python -m offline preview` as a user runs it: interpreter start, imports, pack start, report."""
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "offline", "preview", "--stack", stack], cwd=REPO, check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--repeats", type=int, default=3, help="runs per size; the best is reported")
    args = parser.parse_args(argv)

    batch_gc()  # as `python -m offline preview` runs
    files = load_stack_files(args.stack)
    with PolicyPackProcess(project=files.project, stack=args.stack, mode="preview") as pack:
        measure(pack, args.stack, 1, 1)  # warm-up: imports, handler archives, the pack's own caches
        timings = [measure(pack, args.stack, copies, args.repeats) for copies in SIZES]
    cold = min(end_to_end(args.stack) for _ in range(args.repeats))

    print(f"offline preview of stack {args.stack} (preview mode), one policy pack process, best of "
          f"{args.repeats} runs")
    print(f"{'copies':>6}  {'resources':>9}  {'synth s':>8}  {'analyze s':>9}  {'total s':>8}  {'s/100 res':>9}  "
          f"{'cpu s':>6}")
    for t in timings:
        print(f"{t.copies:>6}  {t.resources:>9}  {t.synth_s:>8.2f}  {t.analyze_s:>9.2f}  {t.total_s:>8.2f}  "
              f"{t.per_100:>9.3f}  {t.cpu_s:>6.2f}")
    first, last = timings[0], timings[-1]
    ratio = last.total_s / first.total_s
    print(f"end to end, `python -m offline preview --stack {args.stack}` in a fresh process: {cold:.2f} s "
          "(target: under 10 s)")
    print(f"t({last.copies})/t({first.copies}) = {ratio:.1f} wall, {last.cpu_s / first.cpu_s:.1f} cpu, for "
          f"{last.resources / first.resources:.1f}x the resources (target: at most 25, i.e. linear)")
    print(f"RESULT resources={last.resources} seconds_20x={last.total_s:.2f} ratio_20x_vs_1x={ratio:.2f}")

if __name__ == "__main__":
    main()
