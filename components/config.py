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
from collections import defaultdict
from collections.abc import Mapping
from typing import Any, Literal

import pulumi
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from components import defaults
from components.s3_filters import S3Filter, overlap_message

PROJECT = "ai-pipelines"

_KB_ID_PATTERN = r"^[0-9a-zA-Z]{10}$"  # Bedrock knowledge base and data source ids
_SCHEDULE_PATTERN = r"^(rate\(\s*\d+\s+(minute|minutes|hour|hours|day|days)\s*\)|cron\(.+\)|at\(.+\))$"
_EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
# Event processing: EventBridge sources and detail types, Bedrock model and inference profile ids, AWS regions.
_EVENT_SOURCE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,255}$"
_DETAIL_TYPE_PATTERN = r"^[\x20-\x7E]{1,128}$"
_MODEL_ID_PATTERN = r"^[a-z0-9-]{1,63}\.[a-z0-9-]{1,63}([.:]?[a-z0-9-]{1,63})?$"
_INFERENCE_PROFILE_GEOGRAPHIES = ("us", "eu", "apac", "us-gov", "jp", "au", "ca", "global")
_REGION_PATTERN = r"^[a-z]{2}(-gov)?-[a-z]+-\d$"
_LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 _.-]{0,39}$"
_KEY_FIELD_PATTERN = r"^(id|source|detail-type|detail(\.[A-Za-z0-9_-]{1,64}){1,5})$"


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

    @property
    def s3_filters(self) -> list[S3Filter]:
        """What the pipeline asks S3 to notify: documents created or removed under the prefix."""
        return [S3Filter("knowledgeBaseSync", ("s3:ObjectCreated:*", "s3:ObjectRemoved:*"), self.document_prefix)]


def _each_matches(values: tuple[str, ...], pattern: str, what: str) -> tuple[str, ...]:
    import re

    bad = [v for v in values if not re.match(pattern, v)]
    if bad:
        raise ValueError(f"not {what} (expected /{pattern}/): {', '.join(repr(v) for v in bad)}")
    if len(set(values)) != len(values):
        raise ValueError(f"duplicate {what}: {', '.join(sorted({v for v in values if values.count(v) > 1}))}")
    return values


# Default prompt per task. `{{content}}` becomes the item's text, `{{labels}}` the configured labels; the item is
# fenced so instructions inside it read as data. Each asks for JSON so consumers get a structured result.
PROMPT_TEMPLATES: dict[str, str] = {
    "classify": "Classify the item between the <item> tags into exactly one of these labels: {{labels}}.\n"
                "Answer with JSON only: {\"label\": \"<one of the labels>\", \"confidence\": <number 0..1>}.\n"
                "<item>\n{{content}}\n</item>",
    "summarize": "Summarize the item between the <item> tags in at most three sentences.\n"
                 "Answer with JSON only: {\"summary\": \"<summary>\"}.\n<item>\n{{content}}\n</item>",
    "extract": "List the people, organizations, places and dates named in the item between the <item> tags.\n"
               "Answer with JSON only: {\"entities\": [{\"type\": \"<type>\", \"text\": \"<text>\"}]}.\n"
               "<item>\n{{content}}\n</item>",
    "moderate": "Decide whether the item between the <item> tags contains hate, harassment, violence, sexual "
                "content or self-harm.\nAnswer with JSON only: {\"flagged\": <true|false>, \"categories\": "
                "[\"<category>\"]}.\n<item>\n{{content}}\n</item>",
}
CONTENT_PLACEHOLDER = "{{content}}"
LABELS_PLACEHOLDER = "{{labels}}"
# Time the worker keeps for bookkeeping (result write, publication) beyond one model request.
WORKER_BOOKKEEPING_SECONDS = 10


class IntakeSettings(_Settings):
    """The rule on the input bus: which events the pipeline takes, and how EventBridge retries delivering them."""

    sources: tuple[str, ...] = Field(min_length=1, max_length=10,
                                     description="Event sources the rule matches (1..10), e.g. com.example.documents.")
    detail_types: tuple[str, ...] = Field(min_length=1, max_length=10,
                                          description="Detail types the rule matches (1..10), e.g. DocumentSubmitted.")
    retry_attempts: int = Field(defaults.TARGET_MAX_RETRY_ATTEMPTS, ge=0, le=185,
                                description="Times EventBridge retries delivering an event to the work queue.")
    max_event_age_seconds: int = Field(defaults.TARGET_MAX_EVENT_AGE_SECONDS, ge=60, le=86400,
                                       description="Seconds EventBridge keeps retrying before it dead-letters.")

    @field_validator("sources")
    @classmethod
    def _valid_sources(cls, sources: tuple[str, ...]) -> tuple[str, ...]:
        return _each_matches(sources, _EVENT_SOURCE_PATTERN, "event sources")

    @field_validator("detail_types")
    @classmethod
    def _valid_detail_types(cls, detail_types: tuple[str, ...]) -> tuple[str, ...]:
        return _each_matches(detail_types, _DETAIL_TYPE_PATTERN, "detail types")


class ModelSettings(_Settings):
    """The Bedrock model, the task it performs and how the worker calls it."""

    model_id: str = Field(pattern=_MODEL_ID_PATTERN,
                          description="Bedrock foundation model id, e.g. anthropic.claude-3-haiku-20240307-v1:0.")
    inference_profile_id: str | None = Field(
        None, max_length=200, description="Cross-region inference profile to invoke instead, <geography>.<modelId>.")
    inference_profile_regions: tuple[str, ...] = Field(
        (), max_length=20, description="Regions the inference profile routes to (required with a profile).")
    task: Literal["classify", "summarize", "extract", "moderate"] = Field(
        "classify", description="What the model does with each item; picks the default prompt.")
    prompt_template: str | None = Field(
        None, min_length=len(CONTENT_PLACEHOLDER), max_length=2000,
        description="Prompt with {{content}} (and {{labels}}); omit for the task's default.")
    labels: tuple[str, ...] = Field((), max_length=20, description="Labels a classification chooses from (0..20).")
    max_output_tokens: int = Field(512, ge=1, le=4096, description="Most tokens the model may generate per item.")
    temperature: float = Field(0.0, ge=0.0, le=1.0, description="Sampling temperature (0 for repeatable answers).")
    request_timeout_seconds: int = Field(30, ge=5, le=300, description="Read timeout of one model request.")
    max_input_chars: int = Field(20_000, ge=100, le=200_000,
                                 description="Longest item text accepted; longer items are rejected, not truncated.")
    throttle_alarm_threshold: int = Field(10, ge=0, le=100_000,
                                          description="Model throttles per minute above which the alarm fires.")

    @field_validator("labels")
    @classmethod
    def _valid_labels(cls, labels: tuple[str, ...]) -> tuple[str, ...]:
        return _each_matches(labels, _LABEL_PATTERN, "labels")

    @field_validator("inference_profile_regions")
    @classmethod
    def _valid_regions(cls, regions: tuple[str, ...]) -> tuple[str, ...]:
        return _each_matches(regions, _REGION_PATTERN, "AWS regions")

    @model_validator(mode="after")
    def _coherent(self) -> ModelSettings:
        if self.inference_profile_id is not None:
            geography, _, model = self.inference_profile_id.partition(".")
            if geography not in _INFERENCE_PROFILE_GEOGRAPHIES or model != self.model_id:
                raise ValueError(
                    f"inferenceProfileId {self.inference_profile_id} must be <geography>.{self.model_id} with a "
                    f"geography in {', '.join(_INFERENCE_PROFILE_GEOGRAPHIES)}: the worker may invoke only the "
                    "configured model")
            if not self.inference_profile_regions:
                raise ValueError(f"inferenceProfileId {self.inference_profile_id} needs inferenceProfileRegions, "
                                 "the regions it routes to, so the role can allow the model there")
        elif self.inference_profile_regions:
            raise ValueError("inferenceProfileRegions is set without an inferenceProfileId")
        if CONTENT_PLACEHOLDER not in self.prompt:
            raise ValueError(f"promptTemplate has no {CONTENT_PLACEHOLDER}: the model would never see the item")
        if LABELS_PLACEHOLDER in self.prompt and not self.labels:
            raise ValueError(f"the {self.task} prompt uses {LABELS_PLACEHOLDER} but labels is empty")
        return self

    @property
    def prompt(self) -> str:
        """The prompt template in effect: the configured one, else the task's default."""
        return self.prompt_template if self.prompt_template is not None else PROMPT_TEMPLATES[self.task]

    @property
    def invoked_id(self) -> str:
        """What the worker passes as modelId: the inference profile when there is one, else the model."""
        return self.inference_profile_id or self.model_id


class IdempotencySettings(_Settings):
    """How the worker recognises an item it has already processed."""

    key_fields: tuple[str, ...] = Field(
        (), max_length=5,
        description="Event fields hashed into the idempotency key (id, source, detail-type, detail.<path>); "
                    "empty: the event id.")
    ttl_seconds: int = Field(24 * 3600, ge=3600, le=7 * 24 * 3600,
                             description="How long an idempotency record lives (1 h..7 days).")

    @field_validator("key_fields")
    @classmethod
    def _valid_key_fields(cls, fields: tuple[str, ...]) -> tuple[str, ...]:
        return _each_matches(fields, _KEY_FIELD_PATTERN, "event fields")


class EventProcessingSettings(_Settings):
    """Event-driven AI processing: input bus -> SQS -> worker -> Bedrock -> results table and result bus."""

    enabled: bool = Field(True, description="Build this pipeline in the stack.")
    intake: IntakeSettings = Field(description="The input bus rule and its delivery retries.")
    model: ModelSettings = Field(description="The model, its task and prompt.")
    idempotency: IdempotencySettings = Field(default_factory=IdempotencySettings,
                                             description="Idempotency keys and their lifetime.")
    queue: QueueSettings = Field(default_factory=QueueSettings, description="The work queue between bus and worker.")
    worker: WorkerSettings = Field(
        default_factory=lambda: WorkerSettings(timeout_seconds=120, memory_mb=512, reserved_concurrency=20,
                                               batch_size=10, batching_window_seconds=0, max_concurrency=20),
        description="The worker; reserved concurrency is the model's throughput budget in concurrent batches.")
    record_concurrency: int = Field(10, ge=1, le=10,
                                    description="Records of one batch processed at the same time (1..batchSize).")
    result_source: str = Field("ai-pipelines.event-processing", pattern=_EVENT_SOURCE_PATTERN,
                               description="Source of the ProcessingCompleted events on the result bus.")
    result_subscriber: bool = Field(True, description="Add the example subscriber: a rule on the result bus "
                                                      "delivering ProcessingCompleted events to a queue.")
    dashboard: bool = Field(False, description="Add a CloudWatch dashboard of the pipeline's signals.")

    @model_validator(mode="after")
    def _coherent(self) -> EventProcessingSettings:
        worker = self.worker
        if not 5 <= worker.batch_size <= 10:
            raise ValueError(f"worker.batchSize {worker.batch_size} is outside 5..10: the worker reports partial "
                             "batch failures and processes a batch concurrently in about one model call's time")
        if self.record_concurrency > worker.batch_size:
            raise ValueError(f"recordConcurrency {self.record_concurrency} exceeds worker.batchSize "
                             f"{worker.batch_size}: a batch never has that many records")
        needed = self.model.request_timeout_seconds + WORKER_BOOKKEEPING_SECONDS
        if worker.timeout_seconds < needed:
            raise ValueError(f"worker.timeoutSeconds {worker.timeout_seconds} is below model.requestTimeoutSeconds "
                             f"{self.model.request_timeout_seconds} + {WORKER_BOOKKEEPING_SECONDS} s of bookkeeping "
                             f"= {needed}: one model request must fit in an invocation")
        redelivery = worker.visibility_timeout_seconds * self.queue.max_receive_count
        if self.idempotency.ttl_seconds < redelivery:
            raise ValueError(f"idempotency.ttlSeconds {self.idempotency.ttl_seconds} is below the time SQS keeps "
                             f"redelivering a message ({worker.visibility_timeout_seconds} s visibility x "
                             f"{self.queue.max_receive_count} receives = {redelivery} s): a late copy would call "
                             "the model again")
        return self


# File ingestion: VPC ids, Secrets Manager secrets, dataset names, Aurora engine versions.
_SUBNET_PATTERN = r"^subnet-([0-9a-f]{8}|[0-9a-f]{17})$"
_SECURITY_GROUP_PATTERN = r"^sg-([0-9a-f]{8}|[0-9a-f]{17})$"
_SECRET_ARN_PATTERN = (r"^arn:aws(-[a-z]+)*:secretsmanager:[a-z0-9-]+:\d{12}:secret:"
                       r"[A-Za-z0-9/_+=.@-]{1,512}-[A-Za-z0-9]{6}$")
_SECRET_NAME_PATTERN = r"^[A-Za-z0-9/_+=.@-]{1,512}$"
_KEY_PREFIX_PATTERN = r"^[^/\s][^\s]*/$"
_DATASET_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
_DB_IDENTIFIER_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"


class InputRuleSettings(_Settings):
    """One S3 notification filter: objects created under `prefix` whose key ends with `suffix`."""

    prefix: str = Field(pattern=_KEY_PREFIX_PATTERN, max_length=1024, description="Key prefix, ending in '/'.")
    suffix: str = Field(".json", max_length=1024, description="Key suffix (e.g. .json); empty for any.")


class DatasetRouteSettings(_Settings):
    """Which declared dataset (record model, table, key columns) the files under a prefix hold."""

    prefix: str = Field(pattern=_KEY_PREFIX_PATTERN, max_length=1024,
                        description="Key prefix of the dataset's files, under an input rule's prefix.")
    dataset: str = Field(pattern=_DATASET_PATTERN,
                         description="Dataset name in handlers/file_ingestion/datasets.py (e.g. orders).")


class VpcSettings(_Settings):
    """Where the functions run so they reach a private database."""

    subnet_ids: tuple[str, ...] = Field(min_length=1, max_length=16,
                                        description="Private subnets of the functions (and Aurora), 1..16.")
    security_group_ids: tuple[str, ...] = Field(min_length=1, max_length=5,
                                                description="Security groups of the functions (and Aurora), 1..5.")

    @field_validator("subnet_ids")
    @classmethod
    def _valid_subnets(cls, ids: tuple[str, ...]) -> tuple[str, ...]:
        return _each_matches(ids, _SUBNET_PATTERN, "subnet ids")

    @field_validator("security_group_ids")
    @classmethod
    def _valid_security_groups(cls, ids: tuple[str, ...]) -> tuple[str, ...]:
        return _each_matches(ids, _SECURITY_GROUP_PATTERN, "security group ids")


class DatabaseSecretSettings(_Settings):
    """The Secrets Manager secret with the database credentials: an existing one, else one the stack creates."""

    existing_arn: str | None = Field(None, pattern=_SECRET_ARN_PATTERN,
                                     description="ARN of an existing secret (RDS format: username, password, ...).")
    existing_name: str | None = Field(None, pattern=_SECRET_NAME_PATTERN,
                                      description="Name of an existing secret in the stack's account and region.")

    @model_validator(mode="after")
    def _one_source(self) -> DatabaseSecretSettings:
        if self.existing_arn and self.existing_name:
            raise ValueError("set existingArn or existingName, not both: the role may read exactly one secret")
        return self


class AuroraSettings(_Settings):
    """An Aurora PostgreSQL Serverless v2 cluster the stack creates in the VPC subnets (off: use an existing one)."""

    enabled: bool = Field(False, description="Create the cluster; its managed master secret holds the credentials.")
    engine_version: str = Field("16.6", pattern=r"^\d{2}\.\d{1,2}$", description="aurora-postgresql version.")
    database_name: str = Field("ingest", pattern=_DB_IDENTIFIER_PATTERN, description="Database created in it.")
    master_username: str = Field("ingest_admin", pattern=_DB_IDENTIFIER_PATTERN, description="Master user name.")
    min_capacity: float = Field(0.5, ge=0, le=256, description="Minimum Aurora capacity units (0..256).")
    max_capacity: float = Field(4, ge=1, le=256, description="Maximum Aurora capacity units (1..256).")
    backup_retention_days: int = Field(7, ge=1, le=35, description="Automated backup retention in days.")

    @model_validator(mode="after")
    def _capacity_range(self) -> AuroraSettings:
        if self.min_capacity > self.max_capacity:
            raise ValueError(f"minCapacity {self.min_capacity} exceeds maxCapacity {self.max_capacity}")
        return self


class PostgresSettings(_Settings):
    """How the functions reach PostgreSQL. Only non-secret connection facts live here; credentials are in the secret."""

    vpc: VpcSettings = Field(description="Subnets and security groups of the functions.")
    secret: DatabaseSecretSettings = Field(default_factory=DatabaseSecretSettings,
                                           description="The credentials' secret.")
    host: str | None = Field(None, pattern=r"^[A-Za-z0-9.-]{1,253}$",
                             description="Database host; omit when the secret has it (or with Aurora).")
    port: int = Field(5432, ge=1, le=65535, description="Database port.")
    name: str | None = Field(None, pattern=_DB_IDENTIFIER_PATTERN,
                             description="Database name; omit when the secret has it (or with Aurora).")
    ssl_mode: Literal["require", "verify-ca", "verify-full"] = Field(
        "require", description="libpq sslmode: connections are always encrypted. verify-ca and verify-full need the "
                               "database's CA certificates packaged with the functions, which is not supported yet.")
    connect_timeout_seconds: int = Field(5, ge=1, le=30, description="Bound of one connection attempt.")
    statement_timeout_seconds: int = Field(30, ge=1, le=300, description="Bound of one statement (COPY, insert).")
    aurora: AuroraSettings = Field(default_factory=AuroraSettings, description="Optional Aurora cluster.")

    @model_validator(mode="after")
    def _coherent(self) -> PostgresSettings:
        if self.aurora.enabled and (self.secret.existing_arn or self.secret.existing_name):
            raise ValueError("aurora.enabled creates the cluster and its credentials' secret; remove secret.existingArn"
                             " / secret.existingName")
        if self.aurora.enabled and (self.host or self.name):
            raise ValueError("aurora.enabled: host and name come from the cluster; remove host and name")
        if self.ssl_mode != "require":
            # libpq would look for the CA in ~/.postgresql/root.crt, which no Lambda has: every connection would fail.
            raise ValueError(f"sslMode {self.ssl_mode} needs the database's CA certificates (for RDS and Aurora, the "
                             "RDS CA bundle) inside the functions, which this project does not package yet; use "
                             "require (every connection is encrypted)")
        return self


class FileIngestionSettings(_Settings):
    """High-frequency JSON file ingestion: S3 (prefix + suffix rules) -> SQS -> Lambda batches -> PostgreSQL."""

    enabled: bool = Field(True, description="Build this pipeline in the stack.")
    bucket: BucketSettings = Field(default_factory=BucketSettings, description="The bucket files arrive in.")
    input_rules: tuple[InputRuleSettings, ...] = Field(
        (InputRuleSettings(prefix="input/", suffix=".json"),), min_length=1, max_length=10,
        description="Notification filters (prefix + suffix); other objects never reach the queue.")
    datasets: tuple[DatasetRouteSettings, ...] = Field(
        (DatasetRouteSettings(prefix="input/orders/", dataset="orders"),
         DatasetRouteSettings(prefix="input/customers/", dataset="customers")), min_length=1, max_length=50,
        description="Per prefix, the dataset its files hold; the role reads only these prefixes.")
    max_object_bytes: int = Field(1024 * 1024, ge=1024, le=64 * 1024 * 1024,
                                  description="Largest file loaded; a larger one fails alone, clearly (bytes).")
    read_concurrency: int = Field(16, ge=1, le=64, description="Objects one invocation reads from S3 at a time.")
    database: PostgresSettings = Field(description="The database and how to reach it.")
    queue: QueueSettings = Field(default_factory=QueueSettings,
                                 description="Source queue (4-day retention, long polling, DLQ).")
    worker: WorkerSettings = Field(
        default_factory=lambda: WorkerSettings(timeout_seconds=120, memory_mb=512, reserved_concurrency=10,
                                               batch_size=100, batching_window_seconds=55, max_concurrency=10),
        description="The loader: batches of 100 over a 55 s window; reserved concurrency bounds connections.")
    migration_timeout_seconds: int = Field(300, ge=30, le=900,
                                           description="Timeout of the migration function `pulumi up` invokes.")

    @property
    def s3_filters(self) -> list[S3Filter]:
        """What the pipeline asks S3 to notify: objects created that match an input rule."""
        return [S3Filter("fileIngestion", ("s3:ObjectCreated:*",), rule.prefix, rule.suffix)
                for rule in self.input_rules]

    @model_validator(mode="after")
    def _coherent(self) -> FileIngestionSettings:
        rules = [rule.prefix for rule in self.input_rules]
        prefixes = [route.prefix for route in self.datasets]
        if len(set(prefixes)) != len(prefixes):
            raise ValueError(f"datasets: a prefix appears twice in {prefixes}")
        stray = [p for p in prefixes if not any(p.startswith(rule) for rule in rules)]
        if stray:
            raise ValueError(f"datasets prefixes {stray} are under no inputRules prefix {rules}: no notification "
                             "would ever name their files")
        budget = self.worker.memory_mb * 1024 * 1024 // 4
        if self.max_object_bytes * self.worker.batch_size > budget:
            raise ValueError(f"maxObjectBytes {self.max_object_bytes} x worker.batchSize {self.worker.batch_size} "
                             f"exceeds a quarter of worker.memoryMb {self.worker.memory_mb} ({budget} bytes): a batch "
                             "of the largest files, parsed, would not fit in memory")
        database = self.database
        needed = 2 * (database.connect_timeout_seconds + database.statement_timeout_seconds)
        if self.worker.timeout_seconds < needed:
            raise ValueError(f"worker.timeoutSeconds {self.worker.timeout_seconds} is below 2 x (database."
                             f"connectTimeoutSeconds + statementTimeoutSeconds) = {needed}: a slow write must fail "
                             "inside the invocation, not with it")
        return self


# Batch inference: the model families whose native request format the sharder builds.
_BATCH_MODEL_FAMILIES = ("anthropic.", "amazon.nova")


class BatchInferenceSettings(_Settings):
    """Large-scale batch inference: S3 JSONL corpus -> Step Functions Distributed Map -> Bedrock batch jobs (mode A)
    or synchronous Converse fan-out (mode B) -> S3 results, failure lane, BatchRunCompleted on a result bus."""

    enabled: bool = Field(True, description="Build this pipeline in the stack.")
    model: ModelSettings = Field(description="The model or inference profile, the task and its prompt template.")
    mode: Literal["batch", "sync", "auto"] = Field(
        "auto", description="batch: Bedrock batch jobs; sync: Converse per record; auto: batch when the corpus "
                            "reaches minRecordsPerJob.")
    corpus_prefix: str = Field("corpus/", pattern=r"^[A-Za-z0-9][A-Za-z0-9!_.*'()-]*/$",
                               description="Key prefix of the corpora in the input bucket (the sharder reads only "
                                           "there).")
    text_field: str = Field("text", pattern=r"^[^\s]{1,128}$", description="JSON field holding a record's text.")
    id_field: str = Field("id", pattern=r"^[^\s]{1,128}$",
                          description="JSON field holding a record's id; without it the recordId is a content hash.")
    min_records_per_job: int = Field(100, ge=1, le=100_000,
                                     description="Bedrock's per-job minimum record count (Service Quotas).")
    max_records_per_job: int = Field(50_000, ge=2, le=1_000_000,
                                     description="Bedrock's per-job (and per-file) maximum record count.")
    max_file_bytes: int = Field(1 << 30, ge=1 << 20, le=5 << 30,
                                description="Bedrock's maximum input file size in bytes (a shard's size limit).")
    max_record_bytes: int = Field(100_000, ge=1024, le=1 << 20,
                                  description="Longest corpus line and shard line accepted, in bytes; longer lines "
                                              "go to the failure lane.")
    concurrent_jobs: int = Field(10, ge=1, le=100,
                                 description="Concurrent batch jobs quota: the batch Map's MaxConcurrency.")
    job_timeout_hours: int = Field(24, ge=24, le=168, description="timeoutDurationInHours of each batch job.")
    on_demand_concurrency: int = Field(10, ge=1, le=1000,
                                       description="Concurrent synchronous batches the on-demand quota allows: the "
                                                   "sync Map's MaxConcurrency and the worker's reserved concurrency.")
    items_per_batch: int = Field(20, ge=1, le=1000, description="Records per synchronous batch (ItemBatcher).")
    record_concurrency: int = Field(4, ge=1, le=64,
                                    description="Converse calls one synchronous batch makes at the same time.")
    max_attempts: int = Field(5, ge=1, le=20,
                              description="Attempts per record on throttling and model timeouts (backoff, jitter).")
    batch_retries: int = Field(3, ge=1, le=10,
                               description="Step Functions retries of a synchronous batch that stays throttled.")
    tolerated_failure_percentage: float = Field(5.0, ge=0, le=100,
                                                description="Share of failed Map children a run tolerates.")
    reconcile_interval_minutes: int = Field(15, ge=5, le=60,
                                            description="How often the reconciler finishes missed completions and "
                                                        "heartbeats waiting shards.")
    ledger_retention_days: int = Field(90, ge=1, le=3650,
                                       description="How long the recordId ledger remembers a record (TTL).")
    result_source: str = Field("ai-pipelines.batch-inference", pattern=_EVENT_SOURCE_PATTERN,
                               description="Source of the BatchRunCompleted events on the result bus.")
    sharder_memory_mb: int = Field(2048, ge=512, le=10240,
                                   description="Sharder memory in MB (its CPU share follows it).")
    failure_lane: QueueSettings = Field(default_factory=lambda: QueueSettings(retention_seconds=7 * 24 * 3600),
                                        description="The failure lane holding records that could not be processed.")
    completion: WorkerSettings = Field(
        default_factory=lambda: WorkerSettings(timeout_seconds=900, memory_mb=3008, reserved_concurrency=5,
                                               batch_size=1, batching_window_seconds=0, max_concurrency=None),
        description="The completion handler: one job's output per invocation.")

    @model_validator(mode="after")
    def _coherent(self) -> BatchInferenceSettings:
        if not self.model.model_id.startswith(_BATCH_MODEL_FAMILIES):
            raise ValueError(f"model.modelId {self.model.model_id}: batch inference builds the native request of "
                             f"{' and '.join(f.rstrip('.') for f in _BATCH_MODEL_FAMILIES)} models only")
        if self.max_records_per_job < 2 * self.min_records_per_job - 1:
            raise ValueError(f"maxRecordsPerJob {self.max_records_per_job} is below 2 x minRecordsPerJob - 1 = "
                             f"{2 * self.min_records_per_job - 1}: a short tail could not join the shard before it")
        if self.text_field == self.id_field:
            raise ValueError(f"textField and idField are both {self.text_field!r}: a record's id and its text must be "
                             "different fields")
        room = 2 * self.min_records_per_job * self.max_record_bytes
        if self.max_file_bytes < room:
            raise ValueError(f"maxFileBytes {self.max_file_bytes} is below 2 x minRecordsPerJob x maxRecordBytes = "
                             f"{room}: a shard could not hold its minimum plus a merged tail")
        rounds = -(-self.items_per_batch // self.record_concurrency)
        budget = rounds * self.model.request_timeout_seconds
        if budget > SYNC_WORKER_BUDGET_SECONDS:
            raise ValueError(f"itemsPerBatch {self.items_per_batch} / recordConcurrency {self.record_concurrency} = "
                             f"{rounds} rounds of model.requestTimeoutSeconds {self.model.request_timeout_seconds} "
                             f"= {budget} s exceeds the worker's {SYNC_WORKER_BUDGET_SECONDS} s")
        if self.completion.batch_size != 1:
            raise ValueError(f"completion.batchSize {self.completion.batch_size} must be 1: one job's output fills "
                             "an invocation")
        return self


# A synchronous batch's model calls (one round each) fit Lambda's 15 minutes with a minute for bookkeeping.
SYNC_WORKER_BUDGET_SECONDS = 840


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
    event_processing: EventProcessingSettings | None = Field(
        None, description="Event-driven AI processing pipeline; omit to leave it out.")
    batch_inference: BatchInferenceSettings | None = Field(
        None, description="Large-scale batch inference pipeline; omit to leave it out.")
    file_ingestion: FileIngestionSettings | None = Field(
        None, description="High-frequency JSON file ingestion into PostgreSQL; omit to leave it out.")

    @field_validator("log_retention_days")
    @classmethod
    def _retention_choice(cls, days: int) -> int:
        if days not in defaults.LOG_RETENTION_CHOICES:
            raise ValueError(f"must be one of CloudWatch Logs' retention values {defaults.LOG_RETENTION_CHOICES}")
        return days

    @model_validator(mode="after")
    def _shared_buckets_have_disjoint_filters(self) -> StackConfig:
        # Pipelines watching one existing bucket share its single notification configuration, which S3 rejects
        # when filters overlap; caught here so `pulumi up` fails before creating anything.
        by_bucket: dict[str, list[S3Filter]] = defaultdict(list)
        for section in (self.knowledge_base_sync, self.file_ingestion):
            if section is not None and section.enabled and section.bucket.existing_name:
                by_bucket[section.bucket.existing_name] += section.s3_filters
        for bucket, filters in by_bucket.items():
            problem = overlap_message(bucket, filters)
            if problem:
                raise ValueError(problem)
        return self

    @property
    def enabled_pipelines(self) -> list[str]:
        sections: dict[str, Any] = {
            "knowledgeBaseSync": self.knowledge_base_sync, "eventProcessing": self.event_processing,
            "batchInference": self.batch_inference,
            "fileIngestion": self.file_ingestion}
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
