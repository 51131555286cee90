"""The pieces every pipeline's config is built from: the base of a section, queues, workers, buckets, alarms, and
the Lambda platform; and the error invalid config raises."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Annotated, Literal, TypeAlias

import pulumi
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from components import defaults

_EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
# EventBridge event sources (of events the stack reads or publishes).
EVENT_SOURCE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,255}$"


def _retention(value: object) -> object:
    if value == defaults.FOREVER:
        return value
    days = value if isinstance(value, int) and not isinstance(value, bool) else None
    if isinstance(value, str) and value.strip().isdigit():
        days = int(value)
    if days is None or not 1 <= days <= defaults.MAX_RETENTION_DAYS:
        raise ValueError(f'must be a number of days from 1 to {defaults.MAX_RETENTION_DAYS}, or "{defaults.FOREVER}"')
    return days


# A retention: whole days (1..36,500), or "forever" for objects kept until someone deletes them.
RetentionDays: TypeAlias = Annotated[int | Literal["forever"], BeforeValidator(_retention)]


def retention_days(value: RetentionDays) -> int | None:
    """The days of a retention, None for "forever"."""
    return None if value == defaults.FOREVER else int(value)


class ConfigError(pulumi.RunError):
    """Invalid stack configuration. Raised before any resource is registered."""


class Section(BaseModel):
    """Base for every config section: camelCase keys as in the stack files, unknown keys rejected."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _given_keys_over_the_defaults(cls, data: object) -> object:
        # A section's own default of a nested section (knowledgeBaseSync's worker: batches of 1,000 over 20 s) is
        # what the config reference documents for each of its keys. A stack file that sets some keys of it keeps
        # the others at that default, not at the nested class's (a worker's memoryMb alone must not drop the
        # batching window).
        if not isinstance(data, Mapping):
            return data
        merged = dict(data)
        for name, field in cls.model_fields.items():
            key = field.alias if field.alias in data else name
            given = data.get(key)
            if isinstance(given, Mapping):
                default = field.get_default(call_default_factory=True)
                if isinstance(default, Section):
                    merged[key] = {**default._chosen_apart_from(given), **given}
        return merged

    def _chosen_apart_from(self, given: Mapping[str, object]) -> dict[str, object]:
        """The keys this default sets itself (by field name), but those `given` sets by alias or by name."""
        fields = type(self).model_fields
        return {name: getattr(self, name) for name in self.model_fields_set
                if fields[name].alias not in given and name not in given}


class QueueSettings(Section):
    """The source queue of a queue-driven worker. Its visibility timeout is derived, never configured."""

    delay_seconds: int = Field(0, ge=0, le=defaults.MAX_DELAY_SECONDS,
                               description="Seconds each message stays invisible after it is sent (0..900).")
    max_receive_count: int = Field(defaults.MAX_RECEIVE_COUNT, ge=1, le=1000,
                                   description="Receives before a message moves to the dead-letter queue.")
    retention_seconds: int = Field(
        defaults.SQS_DEFAULT_RETENTION_SECONDS, ge=60, lt=defaults.DLQ_RETENTION_SECONDS,
        description="Source queue retention; below the DLQ's 14 days so the DLQ outlives it.")
    backlog_alarm_messages: int | None = Field(
        None, ge=1, le=100_000_000,
        description="Page when more messages than this wait (ApproximateNumberOfMessagesVisible) for five "
                    "minutes; unset: the pipeline's default (eventProcessing 10,000, fileIngestion 50,000, none "
                    "elsewhere: the oldest message's age pages).")


class ErrorAlarmSettings(Section):
    """How a function's errors page: on any error ("count"), or on their share of its invocations ("rate").

    Unset, each function keeps its pipeline's choice (README, "Runbook"): a rate where many invocations a minute
    make one failed invocation noise that SQS or Step Functions retries anyway, a count where every invocation
    counts.
    """

    page_on: Literal["count", "rate"] | None = Field(
        None, description='"count": page on any error; "rate": on ratePercent of the invocations of '
                          "periodSeconds; unset: the pipeline's choice for this function.")
    rate_percent: float = Field(defaults.ERROR_RATE_PERCENT, gt=0, le=100,
                                description="With the rate: the percentage of failed invocations that pages.")
    min_invocations: int = Field(defaults.ERROR_RATE_MIN_INVOCATIONS, ge=1, le=1_000_000,
                                 description="With the rate: invocations in the period below which it is 0.")
    period_seconds: Literal[60, 300, 900, 3600] = Field(defaults.ERROR_RATE_PERIOD_SECONDS,
                                                         description="With the rate: the period it is computed over.")


class WorkerSettings(Section):
    """A Lambda function fed by an SQS event source mapping.

    Its size has no default of its own: each pipeline's default worker names it (what the config reference shows),
    and a worker a stack file gives in part keeps the rest at that default (`_given_keys_over_the_defaults`).
    """

    timeout_seconds: int = Field(ge=1, le=900, description="Function timeout in seconds.")
    memory_mb: int = Field(ge=128, le=10240, description="Function memory in MB.")
    reserved_concurrency: int = Field(ge=1, le=1000,
                                      description="Reserved concurrent executions: the function's ceiling.")
    batch_size: int = Field(ge=1, le=defaults.SQS_BATCH_SIZE_MAX,
                            description="Messages per invocation (1..10,000 for standard queues).")
    batching_window_seconds: int = Field(0, ge=0, le=defaults.MAX_BATCHING_WINDOW_SECONDS,
                                         description="Maximum seconds the event source waits to fill a batch.")
    max_concurrency: int | None = Field(None, ge=defaults.ESM_MAX_CONCURRENCY_RANGE[0],
                                        le=defaults.ESM_MAX_CONCURRENCY_RANGE[1],
                                        description="Event source maximum concurrency (2..1000); "
                                                    "at most the reserved concurrency.")
    errors: ErrorAlarmSettings = Field(default_factory=ErrorAlarmSettings,
                                       description="When the function's errors page (any error, or a rate).")

    @model_validator(mode="after")
    def _event_source_rules(self) -> WorkerSettings:
        if self.batch_size > defaults.SQS_BATCH_SIZE_WITHOUT_WINDOW_MAX and self.batching_window_seconds < 1:
            raise ValueError(
                f"batchSize {self.batch_size} is above {defaults.SQS_BATCH_SIZE_WITHOUT_WINDOW_MAX}, which needs "
                f"batchingWindowSeconds >= 1 (got {self.batching_window_seconds})")
        if self.max_concurrency is not None and self.max_concurrency > self.reserved_concurrency:
            raise ValueError(
                f"maxConcurrency {self.max_concurrency} exceeds reservedConcurrency {self.reserved_concurrency}: "
                "the event source would be throttled by its own function")
        return self

    @property
    def visibility_timeout_seconds(self) -> int:
        """AWS's rule for Lambda event sources: 6 x function timeout + maximum batching window.

        With the bounds above it is at most 6 x 900 + 300 = 5,700 s, well inside SQS's 12-hour maximum.
        """
        return defaults.VISIBILITY_TIMEOUT_RATIO * self.timeout_seconds + self.batching_window_seconds


class BucketSettings(Section):
    """A bucket the pipeline reads: an existing one by name, or (when no name is given) one it creates.

    The retention settings shape the lifecycle of a bucket the pipeline creates; an existing bucket's lifecycle is
    its owner's (a lifecycle configuration replaces the whole of a bucket's rules), so they are refused with one.
    """

    existing_name: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
                                      description="Name of an existing bucket; omit to let the pipeline create one.")
    noncurrent_version_days: int = Field(
        defaults.S3_NONCURRENT_VERSION_DAYS, ge=1, le=defaults.S3_MAX_NONCURRENT_VERSION_DAYS,
        description="Days an overwritten or deleted object stays recoverable as a noncurrent version (created "
                    "bucket only; incomplete uploads are aborted after 1 day).")
    object_retention_days: RetentionDays = Field(
        "forever", description="Days after its upload an object expires (created bucket only; 1..36500; it is then "
                               "a noncurrent version for noncurrentVersionDays), or \"forever\" to keep objects "
                               "until they are deleted.")

    @model_validator(mode="after")
    def _retention_only_for_a_created_bucket(self) -> BucketSettings:
        chosen = sorted({"noncurrent_version_days", "object_retention_days"} & self.model_fields_set)
        if self.existing_name and chosen:
            keys = " and ".join(to_camel(name) for name in chosen)
            raise ValueError(f"{keys} set with existingName {self.existing_name}: the lifecycle of an existing "
                             "bucket is its owner's (the stack would replace all of its rules); remove them or let "
                             "the pipeline create the bucket")
        return self


class AccessLogSettings(Section):
    """Server access logging of the buckets the stack creates, into one locked-down log bucket per stack."""

    enabled: bool = Field(True, description="Log every request to every bucket the stack creates (S3 server access "
                                            "logs) into the stack's access-log bucket.")
    retention_days: int = Field(
        defaults.S3_ACCESS_LOG_RETENTION_DAYS, ge=1, le=defaults.MAX_RETENTION_DAYS,
        description="Days an access log is kept in the log bucket (1..36500; then a noncurrent version for "
                    "noncurrentVersionDays).")
    noncurrent_version_days: int = Field(
        defaults.S3_NONCURRENT_VERSION_DAYS, ge=1, le=defaults.S3_MAX_NONCURRENT_VERSION_DAYS,
        description="Days an expired or deleted access log stays recoverable as a noncurrent version.")


def each_matching(pattern: str, what: str) -> AfterValidator:
    """The validator of a tuple of strings (`Annotated[tuple[str, ...], each_matching(...)]`): each matches
    `pattern`, none repeats; the error names them as `what`."""
    return AfterValidator(functools.partial(_each_matches, pattern=pattern, what=what))


def _each_matches(values: tuple[str, ...], pattern: str, what: str) -> tuple[str, ...]:
    import re

    bad = [v for v in values if not re.match(pattern, v)]
    if bad:
        raise ValueError(f"not {what} (expected /{pattern}/): {', '.join(repr(v) for v in bad)}")
    if len(set(values)) != len(values):
        raise ValueError(f"duplicate {what}: {', '.join(sorted({v for v in values if values.count(v) > 1}))}")
    return values


class AlarmSettings(Section):
    """Where alarms go."""

    emails: tuple[str, ...] = Field((), description="Email addresses subscribed to the alarm topic.")

    @field_validator("emails")
    @classmethod
    def _valid_emails(cls, emails: tuple[str, ...]) -> tuple[str, ...]:
        import re

        bad = [e for e in emails if not re.match(_EMAIL_PATTERN, e)]
        if bad:
            raise ValueError(f"not an email address: {', '.join(bad)}")
        return emails


class LambdaSettings(Section):
    """Platform of every function in the stack."""

    architecture: Literal["arm64", "x86_64"] = Field(defaults.LAMBDA_ARCHITECTURE,
                                                     description="Instruction set of every function.")
    runtime: Literal["python3.12", "python3.13"] = Field(defaults.LAMBDA_RUNTIME,
                                                         description="Supported Python runtime of every function.")

    @property
    def python_version(self) -> str:
        return self.runtime.removeprefix("python")
