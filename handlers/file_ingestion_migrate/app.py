"""Lambda adapter of the migration runner: ``file_ingestion_migrate.app.handler``.

Invoked synchronously by ``pulumi up`` (an ``aws.lambda_.Invocation`` keyed by the migrations' checksum and the
loader secret's version) with ``{"checksum": "<sha256>"}``. It refuses to run when the checksum is not that of the
migrations it ships (the deployed code and the invocation disagree), applies the pending migrations, makes the
loader's login agree with the loader's secret (``logins``) and returns what it did; an error fails the invocation,
and with it ``pulumi up``. The function runs in the database's VPC and reads two secrets: the admin credentials it
connects with (``DATABASE_SECRET_ID``) and the loader's (``LOADER_SECRET_ID``), whose password it sets.

A secret the stack creates for the operator to fill in has no value on the first deploy: the function then waits
for one, polling every ``SECRET_POLL_SECONDS``, for at most ``SECRET_VALUE_WAIT_SECONDS`` (within its own
timeout), and fails with a message that names the secret and the command that fills it.

| variable | meaning |
|---|---|
| ``DATABASE_SECRET_ID`` (and the other ``DATABASE_*`` of ``common.postgres``) | the admin credentials |
| ``LOADER_SECRET_ID`` | the loader's secret (username, password) |
| ``SECRET_VALUE_WAIT_SECONDS`` | how long to wait for a secret that has no value yet (default 120) |
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from common.env import read_int, read_str
from common.postgres import (
    ConnectionKeeper,
    CredentialsError,
    DatabaseSettings,
    fetch_credentials,
    read_secret_string,
)
from file_ingestion_migrate import logins, runner

logger = Logger()
settings = DatabaseSettings.from_env(os.environ, application_name="file-ingestion-migrate")
LOADER_SECRET_ID = read_str(os.environ, "LOADER_SECRET_ID", pattern=r"[A-Za-z0-9/_+=.@:!-]{1,2048}",
                            meaning="the name or ARN of the loader's Secrets Manager secret")
SECRET_VALUE_WAIT_SECONDS = read_int(os.environ, "SECRET_VALUE_WAIT_SECONDS", default=120, minimum=0, maximum=840)
SECRET_POLL_SECONDS = 10.0
# Kept free at the end of the invocation: a failure is reported, not cut off by the timeout.
_MARGIN_SECONDS = 15.0
_MIGRATIONS = runner.discover()
_CHECKSUM = runner.checksum(_MIGRATIONS)

T = TypeVar("T")


def _secretsmanager() -> Any:
    import boto3

    return boto3.client("secretsmanager")


def _when_set(read: Callable[[], T], secret_id: str, budget_seconds: float) -> T:
    """``read()``, waiting (at most ``budget_seconds`` of pauses) while the secret has no value yet."""
    waited = 0.0
    while True:
        try:
            return read()
        except CredentialsError as error:
            if error.code != "ResourceNotFoundException":
                raise
            if waited + SECRET_POLL_SECONDS > budget_seconds:
                raise CredentialsError(
                    f"secret {secret_id} has no value (waited {waited:.0f} s): put the credentials in it, e.g. "
                    f"`aws secretsmanager put-secret-value --secret-id {secret_id} --secret-string "
                    "file://credentials.json` (JSON: username, password, host, port, dbname), then run `pulumi up` "
                    "again", error.code) from None
            logger.warning("Waiting for a value of the database secret", extra={
                "secretId": secret_id, "waitedSeconds": round(waited), "command":
                    f"aws secretsmanager put-secret-value --secret-id {secret_id} --secret-string file://c.json"})
            time.sleep(SECRET_POLL_SECONDS)
            waited += SECRET_POLL_SECONDS


def _loader_login(secret_string: str) -> logins.LoaderLogin:
    try:
        document = json.loads(secret_string)
    except ValueError:
        document = None
    if not isinstance(document, dict) or not all(isinstance(document.get(key), str) and document[key]
                                                 for key in ("username", "password")):
        raise CredentialsError(f"secret {LOADER_SECRET_ID} is not a JSON object with username and password")
    return logins.LoaderLogin(document["username"], document["password"])


@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    requested = event.get("checksum") if isinstance(event, dict) else None
    if requested != _CHECKSUM:
        raise runner.MigrationError(f"invoked for migrations {requested!r}, but this code ships {_CHECKSUM}: "
                                    "deploy the function's code first")
    remaining = context.get_remaining_time_in_millis() / 1000 - _MARGIN_SECONDS
    end = time.monotonic() + remaining
    # Half the invocation at most, so the migrations keep time to run once the value is there.
    budget = min(SECRET_VALUE_WAIT_SECONDS, remaining / 2)
    client = _secretsmanager()
    admin = _when_set(lambda: fetch_credentials(client, settings), settings.secret_id, budget)
    loader = _when_set(lambda: _loader_login(read_secret_string(client, LOADER_SECRET_ID)), LOADER_SECRET_ID,
                       budget)
    read_first = [admin]  # read above; a refused password (a rotation since) reads the secret again
    keeper = ConnectionKeeper(lambda: read_first.pop() if read_first else fetch_credentials(client, settings),
                              settings)
    try:
        with keeper.connection() as connection:
            report = runner.migrate(connection, _MIGRATIONS, deadline=end)
            created = logins.ensure_login(connection, loader)
    finally:
        keeper.close()
    result = {"applied": list(report.applied), "alreadyApplied": list(report.already_applied),
              "version": report.version, "checksum": report.checksum, "loaderUser": loader.username,
              "loaderUserCreated": created, "stack": os.environ.get("STACK_NAME", "")}
    logger.info("Migrations applied", extra=result)
    return result
