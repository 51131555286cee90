"""The typed stack configuration: every knob of every pipeline named, typed, bounded and documented once.

Config lives in `Pulumi.<stack>.yaml` as structured values under the project namespace::

    config:
      ai-pipelines:owner: platform-team
      ai-pipelines:knowledgeBaseSync:
        knowledgeBaseId: KB12345678
        dataSourceId: DS12345678

`load_stack_config()` reads it from the Pulumi runtime; `parse_stack_config()` validates a plain mapping and is
what tests call. Invalid config raises `ConfigError` before any resource is registered, naming the stack file,
the key, the bad value and the rule; an unknown key is answered with the closest valid name.

Where a value can be derived (an SQS visibility timeout from the worker's timeout and batching window) it is
derived, not asked for.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any, Literal

import pulumi
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from components import defaults

PROJECT = "ai-pipelines"

_KB_ID_PATTERN = r"^[0-9a-zA-Z]{10}$"  # Bedrock knowledge base and data source ids
_SCHEDULE_PATTERN = r"^(rate\(\s*\d+\s+(minute|minutes|hour|hours|day|days)\s*\)|cron\(.+\)|at\(.+\))$"
_EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class ConfigError(pulumi.RunError):
    """Invalid stack configuration. Raised before any resource is registered."""


class _Settings(BaseModel):
    """Base for every config section: camelCase keys as in the stack files, unknown keys rejected."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class QueueSettings(_Settings):
    """The source queue of a queue-driven worker. Its visibility timeout is derived, never configured."""

    delay_seconds: int = Field(0, ge=0, le=defaults.MAX_DELAY_SECONDS,
                               description="Seconds each message stays invisible after it is sent (0..900).")
    max_receive_count: int = Field(defaults.MAX_RECEIVE_COUNT, ge=1, le=1000,
                                   description="Receives before a message moves to the dead-letter queue.")
    retention_seconds: int = Field(
        defaults.SQS_DEFAULT_RETENTION_SECONDS, ge=60, lt=defaults.DLQ_RETENTION_SECONDS,
        description="Source queue retention; below the DLQ's 14 days so the DLQ outlives it.")


class WorkerSettings(_Settings):
    """A Lambda function fed by an SQS event source mapping."""

    timeout_seconds: int = Field(60, ge=1, le=900, description="Function timeout in seconds.")
    memory_mb: int = Field(256, ge=128, le=10240, description="Function memory in MB.")
    reserved_concurrency: int = Field(2, ge=1, le=1000,
                                      description="Reserved concurrent executions: the function's ceiling.")
    batch_size: int = Field(10, ge=1, le=defaults.SQS_BATCH_SIZE_MAX,
                            description="Messages per invocation (1..10,000 for standard queues).")
    batching_window_seconds: int = Field(0, ge=0, le=defaults.MAX_BATCHING_WINDOW_SECONDS,
                                         description="Maximum seconds the event source waits to fill a batch.")
    max_concurrency: int | None = Field(None, ge=defaults.ESM_MAX_CONCURRENCY_RANGE[0],
                                        le=defaults.ESM_MAX_CONCURRENCY_RANGE[1],
                                        description="Event source maximum concurrency (2..1000); "
                                                    "at most the reserved concurrency.")

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


class BucketSettings(_Settings):
    """A bucket the pipeline reads: an existing one by name, or (when no name is given) one it creates."""

    existing_name: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$",
                                      description="Name of an existing bucket; omit to let the pipeline create one.")


class KnowledgeBaseSyncSettings(_Settings):
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


class AlarmSettings(_Settings):
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


class LambdaSettings(_Settings):
    """Platform of every function in the stack."""

    architecture: Literal["arm64", "x86_64"] = Field(defaults.LAMBDA_ARCHITECTURE,
                                                     description="Instruction set of every function.")
    runtime: Literal["python3.12", "python3.13"] = Field(defaults.LAMBDA_RUNTIME,
                                                         description="Supported Python runtime of every function.")

    @property
    def python_version(self) -> str:
        return self.runtime.removeprefix("python")


class StackConfig(_Settings):
    """Everything under the `ai-pipelines:` namespace of a stack file."""

    owner: str = Field(min_length=1, description="Team that owns the stack; tagged on every resource.")
    protect_data: bool = Field(False, description="Protect resources that hold data (buckets, tables) from deletion.")
    log_retention_days: int = Field(defaults.LOG_RETENTION_DAYS, description="Retention of every log group, in days.")
    alarms: AlarmSettings = Field(default_factory=AlarmSettings, description="Alarm notification targets.")
    lambda_: LambdaSettings = Field(default_factory=LambdaSettings, alias="lambda",
                                    description="Lambda platform settings.")
    knowledge_base_sync: KnowledgeBaseSyncSettings | None = Field(
        None, description="Knowledge-base auto-sync pipeline; omit to leave it out.")

    @field_validator("log_retention_days")
    @classmethod
    def _retention_choice(cls, days: int) -> int:
        if days not in defaults.LOG_RETENTION_CHOICES:
            raise ValueError(f"must be one of CloudWatch Logs' retention values {defaults.LOG_RETENTION_CHOICES}")
        return days

    @property
    def enabled_pipelines(self) -> list[str]:
        sections = {"knowledgeBaseSync": self.knowledge_base_sync}
        return [name for name, section in sections.items() if section is not None and section.enabled]


def parse_stack_config(raw: Mapping[str, Any], *, stack: str, project: str = PROJECT) -> StackConfig:
    """Validate the project-namespace config of one stack.

    `raw` maps keys without the namespace (`owner`, `knowledgeBaseSync`) to values; structured values may be
    JSON strings, as the Pulumi runtime holds them.

    >>> parse_stack_config({"owner": "data-team"}, stack="dev").owner
    'data-team'
    """
    values = {key: _decode(value) for key, value in raw.items()}
    try:
        return StackConfig.model_validate(values)
    except ValidationError as error:
        raise ConfigError(_describe(error, stack=stack, project=project)) from None


def load_stack_config() -> StackConfig:
    """Read and validate this stack's config from the Pulumi runtime."""
    project, stack = pulumi.get_project(), pulumi.get_stack()
    prefix = f"{project}:"
    # The runtime keeps every `namespace:key` of the stack file here; the public `pulumi.Config` API can only
    # look keys up one by one, and unknown keys must be found, not ignored.
    from pulumi.runtime.config import CONFIG

    raw = {key[len(prefix):]: value for key, value in CONFIG.get().items() if key.startswith(prefix)}
    return parse_stack_config(raw, stack=stack, project=project)


def _decode(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in ("{", "["):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def _describe(error: ValidationError, *, stack: str, project: str) -> str:
    lines = [f"Pulumi.{stack}.yaml: invalid configuration ({error.error_count()} problem(s)):"]
    for problem in error.errors():
        loc = [str(part) for part in problem["loc"]]
        key = f"{project}:" + ".".join(loc) if loc else f"{project}"
        if problem["type"] == "extra_forbidden":
            valid = _valid_keys(loc[:-1])
            close = difflib.get_close_matches(loc[-1], valid, n=1, cutoff=0.5)
            hint = f"did you mean '{close[0]}'?" if close else f"valid keys: {', '.join(sorted(valid))}"
            lines.append(f"  - {key}: unknown key; {hint}")
            continue
        value = problem.get("input")
        rule = problem["msg"].removeprefix("Value error, ")
        if isinstance(value, Mapping):  # a cross-field rule: its message names the keys and values itself
            lines.append(f"  - {key}: {rule}")
        else:
            lines.append(f"  - {key} = {json.dumps(value, default=str)}: {rule}")
    return "\n".join(lines)


def _valid_keys(path: list[str]) -> list[str]:
    """The camelCase keys allowed at `path` (a list of aliases) in the config tree."""
    model: type[BaseModel] = StackConfig
    for part in path:
        field = next((f for name, f in model.model_fields.items() if (f.alias or name) == part), None)
        annotation = field.annotation if field else None
        candidates = [a for a in getattr(annotation, "__args__", (annotation,)) if isinstance(a, type)]
        nested = next((a for a in candidates if issubclass(a, BaseModel)), None)
        if nested is None:
            return []
        model = nested
    return [f.alias or name for name, f in model.model_fields.items()]
