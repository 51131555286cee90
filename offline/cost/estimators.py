"""Each pipeline's monthly bill from its resources (inventory) and a volume profile.

Every count below follows what the pipeline's code does per item on its normal path (handlers/*); retries,
redeliveries and failures beyond `failedRecordShare` are not counted.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from offline.cost.inventory import DAYS_PER_MONTH, Inventory, Pipeline, Table
from offline.cost.lines import KB_PER_GB, Bill
from offline.cost.prices import PriceTable
from offline.cost.volumes import (
    BatchInference,
    EventProcessing,
    FileIngestion,
    KnowledgeBaseSync,
    Volumes,
)

SQS_CHUNK_KB = 64  # SQS and EventBridge bill each 64 KB of a payload as one request / event
BYTES_PER_TOKEN = 4  # for the size of stored model output
PIPELINE_ORDER = ("kbsync", "eventproc", "fileingest", "batchinf", "shared")
TITLES = {"kbsync": "knowledgeBaseSync", "eventproc": "eventProcessing", "fileingest": "fileIngestion",
          "batchinf": "batchInference", "shared": "shared"}


@dataclass
class Estimate:
    stack: str
    region: str
    bills: list[Bill]

    @property
    def total(self) -> float:
        return sum(bill.total for bill in self.bills)

    def bill(self, pipeline: str) -> Bill:
        return next(b for b in self.bills if b.pipeline in (pipeline, TITLES.get(pipeline)))


def estimate(inv: Inventory, volumes: Volumes, prices: PriceTable) -> Estimate:
    estimators: dict[str, Callable[[Pipeline, Bill], None]] = {
        "kbsync": lambda p, b: knowledge_base_sync(p, volumes.knowledge_base_sync, b),
        "eventproc": lambda p, b: event_processing(p, volumes.event_processing, b),
        "fileingest": lambda p, b: file_ingestion(p, volumes.file_ingestion, b),
        "batchinf": lambda p, b: batch_inference(p, volumes.batch_inference, b),
        "shared": lambda p, b: None,
    }
    bills = []
    for key in PIPELINE_ORDER:
        pipeline = inv.get(key)
        if pipeline is None:
            continue
        bill = Bill(TITLES[key], prices, volumes.shared)
        estimators[key](pipeline, bill)
        bill.fixed(pipeline)
        bills.append(bill)
    return Estimate(stack=inv.stack, region=inv.region, bills=bills)


def chunks(kb: float) -> int:
    return max(1, math.ceil(kb / SQS_CHUNK_KB))


def table_lines(bill: Bill, table: Table | None, *, writes: float = 0, reads: float = 0, stored_kb: float = 0,
                basis: str = "") -> None:
    if table is None:
        return
    if writes:
        bill.add("DynamoDB", "write request units", "dynamodb.write_request_units", writes, f"{table.name}: {basis}")
    if reads:
        bill.add("DynamoDB", "read request units", "dynamodb.read_request_units", reads, f"{table.name}: {basis}")
    if stored_kb:
        gb = stored_kb / KB_PER_GB
        bill.add("DynamoDB", "storage", "dynamodb.storage", gb, table.name)
        if table.pitr:
            bill.add("DynamoDB", "point-in-time recovery", "dynamodb.pitr", gb, table.name)


def held_months(bill: Bill, ttl_seconds: float | None) -> float:
    """Months of items a table or bucket holds at the end of the estimated month."""
    months = bill.shared.storage_months
    return months if ttl_seconds is None else min(months, ttl_seconds / 86400 / DAYS_PER_MONTH)


def event_processing(pipeline: Pipeline, v: EventProcessing, bill: Bill) -> None:
    worker = pipeline.function("worker")
    events = v.events_per_month
    invocations = events / ((worker.batch_size or 1) * v.batch_fill)
    size = chunks(v.event_kb)
    bill.add("EventBridge", "custom events", "eventbridge.custom_events", events * size,
             f"input bus: {events:,.0f} events x {size} chunk(s)")
    if "results-bus" in pipeline.buses:
        bill.add("EventBridge", "custom events", "eventbridge.custom_events", events,
                 "result bus: one ProcessingCompleted per event")
    bill.add("SQS", "requests", "sqs.requests", events * size, "work queue: SendMessage by the intake rule")
    bill.add("SQS", "requests", "sqs.requests", 2 * invocations,
             "work queue: one ReceiveMessage and one DeleteMessageBatch per batch")
    if "subscriber" in pipeline.queues:
        bill.add("SQS", "requests", "sqs.requests", events, "subscriber queue: SendMessage by the completed rule")
    bill.invoke(worker, invocations, v.invocation_seconds, v.log_kb_per_invocation)
    units = math.ceil(v.result_item_kb)
    ttl = float(worker.environment.get("IDEMPOTENCY_TTL_SECONDS", 86400))
    table_lines(bill, pipeline.table("idempotency"), writes=2 * events * units,
                stored_kb=events * v.result_item_kb * held_months(bill, ttl),
                basis="idempotency record put in progress, then completed")
    table_lines(bill, pipeline.table("results"), writes=2 * events * units,
                stored_kb=events * v.result_item_kb * held_months(bill, None),
                basis="result put, then marked published")
    bill.tokens(worker.environment["MODEL_ID"], events * v.input_tokens_per_event,
                events * v.output_tokens_per_event, batch=False)


def file_ingestion(pipeline: Pipeline, v: FileIngestion, bill: Bill) -> None:
    worker = pipeline.function("worker")
    files = v.files_per_month
    batch = (worker.batch_size or 1) * v.batch_fill
    invocations = files / batch
    bill.add("S3", "PUT requests", "s3.put_requests", files, "files written by producers (billed to the owner)")
    bill.add("S3", "GET requests", "s3.get_requests", files, "worker reads each file once")
    bill.add("S3", "storage", "s3.storage", files * v.file_kb * held_months(bill, None) / KB_PER_GB,
             "files kept (no lifecycle rule)")
    bill.add("SQS", "requests", "sqs.requests", files * chunks(1), "incoming queue: one S3 notification per file")
    bill.add("SQS", "requests", "sqs.requests", 2 * invocations,
             "incoming queue: one ReceiveMessage and one DeleteMessageBatch per batch")
    bill.invoke(worker, invocations, v.invocation_overhead_seconds + batch * v.seconds_per_file,
                v.log_kb_per_invocation)
    if pipeline.secrets:
        reads = invocations * bill.shared.cold_start_share
        bill.add("Secrets Manager", "API calls", "secretsmanager.api_calls", reads,
                 "GetSecretValue once per execution environment")
        bill.add("KMS", "requests", "kms.requests", reads, "Decrypt behind each GetSecretValue")


def knowledge_base_sync(pipeline: Pipeline, v: KnowledgeBaseSync, bill: Bill) -> None:
    worker = pipeline.function("worker")
    changes = v.document_changes_per_month
    batches = max(v.change_bursts_per_month, changes / (worker.batch_size or 1)) if changes else 0.0
    scheduled = sum(pipeline.schedules.values())
    bill.add("S3", "PUT requests", "s3.put_requests", changes, "documents written (billed to the owner)")
    bill.add("S3", "GET requests", "s3.get_requests", changes, "the ingestion job reads each changed document")
    bill.add("S3", "PUT requests", "s3.put_requests", changes,
             "at most one ListObjectsV2 per change, for those ingested directly (does the document still exist; "
             "LIST is billed as PUT)")
    bill.add("S3", "storage", "s3.storage", v.documents_stored * v.document_kb / KB_PER_GB, "documents kept")
    bill.add("SQS", "requests", "sqs.requests", changes, "changes queue: one S3 notification per change")
    bill.add("SQS", "requests", "sqs.requests", 2 * batches,
             "changes queue: one ReceiveMessage and one DeleteMessageBatch per batch")
    if scheduled:
        bill.add("EventBridge", "scheduler invocations", "eventbridge.scheduler_invocations", scheduled,
                 ", ".join(f"{name}: {count:,.1f}" for name, count in pipeline.schedules.items()))
    bill.invoke(worker, batches + scheduled, v.invocation_seconds, v.log_kb_per_invocation)
    bill.notes.append("the knowledge base's own ingestion jobs (embedding tokens) and its vector store")


def batch_inference(pipeline: Pipeline, v: BatchInference, bill: Bill) -> None:
    sharder = pipeline.function("sharder")
    env = sharder.environment
    runs, records = v.runs_per_month, v.records_per_run
    mode = env.get("MODE", "auto")
    batch_mode = mode == "batch" or (mode == "auto" and records >= int(env.get("MIN_RECORDS_PER_JOB", 1)))
    shards = max(math.ceil(records / int(env.get("MAX_RECORDS_PER_JOB", records or 1))),
                 math.ceil(records * v.record_kb * 1024 / float(env.get("MAX_FILE_BYTES", 1 << 30))))
    flow = _flow(pipeline.state_machines[0]) if pipeline.state_machines else None
    per_batch = flow.items_per_batch if flow else 1
    batches = math.ceil(records / per_batch)
    children = shards if batch_mode else batches
    if flow:
        transitions = runs * (flow.path_states + children * (flow.shard_states if batch_mode else flow.batch_states))
        bill.add("Step Functions", "state transitions", "stepfunctions.state_transitions", transitions,
                 f"{runs:g} runs x ({flow.path_states} + {children:,} map children x "
                 f"{flow.shard_states if batch_mode else flow.batch_states})")
    bill.invoke(sharder, runs, v.task_seconds + records / v.sharder_records_per_second, v.log_kb_per_invocation)
    if batch_mode:
        bill.invoke(pipeline.function("submitter"), runs * shards, v.task_seconds, v.log_kb_per_invocation)
        bill.invoke(pipeline.function("completion"), runs * shards,
                    v.task_seconds + records / shards / v.join_records_per_second, v.log_kb_per_invocation)
    else:
        worker = pipeline.function("sync-worker")
        rounds = math.ceil(per_batch / int(worker.environment.get("RECORD_CONCURRENCY", 1)))
        bill.invoke(worker, runs * batches, rounds * v.converse_seconds, v.log_kb_per_invocation)
    bill.invoke(pipeline.function("finalizer"), runs, v.task_seconds, v.log_kb_per_invocation)
    reconciles = pipeline.schedules.get("reconcile", 0.0)
    bill.invoke(pipeline.function("reconciler"), reconciles, v.task_seconds, v.log_kb_per_invocation)
    if reconciles:
        bill.add("EventBridge", "scheduler invocations", "eventbridge.scheduler_invocations", reconciles, "reconcile")
    ledger_ttl = float(env.get("LEDGER_TTL_SECONDS", 0)) or None
    table_lines(bill, pipeline.table("ledger"), writes=runs * records * 2 * math.ceil(v.ledger_item_kb),
                stored_kb=runs * records * v.ledger_item_kb * held_months(bill, ledger_ttl),
                basis="each record claimed, then settled")
    if batch_mode:
        table_lines(bill, pipeline.table("jobs"), writes=runs * shards * 6, reads=runs * shards * 2,
                    basis="per job: claim, submit, lease, settle, publish; two consistent reads")
    output_kb = v.output_tokens_per_record * BYTES_PER_TOKEN / 1024
    # Per run, batch: corpus, shard list, S shards, 2S Bedrock outputs (+ manifest), S joined results, the Map's
    # 2 result files and the run manifest PUT; the corpus, shard list, S shards (Bedrock), 2S outputs and S shard
    # orders (finalizer) read. Sync: corpus, sync input, shard list, one result file per batch, 2 + 1 manifests;
    # the corpus, the sync input (ItemReader) and the shard list read.
    puts = 4 * shards + 6 if batch_mode else batches + 7
    gets = 4 * shards + 2 if batch_mode else 3
    kept_kb = records * (2 * v.record_kb + output_kb + ((v.record_kb + output_kb) if batch_mode else 0))
    bill.add("S3", "PUT requests", "s3.put_requests", runs * puts, f"{puts:,} per run")
    bill.add("S3", "GET requests", "s3.get_requests", runs * gets, f"{gets:,} per run")
    bill.add("S3", "storage", "s3.storage", runs * kept_kb * held_months(bill, None) / KB_PER_GB,
             "corpus, shards or sync input, model output and results")
    if batch_mode:
        bill.add("SQS", "requests", "sqs.requests", runs * shards * 3,
                 "completions queue: the job-state rule's send, a receive and a delete per job")
    lane = runs * records * v.failed_record_share
    bill.add("SQS", "requests", "sqs.requests", lane / 10, "failure lane: SendMessageBatch of 10 failed records")
    if pipeline.buses:
        bill.add("EventBridge", "custom events", "eventbridge.custom_events", runs, "one BatchRunCompleted per run")
    processed = runs * records
    bill.tokens(env["MODEL_ID"], processed * v.input_tokens_per_record, processed * v.output_tokens_per_record,
                batch=batch_mode)


@dataclass(frozen=True)
class _Flow:
    path_states: int  # top-level states a run passes through
    shard_states: int  # states of one batch-job child execution
    batch_states: int  # states of one synchronous-batch child execution
    items_per_batch: int


def _normal_path_length(block: dict[str, Any]) -> int:
    """States a child passes when nothing fails: from StartAt along `Next` to the end (a state reached only by a
    Catch, such as a fallback, is not on it)."""
    states, name, seen = block.get("States", {}), block.get("StartAt"), 0
    while name in states and seen < len(states):
        seen += 1
        name = states[name].get("Next")
    return seen


def _flow(definition: dict[str, Any]) -> _Flow:
    """State transitions of the batch-inference state machine, read from its definition: a run passes every
    top-level Task and Choice state and one of the two Distributed Maps."""
    states = definition.get("States", {})
    maps = [s for s in states.values() if s.get("Type") == "Map"]
    steps = [s for s in states.values() if s.get("Type") in ("Task", "Choice", "Map", "Wait", "Parallel")]
    shard_map: dict[str, Any] = next((m for m in maps if "ItemBatcher" not in m), {})
    batch_map: dict[str, Any] = next((m for m in maps if "ItemBatcher" in m), {})
    return _Flow(path_states=len(steps) - max(0, len(maps) - 1),
                 shard_states=_normal_path_length(shard_map.get("ItemProcessor", {})),
                 batch_states=_normal_path_length(batch_map.get("ItemProcessor", {})),
                 items_per_batch=int(batch_map.get("ItemBatcher", {}).get("MaxItemsPerBatch", 1)))
