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
from typing import Annotated, Any, Literal

import pulumi
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from components import defaults
from components.config.batch_inference import BatchInferenceSettings
from components.config.event_processing import EventProcessingSettings
from components.config.file_ingestion import FileIngestionSettings
from components.config.knowledge_base_sync import KnowledgeBaseSyncSettings
from components.config.sections import (
    AccessLogSettings,
    AlarmSettings,
    BucketSettings,
    ConfigError,
    LambdaSettings,
    QueueSettings,
    Section,
    WorkerSettings,
    each_matching,
)
from components.s3_filters import S3Filter, overlap_message

__all__ = ["EXAMPLE_ACCOUNT", "PROJECT", "AccessLogSettings", "AlarmSettings", "BatchInferenceSettings",
           "BucketSettings", "ConfigError",
           "EventProcessingSettings", "FileIngestionSettings", "KnowledgeBaseSyncSettings", "LambdaSettings",
           "QueueSettings", "StackConfig", "WorkerSettings", "load_stack_config", "parse_stack_config"]

PROJECT = "ai-pipelines"
_RoleArns = Annotated[tuple[str, ...], each_matching(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$",
                                                     "IAM role ARNs")]
EXAMPLE_ACCOUNT = "123456789012"  # AWS's documentation account: no real account has this id


def refuse_example_values(config: StackConfig, account_id: str, stack: str) -> None:
    """Stop a stack whose file carries example ids anywhere but the example account, before anything is created."""
    if config.example_values and account_id != EXAMPLE_ACCOUNT:
        raise ConfigError(
            f"Pulumi.{stack}.yaml: ai-pipelines:exampleValues is true, so this stack file carries example ids "
            f"(knowledge base and data source ids, subnets, security groups, model ids); account {account_id} is "
            f"real. Replace each example id with your account's, then remove ai-pipelines:exampleValues.")


class StackConfig(Section):
    """Everything under the `ai-pipelines:` namespace of a stack file."""

    owner: str = Field(min_length=1, description="Team that owns the stack; tagged on every resource.")
    example_values: bool = Field(
        False, description="The stack file carries example ids (knowledge base, subnets, ...): it synthesizes "
                           "offline, in AWS's documentation account 123456789012 only; `pulumi preview` and `pulumi "
                           "up` in a real account stop with the keys to replace. Remove it once the ids are real.")
    protect_data: bool = Field(False, description="Protect resources that hold data (buckets, tables) from deletion.")
    encryption: Literal["aws-managed", "customer-managed"] = Field(
        "aws-managed",
        description="Keys at rest. \"customer-managed\": one KMS key per stack (yearly rotation, a key policy that "
                    "admits exactly the roles and services using it) encrypts every queue and dead-letter queue, the "
                    "alarm topic, created buckets (with bucket keys), tables, log groups, the database secret the "
                    "stack creates, schedules, the state machine and Bedrock batch-job output. \"aws-managed\": "
                    "AWS-managed or AWS-owned keys (the alarm topic keeps a key of its own, which CloudWatch needs).")
    key_readers: _RoleArns = Field(
        (), max_length=20,
        description="With customer-managed keys: IAM roles outside the stack that read its encrypted data (the "
                    "knowledge base's service role reading the document bucket, a result subscriber's consumer), "
                    "admitted to kms:Decrypt on the stack's key through S3 and SQS only.")
    log_retention_days: int = Field(defaults.LOG_RETENTION_DAYS, description="Retention of every log group, in days.")
    alarms: AlarmSettings = Field(default_factory=AlarmSettings, description="Alarm notification targets.")
    access_logs: AccessLogSettings = Field(
        default_factory=AccessLogSettings,
        description="S3 server access logs of the stack's buckets (an existing bucket named in config is its "
                    "owner's to log).")
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
    def _key_readers_need_the_key(self) -> StackConfig:
        if self.key_readers and not self.customer_managed_keys:
            raise ValueError("keyReaders is set but encryption is aws-managed: there is no stack key to admit them "
                             "to; set encryption: customer-managed or remove keyReaders")
        return self

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

    @model_validator(mode="after")
    def _batch_results_need_batch_inference(self) -> StackConfig:
        kb = self.knowledge_base_sync
        if kb is not None and kb.enabled and kb.batch_results and not (
                self.batch_inference is not None and self.batch_inference.enabled):
            raise ValueError("knowledgeBaseSync.batchResults subscribes to the batch-inference result bus, but "
                             "batchInference is not enabled in this stack")
        return self

    @property
    def customer_managed_keys(self) -> bool:
        return self.encryption == "customer-managed"

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
    # An index (fileIngestion.inputRules.0) names an item of a list of sections, not a key: the item's keys apply.
    for part in [part for part in path if not part.isdigit()]:
        field = next((f for name, f in model.model_fields.items() if (f.alias or name) == part), None)
        annotation = field.annotation if field else None
        candidates = [a for a in getattr(annotation, "__args__", (annotation,)) if isinstance(a, type)]
        nested = next((a for a in candidates if issubclass(a, BaseModel)), None)
        if nested is None:
            return []
        model = nested
    return [f.alias or name for name, f in model.model_fields.items()]
