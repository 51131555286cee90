"""The well-architected defaults, in one place.

Every block reads its defaults from here, the way AWS Solutions Constructs keeps `*-defaults.ts` apart from
helpers and patterns. Config may make a default safer; it cannot switch a protection off.
"""

from __future__ import annotations

from typing import Final

# --- SQS ---------------------------------------------------------------------------------------------
SQS_MANAGED_ENCRYPTION: Final = True
SQS_DEFAULT_RETENTION_SECONDS: Final = 4 * 24 * 3600  # AWS's own default, stated explicitly
SQS_MAX_RETENTION_SECONDS: Final = 14 * 24 * 3600
# A DLQ keeps messages for the maximum so a dead-lettered message outlives its source's retention window.
DLQ_RETENTION_SECONDS: Final = SQS_MAX_RETENTION_SECONDS
# Lambda consumers: AWS recommends maxReceiveCount of at least 5 so throttled retries don't dead-letter.
MAX_RECEIVE_COUNT: Final = 5
LONG_POLL_SECONDS: Final = 20
MAX_DELAY_SECONDS: Final = 900
# AWS guidance for Lambda event sources: visibility >= 6 x function timeout + maximum batching window.
VISIBILITY_TIMEOUT_RATIO: Final = 6
QUEUE_AGE_ALARM_SECONDS: Final = 15 * 60

# --- S3 ----------------------------------------------------------------------------------------------
# Every bucket the stack creates is versioned; its lifecycle bounds what that keeps. Upload parts that never
# completed are billed and invisible: a day is long enough for any upload the pipelines make.
S3_ABORT_INCOMPLETE_UPLOAD_DAYS: Final = 1
# How long an overwritten or deleted object stays recoverable as a noncurrent version.
S3_NONCURRENT_VERSION_DAYS: Final = 30
# The longest config may keep noncurrent versions (the policy pack's `maxNoncurrentVersionDays`).
S3_MAX_NONCURRENT_VERSION_DAYS: Final = 365
# How long server access logs are kept: a year, long enough to answer "who read this?" for a yearly audit.
S3_ACCESS_LOG_RETENTION_DAYS: Final = 365
# Retention in days, or this word for objects kept until someone deletes them.
FOREVER: Final = "forever"
# The longest retention config may give in days (longer is "forever").
MAX_RETENTION_DAYS: Final = 36_500

# --- Lambda ------------------------------------------------------------------------------------------
LAMBDA_RUNTIME: Final = "python3.13"
LAMBDA_PYTHON_VERSION: Final = "3.13"
LAMBDA_ARCHITECTURE: Final = "arm64"
LAMBDA_TRACING_MODE: Final = "Active"
LAMBDA_LOG_FORMAT: Final = "JSON"
LOG_RETENTION_DAYS: Final = 30
# The values CloudWatch Logs accepts for retentionInDays.
LOG_RETENTION_CHOICES: Final = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                                2192, 2557, 2922, 3288, 3653)
SQS_BATCH_SIZE_MAX: Final = 10_000  # standard queues
SQS_BATCH_SIZE_WITHOUT_WINDOW_MAX: Final = 10  # above this the event source needs a batching window >= 1 s
MAX_BATCHING_WINDOW_SECONDS: Final = 300
ESM_MAX_CONCURRENCY_RANGE: Final = (2, 1000)
# The event source mapping metrics every mapping publishes (the only group SQS mappings offer).
ESM_METRICS: Final = ("EventCount",)

# --- Alarms ------------------------------------------------------------------------------------------
ALARM_PERIOD_SECONDS: Final = 60
ALARM_EVALUATION_PERIODS: Final = 1
# A dead-lettered message is always somebody's problem: alarm on the first one.
DLQ_ALARM_THRESHOLD: Final = 0
# Error-rate alarms judge five minutes of invocations at a time, only from this many invocations up: below it one
# failure is a large share of very little (components.config.sections.ErrorAlarmSettings).
ERROR_RATE_PERIOD_SECONDS: Final = 300
ERROR_RATE_MIN_INVOCATIONS: Final = 20
ERROR_RATE_PERCENT: Final = 5.0
# A backlog alarm fires when the queue stays above its threshold for this many alarm periods (five minutes): a burst
# the worker drains within them is what the queue is for.
BACKLOG_ALARM_EVALUATION_PERIODS: Final = 5

# --- EventBridge / Scheduler -------------------------------------------------------------------------
TARGET_MAX_RETRY_ATTEMPTS: Final = 185
TARGET_MAX_EVENT_AGE_SECONDS: Final = 24 * 3600

# --- Tags --------------------------------------------------------------------------------------------
TAG_KEYS: Final = ("project", "stack", "pipeline", "owner")
