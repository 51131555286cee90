"""``python -m file_ingestion_migrate``: apply the migrations from a workstation or CI (``make migrate``).

The database is named by ``--dsn`` or ``DATABASE_URL`` (``postgresql://user:password@host:port/dbname``), or by
``--secret-id`` (a Secrets Manager secret, read with the caller's AWS credentials) for a database reachable from
where this runs. With ``--loader-secret-id`` it also makes the loader's login agree with the loader's secret, as the
migration function does. Prints what it applied; exits 1 on a migration error.
"""

from __future__ import annotations

import argparse
import os
import sys

from file_ingestion_migrate import runner


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m file_ingestion_migrate", description=__doc__.splitlines()[0])
    parser.add_argument("--dsn", default=os.environ.get("DATABASE_URL"), help="libpq URL (default: $DATABASE_URL)")
    parser.add_argument("--secret-id", help="Secrets Manager secret with the credentials, instead of a DSN")
    parser.add_argument("--loader-secret-id", help="the loader's secret: create or update its login from it")
    parser.add_argument("--checksum", action="store_true", help="print the migrations' checksum and exit")
    args = parser.parse_args(argv)
    if args.checksum:
        print(runner.checksum(runner.discover()))
        return 0
    import psycopg

    if args.secret_id:
        import boto3

        from common.postgres import DatabaseSettings, fetch_credentials

        settings = DatabaseSettings.from_env({**os.environ, "DATABASE_SECRET_ID": args.secret_id},
                                             application_name="file-ingestion-migrate")
        creds = fetch_credentials(boto3.client("secretsmanager"), settings)
        connection = psycopg.connect(host=creds.host, port=creds.port, dbname=creds.dbname, user=creds.username,
                                     password=creds.password, sslmode=settings.sslmode,
                                     channel_binding=settings.channel_binding)
    elif args.dsn:
        connection = psycopg.connect(args.dsn)
    else:
        parser.error("name the database with --dsn, DATABASE_URL or --secret-id")
    try:
        report = runner.migrate(connection)
        if args.loader_secret_id:
            import json

            import boto3

            from common.postgres import read_secret_string
            from file_ingestion_migrate import logins

            document = json.loads(read_secret_string(boto3.client("secretsmanager"), args.loader_secret_id))
            logins.ensure_login(connection, logins.LoaderLogin(document["username"], document["password"]))
            print(f"loader login {document['username']} set from {args.loader_secret_id}")
    except runner.MigrationError as error:
        print(f"migration failed: {error}", file=sys.stderr)
        return 1
    finally:
        connection.close()
    for name in report.applied:
        print(f"applied {name}")
    print(f"schema at version {report.version} ({len(report.applied)} applied, "
          f"{len(report.already_applied)} already applied)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
