"""High-frequency JSON file ingestion: S3 (prefix + suffix rules) -> SQS -> Lambda batches of 100 -> PostgreSQL.

The bucket notifies the queue only of objects created under the configured rules (default ``input/`` + ``.json``),
through the stack's one notification configuration per bucket. The queue keeps messages 4 days, long-polls, and
derives its visibility timeout from the worker (6 x timeout + batching window); its DLQ pages on the first
message. The worker takes batches of 100 gathered for up to 55 s, at most 10 at a time (reserved concurrency, so
at most 10 database connections), in the database's VPC, and loads each batch over one connection in one
transaction. The credentials live only in Secrets Manager, in two secrets:

- the admin secret, read only by the migration function: an existing secret (by ARN or name), the managed secret of
  an Aurora cluster the component creates, or a secret the component creates with a known name
  (``<project>/<stack>/<pipeline>/database``) for the operator to fill in (the migration function waits a bounded
  time for its value on the first deploy);
- the loader's secret (``<project>/<stack>/<pipeline>/loader``), read only by the worker: created with a value the
  stack generates (user, password, host, port, database, and ``masterarn`` naming the admin secret for rotation),
  so it exists with a value before anything reads it. The migration function, connected as the admin, creates that
  user in the database with that password, a member of the loader's group role (migration 0005: INSERT on the
  tables, SELECT of ``ingested_files.file_id``, nothing else).

The schema comes from versioned migrations that `pulumi up` applies through a migration function in the same VPC,
invoked again whenever the migrations or the loader secret's stack-made version change. Both secrets the stack
creates rotate on a schedule (``database.rotation``): the loader's by alternating users, the admin's by its own user;
Aurora's managed secret is rotated by RDS.

The worker's role reads only the dataset prefixes (the announced version of an object, or the current one), may
list only those prefixes (``s3:ListBucket`` with an ``s3:prefix`` condition: without it S3 answers a missing key with
403, and a file deleted after its notification would be retried and dead-lettered as "access denied"), reads only
the loader's secret, and has the network-interface actions Lambda needs for a VPC function; nothing else. The
migration function's role reads the admin secret and the loader's secret (it sets the loader's password from it).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from components.blocks.access_logs import AccessLogs
from components.blocks.alarms import custom_metric
from components.blocks.bucket import READ_OBJECTS, existing_or_new_bucket, key_to_use
from components.blocks.dashboard import PipelineDashboard, Widget, batch_size_widget, metrics_widget
from components.blocks.iam import AwsEnv, Statement
from components.blocks.key import StackKey, key_use
from components.blocks.metrics import Metric
from components.blocks.migrations import SchemaMigrations
from components.blocks.naming import Naming
from components.blocks.notifications import BucketNotifications
from components.blocks.packaging import REPO_ROOT, FunctionCode
from components.blocks.queue import QueueProducer, QueueWithDlq
from components.blocks.secret_rotation import SecretRotation
from components.blocks.vpc import ServiceEndpoints, VpcPlacement
from components.blocks.worker import QueueWorker
from components.config import FileIngestionSettings

HANDLER_PACKAGE = "file_ingestion"
MIGRATION_PACKAGE = "file_ingestion_migrate"
MIGRATIONS_DIR = REPO_ROOT / "handlers" / MIGRATION_PACKAGE / "migrations"
# RDS names the master-user secrets it manages rds!cluster-<uuid> and tags each with its cluster's ARN.
_RDS_MANAGED_SECRET = "secret:rds!cluster-*"
_RDS_CLUSTER_TAG = "secretsmanager:ResourceTag/aws:rds:primaryDBClusterArn"
AURORA_PORT = 5432
# Where the loader's privileges live (migration 0005_loader_role.sql); its login users are members.
LOADER_GROUP = "file_ingestion_loader"
# Files wait for the database: fifty thousand waiting (half a day of the medium profile's 100,000 a day, 500 full
# batches) means the loader or the database has fallen behind, whatever the oldest file's age says.
BACKLOG_ALARM_MESSAGES = 50_000
# The loader's errors page on their rate: with batches every few seconds a transient connection failure is retried
# by SQS (and a file that keeps failing reaches the alarmed DLQ), so one failed batch is noise, 5 % an outage.


def migrations_checksum(directory: Path = MIGRATIONS_DIR) -> str:
    """The digest the migration runner computes (``file_ingestion_migrate.runner.checksum``), from the files."""
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.sql")):
        digest.update(f"{path.name}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n".encode())
    return digest.hexdigest()


def loader_username(naming: Naming) -> str:
    """The loader's login user: one per stack (a cluster's users are shared by its databases), 57 characters at most
    so the rotation's ``_clone`` still fits PostgreSQL's 63."""
    return re.sub(r"[^a-z0-9_]", "_", f"{naming.stack}_{naming.pipeline}_loader".lower()).lstrip("0123456789")[:57]


class FileIngestion(pulumi.ComponentResource):
    """Loads JSON files arriving in a bucket into PostgreSQL, 100 files per invocation over one connection.

    >>> FileIngestion(naming, env, settings, code=function_code("file_ingestion"),
    ...               migration_code=function_code("file_ingestion_migrate"), alarm_topic_arn=topic.arn,
    ...               notifications=hub, log_retention_days=30, protect_data=False)  # doctest: +SKIP
    """

    def __init__(self, naming: Naming, env: AwsEnv, settings: FileIngestionSettings, *, code: FunctionCode,
                 migration_code: FunctionCode, alarm_topic_arn: pulumi.Input[str],
                 notifications: BucketNotifications, log_retention_days: int, protect_data: bool,
                 key: StackKey | None = None, access_logs: AccessLogs | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ai-pipelines:pipelines:FileIngestion", naming.pipeline, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        database = settings.database
        self.vpc = VpcPlacement(database.vpc.subnet_ids, database.vpc.security_group_ids)
        self.endpoints = self._endpoints(naming, env, settings)

        self.bucket_name, bucket_physical = existing_or_new_bucket(
            naming, env, "files", settings=settings.bucket, protect=protect_data, key=key, access_logs=access_logs,
            opts=child)
        bucket_arn = env.s3_bucket(self.bucket_name)
        bucket_key = None if settings.bucket.existing_name else key  # an existing bucket's encryption is its owner's

        self.queue = QueueWithDlq(
            naming, env, "incoming", settings=settings.queue,
            visibility_timeout_seconds=settings.worker.visibility_timeout_seconds, alarm_topic_arn=alarm_topic_arn,
            producers=[QueueProducer("BucketSendsNewFiles", "s3.amazonaws.com", bucket_arn)],
            # The batching window holds files back on purpose; alarm only beyond it.
            age_alarm_seconds=15 * 60 + settings.worker.batching_window_seconds,
            backlog_alarm_messages=BACKLOG_ALARM_MESSAGES, key=key, opts=child)

        self.cluster: aws.rds.Cluster | None = None
        self.secret: aws.secretsmanager.Secret | None = None
        connection = self._database(naming, env, settings, protect_data)
        self.key = key
        read_admin = self._secret_statements(naming, env, settings, protect_data)
        read_loader = self._loader_secret(naming, env, settings, protect_data)

        self.migrations = SchemaMigrations(
            naming, env, "migrate", code=migration_code, vpc=self.vpc, statements=[*read_admin, *read_loader],
            key=key,
            environment={**connection, "DATABASE_SECRET_ID": self.secret_id,
                         "LOADER_SECRET_ID": self.loader_secret.name,
                         "SECRET_VALUE_WAIT_SECONDS": str(database.secret.value_wait_seconds),
                         "STACK_NAME": naming.stack, "POWERTOOLS_SERVICE_NAME": naming.name("migrate"),
                         "LOG_LEVEL": "INFO"},
            checksum=migrations_checksum(), timeout_seconds=settings.migration_timeout_seconds,
            log_retention_days=log_retention_days,
            # A new stack-made loader password (the first deploy, a replaced secret) is set in the database at once.
            triggers={"loaderSecretVersion": self.loader_secret_version.version_id},
            # The migrations read the secrets during `pulumi up`: only once the route to Secrets Manager exists.
            depends_on=[*self._database_resources, self.loader_secret_version,
                        *(self.endpoints.resources if self.endpoints else [])], opts=child)
        self.rotations = self._rotations(naming, env, settings)

        reads = [env.s3_objects(self.bucket_name, route.prefix) for route in settings.datasets]
        listable = {"StringLike": {"s3:prefix": [f"{route.prefix}*" for route in settings.datasets]}}
        self.worker = QueueWorker(
            naming, env, "worker", queue=self.queue, code=code, settings=settings.worker,
            alarm_topic_arn=alarm_topic_arn, log_retention_days=log_retention_days, vpc=self.vpc, errors_by_rate=True,
            # Code and deliveries follow the schema: the handler never sees a table its migration has not created.
            after=[self.migrations.invocation],
            statements=[
                # GetObjectVersion: a notification's versionId is read exactly, never the current object instead.
                Statement("ReadDatasetPrefixes", ["s3:GetObject", "s3:GetObjectVersion"], reads),
                Statement("ListDatasetPrefixes", ["s3:ListBucket"], [bucket_arn], conditions=listable),
                *key_to_use(bucket_key, "DecryptDatasetObjects", READ_OBJECTS,
                            [env.arn("s3", bucket_physical, regional=False, with_account=False)]),
                *read_loader],
            environment={
                **connection,
                "DATABASE_SECRET_ID": self.loader_secret.name,
                "INPUT_BUCKET": self.bucket_name,
                "INPUT_RULES": json.dumps([{"prefix": r.prefix, "suffix": r.suffix} for r in settings.input_rules],
                                          separators=(",", ":")),
                "DATASETS": json.dumps([{"prefix": d.prefix, "dataset": d.dataset} for d in settings.datasets],
                                       separators=(",", ":")),
                "MAX_OBJECT_BYTES": str(settings.max_object_bytes),
                "READ_CONCURRENCY": str(settings.read_concurrency),
                "STACK_NAME": naming.stack,
                "POWERTOOLS_SERVICE_NAME": naming.name("worker"),
                "POWERTOOLS_METRICS_NAMESPACE": naming.project,
                "LOG_LEVEL": "INFO",
            },
            key=key, opts=child)

        notifications.watch(bucket_physical, owner=naming.pipeline, filters=settings.s3_filters,
                            queue_arn=self.queue.arn, queue_policy=self.queue.policy, bucket_ref=self.bucket_name)
        self.dashboard = PipelineDashboard(naming, env, sections=self._dashboard(naming), opts=child)
        self.register_outputs({"queueUrl": self.queue.url, "functionName": self.worker.function.name,
                               "bucketName": self.bucket_name, "secretId": self.secret_id,
                               "loaderSecretId": self.loader_secret.name,
                               "dashboardName": self.dashboard.dashboard_name})

    def _dashboard(self, naming: Naming) -> list[tuple[str, list[Widget]]]:
        def worker(metric: str, stat: str = "Sum") -> Metric:
            return custom_metric(naming, "worker", metric, stat=stat)

        loads = [metrics_widget("files loaded and skipped", [worker("FilesLoaded"), worker("FilesSkipped"),
                                                             worker("FilesRejected"), worker("MessagesRejected")]),
                 metrics_widget("rows", [worker("RowsInserted"), worker("RowsAlreadyLoaded"),
                                         worker("DatabaseWriteFailures")]),
                 batch_size_widget(worker("MessagesReceived", "Average"), worker("MessagesReceived", "Maximum"),
                                   self.worker.settings.batch_size)]
        return [("Incoming files queue", self.queue.widgets()), ("Loader", self.worker.widgets()),
                ("Loads", loads)]

    # --- the network path to S3 and Secrets Manager ------------------------------------------------------------

    def _endpoints(self, naming: Naming, env: AwsEnv, settings: FileIngestionSettings) -> ServiceEndpoints | None:
        """The endpoints the config asks the stack to create (by default both, once vpcId is set; the config refuses
        a VPC with no route to either service)."""
        vpc = settings.database.vpc
        s3, secrets = vpc.route("s3") == "create", vpc.route("secrets_manager") == "create"
        if vpc.vpc_id is None or not (s3 or secrets):
            return None
        return ServiceEndpoints(
            naming, env, vpc_id=vpc.vpc_id, s3_route_tables=vpc.route_table_ids if s3 else (),
            interface_subnets=(vpc.endpoints.subnet_ids or vpc.subnet_ids) if secrets else (),
            client_security_groups=vpc.security_group_ids, opts=pulumi.ResourceOptions(parent=self))

    # --- the database and its credentials -------------------------------------------------------------------

    def _database(self, naming: Naming, env: AwsEnv, settings: FileIngestionSettings,
                  protect_data: bool) -> dict[str, pulumi.Input[str]]:
        """Create the Aurora cluster when asked; return the (non-secret) connection environment of both functions.

        ``self.address`` (host, port, database) goes into the loader's secret. The functions take the address from
        their secrets (both name it: the loader's is written by the stack, the admin's by its operator or RDS), except
        with Aurora, whose managed secret holds only the user and password.
        """
        database = settings.database
        self._database_resources: list[pulumi.Resource] = []
        variables: dict[str, pulumi.Input[str]] = {
            "DATABASE_SSLMODE": database.ssl_mode,
            # SCRAM bound to the TLS channel: the password goes only to a server that proves it knows it.
            "DATABASE_CHANNEL_BINDING": "require",
            "DATABASE_CONNECT_TIMEOUT_SECONDS": str(database.connect_timeout_seconds),
            "DATABASE_STATEMENT_TIMEOUT_MS": str(database.statement_timeout_seconds * 1000),
        }
        if database.aurora.enabled:
            self.cluster = self._aurora(naming, settings, protect_data)
            self.address: tuple[pulumi.Input[str], int, str] = (self.cluster.endpoint, AURORA_PORT,
                                                                 database.aurora.database_name)
            variables.update({"DATABASE_HOST": self.cluster.endpoint, "DATABASE_PORT": str(AURORA_PORT),
                              "DATABASE_NAME": database.aurora.database_name})
            return variables
        assert database.host and database.name  # the config requires them without Aurora
        self.address = (database.host, database.port, database.name)
        return variables

    def _secret_statements(self, naming: Naming, env: AwsEnv, settings: FileIngestionSettings,
                           protect_data: bool) -> list[Statement]:
        """Where the credentials are (``self.secret_id`` for the functions) and the grants to read them: the one to
        read the secret and, for the secret the stack creates under the stack's key, the key's decryption of it."""
        secret = settings.database.secret
        sid, action = "ReadDatabaseCredentials", ["secretsmanager:GetSecretValue"]
        if self.cluster is not None:
            # The managed secret's name is chosen by RDS; its tag names the cluster, whose ARN is known at preview.
            self.secret_id: pulumi.Output[str] = self.cluster.master_user_secrets.apply(
                lambda secrets: (secrets[0].secret_arn or "") if secrets else "")
            cluster_arn = env.arn("rds", f"cluster:{naming.name('db', max_length=63)}")
            return [Statement(sid, action, [env.arn("secretsmanager", _RDS_MANAGED_SECRET)],
                              conditions={"StringEquals": {_RDS_CLUSTER_TAG: cluster_arn}})]
        if secret.existing_arn:
            self.secret_id = pulumi.Output.from_input(secret.existing_arn)
            return [Statement(sid, action, [secret.existing_arn])]
        if secret.existing_name:
            self.secret_id = pulumi.Output.from_input(secret.existing_name)
            return [Statement(sid, action, [env.secret(secret.existing_name)])]
        name = f"{naming.project}/{naming.stack}/{naming.pipeline}/database"
        self.secret = aws.secretsmanager.Secret(
            naming.logical("database-secret"), name=name,
            description=f"Credentials of the {naming.pipeline} database (JSON: username, password, host, port, "
                        "dbname). Filled in by the database's operator; read by the worker and the migrations.",
            recovery_window_in_days=30 if protect_data else 7, tags=naming.tags,
            kms_key_id=self.key.arn if self.key is not None else None,
            opts=pulumi.ResourceOptions(parent=self, protect=protect_data))
        self.secret_id = self.secret.name
        # Secrets Manager decrypts a secret's value with its key bound to the secret (encryption context SecretARN).
        return [Statement(sid, action, [env.secret(self.secret.name)]),
                *key_use(self.key, "DecryptDatabaseCredentials", ["kms:Decrypt"], via="secretsmanager",
                         context={"SecretARN": [env.arn("secretsmanager", f"secret:{name}-??????")]}, like=True)]

    def _loader_secret(self, naming: Naming, env: AwsEnv, settings: FileIngestionSettings,
                       protect_data: bool) -> list[Statement]:
        """The loader's secret with a value the stack generates, and the grants to read it (with the stack's key, its
        decryption too).

        The password is drawn here (``secrets``, the standard library's generator: no extra provider plugin for one
        random string) and written once, as the secret's first version: ``ignore_changes`` keeps every later run from
        writing a new one, and lets rotation change the value without `pulumi up` undoing it. Pulumi keeps the value
        in the stack's state encrypted, as a secret.
        """
        name = f"{naming.project}/{naming.stack}/{naming.pipeline}/loader"
        self.loader_username = loader_username(naming)
        self.loader_secret = aws.secretsmanager.Secret(
            naming.logical("loader-secret"), name=name,
            description=f"The {naming.pipeline} loader's database login (JSON: engine, username, password, host, port, "
                        "dbname, masterarn). Generated by the stack, set in the database by the migrations, rotated "
                        "by alternating users; read only by the worker.",
            recovery_window_in_days=30 if protect_data else 7, tags=naming.tags,
            kms_key_id=self.key.arn if self.key is not None else None,
            opts=pulumi.ResourceOptions(parent=self, protect=protect_data))
        host, port, dbname = self.address
        facts: dict[str, pulumi.Input[Any]] = {"engine": "postgres", "username": self.loader_username,
                                               "password": secrets.token_urlsafe(32),
                                               "host": host, "port": port, "dbname": dbname,
                                               "masterarn": self.secret_id}
        document: pulumi.Output[str] = pulumi.Output.all(**facts).apply(
            lambda values: json.dumps(values, separators=(",", ":")))
        self.loader_secret_version = aws.secretsmanager.SecretVersion(
            naming.logical("loader-secret-value"), secret_id=self.loader_secret.id,
            secret_string=pulumi.Output.secret(document),  # type: ignore[arg-type]  # Output.secret's stub
            opts=pulumi.ResourceOptions(parent=self, ignore_changes=["secretString"]))
        return [Statement("ReadLoaderCredentials", ["secretsmanager:GetSecretValue"], [env.secret(name)]),
                *key_use(self.key, "DecryptLoaderCredentials", ["kms:Decrypt"], via="secretsmanager",
                         context={"SecretARN": [env.arn("secretsmanager", f"secret:{name}-??????")]}, like=True)]

    def _secret_key(self) -> pulumi.Output[str] | None:
        """The key of the secrets the stack creates: the stack's, when it has one."""
        return self.key.arn if self.key is not None else None

    def _rotations(self, naming: Naming, env: AwsEnv, settings: FileIngestionSettings) -> list[SecretRotation]:
        """Rotation of the secrets this stack creates, after the migrations made their users."""
        rotation = settings.database.rotation
        if not rotation.enabled:
            return []
        after = [self.migrations.invocation]
        rotations = [SecretRotation(
            naming, env, "loader-rotation", secret=self.loader_secret, strategy="alternating-users", vpc=self.vpc,
            master_secret_arn=self.secret_id, days=rotation.days, depends_on=after, key_arn=self._secret_key(),
            master_key_arn=self._secret_key() if self.secret is not None else None,
            opts=pulumi.ResourceOptions(parent=self))]
        if self.secret is not None:
            rotations.append(SecretRotation(
                naming, env, "admin-rotation", secret=self.secret, strategy="single-user", vpc=self.vpc,
                days=rotation.days, depends_on=after, key_arn=self._secret_key(),
                opts=pulumi.ResourceOptions(parent=self)))
        return rotations

    def _aurora(self, naming: Naming, settings: FileIngestionSettings, protect_data: bool) -> aws.rds.Cluster:
        """Aurora PostgreSQL Serverless v2 in the configured subnets, with RDS managing the master password."""
        aurora, vpc = settings.database.aurora, settings.database.vpc
        identifier = naming.name("db", max_length=63)
        subnets = aws.rds.SubnetGroup(naming.logical("db-subnets"), name=identifier, subnet_ids=list(vpc.subnet_ids),
                                      description=f"Subnets of {identifier}", tags=naming.tags,
                                      opts=pulumi.ResourceOptions(parent=self))
        cluster = aws.rds.Cluster(
            naming.logical("db"),
            cluster_identifier=identifier,
            engine="aurora-postgresql",
            engine_mode="provisioned",
            engine_version=aurora.engine_version,
            database_name=aurora.database_name,
            master_username=aurora.master_username,
            manage_master_user_password=True,
            port=AURORA_PORT,
            db_subnet_group_name=subnets.name,
            vpc_security_group_ids=list(vpc.security_group_ids),
            storage_encrypted=True,
            serverlessv2_scaling_configuration={"min_capacity": aurora.min_capacity,
                                                "max_capacity": aurora.max_capacity},
            backup_retention_period=aurora.backup_retention_days,
            copy_tags_to_snapshot=True,
            deletion_protection=protect_data,
            skip_final_snapshot=not protect_data,
            final_snapshot_identifier=f"{identifier}-final" if protect_data else None,
            enabled_cloudwatch_logs_exports=["postgresql"],
            tags=naming.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=protect_data))
        instance = aws.rds.ClusterInstance(
            naming.logical("db-writer"), identifier=f"{identifier}-writer"[:63], cluster_identifier=cluster.id,
            instance_class="db.serverless", engine=aws.rds.EngineType.AURORA_POSTGRESQL,
            engine_version=cluster.engine_version,
            db_subnet_group_name=subnets.name, publicly_accessible=False, tags=naming.tags,
            opts=pulumi.ResourceOptions(parent=self, protect=protect_data))
        self._database_resources = [cluster, instance]
        return cluster
