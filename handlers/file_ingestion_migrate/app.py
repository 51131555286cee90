"""Lambda adapter of the migration runner: ``file_ingestion_migrate.app.handler``.

Invoked synchronously by ``pulumi up`` (an ``aws.lambda_.Invocation`` keyed by the migrations' checksum) with
``{"checksum": "<sha256>"}``. It refuses to run when the checksum is not that of the migrations it ships (the
deployed code and the invocation disagree), applies the pending migrations and returns what it did; an error fails
the invocation, and with it ``pulumi up``. The function runs in the database's VPC and reads the credentials from
Secrets Manager, as the worker does.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from common.postgres import ConnectionKeeper, DatabaseSettings, fetch_credentials
from file_ingestion_migrate import runner

logger = Logger()
settings = DatabaseSettings.from_env(os.environ, application_name="file-ingestion-migrate")
_MIGRATIONS = runner.discover()
_CHECKSUM = runner.checksum(_MIGRATIONS)


def _secretsmanager() -> Any:
    import boto3

    return boto3.client("secretsmanager")


@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: LambdaContext) -> dict[str, Any]:
    requested = event.get("checksum") if isinstance(event, dict) else None
    if requested != _CHECKSUM:
        raise runner.MigrationError(f"invoked for migrations {requested!r}, but this code ships {_CHECKSUM}: "
                                    "deploy the function's code first")
    keeper = ConnectionKeeper(lambda: fetch_credentials(_secretsmanager(), settings), settings)
    try:
        with keeper.connection() as connection:
            report = runner.migrate(connection, _MIGRATIONS)
    finally:
        keeper.close()
    result = {"applied": list(report.applied), "alreadyApplied": list(report.already_applied),
              "version": report.version, "checksum": report.checksum, "stack": os.environ.get("STACK_NAME", "")}
    logger.info("Migrations applied", extra=result)
    return result
