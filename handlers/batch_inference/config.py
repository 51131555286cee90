"""Each function's configuration, read from the environment once per cold start.

The component gives each function only the variables it needs; a missing or malformed one fails the function's
initialisation with the variable's name (``common.ConfigurationError``).

Variables (each function gets the ones it reads):

* storage: `INPUT_BUCKET`, `OUTPUT_BUCKET`, `SHARD_PREFIX`, `RESULTS_PREFIX`, `BEDROCK_OUTPUT_PREFIX`, `RUNS_PREFIX`;
* the ledger and the failure lane: `LEDGER_TABLE`, `LEDGER_TTL_SECONDS`, `FAILURE_LANE_URL`;
* jobs, task tokens and the run's publication claim: `JOBS_TABLE`;
* the model and the prompt: `MODEL_ID`, `PROMPT_TEMPLATE`, `LABELS`, `MAX_OUTPUT_TOKENS`, `TEMPERATURE`,
  `REQUEST_FORMAT` (converse or native: the records' modelInput, and the batch jobs' modelInvocationType);
* the sharder: `TEXT_FIELD`, `ID_FIELD`, `MODE`, `MIN_RECORDS_PER_JOB`, `MAX_RECORDS_PER_JOB`, `MAX_FILE_BYTES`,
  `MAX_RECORD_BYTES`, `MAX_INPUT_CHARS`, `RUN_DEADLINE_HOURS` (0: no deadline unless the run's input names one);
* batch jobs: `BATCH_ROLE_ARN`, `JOB_NAME_PREFIX`, `JOB_TIMEOUT_HOURS`, `DEADLINE_JOB_HOURS`, `JOB_TAGS` (the
  stack's tags as a JSON object), `JOB_OUTPUT_KMS_KEY` (a key ARN or alias ARN, or empty), `JOB_VPC` (``{subnetIds,
  securityGroupIds}`` as JSON, or empty);
* the synchronous worker: `MODEL_TIMEOUT_SECONDS`, `RECORD_CONCURRENCY`, `MAX_ATTEMPTS`, `BATCH_RETRIES`;
* the reconciler: `COMPLETION_QUEUE_URL`, `RECONCILE_LOOKBACK_HOURS`;
* the finalizer: `RESULT_BUS_NAME`, `RESULT_SOURCE`, `TOKEN_PRICES` (the model's prices as JSON, or empty: no cost).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from batch_inference.records import REQUEST_FORMATS, RequestFormat
from batch_inference.usage import Prices
from common.env import ConfigurationError, read_int, read_str
from common.retry import Backoff

_BUCKET = r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]"
_PREFIX = r"[A-Za-z0-9!_.*'()-]+(/[A-Za-z0-9!_.*'()-]+)*/"
_TABLE = r"[A-Za-z0-9_.-]{3,255}"
_QUEUE_URL = r"https://[a-z0-9.-]+\.amazonaws\.com(\.cn)?/\d{12}/[A-Za-z0-9_-]{1,80}"
_STATE_MACHINE = r"arn:aws[a-z-]*:states:[a-z0-9-]+:\d{12}:stateMachine:[A-Za-z0-9_-]{1,80}"
_MODEL = r"[a-z0-9-]{1,63}(\.[a-z0-9-]{1,63}){1,2}([.:][a-z0-9-]{1,63}){0,2}"
_ROLE_ARN = r"arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]{1,128}"
_JOB_PREFIX = r"[a-zA-Z0-9][a-zA-Z0-9-]{0,33}"
_BUS = r"[A-Za-z0-9._-]{1,256}"
_SOURCE = r"[A-Za-z0-9][A-Za-z0-9._/-]{0,255}"
_FIELD = r"[^\s]{1,128}"
# A key ARN, or an alias ARN (the stack's key is named by its alias, known before the key exists); Bedrock's
# s3EncryptionKeyId accepts both.
_KMS_KEY = r"arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(key/[A-Za-z0-9-]{1,64}|alias/[A-Za-z0-9/_-]{1,250})"
_SUBNET = r"subnet-[0-9a-f]{8,17}"
_SECURITY_GROUP = r"sg-[0-9a-f]{8,17}"


def _env(env: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if env is None else env


def _labels(env: Mapping[str, str]) -> tuple[str, ...]:
    raw = env.get("LABELS", "[]") or "[]"
    try:
        labels = json.loads(raw)
    except ValueError:
        raise ConfigurationError(f"environment variable LABELS={raw!r} is not a JSON list") from None
    if not isinstance(labels, list) or not all(isinstance(label, str) for label in labels):
        raise ConfigurationError("environment variable LABELS must be a JSON list of strings")
    return tuple(labels)


def _float(env: Mapping[str, str], name: str, default: float, minimum: float, maximum: float) -> float:
    raw = env.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ConfigurationError(f"environment variable {name}={raw!r} is not a number") from None
    if not minimum <= value <= maximum:
        raise ConfigurationError(f"environment variable {name}={value} is outside [{minimum}, {maximum}]")
    return value


@dataclass(frozen=True)
class Prompt:
    model_id: str
    template: str
    labels: tuple[str, ...]
    max_tokens: int
    temperature: float
    request_format: RequestFormat

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Prompt:
        template = read_str(env, "PROMPT_TEMPLATE", meaning="a prompt template with {{content}}")
        if "{{content}}" not in template:
            raise ConfigurationError("environment variable PROMPT_TEMPLATE has no {{content}}")
        return cls(model_id=_model_id(env),
                   template=template, labels=_labels(env),
                   max_tokens=read_int(env, "MAX_OUTPUT_TOKENS", default=512, minimum=1, maximum=8192),
                   temperature=_float(env, "TEMPERATURE", 0.0, 0.0, 1.0), request_format=_request_format(env))


@dataclass(frozen=True)
class Storage:
    input_bucket: str
    output_bucket: str
    shard_prefix: str
    results_prefix: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Storage:
        return cls(input_bucket=read_str(env, "INPUT_BUCKET", pattern=_BUCKET, meaning="a bucket name"),
                   output_bucket=read_str(env, "OUTPUT_BUCKET", pattern=_BUCKET, meaning="a bucket name"),
                   shard_prefix=read_str(env, "SHARD_PREFIX", pattern=_PREFIX, meaning="a key prefix ending in /"),
                   results_prefix=read_str(env, "RESULTS_PREFIX", pattern=_PREFIX,
                                           meaning="a key prefix ending in /"))


@dataclass(frozen=True)
class Records:
    ledger_table: str
    ledger_ttl_seconds: int
    failure_lane_url: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Records:
        return cls(ledger_table=read_str(env, "LEDGER_TABLE", pattern=_TABLE, meaning="a DynamoDB table name"),
                   ledger_ttl_seconds=read_int(env, "LEDGER_TTL_SECONDS", default=90 * 86400, minimum=86400,
                                               maximum=3650 * 86400),
                   failure_lane_url=read_str(env, "FAILURE_LANE_URL", pattern=_QUEUE_URL,
                                             meaning="the failure lane's queue URL"))


def _json_object(env: Mapping[str, str], name: str, meaning: str) -> dict[str, object] | None:
    raw = env.get(name, "").strip()
    if not raw:
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ConfigurationError(f"environment variable {name} is not {meaning}")
    return value


def _job_tags(env: Mapping[str, str]) -> dict[str, str]:
    tags = _json_object(env, "JOB_TAGS", "a JSON object of tags") or {}
    if not all(isinstance(value, str) for value in tags.values()):
        raise ConfigurationError("environment variable JOB_TAGS must map tag keys to strings")
    return {key: str(value) for key, value in tags.items()}


def _job_vpc(env: Mapping[str, str]) -> dict[str, list[str]] | None:
    vpc = _json_object(env, "JOB_VPC", "{subnetIds, securityGroupIds}")
    if vpc is None:
        return None
    patterns = {"subnetIds": _SUBNET, "securityGroupIds": _SECURITY_GROUP}
    placed: dict[str, list[str]] = {}
    for key, pattern in patterns.items():
        ids = vpc.get(key)
        if not isinstance(ids, list) or not ids or not all(isinstance(v, str) and re.fullmatch(pattern, v)
                                                          for v in ids):
            raise ConfigurationError(f"environment variable JOB_VPC: {key} is not a list of ids /{pattern}/")
        placed[key] = [str(v) for v in ids]
    if set(vpc) != set(patterns):
        raise ConfigurationError("environment variable JOB_VPC has keys other than subnetIds and securityGroupIds")
    return placed


def _jobs_table(env: Mapping[str, str]) -> str:
    return read_str(env, "JOBS_TABLE", pattern=_TABLE, meaning="a DynamoDB table name")


def _job_prefix(env: Mapping[str, str]) -> str:
    return read_str(env, "JOB_NAME_PREFIX", pattern=_JOB_PREFIX, meaning="a job name prefix (<= 34 characters)")


def _request_format(env: Mapping[str, str]) -> RequestFormat:
    value = read_str(env, "REQUEST_FORMAT", pattern="|".join(REQUEST_FORMATS), meaning="converse or native")
    return "native" if value == "native" else "converse"


def _model_id(env: Mapping[str, str]) -> str:
    return read_str(env, "MODEL_ID", pattern=_MODEL, meaning="a Bedrock model or profile id")


@dataclass(frozen=True)
class SharderSettings:
    storage: Storage
    records: Records
    prompt: Prompt
    mode: str
    text_field: str
    id_field: str
    min_records: int
    max_records: int
    max_file_bytes: int
    max_record_bytes: int
    max_input_chars: int
    run_deadline_hours: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SharderSettings:
        env = _env(env)
        return cls(storage=Storage.from_env(env), records=Records.from_env(env), prompt=Prompt.from_env(env),
                   mode=read_str(env, "MODE", pattern="batch|sync|auto", meaning="batch, sync or auto"),
                   text_field=read_str(env, "TEXT_FIELD", pattern=_FIELD, meaning="a JSON field name"),
                   id_field=read_str(env, "ID_FIELD", pattern=_FIELD, meaning="a JSON field name"),
                   min_records=read_int(env, "MIN_RECORDS_PER_JOB", default=100, minimum=1, maximum=1_000_000),
                   max_records=read_int(env, "MAX_RECORDS_PER_JOB", default=50_000, minimum=2,
                                        maximum=10_000_000),
                   max_file_bytes=read_int(env, "MAX_FILE_BYTES", default=1 << 30, minimum=1 << 20,
                                           maximum=5 << 30),
                   max_record_bytes=read_int(env, "MAX_RECORD_BYTES", default=100_000, minimum=1024,
                                             maximum=10 << 20),
                   max_input_chars=read_int(env, "MAX_INPUT_CHARS", default=20_000, minimum=1, maximum=10 << 20),
                   run_deadline_hours=read_int(env, "RUN_DEADLINE_HOURS", default=0, minimum=0, maximum=24 * 30))


@dataclass(frozen=True)
class SubmitterSettings:
    jobs_table: str
    ttl_seconds: int
    model_id: str
    batch_role_arn: str
    job_name_prefix: str
    job_timeout_hours: int
    output_bucket: str
    bedrock_output_prefix: str
    request_format: RequestFormat
    job_tags: dict[str, str] = field(default_factory=dict)
    deadline_job_hours: int = 24
    output_kms_key: str | None = None
    vpc: dict[str, list[str]] | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SubmitterSettings:
        env = _env(env)
        return cls(jobs_table=_jobs_table(env),
                   ttl_seconds=read_int(env, "LEDGER_TTL_SECONDS", default=90 * 86400, minimum=86400,
                                        maximum=3650 * 86400),
                   model_id=_model_id(env),
                   batch_role_arn=read_str(env, "BATCH_ROLE_ARN", pattern=_ROLE_ARN, meaning="an IAM role ARN"),
                   job_name_prefix=_job_prefix(env),
                   job_timeout_hours=read_int(env, "JOB_TIMEOUT_HOURS", default=24, minimum=24, maximum=168),
                   output_bucket=read_str(env, "OUTPUT_BUCKET", pattern=_BUCKET, meaning="a bucket name"),
                   bedrock_output_prefix=read_str(env, "BEDROCK_OUTPUT_PREFIX", pattern=_PREFIX,
                                                  meaning="a key prefix ending in /"),
                   request_format=_request_format(env), job_tags=_job_tags(env),
                   deadline_job_hours=read_int(env, "DEADLINE_JOB_HOURS", default=24, minimum=1, maximum=168),
                   output_kms_key=(read_str(env, "JOB_OUTPUT_KMS_KEY", pattern=_KMS_KEY,
                                            meaning="a KMS key or alias ARN")
                                   if env.get("JOB_OUTPUT_KMS_KEY", "").strip() else None),
                   vpc=_job_vpc(env))


@dataclass(frozen=True)
class CompletionSettings:
    storage: Storage
    records: Records
    jobs_table: str
    job_name_prefix: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> CompletionSettings:
        env = _env(env)
        return cls(storage=Storage.from_env(env), records=Records.from_env(env), jobs_table=_jobs_table(env),
                   job_name_prefix=_job_prefix(env))


# The sync worker's retry policy (`common.retry`): after failed attempt n it sleeps up to min(20, 1 * 2**n) s, so
# 2, 4, 8, 16, 20 ... (components.config.batch_inference's BACKOFF_BASE_SECONDS and BACKOFF_CAP_SECONDS, from which
# the stack's time budget is checked). `common.retry` counts retries from 0, hence a base of 2 s there.
SYNC_BACKOFF_BASE_SECONDS, SYNC_BACKOFF_CAP_SECONDS = 1.0, 20.0


def sync_backoff(base_seconds: float = SYNC_BACKOFF_BASE_SECONDS, cap_seconds: float = SYNC_BACKOFF_CAP_SECONDS
                 ) -> Backoff:
    return Backoff(base_seconds=2 * base_seconds, cap_seconds=cap_seconds)


@dataclass(frozen=True)
class SyncSettings:
    storage: Storage
    records: Records
    model_id: str
    model_timeout_seconds: int
    record_concurrency: int
    max_attempts: int
    batch_retries: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> SyncSettings:
        env = _env(env)
        return cls(storage=Storage.from_env(env), records=Records.from_env(env),
                   model_id=_model_id(env),
                   model_timeout_seconds=read_int(env, "MODEL_TIMEOUT_SECONDS", default=60, minimum=5, maximum=600),
                   record_concurrency=read_int(env, "RECORD_CONCURRENCY", default=8, minimum=1, maximum=64),
                   max_attempts=read_int(env, "MAX_ATTEMPTS", default=5, minimum=1, maximum=20),
                   batch_retries=read_int(env, "BATCH_RETRIES", default=3, minimum=0, maximum=10))


@dataclass(frozen=True)
class ReconcilerSettings:
    jobs_table: str
    job_name_prefix: str
    completion_queue_url: str
    lookback_hours: int
    state_machine_arn: str
    run_endings_queue_url: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ReconcilerSettings:
        env = _env(env)
        return cls(jobs_table=_jobs_table(env), job_name_prefix=_job_prefix(env),
                   completion_queue_url=read_str(env, "COMPLETION_QUEUE_URL", pattern=_QUEUE_URL,
                                                 meaning="the completion queue's URL"),
                   lookback_hours=read_int(env, "RECONCILE_LOOKBACK_HOURS", default=72, minimum=1, maximum=720),
                   state_machine_arn=read_str(env, "STATE_MACHINE_ARN", pattern=_STATE_MACHINE,
                                              meaning="a state machine ARN"),
                   run_endings_queue_url=read_str(env, "RUN_ENDINGS_QUEUE_URL", pattern=_QUEUE_URL,
                                                  meaning="the run-endings queue's URL"))


@dataclass(frozen=True)
class FinalizerSettings:
    storage: Storage
    records: Records
    jobs_table: str
    job_name_prefix: str
    runs_prefix: str
    result_bus: str
    result_source: str
    prices: Prices | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FinalizerSettings:
        env = _env(env)
        return cls(storage=Storage.from_env(env), records=Records.from_env(env), jobs_table=_jobs_table(env),
                   job_name_prefix=_job_prefix(env),
                   runs_prefix=read_str(env, "RUNS_PREFIX", pattern=_PREFIX, meaning="a key prefix ending in /"),
                   result_bus=read_str(env, "RESULT_BUS_NAME", pattern=_BUS, meaning="an event bus name"),
                   result_source=read_str(env, "RESULT_SOURCE", pattern=_SOURCE, meaning="an event source"),
                   prices=_prices(env))


def _prices(env: Mapping[str, str]) -> Prices | None:
    raw = env.get("TOKEN_PRICES", "").strip()
    if not raw:
        return None
    try:
        return Prices.of(json.loads(raw))
    except (ValueError, KeyError, TypeError):
        raise ConfigurationError("environment variable TOKEN_PRICES is not {model, inputPerMillionTokens, "
                                 "outputPerMillionTokens, batchDiscount}") from None
