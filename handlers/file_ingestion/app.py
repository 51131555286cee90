"""Lambda adapter of the file-ingestion pipeline: ``file_ingestion.app.handler``.

Trigger
    An SQS batch (up to 100 messages, gathered for up to 55 s) of S3 event notifications for objects under the
    configured input rules, plus the ``s3:TestEvent`` S3 sends when notifications are configured.

Per message (Powertools ``AsyncBatchProcessor``, partial batch responses)
    Each message is classified (``events``); the objects it announces are read from S3 (``reader``; messages are
    read ``READ_CONCURRENCY`` at a time) and validated against their dataset's record model (``parse``).
    A message that cannot be loaded (malformed, a file that is not valid JSON or UTF-8, of the wrong shape, with a
    record failing its model, above ``MAX_OBJECT_BYTES``, or unreadable right now) is logged with bucket, key,
    record index and reason and reported as a batch item failure: it alone is retried, and after
    ``maxReceiveCount`` it reaches the DLQ, whose alarm pages someone; so is one naming a version that does not
    exist (``reader``). Test events, removals, keys outside the rules and objects deleted (or, without a version,
    overwritten) since they were announced are acknowledged, logged and counted (``FilesSkipped``). Keys and other
    producer values are logged clipped, with a hash (``logsafe``); a rejected body only by length and hash.

Per batch
    Every valid file of the batch goes to PostgreSQL over one connection, kept across warm invocations and
    replaced when broken, in one transaction (``writer``, ``load``): a message's files are written as soon as all
    of them are valid, while the rest of the batch is still being read, and their text is dropped once written
    (the text waiting to be written is bounded: ``writer.PENDING_FILES`` files at the size limit). A file whose
    content (dataset + SHA-256 of its bytes) is already loaded is skipped, whatever its key or version; new files
    are claimed in ``ingested_files`` and their rows COPYed into their table, each row naming its file by a short
    id. A redelivered or re-uploaded file adds no row. If the write fails, the invocation raises, so every message
    of the batch is retried and nothing of it was written.

Outcomes per message: loaded, skipped by design, or a batch item failure (retried, then dead-lettered).
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import AsyncBatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from common.heap import collector_paused
from common.postgres import ConnectionKeeper, fetch_credentials
from file_ingestion import clients, load
from file_ingestion.config import Settings
from file_ingestion.events import ObjectRef, Objects, Rejected, Skipped, classify
from file_ingestion.exceptions import (
    DatabaseWriteError,
    FileIngestionError,
    ObjectReadError,
    RejectedMessageError,
    UnroutedKeyError,
)
from file_ingestion.logsafe import clip, digest
from file_ingestion.parse import InvalidFileError, parse_file
from file_ingestion.reader import ObjectGoneError, read_object
from file_ingestion.writer import PENDING_FILES, BatchWriter

logger = Logger()
metrics = Metrics()
processor = AsyncBatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

# Validated once per cold start: a misconfigured function fails at init with the variable's name.
settings = Settings.from_env()
metrics.set_default_dimensions(stack=settings.stack)
reads = ThreadPoolExecutor(max_workers=settings.read_concurrency, thread_name_prefix="s3-read")
writes = ThreadPoolExecutor(max_workers=1, thread_name_prefix="db-writer")
# Validation and formatting hold the GIL (pydantic-core does not release it), so preparing several files at once gains
# nothing and makes the writer thread wait longer for its turn: one file at a time, while the other reads wait on S3.
validating = threading.Lock()
database = ConnectionKeeper(lambda: fetch_credentials(clients.secretsmanager(), settings.database),
                            settings.database)

_IDS_PER_LOG_ENTRY = 100


@dataclass(frozen=True)
class PreparedMessage:
    """What a message offered: the count only, so a batch keeps no file's text once it is written."""

    message_id: str
    files: int = 0


@dataclass(frozen=True)
class Offered:
    """A file handed to the writer (which drops its text once written)."""

    rows: int


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list) or not all(isinstance(r, dict) and r.get("eventSource") == "aws:sqs"
                                                for r in records):
        keys = sorted(event)[:20] if isinstance(event, dict) else type(event).__name__
        raise FileIngestionError(f"invoked with something other than an SQS batch (got {keys})")
    metrics.add_metric(name="MessagesReceived", unit=MetricUnit.Count, value=len(records))
    # A batch builds tens of thousands of record objects and no reference cycles, so the cyclic collector would only
    # traverse them again and again; it resumes once `_settle` has returned and the records are freed.
    with collector_paused():
        return _settle(records, context)


def _settle(records: list[dict[str, Any]], context: LambdaContext) -> dict[str, Any]:
    """Prepare every message, load the valid ones in one transaction and report; the partial batch response."""
    writer = BatchWriter(database.connection, writes,
                         max_pending_chars=PENDING_FILES * settings.max_object_bytes)

    async def prepare(record: SQSRecord) -> PreparedMessage:
        return await _prepare_message(record, writer)

    try:
        with processor(records=records, handler=prepare, lambda_context=context):
            processed = processor.async_process()
    except BaseException:
        writer.abort()
        raise
    prepared: list[PreparedMessage] = [result for status, result, _ in processed if status == "success"]
    response = dict(processor.response())
    result = _commit(writer, [m.message_id for m in prepared])
    _report(len(records), prepared, writer.files, result, response)
    return response


async def _prepare_message(record: SQSRecord, writer: BatchWriter) -> PreparedMessage:
    """What this message loads (offered to ``writer``); raises for one that cannot be loaded (a batch item failure)."""
    body = record.raw_event.get("body")
    entry = {"messageId": record.message_id,
             "receiveCount": record.raw_event.get("attributes", {}).get("ApproximateReceiveCount")}
    verdict = classify(body, settings.input_rules, settings.bucket)
    if isinstance(verdict, Rejected):
        metrics.add_metric(name="MessagesRejected", unit=MetricUnit.Count, value=1)
        logger.error("Rejected message; reported as a batch item failure so it alone is retried, then dead-lettered",
                     extra={**entry, "reason": str(verdict.reason), "detail": clip(verdict.detail),
                            **_body_identity(body)})
        raise RejectedMessageError(f"{verdict.reason}: {clip(verdict.detail)}")
    for ignored in verdict.ignored if isinstance(verdict, Objects | Skipped) else ():
        logger.info("Skipped object", extra={**entry, **_key_identity(ignored.key), "reason": str(ignored.reason),
                                             "detail": clip(ignored.detail)})
    if isinstance(verdict, Skipped):
        metrics.add_metric(name="MessagesSkipped", unit=MetricUnit.Count, value=1)
        logger.info("Skipped message", extra={**entry, "reason": str(verdict.reason), "detail": clip(verdict.detail)})
        return PreparedMessage(record.message_id)

    writer.begin()  # the transaction opens while the objects are read
    outcomes = await asyncio.get_running_loop().run_in_executor(reads, _read_message, verdict.objects, writer)
    files = 0
    failure: BaseException | None = None
    for ref, outcome in zip(verdict.objects, outcomes, strict=True):
        where = {**entry, "bucket": clip(ref.bucket), **_key_identity(ref.key)}
        if isinstance(outcome, Offered):
            files += 1
        elif isinstance(outcome, ObjectGoneError):
            metrics.add_metric(name="FilesSkipped", unit=MetricUnit.Count, value=1)
            logger.warning("Skipped file: the announced content no longer exists", extra={**where,
                                                                                         "reason": str(outcome)})
        elif isinstance(outcome, InvalidFileError):
            metrics.add_metric(name="FilesRejected", unit=MetricUnit.Count, value=1)
            logger.error("Rejected file; its message alone is retried, then dead-lettered",
                         extra={**where, "recordIndex": outcome.record_index, "reason": str(outcome.reason),
                                "detail": clip(outcome.detail)})
            failure = failure or outcome
        elif isinstance(outcome, UnroutedKeyError | ObjectReadError):
            metrics.add_metric(name="FilesRejected", unit=MetricUnit.Count, value=1)
            logger.error("File not loaded; its message alone is retried, then dead-lettered",
                         extra={**where, "reason": type(outcome).__name__, "detail": clip(str(outcome), 400)})
            failure = failure or outcome
        else:
            raise outcome  # a bug: let the batch processor fail this message with its traceback logged
    if failure is not None:
        raise RejectedMessageError(clip(str(failure), 400)) from failure
    return PreparedMessage(record.message_id, files)


def _read_message(refs: tuple[ObjectRef, ...], writer: BatchWriter) -> list[Offered | Exception]:
    """Read and validate one message's objects in turn; offer its files to ``writer`` unless one of them failed.

    The batch's messages are read concurrently (an S3 notification announces one object). The offer is made here,
    on the reading thread, so the database starts on a message as soon as it is ready: the event loop's thread
    may wait a long time for the interpreter while the other reads and validations hold it.
    """
    outcomes: list[load.ParsedFile | Exception] = []
    for ref in refs:
        try:
            outcomes.append(_read_and_parse(ref))
        except Exception as error:  # reported per file by the caller
            outcomes.append(error)
    if all(isinstance(outcome, load.ParsedFile | ObjectGoneError) for outcome in outcomes):
        writer.offer([outcome for outcome in outcomes if isinstance(outcome, load.ParsedFile)])
    # Only counts go back: the writer holds the texts until they are written, and nothing else keeps them.
    return [Offered(outcome.rows) if isinstance(outcome, load.ParsedFile) else outcome for outcome in outcomes]


def _read_and_parse(ref: ObjectRef) -> load.ParsedFile:
    dataset = settings.routes.route(ref.key)
    if dataset is None:
        raise UnroutedKeyError(f"no dataset is configured for a prefix of s3://{ref.bucket}/{clip(ref.key)}")
    content = read_object(clients.s3(settings.read_concurrency), ref, settings.max_object_bytes)
    # The file's identity for idempotency: the same bytes, announced again under any key or version, load once.
    # Hashed before taking the lock: hashlib releases the interpreter while it hashes.
    content_sha256 = hashlib.sha256(content.data).digest()
    with validating:
        records = parse_file(content.data, dataset)
        return load.ParsedFile.of(dataset, ref.bucket, ref.key, content.version, content_sha256,
                                  records)  # the COPY text


def _commit(writer: BatchWriter, message_ids: list[str]) -> load.LoadResult:
    try:
        return writer.finish()
    except Exception as error:
        metrics.add_metric(name="DatabaseWriteFailures", unit=MetricUnit.Count, value=1)
        logger.exception("Database write failed; nothing of the batch was written and every message is retried",
                         extra={"files": writer.files, "errorType": type(error).__name__,
                                "messageIds": message_ids[:_IDS_PER_LOG_ENTRY]})
        raise DatabaseWriteError(f"loading {writer.files} files failed: {type(error).__name__}") from error


def _report(received: int, prepared: list[PreparedMessage], files: int, result: load.LoadResult,
            response: dict[str, Any]) -> None:
    failures = [str(item["itemIdentifier"]) for item in response.get("batchItemFailures", [])]
    metrics.add_metric(name="FilesLoaded", unit=MetricUnit.Count, value=files)
    metrics.add_metric(name="RowsInserted", unit=MetricUnit.Count, value=result.rows_inserted)
    metrics.add_metric(name="RowsAlreadyLoaded", unit=MetricUnit.Count,
                       value=result.rows_offered - result.rows_inserted)
    logger.info("Batch settled", extra={
        "records": received, "loadedMessages": sum(1 for m in prepared if m.files),
        "skippedMessages": sum(1 for m in prepared if not m.files), "failed": len(failures),
        "files": files, "filesAlreadyLoaded": result.files_already_loaded,
        "rowsOffered": dict(Counter(result.offered)), "rowsInserted": dict(result.inserted),
        "databaseConnects": database.connects, "batchItemFailures": failures[:_IDS_PER_LOG_ENTRY]})


def _key_identity(key: str) -> dict[str, str]:
    """A key as logged: clipped, with the hash of the whole key to find every entry about it."""
    return {"key": clip(key), "keySha256": digest(key)}


def _body_identity(body: object) -> dict[str, object]:
    """A rejected body as logged: its length and hash, never its text (a producer's data, up to 256 KiB)."""
    text = body if isinstance(body, str) else repr(body)
    return {"bodyLength": len(text), "bodySha256": digest(text)}
