"""Start an ingestion job; the only module that calls Bedrock.

IAM: ``bedrock:StartIngestionJob`` on ``arn:<partition>:bedrock:<region>:<account>:knowledge-base/<id>``.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from kb_sync.config import Settings
from kb_sync.exceptions import IngestionStartError
from kb_sync.planning import SyncPlan
from kb_sync.sync import JobConflict, JobStarted

# What each StartIngestionJob error means for whoever reads the alarm.
_CAUSES = {
    "ThrottlingException": "Bedrock throttled the request",
    "AccessDeniedException": "access denied; the role needs bedrock:StartIngestionJob on this knowledge base",
    "ResourceNotFoundException": "the knowledge base or its data source does not exist",
    "ValidationException": "Bedrock rejected the request as invalid",
    "ServiceQuotaExceededException": "an ingestion-job quota is exhausted",
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
        cause = _CAUSES.get(code, "Bedrock returned an unexpected error")
        raise _failure(settings, code, f"{cause} ({code}: {details.get('Message', '')})") from error
    except BotoCoreError as error:
        raise _failure(settings, type(error).__name__, f"the request did not complete ({error})") from error
    job = response["ingestionJob"]
    return JobStarted(ingestion_job_id=job["ingestionJobId"], status=job["status"])


def _failure(settings: Settings, code: str, cause: str) -> IngestionStartError:
    return IngestionStartError(
        f"could not start an ingestion job for knowledge base {settings.knowledge_base_id} "
        f"(data source {settings.data_source_id}): {cause}",
        knowledge_base_id=settings.knowledge_base_id,
        code=code,
    )
