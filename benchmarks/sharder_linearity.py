"""How the sharder's cost of judging a hostile corpus line grows with the line's length, measured side by side.

Run: `python -m benchmarks.sharder_linearity` from the repository root.

Lines built to make a backtracking string pattern rescan the rest of the line from every quote (more brackets than
the nesting limit, then runs of escaped quotes, quotes and backslashes; `adversarial_lines`) are judged by the
shipped sharder core at a quarter of the record limit and at the limit, on both the block path and the per-line
path, in interleaved rounds; the minimum CPU time of each is compared. Four times the bytes should cost about four
times the work; a quadratic judge costs sixteen times (the pattern it replaced took minutes a line at 100 KB).
This is a benchmark, not a unit test, because a time ratio is a property of a quiet machine: the unit tests keep
only hang guards an order of magnitude above the expected time.

The last line is machine-readable:

    RESULT cost_ratio_4x_bytes=<worst of the two paths>

Target: below 8 (linear with headroom; quadratic would be near 16).
"""

from __future__ import annotations

import sys
import time
import timeit
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "handlers"))

from batch_inference.records import InputFrame
from batch_inference.sharding import MAX_DEPTH, MemorySink, ShardLimits, shard_corpus

RECORD_LIMIT = 100_000  # the shipped stacks' maxRecordBytes
FRAME = InputFrame.build("amazon.nova-lite-v1:0", "{{content}}", max_tokens=8, temperature=0.0)
OPEN = b"[" * (MAX_DEPTH + 88)  # deep enough that the sharder measures the nesting of the rest
TARGET = 8.0


def adversarial_lines(size: int) -> list[bytes]:
    """Lines of `size` bytes that open more brackets than MAX_DEPTH and then hold what made a backtracking string
    pattern rescan the rest of the line from every quote: runs of escaped quotes, quotes, backslashes."""
    def fill(unit: bytes, head: bytes = OPEN) -> bytes:
        return (head + unit * size)[:size]

    return [fill(b'"\\'), fill(b'\\"'), fill(b'"'), fill(b"\\"), fill(b'"\\\\'), fill(b'"\\"\\"'),
            fill(b'"\\', OPEN + b'"x"'), fill(b'["\\', b""), fill(b'{"a":"\\', b"")]


def judge(lines: list[bytes], per_line: bool) -> None:
    """Shard the lines as the sharder does; every one of them must be rejected."""
    limits = ShardLimits(1, 10, 4 << 20, 1 << 20)
    result = shard_corpus(lines, FRAME, limits, MemorySink(), text_field="text", id_field="id", per_line=per_line)
    if len(result.rejected) != len(lines):
        raise AssertionError(f"{len(lines) - len(result.rejected)} adversarial lines were accepted")


def cpu_seconds(lines: list[bytes], per_line: bool) -> float:
    return min(timeit.repeat(lambda: judge(lines, per_line), timer=time.process_time, number=2, repeat=7))


def main() -> int:
    small, large = adversarial_lines(RECORD_LIMIT // 4), adversarial_lines(RECORD_LIMIT)
    worst = 0.0
    for per_line in (False, True):
        small_cost, large_cost = cpu_seconds(small, per_line), cpu_seconds(large, per_line)
        ratio = large_cost / small_cost
        worst = max(worst, ratio)
        path = "per line" if per_line else "blocks  "
        print(f"{path}: {len(small)} lines of 25 KB {small_cost * 1000:7.1f} ms | of 100 KB {large_cost * 1000:7.1f} ms"
              f" | ratio {ratio:.2f} (linear 4, quadratic 16)")
    print(f"RESULT cost_ratio_4x_bytes={worst:.2f}")
    return 0 if worst < TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
