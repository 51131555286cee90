"""The loader's database role (migration 0005 and ``file_ingestion_migrate.logins``) against the real server: it
loads, and it can do nothing else. The handler's own tests (``test_file_ingestion_pipeline`` and the others) run as
this role too: the loader's secret in ``conftest.pipeline`` names it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from file_ingestion import load
from file_ingestion.datasets import CATALOGUE
from file_ingestion.parse import parse_file
from file_ingestion_migrate import logins
from tests.handlers.file_ingestion.conftest import LOADER_USER, Database, orders_file


def _run(database: Database, statement: str) -> None:
    """A statement as the superuser (the test's own setup)."""
    with database.connect() as connection:
        connection.execute(statement)  # type: ignore[arg-type]  # test-controlled SQL


def _connect(database: Database, secret: dict[str, Any]) -> psycopg.Connection[Any]:
    return psycopg.connect(host=secret["host"], port=secret["port"], dbname=secret["dbname"], user=secret["username"],
                           password=secret["password"], autocommit=True)


@pytest.fixture
def loader(database: Database) -> Iterator[psycopg.Connection[Any]]:
    with _connect(database, database.loader_secret()) as connection:
        yield connection


def _load(connection: psycopg.Connection[Any], key: str, rows: int) -> load.LoadResult:
    data = json.dumps(orders_file(key, rows)).encode()
    parsed = load.ParsedFile.of(CATALOGUE["orders"], "bucket", key, "v1", bytes(32 - len(key)) + key.encode(),
                                parse_file(data, CATALOGUE["orders"]))
    result = load.LoadResult()
    with connection.transaction(), connection.cursor() as cursor:
        load.load_chunk(cursor, [parsed], result)
    return result


def test_the_loader_loads_and_a_redelivery_adds_nothing(database: Database, loader: psycopg.Connection[Any]) -> None:
    assert _load(loader, "a", 5).rows_inserted == 5
    assert _load(loader, "a", 5).rows_inserted == 0  # the claim's ON CONFLICT DO NOTHING, allowed
    assert database.count("orders") == 5
    assert loader.execute("SELECT current_user, session_user").fetchone() == (LOADER_USER, LOADER_USER)


@pytest.mark.parametrize("statement", [
    "DROP TABLE orders",
    "DELETE FROM orders",
    "TRUNCATE orders",
    "TRUNCATE ingested_files CASCADE",
    "UPDATE customers SET email = 'x'",
    "DELETE FROM ingested_files",
    "SELECT * FROM orders",  # the loader never reads rows back
    "SELECT email FROM customers",
    "SELECT source_key FROM ingested_files",  # only what its claim reads: file_id, dataset, content_sha256
    "SELECT * FROM ingested_files",
    "SELECT * FROM schema_migrations",
    "INSERT INTO schema_migrations VALUES (99, 'x', 'x')",
    "ALTER TABLE orders ADD COLUMN x int",
    "CREATE TABLE other (id int)",
    "CREATE INDEX orders_extra ON orders (status)",
    "GRANT file_ingestion_loader TO CURRENT_USER",
    "CREATE ROLE intruder LOGIN",
    "ALTER ROLE CURRENT_USER CREATEROLE",
])
def test_the_loader_can_do_nothing_else(database: Database, loader: psycopg.Connection[Any], statement: str) -> None:
    _load(loader, "b", 2)
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        loader.execute(statement)  # type: ignore[arg-type]  # test-controlled SQL
    assert database.count("orders") == 2  # nothing changed


def test_another_table_of_the_database_is_out_of_reach(database: Database, loader: psycopg.Connection[Any]) -> None:
    _run(database, "CREATE TABLE invoices (id int); INSERT INTO invoices VALUES (1)")
    for statement in ("SELECT * FROM invoices", "INSERT INTO invoices VALUES (2)", "DELETE FROM invoices"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            loader.execute(statement)  # type: ignore[arg-type]


def test_a_member_of_the_loader_role_loads_too_as_the_rotation_s_second_user_does(database: Database) -> None:
    """Alternating-users rotation creates ``<user>_clone`` with the first user's role memberships, not its grants."""
    secret = database.loader_secret()
    clone = {**secret, "username": f"{LOADER_USER}_clone", "password": "clone-password-0123456789"}
    _run(database, f"CREATE ROLE {clone['username']} LOGIN PASSWORD '{clone['password']}'")
    try:
        for role, in database.query("SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid "
                                    "WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = %s)", LOADER_USER):
            _run(database, f"GRANT {role} TO {clone['username']}")
        with _connect(database, clone) as connection:
            assert _load(connection, "c", 3).rows_inserted == 3
    finally:
        _run(database, f"DROP ROLE {clone['username']}")


def test_after_a_rotation_the_clone_of_the_longest_loader_name_is_still_a_login(database: Database) -> None:
    """The stack's loader name has 57 characters at most; the rotation's ``<user>_clone`` then has 63, PostgreSQL's
    limit, and the next migration must still accept it."""
    clone = "l" * 57 + "_clone"
    with database.connect() as connection:
        assert logins.ensure_login(connection, logins.LoaderLogin(clone, "clone-password")) is True
        with pytest.raises(logins.LoginError, match="at most 63 characters"):
            logins.ensure_login(connection, logins.LoaderLogin(clone + "x", "x"))
    _run(database, f"DROP ROLE {clone}")


def test_the_login_is_idempotent_stores_only_a_scram_verifier_and_refuses_what_it_must_not_create(
        database: Database) -> None:
    with database.connect() as connection:
        assert logins.ensure_login(connection, logins.LoaderLogin("fi_login_probe", "first-password")) is True
        assert logins.ensure_login(connection, logins.LoaderLogin("fi_login_probe", "second-password")) is False
        stored = connection.execute("SELECT rolpassword, rolcanlogin, rolsuper, rolcreaterole FROM pg_authid "
                                    "WHERE rolname = 'fi_login_probe'").fetchone()
        with pytest.raises(logins.LoginError, match="a superuser"):
            logins.ensure_login(connection, logins.LoaderLogin("postgres", "x"))
        with pytest.raises(logins.LoginError, match="lowercase letters"):
            logins.ensure_login(connection, logins.LoaderLogin('x"; DROP TABLE orders; --', "x"))
    assert stored is not None and stored[0].startswith("SCRAM-SHA-256$") and stored[1:] == (True, False, False)
    server = database.server
    with psycopg.connect(host="127.0.0.1", port=server.port, dbname=database.name, user="fi_login_probe",
                         password="second-password") as connection:  # the latest password is the one that works
        assert connection.execute("SELECT 1").fetchone() == (1,)
    _run(database, "DROP ROLE fi_login_probe")
    assert "second-password" not in server.log_file.read_text(errors="replace")
