"""The function's configuration, read from the environment once per cold start.

| variable                  | required | default | meaning                                                       |
|---------------------------|----------|---------|---------------------------------------------------------------|
| `KNOWLEDGE_BASE_ID`       | yes      |         | the knowledge base to keep in sync (10 letters or digits)     |
| `DATA_SOURCE_ID`          | yes      |         | its S3 data source (10 letters or digits)                     |
| `DOCUMENT_BUCKET`         | yes      |         | the data-source bucket; notifications of others are rejected  |
| `DOCUMENT_PREFIX`         | yes      |         | key prefix of the documents; keys outside it are rejected     |
| `FOLLOW_UP_QUEUE_URL`     | yes      |         | the pipeline's own source queue, where follow-ups are sent   |
| `FOLLOW_UP_DELAY_SECONDS` | no       | 300     | how long a follow-up stays invisible (SQS allows 0-900)      |
| `MAX_FOLLOW_UPS`          | no       | 6       | follow-ups in a row before the handler gives up loudly (0-100) |
| `SYNC_MODE`               | no       | auto    | `jobs`, `direct` or `auto` (see `routing`)                    |
| `BURST_THRESHOLD_DOCUMENTS` | no     | 25      | a batch with more changed documents is a burst (1-1000)       |
| `BURST_SETTLE_SECONDS`    | no       | 60      | a burst's job waits this long for the rest of the burst (0-900) |
| `CHECK_DELAY_SECONDS`     | no       | 120     | delay between checks of a job or a direct ingestion (1-900)  |
| `MAX_JOB_CHECKS`          | no       | 720     | checks of one job before it is reported as unfinished (1-10000) |
| `MAX_DOCUMENT_RETRIES`    | no       | 2       | re-submissions of a directly ingested document that failed (0-10) |

Powertools reads its own variables (`POWERTOOLS_SERVICE_NAME`, `POWERTOOLS_METRICS_NAMESPACE`, `LOG_LEVEL`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from common.env import read_int, read_str

# Bedrock's `Id` shape for knowledge bases and data sources.
_BEDROCK_ID = r"[0-9a-zA-Z]{10}"
# Standard (not FIFO) queue URL, in any partition; S3 cannot notify a FIFO queue.
_QUEUE_URL = r"https://[a-z0-9.-]+\.amazonaws\.com(\.cn)?/\d{12}/[A-Za-z0-9_-]{1,80}"
_BUCKET = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
_PREFIX = r"[^/].*/"
# SQS caps DelaySeconds at 15 minutes.
_MAX_SQS_DELAY_SECONDS = 900
SYNC_MODES = ("jobs", "direct", "auto")


@dataclass(frozen=True)
class Settings:
    knowledge_base_id: str
    data_source_id: str
    follow_up_queue_url: str
    document_bucket: str
    document_prefix: str
    follow_up_delay_seconds: int = 300
    max_follow_ups: int = 6
    sync_mode: str = "auto"
    burst_threshold_documents: int = 25
    burst_settle_seconds: int = 60
    check_delay_seconds: int = 120
    max_job_checks: int = 720
    max_document_retries: int = 2

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Validate the environment; raises ``common.ConfigurationError`` naming the first bad variable."""
        env = os.environ if env is None else env
        return cls(
            knowledge_base_id=read_str(env, "KNOWLEDGE_BASE_ID", pattern=_BEDROCK_ID, meaning="a knowledge base id"),
            data_source_id=read_str(env, "DATA_SOURCE_ID", pattern=_BEDROCK_ID, meaning="a data source id"),
            follow_up_queue_url=read_str(
                env, "FOLLOW_UP_QUEUE_URL", pattern=_QUEUE_URL, meaning="the URL of the pipeline's standard SQS queue"
            ),
            document_bucket=read_str(env, "DOCUMENT_BUCKET", pattern=_BUCKET, meaning="an S3 bucket name"),
            document_prefix=read_str(env, "DOCUMENT_PREFIX", pattern=_PREFIX, meaning="a key prefix ending in '/'"),
            follow_up_delay_seconds=read_int(
                env, "FOLLOW_UP_DELAY_SECONDS", default=300, minimum=0, maximum=_MAX_SQS_DELAY_SECONDS
            ),
            max_follow_ups=read_int(env, "MAX_FOLLOW_UPS", default=6, minimum=0, maximum=100),
            sync_mode=_read_mode(env),
            burst_threshold_documents=read_int(env, "BURST_THRESHOLD_DOCUMENTS", default=25, minimum=1, maximum=1000),
            burst_settle_seconds=read_int(
                env, "BURST_SETTLE_SECONDS", default=60, minimum=0, maximum=_MAX_SQS_DELAY_SECONDS
            ),
            check_delay_seconds=read_int(
                env, "CHECK_DELAY_SECONDS", default=120, minimum=1, maximum=_MAX_SQS_DELAY_SECONDS
            ),
            max_job_checks=read_int(env, "MAX_JOB_CHECKS", default=720, minimum=1, maximum=10000),
            max_document_retries=read_int(env, "MAX_DOCUMENT_RETRIES", default=2, minimum=0, maximum=10),
        )


def _read_mode(env: Mapping[str, str]) -> str:
    if not env.get("SYNC_MODE", "").strip():
        return "auto"
    return read_str(env, "SYNC_MODE", pattern="|".join(SYNC_MODES), meaning=f"one of {', '.join(SYNC_MODES)}")
