"""Apply pending migrations: one transaction each, recorded, serialized across runners by an advisory lock.

A migration that locks a table the loader writes (``LOCK TABLE``, ``ALTER TABLE``) must not queue behind a running
batch for long: a waiting ACCESS EXCLUSIVE request blocks every later reader and writer of the table too, so the
whole pipeline would stall behind it. Each migration therefore runs with ``lock_timeout`` (default
``LOCK_TIMEOUT_MS``): when it cannot take its locks in that time, its transaction is rolled back, the loads go on,
and it is tried again after a pause, until ``deadline`` (a ``time.monotonic()`` instant); it then fails clearly. Its
statements are bounded by ``statement_timeout`` (default ``STATEMENT_TIMEOUT_MS``), which bounds how long it can
hold the locks it took: loads queued behind it wait at most their own statement timeout, fail and are retried by
SQS, nothing lost.

>>> [m.name for m in discover()][:3]
['0001_orders', '0002_customers', '0003_load_path_indexes']
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_FILE_NAME = re.compile(r"^(?P<version>\d{4})_(?P<slug>[a-z0-9_]+)\.sql$")
# pg_advisory_lock key: serializes concurrent runners (a retried invocation overlapping the first one).
_LOCK_KEY = 0x46494D49  # "FIMI"
# A load waits at most this long behind a migration that queued for its tables' locks (every later load queues
# behind the waiting request): a second, well inside a load's statement timeout.
LOCK_TIMEOUT_MS = 1_000
# Longest statement of a migration, so the locks it holds are bounded too; inside the function's 300 s default.
STATEMENT_TIMEOUT_MS = 240_000
# Pause between attempts to take the locks: long enough for a running batch (one transaction of seconds) to commit.
RETRY_PAUSE_SECONDS = 2.0
_LOCK_NOT_AVAILABLE = "55P03"

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version     integer     PRIMARY KEY,
    name        text        NOT NULL,
    checksum    text        NOT NULL,
    applied_at  timestamptz NOT NULL DEFAULT now()
)
"""


class MigrationError(RuntimeError):
    """The migrations on disk and the ones recorded in the database disagree, or one failed."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Every ``NNNN_<name>.sql`` in order; versions must run 1, 2, 3... with no gap or repeat."""
    migrations = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if match is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_<lowercase_name>.sql")
        migrations.append(Migration(int(match["version"]), path.stem, path.read_text(encoding="utf-8")))
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise MigrationError(f"migration versions must be 1..{len(versions)} without gaps or repeats, got {versions}")
    return migrations


def checksum(migrations: Sequence[Migration]) -> str:
    """One digest of every migration's file name and content (what ``pulumi up`` keys the invocation on)."""
    digest = hashlib.sha256()
    for migration in migrations:
        digest.update(f"{migration.name}.sql\0{migration.checksum}\n".encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class MigrationReport:
    applied: tuple[str, ...]
    already_applied: tuple[str, ...]
    checksum: str

    @property
    def version(self) -> int:
        names = self.already_applied + self.applied
        return max((int(name[:4]) for name in names), default=0)


def migrate(connection: Any, migrations: Sequence[Migration] | None = None, *, lock_timeout_ms: int = LOCK_TIMEOUT_MS,
            statement_timeout_ms: int = STATEMENT_TIMEOUT_MS, deadline: float | None = None,
            pause_seconds: float = RETRY_PAUSE_SECONDS) -> MigrationReport:
    """Apply the pending ``migrations`` (default: the shipped ones) over a psycopg connection in autocommit mode.

    A migration that cannot take its locks within ``lock_timeout_ms`` is rolled back and tried again every
    ``pause_seconds`` until ``deadline`` (``time.monotonic()``; default: one minute from now), then fails.
    """
    deadline = time.monotonic() + 60 if deadline is None else deadline
    migrations = list(discover() if migrations is None else migrations)
    connection.autocommit = True
    connection.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        connection.execute(_LEDGER)
        recorded = {row[0]: (row[1], row[2]) for row in
                    connection.execute("SELECT version, name, checksum FROM schema_migrations").fetchall()}
        _verify_recorded(recorded, migrations)
        applied = []
        for migration in migrations:
            if migration.version in recorded:
                continue
            _apply(connection, migration, lock_timeout_ms, statement_timeout_ms, deadline, pause_seconds)
            applied.append(migration.name)
    finally:
        if not connection.closed and not connection.broken:
            connection.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return MigrationReport(tuple(applied), tuple(m.name for m in migrations if m.version in recorded),
                           checksum(migrations))


def _apply(connection: Any, migration: Migration, lock_timeout_ms: int, statement_timeout_ms: int, deadline: float,
           pause_seconds: float) -> None:
    """One migration in one transaction, retried while its locks are busy (see the module's docstring)."""
    attempts = 0
    while True:
        attempts += 1
        try:
            with connection.transaction():
                # SET LOCAL: the bounds end with the transaction, whatever the migration itself sets.
                connection.execute(f"SET LOCAL lock_timeout = {int(lock_timeout_ms)}")
                connection.execute(f"SET LOCAL statement_timeout = {int(statement_timeout_ms)}")
                connection.execute(migration.sql)
                connection.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                                   (migration.version, migration.name, migration.checksum))
            return
        except Exception as error:
            busy = getattr(error, "sqlstate", None) == _LOCK_NOT_AVAILABLE
            if busy and time.monotonic() + pause_seconds < deadline:
                time.sleep(pause_seconds)
                continue
            if busy:
                raise MigrationError(f"{migration.name} could not take its locks within {lock_timeout_ms} ms in "
                                     f"{attempts} attempts (the tables stayed busy with loads); nothing was changed: "
                                     "run it again, or at a quieter time") from error
            raise MigrationError(f"{migration.name} failed and was rolled back: {error}") from error


def _verify_recorded(recorded: dict[int, tuple[str, str]], migrations: Sequence[Migration]) -> None:
    shipped = {m.version: m for m in migrations}
    for version, (name, digest) in sorted(recorded.items()):
        migration = shipped.get(version)
        if migration is None:
            raise MigrationError(f"the database has migration {name}, which these migrations do not ship: "
                                 "deploy the code that has it")
        if migration.checksum != digest:
            raise MigrationError(f"{migration.name} changed after it was applied; add a new migration instead")
