"""A real, throwaway PostgreSQL server for tests and benchmarks, started and stopped by the suite itself.

The server is Debian's PostgreSQL (``/usr/lib/postgresql/<version>/bin``, or whatever ``pg_config --bindir`` or the
``PATH`` offers). ``initdb`` and ``pg_ctl`` refuse to run as root, and CI runs as root, so as root every server
command runs as the ``postgres`` user the package creates (``runuser -u postgres``), in a temporary directory that
user owns. The cluster listens on 127.0.0.1 at a free port and authenticates with a password (scram-sha-256), as a
managed database does, so the code under test connects exactly as in production: with credentials it read from
Secrets Manager.

Example::

    with PostgresServer.start() as server:
        server.create_database("ingest")
        dsn = server.dsn("ingest")        # postgresql://postgres:...@127.0.0.1:<port>/ingest
        server.stop()                      # the database goes down (for outage tests) ...
        server.restart()                   # ... and comes back on the same port with the same data

``make test`` installs the server package when it is missing (see the Makefile); without it ``start`` raises
``PostgresUnavailableError`` with what to install.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SERVER_USER = "postgres"  # the OS user Debian's package creates; also the database superuser here
SUPERUSER = "postgres"
_START_TIMEOUT_SECONDS = 60


class PostgresUnavailableError(RuntimeError):
    """No PostgreSQL server binaries on this machine (or no way to run them)."""


def find_bindir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``: the newest Debian version, ``pg_config``, or the PATH."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"),
                        key=lambda path: int(Path(path).parent.parent.name) if Path(path).parent.parent.name.isdigit()
                        else 0, reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    pg_config = shutil.which("pg_config")
    if pg_config:
        bindir = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False).stdout.strip()
        if bindir and (Path(bindir) / "pg_ctl").exists() and (Path(bindir) / "initdb").exists():
            return Path(bindir)
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return Path(on_path).resolve().parent
    raise PostgresUnavailableError(
        "PostgreSQL server binaries (initdb, pg_ctl) not found: install Debian's `postgresql` package "
        "(`apt-get install -y postgresql`; `make test` does this itself when run as root)")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class PostgresServer:
    """One throwaway cluster: its directory, port and superuser password."""

    bindir: Path
    root: Path
    port: int
    password: str
    settings: dict[str, str] = field(default_factory=dict)
    _running: bool = False

    # --- life cycle ----------------------------------------------------------------------------------------

    @classmethod
    @contextlib.contextmanager
    def start(cls, *, settings: dict[str, str] | None = None) -> Iterator[PostgresServer]:
        """Create, start, yield and finally stop and delete a cluster.

        ``settings`` are server parameters (``{"fsync": "off"}`` makes a test cluster faster; benchmarks keep the
        durable defaults).
        """
        server = cls.create(settings=settings)
        try:
            server.run()
            yield server
        finally:
            server.destroy()

    @classmethod
    def create(cls, *, settings: dict[str, str] | None = None) -> PostgresServer:
        bindir = find_bindir()
        root = Path(tempfile.mkdtemp(prefix="pg-test-"))
        server = cls(bindir=bindir, root=root, port=_free_port(), password=secrets.token_urlsafe(18),
                     settings=dict(settings or {}))
        try:
            server._own(root)
            password_file = root / "password"
            password_file.write_text(server.password + "\n")
            server._own(password_file)
            server._server_command(
                "initdb", "-D", str(server.data_dir), "-U", SUPERUSER, "--auth=scram-sha-256",
                f"--pwfile={password_file}", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync")
            password_file.unlink()
            server._self_signed_certificate()
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise
        return server

    def _self_signed_certificate(self) -> None:
        """Serve TLS, as a managed database does, so clients connect with sslmode=require (skipped without openssl)."""
        openssl = shutil.which("openssl")
        if openssl is None:
            return
        key, certificate = self.data_dir / "server.key", self.data_dir / "server.crt"
        subprocess.run([openssl, "req", "-new", "-x509", "-days", "2", "-nodes", "-subj", "/CN=127.0.0.1",
                        "-newkey", "rsa:2048", "-keyout", str(key), "-out", str(certificate)],
                       capture_output=True, check=True, timeout=60)
        for path in (key, certificate):
            self._own(path)
        self.settings.setdefault("ssl", "on")

    @property
    def tls(self) -> bool:
        return self.settings.get("ssl") == "on"

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_file(self) -> Path:
        return self.root / "server.log"

    def run(self) -> None:
        """Start the server (again, after ``stop``) on the same port, with the same data."""
        options = [f"-p {self.port}", f"-k {self.root}", "-c listen_addresses=127.0.0.1"]
        options += [f"-c {name}={value}" for name, value in sorted(self.settings.items())]
        try:
            self._server_command("pg_ctl", "-D", str(self.data_dir), "-l", str(self.log_file), "-o",
                                 " ".join(options), "-w", "-t", str(_START_TIMEOUT_SECONDS), "start")
        except subprocess.CalledProcessError as error:
            log = self.log_file.read_text(errors="replace")[-2000:] if self.log_file.exists() else ""
            raise PostgresUnavailableError(f"PostgreSQL did not start: {error.stderr or error}\n{log}") from None
        self._running = True

    def stop(self, mode: str = "fast") -> None:
        """Stop the server: ``fast`` disconnects every client and aborts their transactions, ``immediate`` crashes."""
        if self._running:
            self._server_command("pg_ctl", "-D", str(self.data_dir), "-m", mode, "-w", "stop")
            self._running = False

    def restart(self) -> None:
        self.stop()
        self.run()

    @property
    def running(self) -> bool:
        return self._running

    def destroy(self) -> None:
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    # --- databases -----------------------------------------------------------------------------------------

    def conninfo(self, database: str = "postgres") -> dict[str, Any]:
        """Connection parameters (psycopg keyword arguments) of ``database`` as the superuser."""
        return {"host": "127.0.0.1", "port": self.port, "user": SUPERUSER, "password": self.password,
                "dbname": database}

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def secret(self, database: str) -> dict[str, Any]:
        """The database's credentials in the shape of an RDS/Aurora Secrets Manager secret."""
        return {"engine": "postgres", "host": "127.0.0.1", "port": self.port, "username": SUPERUSER,
                "password": self.password, "dbname": database}

    def execute(self, sql: str, database: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(**self.conninfo(database), autocommit=True) as connection:
            connection.execute(sql)  # type: ignore[arg-type]  # test-controlled SQL, not user input

    def create_database(self, name: str, *, template: str | None = None) -> None:
        clause = f" TEMPLATE {template}" if template else ""
        self.execute(f'CREATE DATABASE "{name}"{clause}')

    def drop_database(self, name: str) -> None:
        self.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    # --- running the server's commands ---------------------------------------------------------------------

    def _as_server_user(self) -> bool:
        return os.geteuid() == 0

    def _own(self, path: Path) -> None:
        if self._as_server_user():
            try:
                user = pwd.getpwnam(SERVER_USER)
            except KeyError:
                raise PostgresUnavailableError(
                    f"running as root, but there is no `{SERVER_USER}` user to run the server as: install Debian's "
                    "`postgresql` package") from None
            os.chown(path, user.pw_uid, user.pw_gid)
            path.chmod(0o700 if path.is_dir() else 0o600)

    def _server_command(self, program: str, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / program), *args]
        if self._as_server_user():
            runuser = shutil.which("runuser") or "/usr/sbin/runuser"
            command = [runuser, "-u", SERVER_USER, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, check=True, cwd=self.root,
                              timeout=_START_TIMEOUT_SECONDS * 2)


def wait_until_accepting(server: PostgresServer, timeout: float = 10.0) -> None:
    """Block until the server accepts connections (after ``run``, ``pg_ctl -w`` normally did already)."""
    import psycopg

    deadline = time.monotonic() + timeout
    while True:
        try:
            with psycopg.connect(**server.conninfo(), connect_timeout=2):
                return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
