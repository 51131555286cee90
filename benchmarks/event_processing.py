"""How much concurrency buys the event-processing worker: a batch of 10 processed at once against one at a time.

Run: `python -m benchmarks.event_processing` from the repository root. The real handler (`event_processor.app`)
processes batches of 10 new items with the dev stack's configuration; Bedrock is a botocore ``Stubber`` whose every
``Converse`` call takes L = 200 ms. The same batches then run one record at a time (the worker's thread pool shrunk
to one), in the same process. Each item is new, so every event costs one model call plus its bookkeeping: the
idempotency record (conditional put, then the stored answer), the conditional result write, its share of one
``PutEvents`` and the publication mark.

DynamoDB and EventBridge are answered in two ways, one after the other:

* ``instant``: at the HTTP layer, at once. The SDK serializes, signs and parses every request and response as it
  would against AWS; only the services' own time is left out. This isolates what the handler adds per event, and
  it is what the RESULT line reports.
* ``moto``: moto's in-process emulation, whose request handling costs several milliseconds of CPU per call (a
  conditional put ~3.5 ms, an update ~5 ms) and, being CPU, serializes across the batch's threads where real
  network waits would overlap. Printed for comparison.

    batch_wall_over_model_latency  median wall time of a concurrent batch / L          (target <= 1.5)
    speedup_vs_sequential          median sequential batch / median concurrent batch   (target >= 6)
    overhead_ms_per_event          (median sequential batch - 10 L) / 10               (target < 15)
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.instant_aws import respond

ROOT = Path(__file__).resolve().parent.parent
LATENCY_SECONDS = 0.2
BATCH = 10
ROUNDS = 5


def _environment() -> dict[str, str]:
    """The worker's environment as the dev stack sets it."""
    from components.blocks.naming import Naming
    from components.config import parse_stack_config
    from components.pipelines.event_processing import worker_environment
    from offline.synth import load_stack_files

    files = load_stack_files("dev", ROOT)
    prefix = f"{files.project}:"
    raw = {key[len(prefix):]: value for key, value in files.config.items() if key.startswith(prefix)}
    config = parse_stack_config(raw, stack="dev")
    assert config.event_processing is not None, "the dev stack does not enable eventProcessing"
    naming = Naming(files.project, "dev", "eventproc", owner=config.owner)
    return {str(k): str(v) for k, v in worker_environment(
        naming, config.event_processing, idempotency_table=naming.name("idempotency"),
        results_table=naming.name("results"), result_bus=naming.name("results")).items()}


class _Context:
    function_name = "event-processor-benchmark"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:event-processor-benchmark"
    log_group_name = "/aws/lambda/event-processor-benchmark"
    log_stream_name = "benchmark"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())
        self._deadline = time.time() + 120

    def get_remaining_time_in_millis(self) -> int:
        return int((self._deadline - time.time()) * 1000)


def _batch(env: dict[str, str]) -> dict[str, Any]:
    source = json.loads(env["ACCEPTED_SOURCES"])[0]
    detail_type = json.loads(env["ACCEPTED_DETAIL_TYPES"])[0]
    records = []
    for _ in range(BATCH):
        body = json.dumps({"version": "0", "id": str(uuid.uuid4()), "source": source, "detail-type": detail_type,
                           "account": "123456789012", "time": "2025-01-01T00:00:00Z", "region": "us-east-1",
                           "resources": [], "detail": {"itemId": str(uuid.uuid4()),
                                                       "content": "Invoice INV-7 for 3 widgets, due in 30 days."}})
        records.append({"messageId": str(uuid.uuid4()), "receiptHandle": "r", "body": body,
                        "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {},
                        "md5OfBody": "0" * 32, "eventSource": "aws:sqs",
                        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:work", "awsRegion": "us-east-1"})
    return {"Records": records}


class InstantAws:
    """DynamoDB and EventBridge answering at the HTTP layer at once, for the happy path the benchmark drives (every
    item is new, so every conditional write succeeds)."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()

    def __call__(self, request: Any, **_: Any) -> Any:
        target = request.headers.get("X-Amz-Target", b"")
        operation = (target.decode() if isinstance(target, bytes) else str(target)).rsplit(".", 1)[-1]
        self.calls[operation] += 1
        if operation == "PutEvents":
            entries = json.loads(request.body)["Entries"]
            body: dict[str, Any] = {"FailedEntryCount": 0,
                                    "Entries": [{"EventId": str(uuid.uuid4())} for _ in entries]}
        elif operation in ("PutItem", "UpdateItem", "DeleteItem"):
            body = {}
        else:
            raise NotImplementedError(f"the benchmark does not answer {operation}")
        return respond(request, 200, json.dumps(body).encode(), {"Content-Type": "application/x-amz-json-1.0"})


@dataclass
class Run:
    backend: str
    concurrent: list[float]
    sequential: list[float]

    @property
    def batch(self) -> float:
        return statistics.median(self.concurrent)

    @property
    def one_by_one(self) -> float:
        return statistics.median(self.sequential)

    def figures(self) -> tuple[float, float, float]:
        return (self.batch / LATENCY_SECONDS, self.one_by_one / self.batch,
                (self.one_by_one - BATCH * LATENCY_SECONDS) / BATCH * 1000)


def _timed(handler: Callable[[dict[str, Any], Any], Any], env: dict[str, str]) -> float:
    event = _batch(env)
    started = time.perf_counter()
    response = handler(event, _Context())
    elapsed = time.perf_counter() - started
    assert response == {"batchItemFailures": []}, response
    return elapsed


def _measure(backend: str, env: dict[str, str]) -> Run:
    from event_processor import app, clients
    from tests.handlers.event_processor.model_fake import FakeModel

    clients.reset()
    with contextlib.ExitStack() as stack:
        if backend == "moto":
            import boto3
            from moto import mock_aws

            stack.enter_context(mock_aws())
            dynamodb, events = boto3.client("dynamodb"), boto3.client("events")
            for table, key in ((env["IDEMPOTENCY_TABLE"], "id"), (env["RESULTS_TABLE"], "resultId")):
                dynamodb.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                                      KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
                                      AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}])
            events.create_event_bus(Name=env["RESULT_BUS_NAME"])
        else:
            responder = InstantAws()
            for client in (clients.dynamodb(), clients.events()):
                client.meta.events.register("before-send", responder)
        stack.enter_context(FakeModel(clients.model_client(app.settings), latency=LATENCY_SECONDS))
        _timed(app.handler, env)  # warm up: clients, connections, imports
        concurrent = [_timed(app.handler, env) for _ in range(ROUNDS)]
        pool, app.executor = app.executor, ThreadPoolExecutor(max_workers=1)
        try:
            sequential = [_timed(app.handler, env) for _ in range(ROUNDS)]
        finally:
            app.executor = pool
    clients.reset()
    return Run(backend, concurrent, sequential)


def main() -> None:
    sys.path[:0] = [str(ROOT / "handlers"), str(ROOT)]
    env = _environment()
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
                       # As in Lambda: Powertools keeps one event loop for the batch processor.
                       "LAMBDA_TASK_ROOT": str(ROOT), "POWERTOOLS_METRICS_DISABLED": "true",
                       **{k: v for k, v in env.items() if k != "LOG_LEVEL"}, "LOG_LEVEL": "WARNING"})
    runs = [_measure("moto", env), _measure("instant", env)]
    print(f"batch of {BATCH} new items, model latency L = {LATENCY_SECONDS * 1000:.0f} ms, {ROUNDS} rounds each "
          f"(median), record concurrency {env['RECORD_CONCURRENCY']}")
    for run in runs:
        ratio, speedup, overhead = run.figures()
        print(f"  {run.backend:>7}: concurrent " + " ".join(f"{t * 1000:4.0f}" for t in run.concurrent)
              + " ms | one at a time " + " ".join(f"{t * 1000:5.0f}" for t in run.sequential) + " ms")
        print(f"           batch/L {ratio:.2f}, {speedup:.1f}x faster than sequential, {overhead:.1f} ms of "
              "bookkeeping per event")
    ratio, speedup, overhead = runs[-1].figures()
    print(f"RESULT batch_wall_over_model_latency={ratio:.2f} speedup_vs_sequential={speedup:.1f} "
          f"overhead_ms_per_event={overhead:.1f}")


if __name__ == "__main__":
    main()
