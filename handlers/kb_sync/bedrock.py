"""Ingestion jobs: start one, read one, find the one running. Direct ingestion is ``direct``'s.

IAM: ``bedrock:StartIngestionJob``, ``bedrock:GetIngestionJob`` and ``bedrock:ListIngestionJobs`` on
``arn:<partition>:bedrock:<region>:<account>:knowledge-base/<id>``.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from kb_sync.config import Settings
from kb_sync.exceptions import IngestionStartError, JobCheckError
from kb_sync.messages import FollowUpReason
from kb_sync.planning import SyncPlan
from kb_sync.sync import JobConflict, JobStarted, RunningJob

# What each StartIngestionJob error means for whoever reads the alarm.
_CAUSES = {
    "ThrottlingException": "Bedrock throttled the request",
    "AccessDeniedException": "access denied; the role needs bedrock:StartIngestionJob on this knowledge base",
    "ResourceNotFoundException": "the knowledge base or its data source does not exist",
    "ValidationException": "Bedrock rejected the request as invalid",
    "InternalServerException": "Bedrock failed internally",
}


def start_ingestion_job(client: Any, settings: Settings, plan: SyncPlan) -> JobStarted | JobConflict:
    """Start the planned job. A job already running is an answer, not an error; anything else raises."""
    try:
        response = client.start_ingestion_job(
            knowledgeBaseId=settings.knowledge_base_id,
            dataSourceId=settings.data_source_id,
            clientToken=plan.client_token,
            description=plan.description,
        )
    except ClientError as error:
        details = error.response.get("Error", {})
        code = str(details.get("Code", "Unknown"))
        if code == "ConflictException":
            return JobConflict(message=str(details.get("Message", "")))
        if code == "ServiceQuotaExceededException":
            # The account runs at most five ingestion jobs at once (one per data source), whoever started them:
            # waited out like a conflict, never a failure.
            return JobConflict(message=str(details.get("Message", "")), reason=FollowUpReason.QUOTA)
        cause = _CAUSES.get(code, "Bedrock returned an unexpected error")
        raise _failure(settings, code, f"{cause} ({code}: {details.get('Message', '')})") from error
    except BotoCoreError as error:
        raise _failure(settings, type(error).__name__, f"the request did not complete ({error})") from error
    job = response["ingestionJob"]
    return JobStarted(ingestion_job_id=job["ingestionJobId"], status=job["status"])


def get_ingestion_job(client: Any, settings: Settings, ingestion_job_id: str) -> dict[str, Any]:
    """``GetIngestionJob``'s ``ingestionJob``; an error raises, so the check is retried by SQS."""
    try:
        response = client.get_ingestion_job(knowledgeBaseId=settings.knowledge_base_id,
                                            dataSourceId=settings.data_source_id, ingestionJobId=ingestion_job_id)
    except (ClientError, BotoCoreError) as error:
        raise JobCheckError(f"could not read ingestion job {ingestion_job_id} of knowledge base "
                            f"{settings.knowledge_base_id}: {error}") from error
    return dict(response["ingestionJob"])


def find_running_job(client: Any, settings: Settings) -> RunningJob | None:
    """The newest job starting or running on the data source (``ListIngestionJobs``), or None."""
    try:
        response = client.list_ingestion_jobs(
            knowledgeBaseId=settings.knowledge_base_id, dataSourceId=settings.data_source_id,
            filters=[{"attribute": "STATUS", "operator": "EQ", "values": ["STARTING", "IN_PROGRESS"]}],
            sortBy={"attribute": "STARTED_AT", "order": "DESCENDING"}, maxResults=1)
    except (ClientError, BotoCoreError) as error:
        raise IngestionStartError(
            f"knowledge base {settings.knowledge_base_id} is busy and its running job could not be listed: {error}",
            knowledge_base_id=settings.knowledge_base_id, code=type(error).__name__) from error
    summaries = response.get("ingestionJobSummaries") or []
    if not summaries:
        return None
    job = summaries[0]
    return RunningJob(ingestion_job_id=job["ingestionJobId"], started_at=int(job["startedAt"].timestamp() * 1000))


def _failure(settings: Settings, code: str, cause: str) -> IngestionStartError:
    return IngestionStartError(
        f"could not start an ingestion job for knowledge base {settings.knowledge_base_id} "
        f"(data source {settings.data_source_id}): {cause}",
        knowledge_base_id=settings.knowledge_base_id,
        code=code,
    )
