"""Completion handler: ``batch_inference.completion.handler``, fed by the completion queue.

Messages are Bedrock's ``Batch Inference Job State Change`` events (delivered by the rule on the default bus) or
the reconciler's ``{"source": "reconciler", "jobArn": ...}`` for a job whose event was missed. Either way the
job is read back with ``GetModelInvocationJob`` (the authority on its name, status and output location), so both
paths run the same code and a duplicate event changes nothing:

* not this pipeline's job, or not finished: acknowledged and skipped;
* shard already settled (a replayed or duplicated event): the waiting child is resumed from the jobs table,
  nothing is written;
* Completed / PartiallyCompleted: the shard's ids, the output JSONL and ``manifest.json.out`` are joined on
  recordId (`joining`); the ledger claims each record; this shard's successes go to ``<RESULTS_PREFIX><runId>/
  <shard>.jsonl``, its error and missing lines to the failure lane; the shard's counts, with the job's input and
  output tokens from ``manifest.json.out`` (``inputTokenCount``, ``outputTokenCount``), are stored and the child
  resumed with them;
* Failed / Stopped / Expired: every record of the shard goes to the failure lane (ledger-gated) and the child is
  resumed with the ``BedrockJobFailed`` error, which the Map counts against its tolerated failures.

Two deliveries of one completion (at-least-once SQS, or a slow invocation whose message became visible again) do
not settle a shard side by side: settling takes a lease on the shard's jobs-table item, and the copy that finds it
taken fails alone (`ShardBusyError`) and is retried, to find the shard settled.

Both are parsed with Powertools' parser (Bedrock's event as its ``EventBridgeModel``, the body as ``Json``); the
SQS envelope is not used: one message must fail alone, logged by its size and digest, which the batch processor's
``model`` option would swallow.

A message that is not such an event fails alone (partial batch response), is retried and then dead-lettered.
"""

from __future__ import annotations

import json
from typing import Any, Literal
from urllib.parse import urlparse

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.parser import ValidationError, parse
from aws_lambda_powertools.utilities.parser.models import EventBridgeModel
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, Json

from batch_inference import clients, jobs, usage
from batch_inference.config import CompletionSettings
from batch_inference.exceptions import InvalidTaskInputError, ShardBusyError
from batch_inference.joining import Failure, join_output, jsonl_lines, result_line, shard_record_ids
from batch_inference.lane import LaneRecord
from batch_inference.ledger import Ledger
from batch_inference.messages import each_message
from batch_inference.records import output_text
from batch_inference.resume import resume
from batch_inference.settle import settle_unit
from common.redact import clip, digest

logger = Logger()
metrics = Metrics()
settings = CompletionSettings.from_env()

_CHUNK_BYTES = 1 << 20
_JOB_ARN = r"arn:aws[a-z-]*:bedrock:[a-z0-9-]+:\d{12}:model-invocation-job/[a-z0-9]{12}"


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    return each_message(event, context, _record)


def _record(record: SQSRecord) -> None:
    job_arn = job_arn_of(record.raw_event.get("body"))
    logger.append_keys(jobArn=job_arn, messageId=record.message_id)
    try:
        finish_job(job_arn)
    finally:
        logger.remove_keys(["jobArn", "messageId"])


class _JobDetail(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    batchJobArn: str = Field(pattern=f"^{_JOB_ARN}$")


class _JobStateChange(EventBridgeModel):
    """Bedrock's ``Batch Inference Job State Change`` event, as the rule on the default bus delivers it."""

    detail: _JobDetail


class _Requeued(BaseModel):
    """The reconciler's copy for a finished job whose event was missed."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    source: Literal["reconciler"]
    jobArn: str = Field(pattern=f"^{_JOB_ARN}$")


class _CompletionBody(BaseModel):
    """An SQS message body on the completion queue: one of the two messages, as JSON text."""

    body: Json[_JobStateChange | _Requeued]


def job_arn_of(body: Any) -> str:
    """The job ARN a completion message names; raises `InvalidTaskInputError` for anything else."""
    try:
        message = parse(event={"body": body}, model=_CompletionBody).body
    except ValidationError:
        pass
    else:
        return message.detail.batchJobArn if isinstance(message, _JobStateChange) else message.jobArn
    try:  # read again only to say what arrived, by shape, never by value
        raw = json.loads(body) if isinstance(body, str) else None
    except ValueError:
        raw = None
    text = str(body)
    if not isinstance(raw, dict):  # producer content: logged by size and digest (matches the message in the DLQ)
        logger.error("Completion message is not a JSON object",
                     extra={"bodyChars": len(text), "bodyDigest": digest(text, 16)})
        raise InvalidTaskInputError("completion message is not a JSON object")
    logger.error("Completion message names no batch job", extra={
        "source": clip(str(raw.get("source")), 80), "detailType": clip(str(raw.get("detail-type")), 80),
        "keys": [clip(key, 40) for key in sorted(raw)[:20]], "bodyChars": len(text), "bodyDigest": digest(text, 16)})
    raise InvalidTaskInputError("completion message names no model-invocation-job ARN")


def finish_job(job_arn: str) -> str:
    """Settle the shard of `job_arn` once; returns what was done (for logs and tests)."""
    job = clients.bedrock().get_model_invocation_job(jobIdentifier=job_arn)
    name, status = str(job["jobName"]), str(job["status"])
    if not name.startswith(f"{settings.job_name_prefix}-"):
        logger.info("Not this pipeline's job; skipped", extra={"jobName": name})
        return "foreign"
    if status not in jobs.TERMINAL_JOB_STATUSES:
        logger.info("Job not finished; skipped", extra={"jobName": name, "status": status})
        return "running"
    table = jobs.JobsTable(clients.dynamodb(), settings.jobs_table, settings.records.ledger_ttl_seconds)
    record = table.get(name)
    if record is None:
        logger.warning("No jobs-table item for this job (expired or never submitted here); skipped",
                       extra={"jobName": name})
        return "unknown"
    if record.status in jobs.SETTLED:
        return _replay(record, job)
    try:
        with table.settling(name) as lease:  # read again under the lease: the finalizer may have settled it
            if lease.record is not None and lease.record.status in jobs.SETTLED:
                return _replay(lease.record, job)
            return _settle(job, job_arn, record, lease)
    except ShardBusyError:
        metrics.add_metric(name="CompletionsBusy", unit=MetricUnit.Count, value=1)
        raise


def _replay(record: jobs.JobRecord, job: dict[str, Any]) -> str:
    logger.info("Shard already settled; resuming its child only", extra={"jobName": record.job_key})
    resume(clients.stepfunctions(), record, cause=str(job.get("message", "")))
    metrics.add_metric(name="CompletionsReplayed", unit=MetricUnit.Count, value=1)
    return "replayed"


def _settle(job: dict[str, Any], job_arn: str, record: jobs.JobRecord, lease: jobs.ShardLease) -> str:
    name, status = str(job["jobName"]), str(job["status"])
    storage = settings.storage
    order = shard_record_ids(_lines(storage.input_bucket, record.shard_key))
    run_id, owner = record.run_id, f"{record.run_id}/{record.shard_id}"
    if status in jobs.SUCCESS_JOB_STATUSES:
        output_bucket, output_prefix = _split_uri(job["outputDataConfig"]["s3OutputDataConfig"]["s3Uri"])
        folder = f"{output_prefix}{jobs.job_id_of(job_arn)}/"
        shard_file = record.shard_key.rsplit("/", 1)[-1]
        manifest = _manifest(output_bucket, f"{folder}manifest.json.out")
        joined = join_output(order, _lines(output_bucket, f"{folder}{shard_file}.out"), manifest)
        # What the job is billed for: its manifest's token counts, else its answers' usage.
        tokens = usage.of_manifest(manifest) or usage.total(joined.succeeded.values())
        if joined.manifest_mismatches or joined.unexpected or joined.unreadable:
            # Every record is still settled on recordId (a missing one goes to the failure lane); the metric's
            # alarm tells someone that Bedrock's output and the shard disagree.
            metrics.add_metric(name="OutputMismatches", unit=MetricUnit.Count, value=1)
            logger.warning("Output disagrees with the shard or its manifest", extra={
                "mismatches": joined.manifest_mismatches, "unexpected": joined.unexpected,
                "unreadable": joined.unreadable})
        succeeded, failed = joined.succeeded, joined.failed
    else:
        succeeded, failed = {}, {r: Failure("job_failed", f"{status}: {job.get('message', '')}"[:500])
                                 for r in order}
        tokens = usage.Tokens()
    failures = {r: LaneRecord(run_id, "job" if f.reason == "job_failed" else "model", f.reason, f.detail,
                              dedupe_key=r, record_id=r, bucket=storage.input_bucket, key=record.shard_key)
                for r, f in failed.items()}
    ledger = Ledger(clients.dynamodb(), settings.records.ledger_table, settings.records.ledger_ttl_seconds, run_id)
    settlement = settle_unit(ledger, clients.sqs(), settings.records.failure_lane_url, owner=owner, order=order,
                             succeeded=succeeded, failures=failures,
                             source={"bucket": storage.input_bucket, "key": record.shard_key})
    if settlement.succeeded:
        body = b"".join(result_line(r, succeeded[r], output_text(succeeded[r]) if isinstance(succeeded[r], dict)
                                    else None) for r in settlement.succeeded)
        clients.s3().put_object(Bucket=storage.output_bucket, ContentType="application/jsonl", Body=body,
                                Key=f"{storage.results_prefix}{run_id}/shard-{record.shard_id}.jsonl")
    counts = {**settlement.counts.as_dict(), **tokens.as_counts()}
    shard_status = jobs.PROCESSED if status in jobs.SUCCESS_JOB_STATUSES else jobs.FAILED
    lease.settle(shard_status, counts, job_arn)
    for metric in ("succeeded", "failed", "duplicates"):
        metrics.add_metric(name=f"Records{metric.capitalize()}", unit=MetricUnit.Count, value=counts[metric])
    logger.info("Shard settled", extra={"jobName": name, "jobStatus": status, "counts": counts})
    settled = jobs.JobRecord(name, run_id, record.shard_id, record.shard_key, record.records, shard_status,
                             record.task_token, job_arn, counts)
    resume(clients.stepfunctions(), settled, cause=f"{status}: {job.get('message', '')}")
    return shard_status.lower()


def _lines(bucket: str, key: str) -> list[bytes]:
    try:
        body = clients.s3().get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as error:
        if error.response["Error"]["Code"] in ("NoSuchKey", "404"):
            logger.warning("Object missing; treated as empty", extra={"bucket": bucket, "key": key})
            return []
        raise
    return list(jsonl_lines(body.iter_chunks(_CHUNK_BYTES)))


def _manifest(bucket: str, key: str) -> dict[str, Any] | None:
    lines = _lines(bucket, key)
    if not lines:
        return None
    try:
        manifest = json.loads(b"\n".join(lines))
    except ValueError:
        logger.warning("manifest.json.out is not JSON", extra={"key": key})
        return None
    return manifest if isinstance(manifest, dict) else None


def _split_uri(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    prefix = parsed.path.lstrip("/")
    return parsed.netloc, prefix if not prefix or prefix.endswith("/") else prefix + "/"
