"""Apply pending migrations: one transaction each, recorded, serialized across runners by an advisory lock.

>>> [m.name for m in discover()][:3]
['0001_orders', '0002_customers', '0003_load_path_indexes']
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_FILE_NAME = re.compile(r"^(?P<version>\d{4})_(?P<slug>[a-z0-9_]+)\.sql$")
# pg_advisory_lock key: serializes concurrent runners (a retried invocation overlapping the first one).
_LOCK_KEY = 0x46494D49  # "FIMI"

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


def migrate(connection: Any, migrations: Sequence[Migration] | None = None) -> MigrationReport:
    """Apply the pending ``migrations`` (default: the shipped ones) over a psycopg connection in autocommit mode."""
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
            try:
                with connection.transaction():
                    connection.execute(migration.sql)
                    connection.execute("INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                                       (migration.version, migration.name, migration.checksum))
            except Exception as error:
                raise MigrationError(f"{migration.name} failed and was rolled back: {error}") from error
            applied.append(migration.name)
    finally:
        if not connection.closed and not connection.broken:
            connection.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return MigrationReport(tuple(applied), tuple(m.name for m in migrations if m.version in recorded),
                           checksum(migrations))


def _verify_recorded(recorded: dict[int, tuple[str, str]], migrations: Sequence[Migration]) -> None:
    shipped = {m.version: m for m in migrations}
    for version, (name, digest) in sorted(recorded.items()):
        migration = shipped.get(version)
        if migration is None:
            raise MigrationError(f"the database has migration {name}, which these migrations do not ship: "
                                 "deploy the code that has it")
        if migration.checksum != digest:
            raise MigrationError(f"{migration.name} changed after it was applied; add a new migration instead")
