"""Job submitter: ``batch_inference.submitter.handler``, the Task each mode A Map child waits on
(``lambda:invoke.waitForTaskToken``).

Input ``{"runId", "shard": {"shardId", "bucket", "key", "records"}, "taskToken"}``. Stores the task token in the
jobs table first (so a completion that outruns this function still finds it), then calls
``CreateModelInvocationJob`` (``modelInvocationType`` Converse, or InvokeModel for native request bodies) with a
job name and ``clientRequestToken`` derived from the run id and shard id only:
a retried or replayed child submits the same job, and Bedrock starts no second one. A shard already settled
(replay of a finished run) is resumed at once from the jobs table, without a job.

Bedrock's refusal for good (validation, access) raises `SubmissionRejectedError`, which fails the shard; throttling
and transient errors raise `ThrottlingException`, which the Task's Retry backs off on; a full concurrent-jobs quota
(ServiceQuotaExceededException: other runs' jobs hold the slots) raises `JobQuotaFullError`, which the Task waits
out for as long as a job may take, unless the run has a deadline that a job started now (expected to take
DEADLINE_JOB_HOURS) would miss: then the shard is marked switched in the jobs table (only while it has no job) and
`DeadlineFallbackError` sends the child to run the shard's records as synchronous calls; a shard once switched is
never submitted again (a retried or redriven child raises the error at once).
"""

from __future__ import annotations

from typing import Any

import botocore
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from batch_inference import clients, deadline, jobs
from batch_inference.config import SubmitterSettings
from batch_inference.exceptions import (
    DeadlineFallbackError,
    JobQuotaFullError,
    SubmissionRejectedError,
    ThrottlingException,
)
from batch_inference.records import INVOCATION_TYPES
from batch_inference.resume import resume
from batch_inference.tasks import SubmitRequest, task_input
from common.retry import RETRYABLE_CODES

logger = Logger()
metrics = Metrics()
settings = SubmitterSettings.from_env()

QUOTA_FULL = "ServiceQuotaExceededException"
_RETRYABLE = RETRYABLE_CODES["bedrock"]  # QUOTA_FULL is not among them: it waits in the state machine


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    request = task_input(event, SubmitRequest, "submitter input is not {runId, shard, taskToken}")
    shard = request.shard
    name = jobs.job_name(settings.job_name_prefix, request.runId, shard.shardId)
    logger.append_keys(runId=request.runId, shardId=shard.shardId, jobName=name)
    table = jobs.JobsTable(clients.dynamodb(), settings.jobs_table, settings.ttl_seconds)
    record = table.remember_token(name, run_id=request.runId, shard_id=shard.shardId, shard_key=shard.key,
                                  records=shard.records, task_token=request.taskToken)
    if record.status in jobs.SETTLED:
        logger.info("Shard already settled; resuming its child without a job", extra={"status": record.status})
        resume(clients.stepfunctions(), record)
        return {"jobName": name, "replayed": True}
    if record.switched:  # once switched, the shard stays with synchronous calls (a retried or redriven child)
        raise DeadlineFallbackError(f"shard {shard.shardId} was switched to synchronous calls to meet the deadline")
    try:
        job_arn = submit(name, request.runId, shard.shardId, f"s3://{shard.bucket}/{shard.key}")
    except JobQuotaFullError:
        if deadline.would_miss(request.deadline, settings.deadline_job_hours) and table.switch_to_sync(name):
            metrics.add_metric(name="ShardsSwitchedToSync", unit=MetricUnit.Count, value=1)
            logger.warning("Queued behind the quota past the deadline; the shard switches to synchronous calls",
                           extra={"deadline": request.deadline, "jobHours": settings.deadline_job_hours})
            raise DeadlineFallbackError(
                f"shard {shard.shardId} cannot start a job that ends before the deadline {request.deadline}; "
                "its records run as synchronous calls") from None
        raise
    table.mark_submitted(name, job_arn)
    metrics.add_metric(name="JobsSubmitted", unit=MetricUnit.Count, value=1)
    logger.info("Batch job submitted", extra={"jobArn": job_arn, "records": shard.records})
    return {"jobName": name, "jobArn": job_arn, "replayed": False}


def job_request(name: str, run_id: str, shard_id: str, input_uri: str) -> dict[str, Any]:
    """CreateModelInvocationJob's arguments for a shard: tagged with the owner tag, the run id and the stack's tags;
    output encrypted with the configured key and the job placed in the configured VPC, when they are."""
    output: dict[str, Any] = {
        "s3Uri": f"s3://{settings.output_bucket}/{settings.bedrock_output_prefix}{run_id}/{shard_id}/"}
    if settings.output_kms_key:
        output["s3EncryptionKeyId"] = settings.output_kms_key
    request: dict[str, Any] = {
        "jobName": name, "roleArn": settings.batch_role_arn, "modelId": settings.model_id,
        "clientRequestToken": jobs.client_request_token(run_id, shard_id),
        "inputDataConfig": {"s3InputDataConfig": {"s3Uri": input_uri, "s3InputFormat": "JSONL"}},
        "outputDataConfig": {"s3OutputDataConfig": output}, "timeoutDurationInHours": settings.job_timeout_hours,
        "tags": jobs.job_tags(settings.job_name_prefix, run_id, settings.job_tags),
        "modelInvocationType": INVOCATION_TYPES[settings.request_format]}
    if settings.vpc:
        request["vpcConfig"] = {"subnetIds": settings.vpc["subnetIds"],
                                "securityGroupIds": settings.vpc["securityGroupIds"]}
    return request


def submit(name: str, run_id: str, shard_id: str, input_uri: str) -> str:
    """CreateModelInvocationJob, idempotent by clientRequestToken; the job's ARN."""
    client = clients.bedrock()
    request = job_request(name, run_id, shard_id, input_uri)
    if not knows_invocation_type(client):
        request = request_for_an_older_sdk(request, name)
    try:
        response = client.create_model_invocation_job(**request)
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code == QUOTA_FULL:  # slots free up as other jobs finish: hours, not seconds
            metrics.add_metric(name="JobQuotaFull", unit=MetricUnit.Count, value=1)
            raise JobQuotaFullError(f"the concurrent batch-jobs quota is full; job {name} waits for a slot") from None
        if code in _RETRYABLE:  # the Task's Retry backs off and submits again, with the same token
            raise ThrottlingException(f"Bedrock answered {code} to job {name}; Step Functions retries") from None
        if code in ("ConflictException", "ValidationException") and "exist" in str(error).lower():
            existing = find_job(name)
            if existing is not None:
                logger.info("A job of this name exists already; waiting on it", extra={"jobArn": existing})
                return existing
        metrics.add_metric(name="JobsRejected", unit=MetricUnit.Count, value=1)
        raise SubmissionRejectedError(f"Bedrock refused job {name}: {code}: {error}") from None
    return str(response["jobArn"])


# The first botocore whose bedrock model has CreateModelInvocationJob's modelInvocationType.
INVOCATION_TYPE_SINCE_BOTOCORE = "1.42.59"


def knows_invocation_type(client: Any) -> bool:
    """Whether the SDK in use knows modelInvocationType: the archives leave boto3 to the Lambda runtime, whose bundled
    botocore AWS updates on its own schedule, so an older one is met with a clear answer rather than botocore's
    "Unknown parameter" for every shard."""
    operation = client.meta.service_model.operation_model("CreateModelInvocationJob")
    return "modelInvocationType" in operation.input_shape.members


def request_for_an_older_sdk(request: dict[str, Any], name: str) -> dict[str, Any]:
    """A job request an SDK without modelInvocationType can send: native bodies are InvokeModel jobs, which is what
    a job without the field is; Converse records cannot run, so the shard is refused naming the version needed (its
    records reach the failure lane, nothing is lost)."""
    if request["modelInvocationType"] != INVOCATION_TYPES["native"]:
        metrics.add_metric(name="JobsRejected", unit=MetricUnit.Count, value=1)
        raise SubmissionRejectedError(
            f"job {name} needs modelInvocationType Converse, which the Lambda runtime's botocore "
            f"{botocore.__version__} does not know (botocore {INVOCATION_TYPE_SINCE_BOTOCORE} or later does): "
            "set batchInference requestFormat native, or wait for the runtime's SDK update")
    return {key: value for key, value in request.items() if key != "modelInvocationType"}


def find_job(name: str) -> str | None:
    pages = clients.bedrock().get_paginator("list_model_invocation_jobs").paginate(nameContains=name)
    for page in pages:
        for summary in page.get("invocationJobSummaries", []):
            if summary["jobName"] == name:
                return str(summary["jobArn"])
    return None
