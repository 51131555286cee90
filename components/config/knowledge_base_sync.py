"""Config of the knowledge-base auto-sync pipeline."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from components import defaults
from components.config.sections import BucketSettings, QueueSettings, Section, WorkerSettings
from components.s3_filters import S3Filter

_KB_ID_PATTERN = r"^[0-9a-zA-Z]{10}$"  # Bedrock knowledge base and data source ids
_SCHEDULE_PATTERN = r"^(rate\(\s*\d+\s+(minute|minutes|hour|hours|day|days)\s*\)|cron\(.+\)|at\(.+\))$"


class KnowledgeBaseSyncSettings(Section):
    """Knowledge-base auto-sync: S3 changes -> SQS -> Lambda -> Bedrock StartIngestionJob."""

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
    queue: QueueSettings = Field(default_factory=lambda: QueueSettings(delay_seconds=300),
                                 description="Source queue; the delay turns a burst of uploads into one batch.")
    worker: WorkerSettings = Field(
        default_factory=lambda: WorkerSettings(timeout_seconds=60, memory_mb=256, reserved_concurrency=2,
                                               batch_size=1000, batching_window_seconds=300, max_concurrency=2),
        description="The worker that starts ingestion jobs; large batches so a burst starts one job.")
    follow_up_delay_seconds: int = Field(300, ge=0, le=defaults.MAX_DELAY_SECONDS,
                                         description="Delay of the re-sync requested when a job is already running.")
    max_follow_ups: int = Field(6, ge=1, le=50,
                                description="Follow-ups in a row before a still-running job is treated as stuck.")

    @property
    def s3_filters(self) -> list[S3Filter]:
        """What the pipeline asks S3 to notify: documents created or removed under the prefix."""
        return [S3Filter("knowledgeBaseSync", ("s3:ObjectCreated:*", "s3:ObjectRemoved:*"), self.document_prefix)]
