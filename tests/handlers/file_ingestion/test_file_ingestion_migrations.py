"""Migrations: applied in order, one transaction each, recorded, never re-applied; the same runner serves the
migration function `pulumi up` invokes, the tests and `make migrate`."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest

from components.pipelines.file_ingestion import migrations_checksum
from file_ingestion_migrate import runner
from file_ingestion_migrate.__main__ import main as migrate_main
from tests.handlers.conftest import REGION
from tests.handlers.file_ingestion.conftest import LOADER_USER, MIGRATION_ENVIRONMENT, MIGRATION_PACKAGE, Database
from tests.support import aws_calls


def tables(database: Database) -> set[str]:
    return {row[0] for row in database.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def test_the_component_keys_the_invocation_on_the_runners_checksum() -> None:
    assert migrations_checksum() == runner.checksum(runner.discover())


SHIPPED = ("0001_orders", "0002_customers", "0003_load_path_indexes", "0004_ingested_files", "0005_loader_role")


def test_migrations_apply_once_in_order_and_are_recorded(empty_database: Database) -> None:
    with empty_database.connect() as connection:
        first = runner.migrate(connection)
        second = runner.migrate(connection)
    assert first.applied == SHIPPED and first.version == len(SHIPPED)
    assert second.applied == () and second.already_applied == first.applied
    assert {"orders", "customers", "ingested_files", "schema_migrations"} <= tables(empty_database)
    assert empty_database.count("schema_migrations") == len(SHIPPED)


def test_the_tables_carry_only_the_indexes_a_load_needs(empty_database: Database) -> None:
    with empty_database.connect() as connection:
        runner.migrate(connection)
    indexes = dict(empty_database.query("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
                                        "AND tablename IN ('orders', 'customers')"))
    assert sorted(indexes) == ["customers_loaded_at", "customers_natural_key", "orders_loaded_at", "orders_natural_key"]
    for table, key in (("orders", "order_id"), ("customers", "customer_id")):
        assert "USING brin (loaded_at)" in indexes[f"{table}_loaded_at"]  # appended rows: a B-tree costs each load
        assert f"UNIQUE INDEX {table}_natural_key" in indexes[f"{table}_natural_key"]
        assert f"(file_id, {key})" in indexes[f"{table}_natural_key"]  # the file (one per content) + the record


def test_rows_loaded_before_the_files_table_keep_their_source(empty_database: Database) -> None:
    """0004 moves each loaded file's bucket, key and version off its rows into one ingested_files row."""
    shipped = runner.discover()
    with empty_database.connect() as connection:
        runner.migrate(connection, shipped[:3])
        connection.execute("INSERT INTO orders (source_bucket, source_key, source_version, record_index, order_id, "
                           "customer_id, order_date, status, currency, total_amount, item_count) SELECT 'b', "
                           "'in/' || (n / 3), 'v1', n % 3, 'O-' || n, 'C-1', '2024-05-17', 'paid', 'EUR', 1, 1 "
                           "FROM generate_series(0, 8) AS n")
        runner.migrate(connection, shipped)
    files = empty_database.query("SELECT file_id, source_key, row_count, content_sha256 FROM ingested_files "
                                 "ORDER BY source_key")
    assert [(key, rows, content) for _, key, rows, content in files] == [("in/0", 3, None), ("in/1", 3, None),
                                                                         ("in/2", 3, None)]
    assert all(file_id < 0 for file_id, *_ in files)  # below every new (random, positive) id
    assert empty_database.query("SELECT f.source_key, count(*) FROM orders JOIN ingested_files f USING (file_id) "
                                "GROUP BY 1 ORDER BY 1") == [("in/0", 3), ("in/1", 3), ("in/2", 3)]


def test_a_failing_migration_is_rolled_back_and_an_edited_one_refused(empty_database: Database) -> None:
    shipped = runner.discover()
    broken = [*shipped, runner.Migration(len(shipped) + 1, "9999_broken",
                                         "CREATE TABLE half (id int); SELECT no_such_column;")]
    with empty_database.connect() as connection:
        with pytest.raises(runner.MigrationError, match="9999_broken failed"):
            runner.migrate(connection, broken)
        assert "half" not in tables(empty_database)  # the failed migration left nothing behind
        edited = [runner.Migration(1, "0001_orders", shipped[0].sql + "\n-- edited"), *shipped[1:]]
        with pytest.raises(runner.MigrationError, match="changed after it was applied"):
            runner.migrate(connection, edited)


def test_make_migrate_applies_them_from_a_dsn(empty_database: Database, capsys: pytest.CaptureFixture[str]) -> None:
    assert migrate_main(["--dsn", empty_database.server.dsn(empty_database.name)]) == 0
    assert f"schema at version {len(SHIPPED)}" in capsys.readouterr().out
    assert migrate_main(["--checksum"]) == 0


LOADER_PASSWORD = "generated-by-the-stack-" + "x" * 20


@pytest.fixture
def migrate_app(aws: None, empty_database: Database) -> Iterator[Any]:
    client = boto3.client("secretsmanager", region_name=REGION)
    client.create_secret(Name=MIGRATION_ENVIRONMENT["DATABASE_SECRET_ID"],
                         SecretString=json.dumps(empty_database.server.secret(empty_database.name)))
    client.create_secret(Name=MIGRATION_ENVIRONMENT["LOADER_SECRET_ID"], SecretString=json.dumps(
        {**empty_database.server.secret(empty_database.name), "username": LOADER_USER, "password": LOADER_PASSWORD}))
    saved = dict(os.environ)
    os.environ.update(MIGRATION_ENVIRONMENT)
    from file_ingestion_migrate import app

    yield app
    os.environ.clear()
    os.environ.update(saved)


def test_the_migration_function_applies_pending_migrations_for_its_checksum(
        migrate_app: Any, empty_database: Database, lambda_context_factory: Callable[..., Any]) -> None:
    checksum = runner.checksum(runner.discover())
    with aws_calls.recording(MIGRATION_PACKAGE, environment=MIGRATION_ENVIRONMENT) as calls:
        result = migrate_app.handler({"checksum": checksum}, lambda_context_factory())
        again = migrate_app.handler({"checksum": checksum}, lambda_context_factory())
        with pytest.raises(runner.MigrationError, match="deploy the function's code first"):
            migrate_app.handler({"checksum": "0" * 64}, lambda_context_factory())
    assert result["applied"] == list(SHIPPED) and again["applied"] == []
    assert {(c.service, c.operation) for c in calls} == {("secretsmanager", "GetSecretValue")}
    assert {str(c.resource).rsplit(":", 1)[1] for c in calls} == {
        f"{MIGRATION_ENVIRONMENT['DATABASE_SECRET_ID']}-??????", f"{MIGRATION_ENVIRONMENT['LOADER_SECRET_ID']}-??????"}
    assert {"orders", "customers"} <= tables(empty_database)
    # The loader's login now exists with the stack's password, and nothing of it is in the result.
    assert result["loaderUser"] == LOADER_USER and LOADER_PASSWORD not in json.dumps(result)
    import psycopg

    server = empty_database.server
    with psycopg.connect(host="127.0.0.1", port=server.port, dbname=empty_database.name, user=LOADER_USER,
                         password=LOADER_PASSWORD) as loader:
        assert loader.execute("SELECT current_user").fetchone() == (LOADER_USER,)


def test_the_migration_function_waits_a_bounded_time_for_a_secret_without_a_value_and_names_the_fix(
        migrate_app: Any, lambda_context_factory: Callable[..., Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The first deploy with a secret the stack creates for its operator: the secret exists, its value does not."""
    client = boto3.client("secretsmanager", region_name=REGION)
    admin = MIGRATION_ENVIRONMENT["DATABASE_SECRET_ID"]
    value = client.get_secret_value(SecretId=admin)["SecretString"]
    client.delete_secret(SecretId=admin, ForceDeleteWithoutRecovery=True)
    client.create_secret(Name=admin)  # no value yet, as `pulumi up` leaves it
    sleeps: list[float] = []
    monkeypatch.setattr(migrate_app, "SECRET_VALUE_WAIT_SECONDS", 30)
    monkeypatch.setattr(migrate_app.time, "sleep", sleeps.append)
    with pytest.raises(migrate_app.CredentialsError, match=rf"secret {admin} has no value .*put-secret-value "
                                                           rf"--secret-id {admin}.*run `pulumi up` again"):
        migrate_app.handler({"checksum": runner.checksum(runner.discover())}, lambda_context_factory())
    assert sleeps and sum(sleeps) <= 22.5  # bounded: the setting, at most half the 60 s left minus a margin

    def put_value_meanwhile(seconds: float) -> None:  # the operator fills it in while the function waits
        client.put_secret_value(SecretId=admin, SecretString=value)

    monkeypatch.setattr(migrate_app.time, "sleep", put_value_meanwhile)
    result = migrate_app.handler({"checksum": runner.checksum(runner.discover())}, lambda_context_factory())
    assert result["applied"] == list(SHIPPED)


def test_make_migrate_sets_the_loader_login_from_its_secret(aws: None, empty_database: Database,
                                                           capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="loader", SecretString=json.dumps({"username": LOADER_USER, "password": LOADER_PASSWORD}))
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    assert migrate_main(["--dsn", empty_database.server.dsn(empty_database.name), "--loader-secret-id", "loader"]) == 0
    assert f"loader login {LOADER_USER} set from loader" in capsys.readouterr().out
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=empty_database.server.port, dbname=empty_database.name,
                         user=LOADER_USER, password=LOADER_PASSWORD) as loader:
        assert loader.execute("SELECT current_user").fetchone() == (LOADER_USER,)
