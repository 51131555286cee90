"""Fixtures for the file-ingestion handler tests: a real PostgreSQL server, the pipeline in moto, and the handler
invoked the way Lambda would, with its AWS calls recorded as ``file_ingestion``'s.

The function's environment is exactly what the dev stack gives it (``function_environment``, synthesized in moto's
region); the moto bucket, queue and DLQ carry the stack's names and queue settings, and the credentials' secret has
the stack's name and holds the test server's credentials in RDS's format. PostgreSQL is a throwaway cluster the
session starts (``tests/support/postgres.py``) with TLS, so the handler connects with ``sslmode=require`` as in
production; every test gets a fresh database cloned from a migrated template. The handler logs in as the loader,
as in production: the user the stack's loader secret names, made by the migration function's ``logins`` with a
password of the test's, and the loader's secret holds that user's credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import psycopg
import pytest

from tests.handlers.conftest import ACCOUNT, REGION, LogCapture, SqsClock, SqsEventSource, captured_logs
from tests.support import aws_calls
from tests.support.postgres import PostgresServer
from tests.support.stacks import function_environment, shipped_stack

PACKAGE = "file_ingestion"
MIGRATION_PACKAGE = "file_ingestion_migrate"
ENVIRONMENT = function_environment(PACKAGE)
MIGRATION_ENVIRONMENT = function_environment(MIGRATION_PACKAGE)
_STACK = shipped_stack("dev")
QUEUE = _STACK.named("fileingest-incoming").inputs
DLQ = _STACK.named("fileingest-incoming-dlq").inputs
WORKER = _STACK.named("fileingest-worker").inputs
MAPPING = _STACK.named("fileingest-worker-source").inputs
NOTIFICATION = next(r for r in _STACK.of_type("aws:s3/bucketNotification:BucketNotification")
                    if r.inputs["bucket"] == ENVIRONMENT["INPUT_BUCKET"]).inputs

BUCKET = ENVIRONMENT["INPUT_BUCKET"]
SECRET_ID = ENVIRONMENT["DATABASE_SECRET_ID"]  # the loader's secret
ADMIN_SECRET_ID = MIGRATION_ENVIRONMENT["DATABASE_SECRET_ID"]
LOADER_USER = json.loads(_STACK.named("fileingest-loader-secret-value").inputs["secretString"])["username"]
VISIBILITY_TIMEOUT = int(QUEUE["visibilityTimeoutSeconds"])
MAX_RECEIVE_COUNT = int(json.loads(QUEUE["redrivePolicy"])["maxReceiveCount"])
BATCH_SIZE = int(MAPPING["batchSize"])


def _secretsmanager(params: Any, partition: str, region: str, account: str) -> list[str]:
    """The ARN IAM authorizes a request naming a secret by name against: the name plus Secrets Manager's suffix."""
    secret = str(params.get("SecretId", ""))
    if not secret:
        return []
    return [secret if secret.startswith("arn:") else f"arn:{partition}:secretsmanager:{region}:{account}:"
                                                     f"secret:{secret}-??????"]


aws_calls.register_resolver("secretsmanager", _secretsmanager)

# Both handler modules read their configuration at import, as at a cold start, so the variables are set first.
os.environ.update(ENVIRONMENT)

from file_ingestion import app, clients  # noqa: E402
from file_ingestion_migrate import logins, runner  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_event_loop() -> Iterator[None]:
    """Powertools' async batch processor runs the batch on an event loop and leaves none set when it ends; later
    tests in this process (Pulumi's mocks) expect the main thread to have one, as a new process does."""
    yield
    asyncio.set_event_loop(asyncio.new_event_loop())


# --- PostgreSQL ----------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """One server for the session (durability off: a test cluster needs speed, not crash safety)."""
    with PostgresServer.start(settings={"fsync": "off", "synchronous_commit": "off",
                                        "full_page_writes": "off"}) as server:
        yield server


@pytest.fixture(scope="session")
def migrated_template(postgres: PostgresServer) -> str:
    """A database with every migration applied, cloned for each test."""
    name = "fi_template"
    postgres.create_database(name)
    with psycopg.connect(**postgres.conninfo(name)) as connection:
        runner.migrate(connection)
    return name


_databases = itertools.count()


@dataclass
class Database:
    server: PostgresServer
    name: str

    def connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(**self.server.conninfo(self.name), autocommit=True)

    def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        with self.connect() as connection:
            return connection.execute(sql, params or None).fetchall()  # type: ignore[arg-type]

    def loader_secret(self) -> dict[str, Any]:
        """The loader's credentials, in the loader secret's shape, with a new password set in the database."""
        password = secrets.token_urlsafe(24)
        with self.connect() as connection:
            logins.ensure_login(connection, logins.LoaderLogin(LOADER_USER, password))
            # The session's server runs with synchronous_commit off: a test that crashes it (stop "immediate") would
            # otherwise lose this password with the last commits, and the loader would be refused after recovery.
            connection.execute("CHECKPOINT")
        return {**self.server.secret(self.name), "username": LOADER_USER, "password": password}

    def count(self, table: str) -> int:
        return int(self.query(f"SELECT count(*) FROM {table}")[0][0])

    def keys(self, table: str, key: str) -> list[tuple[str, str]]:
        """(source key, record key) of every row, duplicates included."""
        return [(row[0], row[1]) for row in self.query(f"SELECT f.source_key, t.{key} FROM {table} t "
                                                       "JOIN ingested_files f USING (file_id)")]

    def source_keys(self, table: str) -> set[str]:
        """The object keys of the files with rows in ``table``."""
        return {row[0] for row in self.query(f"SELECT DISTINCT f.source_key FROM {table} t "
                                             "JOIN ingested_files f USING (file_id)")}


@pytest.fixture
def database(postgres: PostgresServer, migrated_template: str) -> Iterator[Database]:
    name = f"fi_test_{next(_databases)}"
    if not postgres.running:
        postgres.run()
    postgres.create_database(name, template=migrated_template)
    yield Database(postgres, name)
    if not postgres.running:
        postgres.run()
    postgres.drop_database(name)


@pytest.fixture
def empty_database(postgres: PostgresServer) -> Iterator[Database]:
    name = f"fi_empty_{next(_databases)}"
    postgres.create_database(name)
    yield Database(postgres, name)
    postgres.drop_database(name)


# --- the pipeline in moto -------------------------------------------------------------------------------------


@dataclass
class Pipeline:
    """The bucket notifying the queue (with its DLQ) under the stack's rules, and the credentials' secret."""

    s3: Any
    sqs: Any
    queue_url: str
    dlq_url: str

    def put(self, key: str, body: bytes | str) -> None:
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode() if isinstance(body, str) else body)

    def send(self, body: str) -> str:
        return self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)["MessageId"]

    def notifications(self, source: SqsEventSource) -> list[dict[str, Any]]:
        """Receive every visible message; S3's test event (sent when notifications are configured) is acknowledged."""
        messages = []
        for message in source.receive():
            if "Records" in json.loads(message["Body"]):
                messages.append(message)
            else:
                self.acknowledge([message])
        return messages

    def acknowledge(self, messages: list[dict[str, Any]]) -> None:
        """Delete as the event source does; a stale receipt handle is ignored, as SQS ignores it."""
        for message in messages:
            with contextlib.suppress(self.sqs.exceptions.ReceiptHandleIsInvalid):
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def depth(self, queue_url: str | None = None) -> int:
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        attributes = self.sqs.get_queue_attributes(QueueUrl=queue_url or self.queue_url, AttributeNames=names)
        return sum(int(attributes["Attributes"][name]) for name in names)

    def dead_letters(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = []
        while page := self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10, AttributeNames=["All"],
                                               VisibilityTimeout=3600).get("Messages", []):
            messages.extend(page)
        return messages


def _notification_configuration(queue_arn: str) -> dict[str, Any]:
    rules = []
    for rule in NOTIFICATION["queues"]:
        filters = [{"Name": "prefix", "Value": rule["filterPrefix"]}]
        if rule.get("filterSuffix"):
            filters.append({"Name": "suffix", "Value": rule["filterSuffix"]})
        rules.append({"QueueArn": queue_arn, "Events": rule["events"], "Filter": {"Key": {"FilterRules": filters}}})
    return {"QueueConfigurations": rules}


def _announce_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    """S3 names the created version in the notification of a versioned bucket (``versionId``); moto leaves it out."""
    import moto.s3.notifications as notifications

    build = notifications._get_s3_event

    def with_version(event_name: str, bucket: Any, key: Any, notification_id: str) -> dict[str, Any]:
        event = build(event_name, bucket, key, notification_id)
        if getattr(bucket, "is_versioned", False) and getattr(key, "version_id", None):
            event["Records"][0]["s3"]["object"]["versionId"] = key.version_id
        return event

    monkeypatch.setattr(notifications, "_get_s3_event", with_version)


@pytest.fixture
def pipeline(aws: None, database: Database, monkeypatch: pytest.MonkeyPatch) -> Pipeline:
    _announce_versions(monkeypatch)
    s3 = boto3.client("s3", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    dlq_url = sqs.create_queue(QueueName=DLQ["name"])["QueueUrl"]
    dlq_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{DLQ['name']}"
    redrive = {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(MAX_RECEIVE_COUNT)}
    queue_url = sqs.create_queue(QueueName=QUEUE["name"], Attributes={
        "RedrivePolicy": json.dumps(redrive), "VisibilityTimeout": str(VISIBILITY_TIMEOUT),
        "MessageRetentionPeriod": str(int(QUEUE["messageRetentionSeconds"])),
        "ReceiveMessageWaitTimeSeconds": "0"})["QueueUrl"]
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_notification_configuration(
        Bucket=BUCKET, NotificationConfiguration=_notification_configuration(f"arn:aws:sqs:{REGION}:{ACCOUNT}:"
                                                                             f"{QUEUE['name']}"))
    # S3 sends a test event when the configuration is saved; real S3 puts it on the queue too.
    boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name=SECRET_ID, SecretString=json.dumps(database.loader_secret()))
    return Pipeline(s3=s3, sqs=sqs, queue_url=queue_url, dlq_url=dlq_url)


# --- the handler ----------------------------------------------------------------------------------------------


@pytest.fixture
def ingest_app(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The handler module with fresh clients and a fresh kept connection (a new execution environment)."""
    clients.reset()
    keeper = app.ConnectionKeeper(lambda: app.fetch_credentials(clients.secretsmanager(), app.settings.database),
                                  app.settings.database)
    monkeypatch.setattr(app, "database", keeper)
    yield app
    keeper.close()
    clients.reset()


class Invoker:
    """Calls the handler as Lambda would, recording its AWS calls as the function's."""

    def __init__(self, handler: Callable[..., Any], context_factory: Callable[..., Any]) -> None:
        self._handler = handler
        self._context_factory = context_factory
        self.invocations = 0

    def __call__(self, event: Any, context: Any = None) -> Any:
        self.invocations += 1
        with aws_calls.recording(PACKAGE, environment=ENVIRONMENT):
            return self._handler(event, context or self._context_factory(function_name=WORKER["name"],
                                                                         memory_limit_in_mb=int(WORKER["memorySize"])))


@pytest.fixture
def invoke(ingest_app: Any, lambda_context_factory: Callable[..., Any]) -> Invoker:
    return Invoker(ingest_app.handler, lambda_context_factory)


@pytest.fixture
def event_source(pipeline: Pipeline, invoke: Invoker,
                 sqs_event_source: Callable[..., SqsEventSource]) -> SqsEventSource:
    """Lambda's event source mapping with the stack's batch size and the queue's visibility timeout."""
    return sqs_event_source(pipeline.queue_url, invoke, batch_size=BATCH_SIZE, visibility_timeout=VISIBILITY_TIMEOUT)


class Clock(SqsClock):
    """moto's SQS clock, with a step past the stack's visibility timeout."""

    def expire_visibility(self) -> None:
        self.advance(VISIBILITY_TIMEOUT + 1)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    return Clock(monkeypatch)




@pytest.fixture
def logs(ingest_app: Any) -> Iterator[LogCapture]:
    with captured_logs(ingest_app.logger) as capture:
        yield capture


# --- data -----------------------------------------------------------------------------------------------------


def order(order_id: str, **overrides: Any) -> dict[str, Any]:
    return {"order_id": order_id, "customer_id": f"C-{order_id[-3:]}", "order_date": "2024-05-17", "status": "paid",
            "currency": "EUR", "total_amount": "129.90", "item_count": 3, **overrides}


def customer(customer_id: str, **overrides: Any) -> dict[str, Any]:
    return {"customer_id": customer_id, "email": f"{customer_id.lower()}@example.com", "full_name": "Ada Lovelace",
            "country": "GB", "created_at": "2024-05-17T10:15:00+00:00", "marketing_opt_in": False, **overrides}


def orders_file(prefix: str, count: int) -> list[dict[str, Any]]:
    return [order(f"{prefix}-{index:04d}") for index in range(count)]
