"""Config of the knowledge-base auto-sync pipeline."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from components import defaults
from components.config.sections import BucketSettings, QueueSettings, Section, WorkerSettings
from components.s3_filters import S3Filter

_KB_ID_PATTERN = r"^[0-9a-zA-Z]{10}$"  # Bedrock knowledge base and data source ids
_SCHEDULE_PATTERN = r"^(rate\(\s*\d+\s+(minute|minutes|hour|hours|day|days)\s*\)|cron\(.+\)|at\(.+\))$"


# Documents the Bedrock User Guide lets one IngestKnowledgeBaseDocuments call take ("Ingest documents directly into
# a knowledge base": up to 25 through the API). The service model in botocore caps a request's list at 10, so the
# handler sends a small change set in requests of 10.
DIRECT_INGESTION_DOCUMENTS = 25
# Lambda's event source mapping batches for this long at most: with no queue delay, a change is requested within
# the window plus an invocation, far inside a minute.
FRESH_BATCHING_WINDOW_SECONDS = 20


class KnowledgeBaseSyncSettings(Section):
    """Knowledge-base auto-sync: S3 changes -> SQS -> Lambda -> Bedrock direct ingestion or StartIngestionJob."""

    enabled: bool = Field(True, description="Build this pipeline in the stack.")
    knowledge_base_id: str = Field(pattern=_KB_ID_PATTERN, description="Bedrock knowledge base id (10 characters).")
    data_source_id: str = Field(pattern=_KB_ID_PATTERN, description="Data source id within the knowledge base.")
    bucket: BucketSettings = Field(default_factory=BucketSettings, description="The data-source bucket.")
    document_prefix: str = Field("documents/", pattern=r"^[^/].*/$",
                                 description="Key prefix of the documents; changes under it trigger a sync.")
    trigger: Literal["events", "schedule", "both"] = Field(
        "events", description="What starts a sync: S3 change events, a schedule, or both.")
    schedule_expression: str = Field("rate(1 hour)", pattern=_SCHEDULE_PATTERN,
                                     description="EventBridge Scheduler expression for schedule mode.")
    mode: Literal["jobs", "direct", "auto"] = Field(
        "auto", description="How changes reach the knowledge base. `auto`: a batch of at most "
        "`burstThresholdDocuments` changed documents is ingested and deleted directly "
        "(IngestKnowledgeBaseDocuments/DeleteKnowledgeBaseDocuments), searchable without waiting behind the data "
        "source's one running ingestion job; a larger batch is a burst, synced by one StartIngestionJob. `jobs`: "
        "every change through StartIngestionJob. `direct`: every change directly, whatever its size. Schedule "
        "ticks, follow-ups and documents that failed direct ingestion always start a job.")
    burst_threshold_documents: int = Field(
        DIRECT_INGESTION_DOCUMENTS, ge=1, le=1000,
        description=f"Changed documents in one batch above which the batch is a burst (one job, not direct "
        f"ingestion). The default, {DIRECT_INGESTION_DOCUMENTS}, is what the Bedrock User Guide gives one direct-"
        "ingestion call: up to it a change set costs a few small requests (of 10, the service model's limit); "
        "beyond it, one incremental job is fewer calls, cheaper and one thing to watch.")
    burst_settle_seconds: int = Field(
        60, ge=0, le=defaults.MAX_DELAY_SECONDS,
        description="How long a burst's job waits (a delayed follow-up) for the rest of the burst, so a burst "
        "split over several batches starts one job; 0 starts it at once.")
    check_delay_seconds: int = Field(
        120, ge=1, le=defaults.MAX_DELAY_SECONDS,
        description="Delay between the checks (messages on the pipeline's own queue) that follow each started "
        "job and each direct ingestion to its end.")
    max_job_checks: int = Field(
        720, ge=1, le=10_000,
        description="Checks of one job (or of pending documents) before it is reported as unfinished and "
        "alarmed (720 x 120 s: a day).")
    max_document_retries: int = Field(
        2, ge=0, le=10,
        description="Re-submissions of a directly ingested document that failed, before it takes the failure "
        "lane (alarm, and an ingestion job that syncs it).")
    batch_results: bool = Field(
        False, description="Subscribe to this stack's batch-inference result bus: a BatchRunCompleted with status "
        "SUCCEEDED whose results lie in this pipeline's bucket under documentPrefix starts one sync, through the "
        "pipeline's queue (bursts, conflicts and quotas handled as for uploads). Needs batchInference enabled, with "
        "its output in this bucket under this prefix.")
    queue: QueueSettings = Field(default_factory=QueueSettings,
                                 description="Source queue; no delay, so a small change is requested at once.")
    worker: WorkerSettings = Field(
        default_factory=lambda: WorkerSettings(timeout_seconds=60, memory_mb=256, reserved_concurrency=2,
                                               batch_size=1000,
                                               batching_window_seconds=FRESH_BATCHING_WINDOW_SECONDS,
                                               max_concurrency=2),
        description="The worker; batches of up to 1,000 changes collected for at most 20 s, so a small change is "
                    "requested within a minute and a burst arrives in a few large batches.")
    follow_up_delay_seconds: int = Field(300, ge=0, le=defaults.MAX_DELAY_SECONDS,
                                         description="Delay of the re-sync requested when a job is already running.")
    max_follow_ups: int = Field(6, ge=1, le=50,
                                description="Follow-ups in a row before a still-running job is treated as stuck.")

    @property
    def s3_filters(self) -> list[S3Filter]:
        """What the pipeline asks S3 to notify: documents created or removed under the prefix."""
        return [S3Filter("knowledgeBaseSync", ("s3:ObjectCreated:*", "s3:ObjectRemoved:*"), self.document_prefix)]
