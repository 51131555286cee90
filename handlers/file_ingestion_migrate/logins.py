"""The loader's login: the user its secret names, with the secret's password, a member of ``file_ingestion_loader``.

The stack generates the loader's password into the loader's secret (a secret version it creates with the secret);
the migration function, which connects as the admin, makes the database agree with that secret after applying the
migrations: it creates the user when it is missing, sets its password and grants it the loader's group role
(``0005_loader_role.sql``). Every step is idempotent, so running it again with the same secret changes nothing,
and after a rotation (which changes the secret and the database together) it sets what is already set.

The password never reaches the server or its logs in clear: libpq turns it into a SCRAM-SHA-256 verifier here
(``PQencryptPasswordConn``), and only the verifier is sent.

>>> login = LoaderLogin(username="dev_fileingest_loader", password="...")  # doctest: +SKIP
>>> ensure_login(connection, login)  # doctest: +SKIP
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

LOADER_GROUP = "file_ingestion_loader"
# PostgreSQL's names are 63 bytes at most. The stack names its loader in 57 at most (components/pipelines/
# file_ingestion.py, loader_username), leaving room for the "_clone" the alternating-users rotation adds; after a
# rotation the secret names that clone, which this function must accept too.
_USERNAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class LoginError(RuntimeError):
    """The loader's secret names a user this function will not create; the message names the user, never a value."""


@dataclass(frozen=True)
class LoaderLogin:
    username: str
    password: str = field(repr=False)


def ensure_login(connection: Any, login: LoaderLogin) -> bool:
    """Make ``login`` a user of the database with that password, in the loader's group; True when it was created.

    ``connection`` is a psycopg connection in autocommit mode as a role that may create roles (the admin).
    """
    from psycopg import sql

    if not _USERNAME.match(login.username):
        raise LoginError(f"the loader's secret names user {login.username[:80]!r}: expected lowercase letters, digits "
                         "and underscores, at most 63 characters")
    verifier = connection.pgconn.encrypt_password(login.password.encode(), login.username.encode(),
                                                  b"scram-sha-256").decode()
    user = sql.Identifier(login.username)
    with connection.transaction():
        existing = connection.execute("SELECT rolsuper FROM pg_roles WHERE rolname = %s", (login.username,)).fetchone()
        if existing is not None and existing[0]:
            raise LoginError(f"the loader's secret names {login.username!r}, a superuser: the loader must log in as a "
                             "user of its own")
        # Utility statements take no parameters: the verifier goes in as a quoted literal.
        statement = "ALTER ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT PASSWORD {}" \
            if existing is not None else \
            "CREATE ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE INHERIT PASSWORD {}"
        connection.execute(sql.SQL(statement).format(user, sql.Literal(verifier)))
        connection.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(LOADER_GROUP), user))
    return existing is None
