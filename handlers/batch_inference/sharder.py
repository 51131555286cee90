"""Sharder: ``batch_inference.sharder.handler``, the state machine's first Task.

Input ``{"runId": "...", "corpusKey": "corpus/....jsonl"}``. Streams the corpus from the input bucket, writes
shards under ``<SHARD_PREFIX><runId>/`` (each spooled to a temporary file, then uploaded in one PUT, so memory
stays flat), the shard list ``<SHARD_PREFIX><runId>/shards.json`` the Map reads, and sends every bad line to the
failure lane with its line number (ledger marker ``line#<line>`` of the run, so a retried sharder sends none
twice).

Mode: ``batch`` when MODE is batch (a corpus below MIN_RECORDS_PER_JOB fails the run: Bedrock would refuse the
job), ``sync`` when MODE is sync (one unbounded shard, read by the synchronous Map), and with ``auto`` batch when
the corpus holds at least the per-job minimum, else sync. A corpus without one valid record is ``empty``.

Output: ``{"runId", "mode", "corpus": {bucket, key}, "shardList": {bucket, key}, "syncInput": {bucket, key},
"counts": {"lines", "valid", "rejected", "blank", "shards"}, "deadline"}``: the run's deadline (`deadline`: the
execution input's ``deadline``, else RUN_DEADLINE_HOURS after the execution started, else null).
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from batch_inference import clients
from batch_inference.config import SharderSettings
from batch_inference.deadline import DeadlineError, run_deadline
from batch_inference.exceptions import CorpusBelowBatchMinimumError, InvalidTaskInputError
from batch_inference.lane import LaneRecord
from batch_inference.ledger import Ledger
from batch_inference.records import InputFrame
from batch_inference.settle import settle_unit
from batch_inference.sharding import Rejected, Shard, ShardLimits, iter_line_blocks, shard_blocks
from batch_inference.tasks import ShardRequest, task_input

logger = Logger()
metrics = Metrics()
settings = SharderSettings.from_env()

_CHUNK_BYTES = 1 << 20
_REJECTS_PER_FLUSH = 200


class S3ShardSink:
    """Each shard spooled to a temporary file and uploaded with one PUT when it is complete."""

    def __init__(self, client: Any, bucket: str, prefix: str, directory: str) -> None:
        self.client, self.bucket, self.prefix, self.directory = client, bucket, prefix, directory

    def open(self, index: int) -> _SpooledShard:
        return _SpooledShard(self, f"{self.prefix}shard-{index:05d}.jsonl")


class _SpooledShard:
    def __init__(self, sink: S3ShardSink, key: str) -> None:
        self.sink, self.key = sink, key
        self.file = tempfile.TemporaryFile(dir=sink.directory)  # noqa: SIM115 - closed in close()

    def write(self, data: bytes) -> None:
        self.file.write(data)

    def close(self) -> str:
        self.file.seek(0)
        try:
            self.sink.client.put_object(Bucket=self.sink.bucket, Key=self.key, Body=self.file,
                                        ContentType="application/jsonl")
        finally:
            self.file.close()
        return self.key


class _Rejections:
    """Bad lines, settled through the ledger and sent to the failure lane in bounded groups."""

    def __init__(self, run_id: str, corpus_key: str) -> None:
        self.run_id, self.corpus_key = run_id, corpus_key
        self.pending: list[Rejected] = []
        self.count = 0
        self.sent = 0
        # the markers of bad lines, not records: no record id can meet their keys
        self.ledger = Ledger(clients.dynamodb(), settings.records.ledger_table, settings.records.ledger_ttl_seconds,
                             run_id).markers()

    def __call__(self, rejected: Rejected) -> None:
        self.pending.append(rejected)
        self.count += 1
        if len(self.pending) >= _REJECTS_PER_FLUSH:
            self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        records = {f"line#{r.line_number}": r for r in self.pending}
        failures = {key: LaneRecord(self.run_id, "shard", r.reason, r.detail, dedupe_key=key,
                                    line_number=r.line_number, bucket=settings.storage.input_bucket,
                                    key=self.corpus_key) for key, r in records.items()}
        settlement = settle_unit(self.ledger, clients.sqs(), settings.records.failure_lane_url,
                                 owner=f"{self.run_id}/rejected", order=list(records),
                                 succeeded=set(), failures=failures)
        self.sent += settlement.counts.lane_sent
        logger.warning("Rejected corpus lines sent to the failure lane",
                       extra={"lines": [{"line": r.line_number, "reason": r.reason} for r in self.pending[:50]],
                              "rejected": len(self.pending), "sent": settlement.counts.lane_sent})
        self.pending = []


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    request = task_input(event, ShardRequest, "sharder input is not {runId, corpusKey}")
    logger.append_keys(runId=request.runId, corpusKey=request.corpusKey)
    try:
        deadline = run_deadline(request.options, request.startTime, settings.run_deadline_hours)
    except DeadlineError as error:
        raise InvalidTaskInputError(str(error)) from None
    return {**shard(request.runId, request.corpusKey), "deadline": deadline}


def shard(run_id: str, corpus_key: str) -> dict[str, Any]:
    storage = settings.storage
    prompt = settings.prompt
    frame = InputFrame.build(prompt.model_id, prompt.template, max_tokens=prompt.max_tokens,
                             temperature=prompt.temperature, labels=prompt.labels,
                             request_format=prompt.request_format)
    unbounded = settings.mode == "sync"
    limits = (ShardLimits.unbounded(settings.max_record_bytes) if unbounded else
              ShardLimits(settings.min_records, settings.max_records, settings.max_file_bytes,
                          settings.max_record_bytes))
    s3 = clients.s3()
    prefix = f"{storage.shard_prefix}{run_id}/"
    body = s3.get_object(Bucket=storage.input_bucket, Key=corpus_key)["Body"]
    rejections = _Rejections(run_id, corpus_key)
    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as directory:
        sink = S3ShardSink(s3, storage.input_bucket, prefix, directory)
        blocks = iter_line_blocks(body.iter_chunks(_CHUNK_BYTES), settings.max_record_bytes)
        result = shard_blocks(blocks, frame, limits, sink, text_field=settings.text_field,
                              id_field=settings.id_field, max_text_chars=settings.max_input_chars,
                              on_reject=rejections)
    rejections.flush()
    mode = choose_mode(settings.mode, result.valid, settings.min_records)
    shard_list_key = f"{prefix}shards.json"
    s3.put_object(Bucket=storage.input_bucket, Key=shard_list_key, ContentType="application/json",
                  Body=json.dumps([_describe(s, storage.input_bucket) for s in result.shards]).encode())
    counts = {"lines": result.lines, "valid": result.valid, "rejected": rejections.count, "blank": result.blank,
              "shards": len(result.shards)}
    for name, value in (("CorpusLines", result.lines), ("RecordsSharded", result.valid),
                        ("LinesRejected", rejections.count), ("ShardsWritten", len(result.shards))):
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    logger.info("Corpus sharded", extra={"mode": mode, "counts": counts})
    first = result.shards[0].location if result.shards else shard_list_key
    return {"runId": run_id, "mode": mode, "corpus": {"bucket": storage.input_bucket, "key": corpus_key},
            "shardList": {"bucket": storage.input_bucket, "key": shard_list_key},
            "syncInput": {"bucket": storage.input_bucket, "key": first}, "counts": counts}


def choose_mode(configured: str, valid: int, min_records: int) -> str:
    """batch, sync or empty for a corpus of `valid` records."""
    if valid == 0:
        return "empty"
    if configured == "sync":
        return "sync"
    if valid >= min_records:
        return "batch"
    if configured == "batch":
        raise CorpusBelowBatchMinimumError(
            f"the corpus has {valid} valid records, below the per-job minimum of {min_records}; run it with "
            "mode sync or auto")
    return "sync"


def _describe(shard: Shard, bucket: str) -> dict[str, Any]:
    return {"shardId": f"{shard.index:05d}", "bucket": bucket, "key": shard.location, "records": shard.records,
            "bytes": shard.bytes, "firstLine": shard.first_line, "lastLine": shard.last_line}
