"""PostgreSQL credentials from Secrets Manager, and one connection kept for the life of an execution environment.

Credentials are never in the environment: the function gets the secret's name or ARN (``DATABASE_SECRET_ID``)
and reads the secret once per cold start, again only when the database rejects the password (a rotation). The
secret holds JSON in the shape RDS and Aurora write (``username``, ``password`` and, optionally, ``host``,
``port``, ``dbname``); host, port and database name may also come from the environment, since they are not
secret. ``ConnectionKeeper`` opens one connection on first use, hands the same one to every later invocation of
a warm environment, and opens a new one when the last one broke (a failover, a restart, an idle timeout).

Example::

    keeper = ConnectionKeeper(lambda: fetch_credentials(secretsmanager, secret_id), settings)
    with keeper.connection() as connection:      # the kept connection, healthy or replaced
        with connection.transaction():
            ...
    # an error inside the block that broke the connection makes the keeper drop it; the next call reconnects

psycopg is imported where it is used, so handlers that never talk to PostgreSQL don't pay for it.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from common.env import ConfigurationError, read_int, read_str

if TYPE_CHECKING:
    import psycopg

_log = logging.getLogger(__name__)

# libpq's sslmode values; "require" encrypts, "verify-full" also checks the server's certificate and name.
SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
# libpq's channel_binding values. "require" (the default) authenticates the server without a CA bundle: libpq then
# accepts only SCRAM-SHA-256-PLUS, whose proof is bound to the TLS channel, and refuses every method that would send
# the password (cleartext, md5) or skip authentication. sslmode=require alone checks no certificate, so a machine in
# the middle with a certificate of its own could ask for the password in clear and get it.
CHANNEL_BINDINGS = ("disable", "prefer", "require")
# SQLSTATE 28P01 (invalid_password) and 28000 (invalid_authorization_specification): credentials rotated.
_AUTH_FAILURES = ("28P01", "28000")


def _refused_credentials(error: Exception) -> bool:
    """The server refused the login after a password was sent (a rotated password, most likely).

    A failed connection attempt carries no SQLSTATE (libpq has no result to take it from), so psycopg's
    ``sqlstate`` is None there; the attempt's connection says whether a password was used
    (``PQconnectionUsedPassword``). Refusals after it for other reasons (too many connections) cost one more read
    of the secret, then fail the same way.
    """
    if getattr(error, "sqlstate", None) in _AUTH_FAILURES:
        return True
    pgconn = getattr(error, "pgconn", None)
    return bool(pgconn is not None and getattr(pgconn, "used_password", False))


class CredentialsError(RuntimeError):
    """The secret is missing, unreadable or not database credentials; the message names the secret, never a value.

    ``code`` is Secrets Manager's error code when the read itself failed (``ResourceNotFoundException`` also when
    the secret exists but has no value yet).
    """

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Credentials:
    host: str
    port: int
    dbname: str
    username: str
    password: str = field(repr=False)


@dataclass(frozen=True)
class DatabaseSettings:
    """Where and how to connect; everything here is safe to keep in the environment."""

    secret_id: str
    host: str | None = None
    port: int | None = None
    dbname: str | None = None
    sslmode: str = "require"
    channel_binding: str = "require"
    connect_timeout_seconds: int = 5
    statement_timeout_ms: int = 30_000
    application_name: str = "lambda"

    @classmethod
    def from_env(cls, env: Mapping[str, str], *, application_name: str) -> DatabaseSettings:
        port = env.get("DATABASE_PORT", "").strip()
        sslmode = env.get("DATABASE_SSLMODE", "").strip() or "require"
        if sslmode not in SSL_MODES:
            raise ConfigurationError(f"environment variable DATABASE_SSLMODE={sslmode!r} is not one of {SSL_MODES}")
        channel_binding = env.get("DATABASE_CHANNEL_BINDING", "").strip() or "require"
        if channel_binding not in CHANNEL_BINDINGS:
            raise ConfigurationError(f"environment variable DATABASE_CHANNEL_BINDING={channel_binding!r} is not one "
                                     f"of {CHANNEL_BINDINGS}")
        return cls(
            secret_id=read_str(env, "DATABASE_SECRET_ID", pattern=r"[A-Za-z0-9/_+=.@:!-]{1,2048}",
                               meaning="the name or ARN of the Secrets Manager secret with the credentials"),
            host=env.get("DATABASE_HOST", "").strip() or None,
            port=read_int(env, "DATABASE_PORT", default=5432, minimum=1, maximum=65535) if port else None,
            dbname=env.get("DATABASE_NAME", "").strip() or None,
            sslmode=sslmode,
            channel_binding=channel_binding,
            connect_timeout_seconds=read_int(env, "DATABASE_CONNECT_TIMEOUT_SECONDS", default=5, minimum=1,
                                             maximum=60),
            statement_timeout_ms=read_int(env, "DATABASE_STATEMENT_TIMEOUT_MS", default=30_000, minimum=100,
                                          maximum=900_000),
            application_name=application_name,
        )


def credentials_from_secret(secret_string: str, settings: DatabaseSettings) -> Credentials:
    """Parse an RDS-style secret; host, port and database name from the settings win over the secret's."""
    try:
        document = json.loads(secret_string)
    except (TypeError, ValueError):
        raise CredentialsError(f"secret {settings.secret_id} is not JSON") from None
    if not isinstance(document, dict):
        raise CredentialsError(f"secret {settings.secret_id} is not a JSON object")
    missing = [key for key in ("username", "password") if not isinstance(document.get(key), str) or not document[key]]
    host = settings.host or document.get("host")
    dbname = settings.dbname or document.get("dbname")
    if not host:
        missing.append("host (in the secret or DATABASE_HOST)")
    if not dbname:
        missing.append("dbname (in the secret or DATABASE_NAME)")
    if missing:
        raise CredentialsError(f"secret {settings.secret_id} lacks {', '.join(missing)}")
    raw_port = settings.port or document.get("port") or 5432
    try:
        port = int(raw_port)
    except (TypeError, ValueError):
        raise CredentialsError(f"secret {settings.secret_id} has a port that is not a number") from None
    return Credentials(host=str(host), port=port, dbname=str(dbname), username=document["username"],
                       password=document["password"])


def fetch_credentials(secretsmanager: Any, settings: DatabaseSettings) -> Credentials:
    """Read the secret (``secretsmanager:GetSecretValue`` on exactly ``settings.secret_id``)."""
    return credentials_from_secret(read_secret_string(secretsmanager, settings.secret_id), settings)


def read_secret_string(secretsmanager: Any, secret_id: str) -> str:
    """The secret's current value (``secretsmanager:GetSecretValue`` on exactly ``secret_id``)."""
    from botocore.exceptions import ClientError

    try:
        response = secretsmanager.get_secret_value(SecretId=secret_id)
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "Unknown")
        raise CredentialsError(f"cannot read secret {secret_id}: {code}", code) from None
    return str(response.get("SecretString", ""))


class ConnectionKeeper:
    """One PostgreSQL connection per execution environment, replaced when it breaks.

    ``credentials`` is called on the first connect and again after an authentication failure (rotated
    password); otherwise the credentials read at the first connect are reused.
    """

    def __init__(self, credentials: Callable[[], Credentials], settings: DatabaseSettings) -> None:
        self._credentials_source = credentials
        self._settings = settings
        self._credentials: Credentials | None = None
        self._connection: psycopg.Connection[Any] | None = None
        self.connects = 0  # how many connections this environment opened (a metric, and for tests)

    def _connect(self) -> psycopg.Connection[Any]:
        import psycopg

        for attempt in (1, 2):
            if self._credentials is None:
                self._credentials = self._credentials_source()
            creds = self._credentials
            try:
                connection = psycopg.connect(
                    host=creds.host, port=creds.port, dbname=creds.dbname, user=creds.username,
                    password=creds.password, sslmode=self._settings.sslmode,
                    channel_binding=self._settings.channel_binding,
                    connect_timeout=self._settings.connect_timeout_seconds,
                    application_name=self._settings.application_name,
                    options=f"-c statement_timeout={self._settings.statement_timeout_ms}",
                    # TCP keepalives notice a dead peer (a failed-over writer) instead of waiting forever.
                    keepalives=1, keepalives_idle=30, keepalives_interval=10, keepalives_count=3,
                )
            except psycopg.OperationalError as error:
                if attempt == 1 and _refused_credentials(error):
                    _log.warning("database rejected the credentials; reading the secret again (rotation)")
                    self._credentials = None
                    continue
                raise
            self.connects += 1
            return connection
        raise AssertionError("unreachable")  # pragma: no cover

    def _answers(self) -> bool:
        """One round trip on the kept connection: a server that ended it while the environment was frozen (a
        failover, an idle timeout, an administrator) is found here, not by the batch's first statement, which would
        fail the whole batch and send it back to the queue for a visibility timeout."""
        import psycopg

        connection = self._connection
        assert connection is not None
        if connection.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            return True  # a transaction left open is rolled back below, which finds a dead server too
        try:
            connection.autocommit = True  # the probe opens no transaction; switching sends nothing
            try:
                connection.execute("SELECT 1")
            finally:
                if not connection.broken and not connection.closed:
                    connection.autocommit = False
        except psycopg.Error:
            _log.warning("the kept database connection was closed by the server; connecting again")
            return False
        return True

    def healthy(self) -> bool:
        connection = self._connection
        return connection is not None and not connection.closed and not connection.broken

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        """The kept connection, idle (a new one when there is none or it broke); dropped if it broke in the block."""
        if self.healthy() and not self._answers():
            self.close()
        if not self.healthy():
            self.close()
            self._connection = self._connect()
        connection = self._connection
        assert connection is not None
        from psycopg.pq import TransactionStatus

        if connection.info.transaction_status != TransactionStatus.IDLE:
            # A transaction left open by an earlier failure: a new one would become a savepoint inside it, and its
            # "commit" would commit nothing. Start clean.
            connection.rollback()
        try:
            yield connection
        except BaseException:
            if connection.broken or connection.closed:
                self.close()
            raise

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):  # closing a dead connection may fail; it is dropped either way
                self._connection.close()
        self._connection = None

