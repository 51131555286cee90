"""The handler's configuration, read once per cold start from the environment the infrastructure sets.

| variable | meaning |
|---|---|
| ``INPUT_BUCKET`` | the bucket the files arrive in; notifications of any other bucket are rejected |
| ``INPUT_RULES`` | JSON ``[{"prefix": "input/", "suffix": ".json"}]``: the notification rules; other keys are skipped |
| ``DATASETS`` | JSON ``[{"prefix": "input/orders/", "dataset": "orders"}]``: which dataset each prefix holds |
| ``MAX_OBJECT_BYTES`` | largest file loaded; a larger one fails clearly (its message alone) |
| ``READ_CONCURRENCY`` | objects read from S3 at the same time |
| ``DATABASE_SECRET_ID`` | name or ARN of the Secrets Manager secret with the credentials (never the credentials) |
| ``DATABASE_HOST`` / ``DATABASE_PORT`` / ``DATABASE_NAME`` | optional; else from the secret |
| ``DATABASE_SSLMODE`` | libpq sslmode (default ``require``) |
| ``DATABASE_CHANNEL_BINDING`` | libpq channel_binding (default ``require``: SCRAM bound to TLS, the server proven) |
| ``DATABASE_CONNECT_TIMEOUT_SECONDS`` / ``DATABASE_STATEMENT_TIMEOUT_MS`` | bounds of one connect and one statement |
| ``STACK_NAME`` | the stack, a dimension of every metric |
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from common.env import ConfigurationError, read_int, read_str
from common.postgres import DatabaseSettings
from file_ingestion.datasets import Routes, UnknownDatasetError
from file_ingestion.events import InputRules

APPLICATION_NAME = "file-ingestion"


@dataclass(frozen=True)
class Settings:
    bucket: str
    input_rules: InputRules
    routes: Routes
    max_object_bytes: int
    read_concurrency: int
    database: DatabaseSettings
    stack: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Validate the environment; raises ``common.ConfigurationError`` naming the first bad variable."""
        env = os.environ if env is None else env
        rules = _json_list(env, "INPUT_RULES", required=("prefix",))
        entries = _json_list(env, "DATASETS", required=("prefix", "dataset"))
        try:
            routes = Routes.from_config(entries)
        except UnknownDatasetError as error:
            raise ConfigurationError(f"environment variable DATASETS: {error}") from None
        input_rules = InputRules.from_config(rules)
        unreachable = [route.prefix for route in routes.routes
                       if not any(route.prefix.startswith(rule.prefix) for rule in input_rules.rules)]
        if unreachable:
            raise ConfigurationError(f"environment variable DATASETS: prefixes {unreachable} are under no INPUT_RULES "
                                     "prefix, so no notification would ever name them")
        return cls(
            bucket=read_str(env, "INPUT_BUCKET", pattern=r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]", meaning="a bucket name"),
            input_rules=input_rules,
            routes=routes,
            max_object_bytes=read_int(env, "MAX_OBJECT_BYTES", default=1024 * 1024, minimum=1024,
                                      maximum=256 * 1024 * 1024),
            read_concurrency=read_int(env, "READ_CONCURRENCY", default=16, minimum=1, maximum=64),
            database=DatabaseSettings.from_env(env, application_name=APPLICATION_NAME),
            stack=read_str(env, "STACK_NAME", pattern=r"[A-Za-z0-9_.-]{1,64}", meaning="the stack's name"),
        )


def _json_list(env: Mapping[str, str], name: str, *, required: tuple[str, ...]) -> list[dict[str, Any]]:
    raw = read_str(env, name, meaning=f"a JSON list of objects with {', '.join(required)}")
    try:
        value = json.loads(raw)
    except ValueError:
        raise ConfigurationError(f"environment variable {name} is not JSON") from None
    if not isinstance(value, list) or not value or not all(
            isinstance(item, dict) and all(isinstance(item.get(key), str) and item[key] for key in required)
            for item in value):
        raise ConfigurationError(f"environment variable {name} must be a non-empty JSON list of objects with "
                                 f"string {', '.join(required)}")
    return value
