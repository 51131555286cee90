"""File ingestion, measured side by side in one run: `python -m benchmarks.file_ingestion`.

100 files of about 50 KB each (orders, JSON arrays) in a moto bucket, loaded into a local PostgreSQL server
(a throwaway cluster with the durable defaults, TLS and password authentication, as a managed database):

1. through the real handler path: one SQS batch of 100 notifications -> ``file_ingestion.app.handler`` (reads,
   validation, one kept connection, files claimed by content, COPY into the table, one transaction);
2. the way the replaced design did it: per file, a new connection and one INSERT per row, committed per file;
3. a raw COPY of the same rows over one connection, with no reading or validation: the floor.

Each is run ROUNDS times on fresh keys; the median round counts. Last line:
``RESULT ms_per_file=<x> speedup_vs_per_file=<y> ratio_to_raw_copy=<z>``.

S3 ``GetObject`` is answered at the HTTP layer from the uploaded bytes (``benchmarks.instant_aws``), for the handler
and the per-file design alike: the SDK signs, sends and parses every read as against S3, and S3's own time stays
out, as it runs on S3's machines. moto answering instead costs ~3 ms of this process's CPU per read; the handler
path with moto answering is printed too, for comparison.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from benchmarks.instant_aws import answer, respond

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "handlers")]

FILES = 100
ROUNDS = 5
BUCKET = "bench-ingest-files"
SECRET = "bench/fileingest/database"
REGION = "us-east-1"


def _orders(prefix: str, target_bytes: int = 50_000) -> list[dict[str, Any]]:
    records, size, index = [], 2, 0
    while size < target_bytes:
        record = {"order_id": f"{prefix}-{index:05d}", "customer_id": f"C-{index % 977:05d}",
                  "order_date": "2024-05-17", "status": "paid", "currency": "EUR",
                  "total_amount": f"{(index * 37) % 10_000}.{index % 100:02d}", "item_count": index % 17}
        size += len(json.dumps(record)) + 2
        records.append(record)
        index += 1
    return records


class InstantObjects:
    """S3 GetObject answered at once from the bytes the benchmark uploaded, ``If-Match`` honoured."""

    def __init__(self) -> None:
        self.objects: dict[str, tuple[bytes, str]] = {}

    def __call__(self, request: Any, **_: Any) -> Any:
        url = urlsplit(request.url)
        key = unquote(url.path).lstrip("/")
        if not url.hostname or not url.hostname.startswith(BUCKET):  # a path-style address names the bucket first
            key = key.removeprefix(f"{BUCKET}/")
        data, etag = self.objects[key]
        expected = request.headers.get("If-Match")
        if expected is not None and (expected.decode() if isinstance(expected, bytes) else expected).strip('"') != etag:
            return respond(request, 412, b"<Error><Code>PreconditionFailed</Code></Error>")
        return respond(request, 200, data, {"ETag": f'"{etag}"', "Content-Length": str(len(data)),
                                           "Content-Type": "application/json"})


def main() -> int:
    import boto3
    import psycopg
    from moto import mock_aws

    from tests.support.postgres import PostgresServer

    with PostgresServer.start() as server, mock_aws():
        server.create_database("bench")
        os.environ.update({
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": REGION,
            "INPUT_BUCKET": BUCKET, "INPUT_RULES": json.dumps([{"prefix": "input/", "suffix": ".json"}]),
            "DATASETS": json.dumps([{"prefix": "input/orders/", "dataset": "orders"}]),
            "DATABASE_SECRET_ID": SECRET, "DATABASE_SSLMODE": "require" if server.tls else "disable",
            "DATABASE_CHANNEL_BINDING": "require" if server.tls else "disable",
            "STACK_NAME": "bench", "POWERTOOLS_SERVICE_NAME": "bench", "POWERTOOLS_METRICS_NAMESPACE": "bench",
            "POWERTOOLS_LOG_LEVEL": "WARNING", "LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"})
        from file_ingestion import app, clients
        from file_ingestion.datasets import CATALOGUE
        from file_ingestion.parse import parse_file
        from file_ingestion_migrate import runner

        with psycopg.connect(**server.conninfo("bench")) as connection:
            runner.migrate(connection)
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket=BUCKET)
        instant = InstantObjects()
        boto3.client("secretsmanager", region_name=REGION).create_secret(
            Name=SECRET, SecretString=json.dumps(server.secret("bench")))
        conninfo = {**server.conninfo("bench"), "sslmode": "require" if server.tls else "disable"}
        dataset = CATALOGUE["orders"]

        def upload(round_name: str) -> list[tuple[str, str]]:
            keys = []
            for index in range(FILES):
                key = f"input/orders/{round_name}/file-{index:03d}.json"
                body = json.dumps(_orders(f"{round_name}{index:03d}")).encode()
                etag = s3.put_object(Bucket=BUCKET, Key=key, Body=body)["ETag"].strip('"')
                instant.objects[key] = (body, etag)
                keys.append((key, etag))
            return keys

        def event(keys: list[tuple[str, str]]) -> dict[str, Any]:
            return {"Records": [{
                "messageId": f"m-{n}", "receiptHandle": f"r-{n}", "eventSource": "aws:sqs", "attributes": {},
                "body": json.dumps({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put", "s3": {
                    "bucket": {"name": BUCKET}, "object": {"key": key, "eTag": etag, "size": 50_000}}}]})}
                for n, (key, etag) in enumerate(keys)]}

        class Context:
            function_name, memory_limit_in_mb, aws_request_id = "bench", 512, "bench"
            invoked_function_arn = f"arn:aws:lambda:{REGION}:123456789012:function:bench"

        def batched(keys: list[tuple[str, str]]) -> float:
            started = time.perf_counter()
            response = app.handler(event(keys), Context())
            elapsed = time.perf_counter() - started
            assert response == {"batchItemFailures": []}, response
            return elapsed

        def per_file(keys: list[tuple[str, str]]) -> float:
            columns = ", ".join(dataset.columns)
            statement = f"INSERT INTO orders ({columns}) VALUES ({', '.join(['%s'] * len(dataset.columns))})"
            file_row = ("INSERT INTO ingested_files (file_id, dataset, content_sha256, source_bucket, source_key, "
                        "source_version, row_count) VALUES (%s, 'orders', %s, %s, %s, %s, %s)")
            started = time.perf_counter()
            for key, etag in keys:
                data = reads.get_object(Bucket=BUCKET, Key=key)["Body"].read()
                records = parse_file(data, dataset)
                file_id = secrets.randbits(63)
                with psycopg.connect(**conninfo) as connection, connection.cursor() as cursor:
                    cursor.execute(file_row, (file_id, hashlib.sha256(data).digest(), BUCKET, key, etag, len(records)))
                    for index, record in enumerate(records):
                        cursor.execute(statement, (file_id, index,
                                                   *(getattr(record, c) for c in dataset.data_columns)))
            return time.perf_counter() - started

        def raw_copy(keys: list[tuple[str, str]]) -> float:
            rows = []
            for key, _ in keys:
                records = parse_file(reads.get_object(Bucket=BUCKET, Key=key)["Body"].read(), dataset)
                file_id = secrets.randbits(63)
                rows += [(file_id, i, *(getattr(r, c) for c in dataset.data_columns)) for i, r in enumerate(records)]
            started = time.perf_counter()
            with psycopg.connect(**conninfo) as connection, connection.cursor() as cursor, cursor.copy(
                    f"COPY orders ({', '.join(dataset.columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return time.perf_counter() - started

        timings: dict[str, list[float]] = {"batched": [], "per_file": [], "raw_copy": [], "batched_moto": []}
        reads = answer(boto3.client("s3", region_name=REGION), "before-send.s3.GetObject", instant)
        answer(clients.s3(app.settings.read_concurrency), "before-send.s3.GetObject", instant)
        batched(upload("warmup"))  # the first invocation also opens the kept connection, as a cold start does
        for round_number in range(ROUNDS):
            for name, run in (("batched", batched), ("per_file", per_file), ("raw_copy", raw_copy)):
                timings[name].append(run(upload(f"{name}{round_number}")))
        clients.reset()  # the handler's next S3 client is moto's alone: moto answers its reads
        timings["batched_moto"] = [batched(upload(f"moto{round_number}")) for round_number in range(ROUNDS)]
        rows = psycopg.connect(**conninfo).execute("SELECT count(*) FROM orders").fetchone()
        median = {name: statistics.median(values) for name, values in timings.items()}
        for name, value in median.items():
            print(f"{name:>12}: {value * 1000 / FILES:8.2f} ms per file  (rounds: "
                  f"{', '.join(f'{v:.3f}s' for v in timings[name])})")
        print(f"rows loaded in total: {rows[0] if rows else 0}; records per file: {len(_orders('x'))}; with moto "
              f"answering the handler's reads: {median['per_file'] / median['batched_moto']:.1f} x the per-file "
              f"design, {median['batched_moto'] / median['raw_copy']:.2f} x raw COPY")
        print(f"RESULT ms_per_file={median['batched'] * 1000 / FILES:.2f} "
              f"speedup_vs_per_file={median['per_file'] / median['batched']:.1f} "
              f"ratio_to_raw_copy={median['batched'] / median['raw_copy']:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
