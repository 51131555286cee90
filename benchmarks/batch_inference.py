"""Batch inference's two hot paths on one machine in one run: sharding a corpus and joining a job's output.

Run: `python -m benchmarks.batch_inference` from the repository root (`--records` to change the corpus size).

* Sharding. A generated 1,000,000-record JSONL corpus (a local file stands in for the S3 object; it is read in
  1 MiB chunks, as the sharder reads the S3 body) is sharded with the shipped sharder core, called as the Lambda
  calls it (`iter_line_blocks` into `shard_blocks`), with default quotas (100..50,000 records, 1 GiB per shard)
  into local files, and cut with `split -l` at the same record count from the same file, in interleaved rounds;
  the medians of the wall-clock times are compared. `split` only copies bytes; the sharder parses every line,
  validates it, derives its recordId and writes it wrapped in the model's native request with the prompt (about
  twice the corpus's bytes).
* Floor. Reading the same chunks into lines and decoding each line with the sharder's decoder, and nothing else,
  is timed in the same rounds: no sharder that looks at every line in this interpreter can be faster.
* Memory. The sharder runs in a fresh process over the first 10,000 records and over all 1,000,000, and each
  reports its peak resident set size; flat memory means a ratio near 1.
* Join. A 100,000-record output file (out of order, 2 % error lines) is joined with its shard on recordId and
  written as results lines, as the completion handler does.

The last line is machine-readable:

    RESULT shard_ratio_vs_split=<a> rss_ratio_1m_vs_10k=<b> join_records_per_s=<c>

Targets: within 3 x of split, memory ratio at most 1.5, join at least 50,000 records per second.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from itertools import islice
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "handlers"))

from batch_inference.joining import join_output, result_line, shard_record_ids
from batch_inference.records import InputFrame, output_text
from batch_inference.sharding import ShardLimits, iter_line_blocks, line_decoder, shard_blocks

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
TEMPLATE = "Summarize the item between the <item> tags in at most three sentences.\n<item>\n{{content}}\n</item>"
LIMITS = ShardLimits(min_records=100, max_records=50_000, max_bytes=1 << 30, max_record_bytes=100_000)
WORDS = ("the", "parcel", "arrived", "late", "and", "the", "customer", "asked", "for", "a", "refund", "of", "the",
         "invoice", "while", "support", "escalated", "the", "ticket", "to", "billing", "because", "the", "shipment",
         "was", "damaged")
CHUNK = 1 << 20
TARGETS = {"shard_ratio_vs_split": 3.0, "rss_ratio_1m_vs_10k": 1.5, "join_records_per_s": 50_000}


def generate(path: Path, records: int, seed: int = 7) -> None:
    """A JSONL corpus of `records` support tickets (10..40 words each)."""
    rng = random.Random(seed)
    with path.open("w") as out:
        for index in range(records):
            text = " ".join(rng.choices(WORDS, k=rng.randint(10, 40)))
            out.write(f'{{"id": "DOC{index:08d}", "text": "{text}", "channel": "email"}}\n')


class _FileSink:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def open(self, index: int) -> _FileWriter:
        return _FileWriter(self.directory / f"shard-{index:05d}.jsonl")


class _FileWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = path.open("wb", buffering=CHUNK)

    def write(self, data: bytes) -> None:
        self.file.write(data)

    def close(self) -> str:
        self.file.close()
        return str(self.path)


def _chunks(path: Path, limit: int | None = None) -> Iterator[bytes]:
    """The corpus in chunks of about CHUNK bytes, as the sharder reads the S3 body; with `limit`, its first lines."""
    with path.open("rb") as handle:
        if limit is None:
            while chunk := handle.read(CHUNK):
                yield chunk
        else:
            lines = islice(handle, limit)
            while chunk := b"".join(islice(lines, 4096)):  # about 0.8 MB of this corpus
                yield chunk


def shard(path: Path, out: Path, limit: int | None = None) -> int:
    frame = InputFrame.build(MODEL, TEMPLATE, max_tokens=512, temperature=0.0)
    blocks = iter_line_blocks(_chunks(path, limit), LIMITS.max_record_bytes)
    result = shard_blocks(blocks, frame, LIMITS, _FileSink(out), text_field="text", id_field="id")
    return result.valid


def _timed_shard(corpus: Path, work: Path) -> float:
    out = Path(tempfile.mkdtemp(dir=work))
    started = time.perf_counter()
    shard(corpus, out)
    elapsed = time.perf_counter() - started
    shutil.rmtree(out)
    return elapsed


def _timed_decode_only(corpus: Path) -> float:
    """Reading the corpus into lines and decoding each with the sharder's decoder, nothing else: a floor of the
    sharder's own time (no checks, no prompt, no output)."""
    decode = line_decoder("text", "id").decode
    started = time.perf_counter()
    for lines in iter_line_blocks(_chunks(corpus), LIMITS.max_record_bytes):
        list(map(decode, lines))
    return time.perf_counter() - started


def _timed_split(corpus: Path, work: Path) -> float:
    out = Path(tempfile.mkdtemp(dir=work))
    started = time.perf_counter()
    subprocess.run(["split", "-l", str(LIMITS.cut_records), str(corpus), str(out / "part-")], check=True)
    elapsed = time.perf_counter() - started
    shutil.rmtree(out)
    return elapsed


def peak_rss_kib(corpus: Path, records: int, work: Path) -> int:
    """Peak RSS of a fresh process sharding the first `records` records of `corpus`."""
    out = Path(tempfile.mkdtemp(dir=work))
    completed = subprocess.run([sys.executable, "-m", "benchmarks.batch_inference", "--rss-child", str(corpus),
                                str(records), str(out)], check=True, capture_output=True, text=True)
    shutil.rmtree(out)
    return int(completed.stdout.strip().splitlines()[-1])


def join_throughput(records: int, work: Path, seed: int = 11) -> float:
    """Records per second joining a job's output (out of order, with error lines) and writing results."""
    rng = random.Random(seed)
    ids = [f"DOC{i:08d}" for i in range(records)]
    shard_lines = [json.dumps({"recordId": r, "modelInput": {"max_tokens": 512}}).encode() for r in ids]
    rows = []
    for record_id in ids:
        if rng.random() < 0.02:
            rows.append({"recordId": record_id, "modelInput": {}, "error": {"errorCode": 400,
                                                                            "errorMessage": "Malformed input"}})
        else:
            rows.append({"recordId": record_id, "modelInput": {"max_tokens": 512}, "modelOutput": {
                "id": f"msg_{record_id}", "type": "message", "role": "assistant", "content": [
                    {"type": "text", "text": " ".join(rng.choices(WORDS, k=30))}], "stop_reason": "end_turn",
                "usage": {"input_tokens": 40, "output_tokens": 30}}})
    rng.shuffle(rows)
    output = work / "shard.jsonl.out"
    output.write_bytes(b"".join(json.dumps(row).encode() + b"\n" for row in rows))
    manifest = {"totalRecordCount": records, "successRecordCount": sum("modelOutput" in r for r in rows),
                "errorRecordCount": sum("error" in r for r in rows)}
    results = work / "results.jsonl"
    started = time.perf_counter()
    order = shard_record_ids(shard_lines)
    with output.open("rb") as handle:
        joined = join_output(order, handle, manifest)
    with results.open("wb") as out:
        for record_id in order:
            model_output = joined.succeeded.get(record_id)
            if model_output is not None:
                out.write(result_line(record_id, model_output, output_text(model_output)))
    elapsed = time.perf_counter() - started
    assert joined.manifest_mismatches == [] and len(joined.succeeded) + len(joined.failed) == records
    return records / elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=1_000_000, help="corpus size (default 1,000,000)")
    parser.add_argument("--small", type=int, default=10_000, help="records of the small memory run")
    parser.add_argument("--join-records", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved sharder/split rounds")
    parser.add_argument("--rss-child", nargs=3, metavar=("CORPUS", "RECORDS", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rss_child:
        corpus, records, out = args.rss_child
        shard(Path(corpus), Path(out), int(records))
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        return 0

    with tempfile.TemporaryDirectory(prefix="batch-inference-bench-") as directory:
        work = Path(directory)
        corpus = work / "corpus.jsonl"
        started = time.perf_counter()
        generate(corpus, args.records)
        size_mb = corpus.stat().st_size / 1e6
        print(f"corpus: {args.records:,} records, {size_mb:.0f} MB, generated in {time.perf_counter() - started:.1f} s")
        sharder_s, split_s, decode_s = [], [], []
        for _ in range(args.rounds):
            sharder_s.append(_timed_shard(corpus, work))
            split_s.append(_timed_split(corpus, work))
            decode_s.append(_timed_decode_only(corpus))
        shard_median, split_median = statistics.median(sharder_s), statistics.median(split_s)
        decode_median = statistics.median(decode_s)
        print(f"sharder: median {shard_median:.2f} s ({args.records / shard_median:,.0f} records/s, "
              f"{size_mb / shard_median:.0f} MB/s) over {args.rounds} rounds")
        print(f"split -l {LIMITS.cut_records}: median {split_median:.3f} s")
        print(f"floor: reading the lines and decoding each alone takes {decode_median:.2f} s, "
              f"{decode_median / split_median:.1f} x split")
        small_kib = peak_rss_kib(corpus, args.small, work)
        large_kib = peak_rss_kib(corpus, args.records, work)
        print(f"peak RSS: {small_kib / 1024:.1f} MiB at {args.small:,} records, {large_kib / 1024:.1f} MiB at "
              f"{args.records:,}")
        join_rate = join_throughput(args.join_records, work)
        print(f"join: {args.join_records:,} output records at {join_rate:,.0f} records/s")
    figures = {"shard_ratio_vs_split": shard_median / split_median, "rss_ratio_1m_vs_10k": large_kib / small_kib,
               "join_records_per_s": join_rate}
    for name, value in figures.items():
        target = TARGETS[name]
        met = value >= target if name == "join_records_per_s" else value <= target
        print(f"{name}: {value:,.2f} (target {'>=' if name == 'join_records_per_s' else '<='} {target:,}) "
              f"{'met' if met else 'NOT met'}")
    print(f"RESULT shard_ratio_vs_split={figures['shard_ratio_vs_split']:.2f} "
          f"rss_ratio_1m_vs_10k={figures['rss_ratio_1m_vs_10k']:.2f} "
          f"join_records_per_s={figures['join_records_per_s']:.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
