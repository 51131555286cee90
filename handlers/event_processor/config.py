"""The function's configuration, read from the environment once per cold start.

The infrastructure (``components/pipelines/event_processing.py``) sets every variable from the stack config.

| variable                  | required | default | meaning                                                        |
|---------------------------|----------|---------|----------------------------------------------------------------|
| `IDEMPOTENCY_TABLE`       | yes      |         | DynamoDB table of idempotency records (key `id`, TTL `expiration`) |
| `IDEMPOTENCY_TTL_SECONDS` | no       | 86400   | lifetime of an idempotency record (3600..604800)               |
| `IDEMPOTENCY_KEY_FIELDS`  | no       | `[]`    | JSON list of event fields hashed into the key; empty: event id |
| `RESULTS_TABLE`           | yes      |         | DynamoDB table of results (key `resultId`, TTL `expiresAt`)    |
| `RESULTS_RETENTION_DAYS`  | no       | 90      | days a result is kept: its `expiresAt` (14..3650)              |
| `RESULT_BUS_NAME`         | yes      |         | event bus that receives `ProcessingCompleted` events           |
| `RESULT_SOURCE`           | yes      |         | `source` of those events                                       |
| `ACCEPTED_SOURCES`        | yes      |         | JSON list of event sources the function processes              |
| `ACCEPTED_DETAIL_TYPES`   | yes      |         | JSON list of detail types the function processes               |
| `MODEL_ID`                | yes      |         | Bedrock model or inference profile id passed to Converse       |
| `TASK`                    | yes      |         | classify, summarize, extract or moderate                       |
| `PROMPT_TEMPLATE`         | yes      |         | prompt with `{{content}}` (and `{{labels}}`)                   |
| `LABELS`                  | no       | `[]`    | JSON list of labels for `{{labels}}`                           |
| `MAX_OUTPUT_TOKENS`       | no       | 512     | Converse `maxTokens` (1..4096)                                 |
| `TEMPERATURE`             | no       | 0       | Converse `temperature` (0..1)                                  |
| `MODEL_TIMEOUT_SECONDS`   | no       | 30      | read timeout of one model request (5..300)                     |
| `MAX_INPUT_CHARS`         | no       | 20000   | longest item text accepted (100..200000)                       |
| `RECORD_CONCURRENCY`      | no       | 10      | records of a batch processed at once (1..10)                   |

Powertools reads its own variables (`POWERTOOLS_SERVICE_NAME`, `POWERTOOLS_METRICS_NAMESPACE`, `LOG_LEVEL`).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

from common.env import ConfigurationError, read_int, read_str
from common.retry import Backoff

TASKS = ("classify", "summarize", "extract", "moderate")
# The retry policy's parameters (`common.retry`): model calls wait up to 0.25, 0.5, 1 ... 8 s between attempts,
# PutEvents up to 0.1 ... 1 s and at most three attempts (the marks after it must still fit the invocation).
MODEL_BACKOFF = Backoff(base_seconds=0.25, cap_seconds=8.0)
PUBLISH_BACKOFF = Backoff(base_seconds=0.1, cap_seconds=1.0)
PUBLISH_MAX_ATTEMPTS = 3
# How answers are asked for and checked; part of the processing profile, so an answer remembered under an earlier
# format (free text, never validated) is not reused.
ANSWER_FORMAT = "tool-use/validated/1"
CONTENT_PLACEHOLDER = "{{content}}"
LABELS_PLACEHOLDER = "{{labels}}"
_TABLE_NAME = r"[a-zA-Z0-9_.-]{3,255}"
_BUS_NAME = r"[/.\-_A-Za-z0-9]{1,256}"
_SOURCE = r"[A-Za-z0-9][A-Za-z0-9._/-]{0,255}"
_MODEL_ID = r"[a-zA-Z0-9-:.]{1,2048}"


@dataclass(frozen=True)
class Settings:
    idempotency_table: str
    results_table: str
    result_bus_name: str
    result_source: str
    accepted_sources: frozenset[str]
    accepted_detail_types: frozenset[str]
    model_id: str
    task: str
    prompt_template: str
    labels: tuple[str, ...] = ()
    idempotency_ttl_seconds: int = 86_400
    idempotency_key_fields: tuple[str, ...] = ()
    max_output_tokens: int = 512
    temperature: float = 0.0
    model_timeout_seconds: int = 30
    max_input_chars: int = 20_000
    record_concurrency: int = 10
    results_retention_days: int = 90

    @property
    def processing_profile(self) -> str:
        """A short digest of what turns an item into a result (task, model, prompt, labels, limits).

        It prefixes every idempotency key: a remembered answer is reused only for the same question, so a
        changed prompt or model is never answered from records made under the old one.
        """
        parts = [
            ANSWER_FORMAT,
            self.task,
            self.model_id,
            self.prompt_template,
            *self.labels,
            str(self.max_output_tokens),
            str(self.temperature),
        ]
        return hashlib.sha256("\n".join(parts).encode("utf-8")).hexdigest()[:16]

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Validate the environment; raises ``common.ConfigurationError`` naming the first bad variable."""
        env = os.environ if env is None else env
        task = read_str(env, "TASK", pattern="|".join(TASKS), meaning=f"one of {', '.join(TASKS)}")
        template = read_str(env, "PROMPT_TEMPLATE", meaning="a prompt template")
        if CONTENT_PLACEHOLDER not in template:
            raise ConfigurationError(f"environment variable PROMPT_TEMPLATE has no {CONTENT_PLACEHOLDER}")
        labels = _read_strings(env, "LABELS", required=False)
        if LABELS_PLACEHOLDER in template and not labels:
            raise ConfigurationError(
                f"environment variable PROMPT_TEMPLATE uses {LABELS_PLACEHOLDER} but LABELS is empty"
            )
        return cls(
            idempotency_table=read_str(env, "IDEMPOTENCY_TABLE", pattern=_TABLE_NAME, meaning="a DynamoDB table name"),
            results_table=read_str(env, "RESULTS_TABLE", pattern=_TABLE_NAME, meaning="a DynamoDB table name"),
            result_bus_name=read_str(env, "RESULT_BUS_NAME", pattern=_BUS_NAME, meaning="an event bus name"),
            result_source=read_str(env, "RESULT_SOURCE", pattern=_SOURCE, meaning="an event source"),
            accepted_sources=frozenset(_read_strings(env, "ACCEPTED_SOURCES", required=True)),
            accepted_detail_types=frozenset(_read_strings(env, "ACCEPTED_DETAIL_TYPES", required=True)),
            model_id=read_str(env, "MODEL_ID", pattern=_MODEL_ID, meaning="a Bedrock model or inference profile id"),
            task=task,
            prompt_template=template,
            labels=labels,
            idempotency_ttl_seconds=read_int(
                env, "IDEMPOTENCY_TTL_SECONDS", default=86_400, minimum=3600, maximum=7 * 86_400
            ),
            idempotency_key_fields=_read_strings(env, "IDEMPOTENCY_KEY_FIELDS", required=False),
            max_output_tokens=read_int(env, "MAX_OUTPUT_TOKENS", default=512, minimum=1, maximum=4096),
            temperature=_read_float(env, "TEMPERATURE", default=0.0, minimum=0.0, maximum=1.0),
            model_timeout_seconds=read_int(env, "MODEL_TIMEOUT_SECONDS", default=30, minimum=5, maximum=300),
            max_input_chars=read_int(env, "MAX_INPUT_CHARS", default=20_000, minimum=100, maximum=200_000),
            record_concurrency=read_int(env, "RECORD_CONCURRENCY", default=10, minimum=1, maximum=10),
            results_retention_days=read_int(env, "RESULTS_RETENTION_DAYS", default=90, minimum=14, maximum=3650),
        )


def _read_strings(env: Mapping[str, str], name: str, *, required: bool) -> tuple[str, ...]:
    raw = env.get(name, "").strip()
    if not raw:
        if required:
            raise ConfigurationError(f"environment variable {name} is not set; it must be a JSON list of strings")
        return ()
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        raise ConfigurationError(f"environment variable {name}={raw!r} is not JSON") from None
    if not isinstance(value, list) or not all(isinstance(item, str) and item for item in value):
        raise ConfigurationError(f"environment variable {name}={raw!r} is not a JSON list of non-empty strings")
    if required and not value:
        raise ConfigurationError(f"environment variable {name} is an empty list")
    return tuple(value)


def _read_float(env: Mapping[str, str], name: str, *, default: float, minimum: float, maximum: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"environment variable {name}={raw!r} is not a number") from None
    if not minimum <= value <= maximum:
        raise ConfigurationError(f"environment variable {name}={value} is outside [{minimum}, {maximum}]")
    return value
