"""Inputs a producer controls (object keys, notifications, re-uploads, deletions) and a server that is not the
database: what each does now, counted on the real server. The rows of docs/reliability.md's "Bad actors" table.
"""

from __future__ import annotations

import gc
import hashlib
import json
import shutil
import socket
import ssl
import subprocess
import threading
import tracemalloc
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import psycopg
import pytest

from common.postgres import ConnectionKeeper, Credentials, DatabaseSettings
from file_ingestion import writer
from tests.handlers.conftest import SqsEventSource
from tests.handlers.file_ingestion.conftest import BUCKET, Database, Invoker, LogCapture, Pipeline, order

ORDERS_PREFIX = "input/orders/"
MAX_KEY_BYTES = 1024  # S3's limit, in UTF-8 bytes


def long_key(index: int, *, fill: str = "x") -> str:
    """A key of S3's maximum length holding one character outside the BMP, so Python stores it 4 bytes a char."""
    head, tail = f"{ORDERS_PREFIX}\U0001f600", f"-{index:03d}.json"
    room = MAX_KEY_BYTES - len(head.encode()) - len(tail.encode())
    key = head + fill * (room // len(fill.encode())) + tail
    assert len(key.encode()) <= MAX_KEY_BYTES
    return key


def jsonl_of_size(prefix: str, size: int) -> bytes:
    lines, total, index = [], 0, 0
    while True:
        line = json.dumps(order(f"{prefix}-{index:05d}"), separators=(",", ":")) + "\n"
        if total + len(line) > size:
            return "".join(lines).encode()
        lines.append(line)
        total += len(line)
        index += 1


def body_with(notification: dict[str, Any], **object_fields: Any) -> str:
    body = json.loads(notification["Body"])
    obj = body["Records"][0]["s3"]["object"]
    for name, value in object_fields.items():
        if value is None:
            obj.pop(name, None)
        else:
            obj[name] = value
    return json.dumps(body)


# --- memory: the object key -----------------------------------------------------------------------------------


def test_a_batch_of_long_non_ascii_keys_stays_within_a_memory_bound_set_by_the_configuration(
        pipeline: Pipeline, database: Database, event_source: SqsEventSource, invoke: Invoker,
        ingest_app: Any) -> None:
    """Before, every row's COPY text repeated bucket, key and version, and the batch kept it: a 1 KiB key with one
    astral character cost ~4 KiB a row. Now a batch holds at most the reads in flight, one file being validated and
    the writer's pending files, each bounded by maxObjectBytes, whatever the keys."""
    settings = ingest_app.settings
    size = settings.max_object_bytes // 4
    files = 12
    content = {long_key(n): jsonl_of_size(f"M{n:02d}", size) for n in range(files)}
    for key, data in content.items():
        pipeline.put(key, data)
    event = event_source.event(pipeline.notifications(event_source))
    assert len(event["Records"]) == files
    rows = sum(data.count(b"\n") for data in content.values())

    gc.collect()
    tracemalloc.start()
    try:
        response = invoke(event)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert response == {"batchItemFailures": []}
    assert database.count("orders") == rows
    # Raw bytes of every read in flight, the file being validated (its record objects: at most 8x its JSON) and the
    # files offered but not yet written: a bound from maxObjectBytes and readConcurrency alone.
    bound = (settings.read_concurrency + 8 + writer.PENDING_FILES) * settings.max_object_bytes
    assert peak < bound, f"peak {peak / 2**20:.1f} MiB exceeds {bound / 2**20:.1f} MiB"


# --- the same content twice, and a forged version -------------------------------------------------------------


def test_an_identical_re_upload_and_a_re_export_under_another_key_add_no_rows(
        pipeline: Pipeline, database: Database, event_source: SqsEventSource, invoke: Invoker) -> None:
    data = jsonl_of_size("R", 8_000)
    rows = data.count(b"\n")
    pipeline.put("input/orders/export.json", data)
    pipeline.put("input/orders/export.json", data)  # an SDK retry: a second version, the same bytes
    first = pipeline.notifications(event_source)
    assert len({json.loads(m["Body"])["Records"][0]["s3"]["object"]["versionId"] for m in first}) == 2
    assert invoke(event_source.event(first)) == {"batchItemFailures": []}
    pipeline.put("input/orders/2024-05-18/export.json", data)  # the nightly re-export, under another key
    pipeline.put("input/orders/export.json", data)  # and once more, in a later batch
    assert invoke(event_source.event(pipeline.notifications(event_source))) == {"batchItemFailures": []}

    assert database.count("orders") == rows  # every record once
    assert database.count("ingested_files") == 1


def test_a_forged_version_id_fails_its_message_and_loads_nothing(
        pipeline: Pipeline, database: Database, event_source: SqsEventSource, invoke: Invoker,
        logs: LogCapture) -> None:
    pipeline.put("input/orders/current.json", jsonl_of_size("F", 4_000))
    [real] = pipeline.notifications(event_source)
    pipeline.acknowledge([real])
    forged_id = pipeline.send(body_with(real, versionId="3HL4kqtJlcpXroDTDmJ+forged", eTag=None))
    response = invoke(event_source.event(pipeline.notifications(event_source)))

    assert [item["itemIdentifier"] for item in response["batchItemFailures"]] == [forged_id]
    assert database.count("orders") == 0  # the current object was not loaded in its place
    [entry] = logs.named("File not loaded")
    assert entry["reason"] == "NoSuchVersionError" and "does not exist" in entry["detail"]


# --- deleted before the batch ran -----------------------------------------------------------------------------


def test_an_object_deleted_before_its_batch_is_skipped_not_retried(
        pipeline: Pipeline, database: Database, event_source: SqsEventSource, invoke: Invoker,
        logs: LogCapture) -> None:
    pipeline.put("input/orders/gone.json", jsonl_of_size("G", 2_000))
    pipeline.put("input/orders/unversioned-gone.json", jsonl_of_size("U", 2_000))
    pipeline.put("input/orders/unversioned-kept.json", jsonl_of_size("K", 2_000))
    notifications = {unquote_plus(json.loads(m["Body"])["Records"][0]["s3"]["object"]["key"]): m
                     for m in pipeline.notifications(event_source)}
    pipeline.acknowledge(list(notifications.values()))
    for key in ("input/orders/gone.json", "input/orders/unversioned-gone.json"):  # every version deleted
        for version in pipeline.s3.list_object_versions(Bucket=BUCKET, Prefix=key)["Versions"]:
            pipeline.s3.delete_object(Bucket=BUCKET, Key=key, VersionId=version["VersionId"])
    pipeline.send(notifications["input/orders/gone.json"]["Body"])
    for key in ("input/orders/unversioned-gone.json", "input/orders/unversioned-kept.json"):
        pipeline.send(body_with(notifications[key], versionId=None))  # as from a bucket without versioning
    response = invoke(event_source.event(pipeline.notifications(event_source)))

    assert response == {"batchItemFailures": []}  # acknowledged: nothing retried, nothing dead-lettered
    assert {row[0] for row in database.query("SELECT DISTINCT f.source_key FROM orders o JOIN ingested_files f "
                                             "USING (file_id)")} == {"input/orders/unversioned-kept.json"}
    skipped = logs.named("Skipped file")
    assert sorted(entry["key"] for entry in skipped) == ["input/orders/gone.json", "input/orders/unversioned-gone.json"]
    assert {entry["reason"] for entry in skipped} == {"deleted since it was announced"}


# --- logs -----------------------------------------------------------------------------------------------------


def test_a_long_key_is_logged_truncated_with_its_hash(pipeline: Pipeline, event_source: SqsEventSource,
                                                     invoke: Invoker, logs: LogCapture) -> None:
    key = long_key(1)
    pipeline.put(key, b"[{broken")
    response = invoke(event_source.event(pipeline.notifications(event_source)))

    assert len(response["batchItemFailures"]) == 1
    [entry] = logs.named("Rejected file")
    assert len(entry["key"]) <= 200 and entry["key"].startswith(ORDERS_PREFIX)
    assert entry["keySha256"] == hashlib.sha256(key.encode()).hexdigest()[:16]
    assert not any(key in json.dumps(e, ensure_ascii=False) for e in logs.entries)  # nowhere in full


# --- the database login ---------------------------------------------------------------------------------------


def _certificate(directory: Path) -> tuple[Path, Path]:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make the impostor's certificate")
    key, certificate = directory / "impostor.key", directory / "impostor.crt"
    subprocess.run([openssl, "req", "-new", "-x509", "-days", "1", "-nodes", "-subj", "/CN=impostor",
                    "-newkey", "rsa:2048", "-keyout", str(key), "-out", str(certificate)],
                   capture_output=True, check=True, timeout=60)
    return certificate, key


def _read(stream: Any, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = stream.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


class Impostor:
    """A server on the database's address that accepts TLS with its own certificate and asks for the password in
    clear: what a machine in the middle does with ``sslmode=require``, which checks no certificate."""

    def __init__(self, certificate: Path, key: Path) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(certificate, key)
        self.received = b""
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        self.listener.settimeout(20)
        connection, _ = self.listener.accept()
        with connection:
            connection.settimeout(20)
            while True:  # SSLRequest (or a GSSENCRequest first, refused)
                length = int.from_bytes(_read(connection, 4), "big")
                code = int.from_bytes(_read(connection, length - 4)[:4], "big")
                if code == 80877103:
                    connection.sendall(b"S")
                    break
                connection.sendall(b"N")
            with self.context.wrap_socket(connection, server_side=True) as tls:
                length = int.from_bytes(_read(tls, 4), "big")
                _read(tls, length - 4)  # the startup message
                tls.sendall(b"R" + (8).to_bytes(4, "big") + (3).to_bytes(4, "big"))  # cleartext password, please
                try:
                    while chunk := tls.recv(4096):
                        self.received += chunk
                except OSError:
                    pass


def test_the_loader_never_sends_its_password_to_a_server_it_cannot_authenticate(tmp_path: Path) -> None:
    impostor = Impostor(*_certificate(tmp_path))
    password = "the-loader-password"
    settings = DatabaseSettings.from_env({"DATABASE_SECRET_ID": "unused"}, application_name="file-ingestion")
    keeper = ConnectionKeeper(lambda: Credentials("127.0.0.1", impostor.port, "ingest", "loader", password), settings)
    with pytest.raises(psycopg.OperationalError), keeper.connection():
        pass
    impostor.thread.join(timeout=20)
    assert password.encode() not in impostor.received
