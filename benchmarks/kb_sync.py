"""Freshness of the knowledge-base sync: how long after an upload Bedrock is asked to ingest it, and how many
ingestion jobs a burst costs.

Run: `python -m benchmarks.kb_sync` from the repository root. A recorded-shape upload trace (a day's typical edits:
single uploads and a deletion a few minutes apart, one small set of five, then a bulk upload of 1,000 files over
about 50 s, as `aws s3 sync` with its default ten concurrent requests gives) is replayed through the real handler
(`kb_sync.app.handler`) on a simulated clock. Bedrock is the tests' botocore ``Stubber`` fake
(`tests/handlers/kb_sync/bedrock_fake.py`: every request and answer checked against the bedrock-agent service
model); an ingestion job runs for `JOB_SECONDS`, a directly ingested document is indexed after `DOCUMENT_SECONDS`.
The pipeline's queue and Lambda's event source mapping are simulated in process:

* S3 sends a notification `NOTIFY_SECONDS` after the upload; the queue holds it for its delay (`delaySeconds`);
* the mapping starts a batch when a message becomes visible and hands it over when the batching window has passed
  or the batch is full (`batchSize`), one batch at a time; the invocation reaches Bedrock `INVOKE_SECONDS` later.
  (The real mapping polls with several pollers and may split a burst over more batches than this: the handler's
  burst settling and its "covered by the running job" check exist for that, and the tests split bursts on purpose.)

The upload-to-request time of an upload is the time from the upload to the first Bedrock request that covers it:
a direct-ingestion request naming its URI, or a StartIngestionJob that started a job after it. Three
configurations run side by side, each on the same trace: the shipped defaults in `auto` mode, the shipped defaults
in `jobs` mode, and the previous design (every change through a job, queue delay and batching window of 300 s).

    p95_upload_to_request_s   p95 over the uploads of small change sets (up to 25 documents), auto mode (target < 60)
    jobs_per_burst            ingestion jobs started for the burst of 1,000, auto mode             (target 1)
"""

from __future__ import annotations

import heapq
import itertools
import json
import os
import statistics
import sys
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "handlers"))

NOTIFY_SECONDS = 1.0
INVOKE_SECONDS = 1.0
JOB_SECONDS = 300.0
DOCUMENT_SECONDS = 30.0
BURST = 1000
BUCKET = "kbsync-docs-benchmark"
PREFIX = "documents/"
QUEUE_URL = "https://sqs.us-east-1.amazonaws.com/123456789012/kbsync-benchmark"
EPOCH = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Upload:
    at: float
    key: str
    kind: str = "created"
    small: bool = True  # part of a change set of at most 25 documents


def trace() -> list[Upload]:
    """Single edits a few minutes apart, a set of five, a deletion, then a bulk upload of 1,000 over ~50 s."""
    uploads = [Upload(at, f"{PREFIX}edits/{n}.pdf") for n, at in enumerate((0, 45, 130, 200, 410, 520, 700))]
    uploads += [Upload(300 + n * 0.4, f"{PREFIX}set/{n}.docx") for n in range(5)]
    uploads.append(Upload(620, f"{PREFIX}edits/0.pdf", kind="removed"))
    start = 900.0
    uploads += [Upload(start + n * 0.05 + (n % 7) * 0.01, f"{PREFIX}bulk/{n:04d}.md", small=False)
                for n in range(BURST)]
    uploads += [Upload(1300 + 60 * n, f"{PREFIX}edits/late-{n}.pdf") for n in range(3)]  # while the burst syncs
    return sorted(uploads, key=lambda u: u.at)


@dataclass(order=True)
class Message:
    visible_at: float
    seq: int
    body: str = field(compare=False)
    sent_at: float = field(compare=False)
    message_id: str = field(compare=False, default_factory=lambda: str(uuid.uuid4()))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def datetime(self) -> datetime:
        return EPOCH + timedelta(seconds=self.now)


class Queue:
    """The pipeline's standard queue, for the handler's SendMessage and the simulated event source."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.pending: list[Message] = []
        self._seq = itertools.count()

    def put(self, body: str, delay: float) -> Message:
        message = Message(self.clock.now + delay, next(self._seq), body, self.clock.now)
        heapq.heappush(self.pending, message)
        return message

    def send_message(self, QueueUrl: str, MessageBody: str, DelaySeconds: int) -> dict[str, str]:
        return {"MessageId": self.put(MessageBody, DelaySeconds).message_id}

    def take(self, until: float, limit: int) -> list[Message]:
        taken: list[Message] = []
        while self.pending and self.pending[0].visible_at <= until and len(taken) < limit:
            taken.append(heapq.heappop(self.pending))
        return taken


def _environment(overrides: dict[str, Any]) -> tuple[dict[str, str], Any]:
    from components.blocks.naming import Naming
    from components.config import KnowledgeBaseSyncSettings
    from components.pipelines.knowledge_base_sync import worker_environment

    settings = KnowledgeBaseSyncSettings.model_validate(
        {"knowledgeBaseId": "KBBENCH001", "dataSourceId": "DSBENCH001", **overrides})
    env = worker_environment(Naming("ai-pipelines", "bench", "kbsync", owner="platform"), settings,
                             bucket=BUCKET, queue_url=QUEUE_URL)
    return {k: str(v) for k, v in env.items()}, settings


def _notification(upload: Upload) -> str:
    event = "ObjectCreated:Put" if upload.kind == "created" else "ObjectRemoved:Delete"
    return json.dumps({"Records": [{"eventSource": "aws:s3", "eventName": event, "s3": {
        "bucket": {"name": BUCKET}, "object": {"key": upload.key, "sequencer": f"{int(upload.at * 1000):016X}"}}}]})


def _record(message: Message) -> dict[str, Any]:
    return {"messageId": message.message_id, "receiptHandle": "r", "body": message.body,
            "attributes": {"ApproximateReceiveCount": "1",
                           "SentTimestamp": str(int((EPOCH.timestamp() + message.sent_at) * 1000))},
            "messageAttributes": {}, "md5OfBody": "0" * 32, "eventSource": "aws:sqs",
            "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:kbsync-benchmark", "awsRegion": "us-east-1"}


class _Context:
    function_name = "kbsync-benchmark"
    function_version = "$LATEST"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:kbsync-benchmark"
    log_group_name = "/aws/lambda/kbsync-benchmark"
    log_stream_name = "benchmark"
    aws_request_id = "benchmark"

    def get_remaining_time_in_millis(self) -> int:
        return 60_000


@dataclass
class Outcome:
    name: str
    small: list[float]
    burst: list[float]
    burst_jobs: int
    jobs: int
    direct_requests: int


def replay(name: str, overrides: dict[str, Any]) -> Outcome:
    """Replay the trace through the handler under one configuration."""
    from kb_sync import app, clients
    from tests.handlers.kb_sync.bedrock_fake import FakeKnowledgeBase

    env, settings = _environment(overrides)
    app.settings = app.Settings.from_env(env)
    clock = Clock()
    queue = Queue(clock)
    clients.reset()
    window = settings.worker.batching_window_seconds
    batch_size = settings.worker.batch_size
    uploads = trace()
    requested: dict[int, float] = {}
    burst_at = [u.at for u in uploads if not u.small]
    notices = sorted((u.at + NOTIFY_SECONDS, i) for i, u in enumerate(uploads))

    original_sqs = clients.sqs
    clients.sqs = lambda: queue  # type: ignore[assignment]
    try:
        with FakeKnowledgeBase(clients.bedrock_agent(), "KBBENCH001", "DSBENCH001", now=clock.datetime) as fake:
            while notices or queue.pending or fake.running is not None:
                # S3's notifications due by now enter the queue, with its delay.
                while notices and notices[0][0] <= clock.now:
                    _, index = notices.pop(0)
                    queue.put(_notification(uploads[index]), settings.queue.delay_seconds)
                if fake.running is not None and \
                        (clock.datetime() - fake.running["startedAt"]).total_seconds() >= JOB_SECONDS:
                    fake.finish_running_job()
                if queue.pending and queue.pending[0].visible_at <= clock.now and \
                        _hand_over(queue, window, batch_size) <= clock.now:
                    batch = queue.take(clock.now, batch_size)
                    if any('"document-check"' in m.body for m in batch):
                        fake.settle_documents()  # checks come CHECK_DELAY_SECONDS (> DOCUMENT_SECONDS) later
                    jobs_before, calls_before = len(fake.jobs), len(fake.calls)
                    clock.now += INVOKE_SECONDS
                    app.handler({"Records": [_record(m) for m in batch]}, _Context())
                    _attribute(fake, uploads, requested, calls_before, jobs_before, clock.now)
                    clock.now -= INVOKE_SECONDS
                    continue
                clock.now = round(clock.now + 0.5, 3)
    finally:
        clients.sqs = original_sqs  # type: ignore[assignment]
        clients.reset()
    missing = [u.key for i, u in enumerate(uploads) if i not in requested]
    if missing:
        raise SystemExit(f"{name}: {len(missing)} uploads were never requested, e.g. {missing[:3]}")
    small = [requested[i] - u.at for i, u in enumerate(uploads) if u.small]
    burst = [requested[i] - u.at for i, u in enumerate(uploads) if not u.small]
    # A burst's jobs: those started from its first upload until every upload of it was requested, and after.
    covered_by = max(requested[i] for i, u in enumerate(uploads) if not u.small)
    burst_jobs = sum(1 for job in fake.jobs if min(burst_at) <= (job["startedAt"] - EPOCH).total_seconds()
                     <= covered_by + 1)
    direct = len(fake.called("IngestKnowledgeBaseDocuments")) + len(fake.called("DeleteKnowledgeBaseDocuments"))
    return Outcome(name, small, burst, burst_jobs, len(fake.jobs), direct)


def _hand_over(queue: Queue, window: float, batch_size: int) -> float:
    """When the event source hands the batch being collected over: its window has passed, or it is full."""
    close = queue.pending[0].visible_at + window
    if len(queue.pending) >= batch_size:
        return min(close, heapq.nsmallest(batch_size, queue.pending)[-1].visible_at)
    return close


def _attribute(fake: Any, uploads: list[Upload], requested: dict[int, float], calls_before: int, jobs_before: int,
               now: float) -> None:
    """Each upload not yet requested that this invocation's Bedrock requests cover is requested now."""
    named: set[str] = set()
    for operation, request in fake.calls[calls_before:]:
        if operation == "IngestKnowledgeBaseDocuments":
            named |= {d["content"]["s3"]["s3Location"]["uri"] for d in request["documents"]}
        elif operation == "DeleteKnowledgeBaseDocuments":
            named |= {d["s3"]["uri"] for d in request["documentIdentifiers"]}
    job_started = len(fake.jobs) > jobs_before  # it covers every upload made before it
    for index, upload in enumerate(uploads):
        if index not in requested and upload.at <= now and (
                job_started or f"s3://{BUCKET}/{upload.key}" in named):
            requested[index] = now


def _at(now: float) -> datetime:
    return EPOCH + timedelta(seconds=now)


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1] if len(values) > 1 else values[0]


def main() -> None:
    os.environ.update({"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "benchmark",
                       "AWS_SECRET_ACCESS_KEY": "benchmark", "POWERTOOLS_METRICS_DISABLED": "true",
                       "POWERTOOLS_LOG_LEVEL": "CRITICAL", "LOG_LEVEL": "CRITICAL"})
    sys.path.insert(0, str(ROOT))
    env, _ = _environment({})
    os.environ.update(env)  # kb_sync.app reads its settings at import, as at a cold start
    os.environ["LOG_LEVEL"] = "CRITICAL"
    runs = [
        replay("auto (shipped defaults)", {}),
        replay("jobs (shipped defaults)", {"mode": "jobs"}),
        replay("previous design: jobs, 300 s delay and window", {
            "mode": "jobs", "burstSettleSeconds": 0, "queue": {"delaySeconds": 300},
            "worker": {"timeoutSeconds": 60, "memoryMb": 256, "reservedConcurrency": 2, "batchSize": 1000,
                       "batchingWindowSeconds": 300, "maxConcurrency": 2}}),
    ]
    print(f"trace: {sum(1 for u in trace() if u.small)} uploads in small change sets, a burst of {BURST}; "
          f"job {JOB_SECONDS:.0f} s, document indexed after {DOCUMENT_SECONDS:.0f} s")
    print(f"{'configuration':48} {'small median':>12} {'small p95':>10} {'burst median':>12} {'burst p95':>10} "
          f"{'burst jobs':>10} {'jobs':>5} {'direct calls':>12}")
    for run in runs:
        print(f"{run.name:48} {statistics.median(run.small):11.1f}s {_p95(run.small):9.1f}s "
              f"{statistics.median(run.burst):11.1f}s {_p95(run.burst):9.1f}s {run.burst_jobs:10d} {run.jobs:5d} "
              f"{run.direct_requests:12d}")
    auto = runs[0]
    print(f"RESULT p95_upload_to_request_s={_p95(auto.small):.1f} jobs_per_burst={auto.burst_jobs}")


if __name__ == "__main__":
    main()
