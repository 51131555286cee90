"""Config of the file-ingestion pipeline."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator
from pydantic.alias_generators import to_camel

from components import defaults
from components.config.sections import BucketSettings, QueueSettings, Section, WorkerSettings, each_matching
from components.s3_filters import S3Filter

# File ingestion: VPC ids, Secrets Manager secrets, dataset names, Aurora engine versions.
_SUBNET_PATTERN = r"^subnet-([0-9a-f]{8}|[0-9a-f]{17})$"
_SECURITY_GROUP_PATTERN = r"^sg-([0-9a-f]{8}|[0-9a-f]{17})$"
_SECRET_ARN_PATTERN = (r"^arn:aws(-[a-z]+)*:secretsmanager:[a-z0-9-]+:\d{12}:secret:"
                       r"[A-Za-z0-9/_+=.@-]{1,512}-[A-Za-z0-9]{6}$")
_SECRET_NAME_PATTERN = r"^[A-Za-z0-9/_+=.@-]{1,512}$"
_KEY_PREFIX_PATTERN = r"^[^/\s][^\s]*/$"
_DATASET_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
_DB_IDENTIFIER_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"

_SubnetIds = Annotated[tuple[str, ...], each_matching(_SUBNET_PATTERN, "subnet ids")]
_SecurityGroupIds = Annotated[tuple[str, ...], each_matching(_SECURITY_GROUP_PATTERN, "security group ids")]


class InputRuleSettings(Section):
    """One S3 notification filter: objects created under `prefix` whose key ends with `suffix`."""

    prefix: str = Field(pattern=_KEY_PREFIX_PATTERN, max_length=1024, description="Key prefix, ending in '/'.")
    suffix: str = Field(".json", max_length=1024, description="Key suffix (e.g. .json); empty for any.")


class DatasetRouteSettings(Section):
    """Which declared dataset (record model, table, key columns) the files under a prefix hold."""

    prefix: str = Field(pattern=_KEY_PREFIX_PATTERN, max_length=1024,
                        description="Key prefix of the dataset's files, under an input rule's prefix.")
    dataset: str = Field(pattern=_DATASET_PATTERN,
                         description="Dataset name in handlers/file_ingestion/datasets.py (e.g. orders).")


_VPC_PATTERN = r"^vpc-([0-9a-f]{8}|[0-9a-f]{17})$"
_ROUTE_TABLE_PATTERN = r"^rtb-([0-9a-f]{8}|[0-9a-f]{17})$"
_RouteTableIds = Annotated[tuple[str, ...], each_matching(_ROUTE_TABLE_PATTERN, "route table ids")]
# How the functions reach an AWS service from private subnets: an endpoint the stack creates, an endpoint the VPC
# already has, or a NAT gateway on the subnets' default route.
Route = Literal["create", "existing", "nat"]
# The services the functions call from the VPC: the worker reads S3, the worker and the migrations Secrets Manager.
ROUTED_SERVICES = {"s3": "S3", "secrets_manager": "Secrets Manager"}


class VpcEndpointSettings(Section):
    """How the functions reach S3 and Secrets Manager from the VPC's private subnets."""

    s3: Route | None = Field(None, description='"create": a gateway endpoint on routeTableIds; "existing": the VPC '
                                               'has one; "nat": the subnets route to a NAT gateway. Unset: "create" '
                                               "when vpcId is set.")
    secrets_manager: Route | None = Field(
        None, description='"create": an interface endpoint (private DNS) in the subnets, reachable on 443 from '
                          'the functions\' security groups; "existing" or "nat" as for s3. Unset: "create" when '
                          "vpcId is set.")
    subnet_ids: _SubnetIds = Field((), max_length=16,
                                   description="Subnets of the created interface endpoint, one per Availability Zone; "
                                               "default: subnetIds (then each in its own zone).")


class VpcSettings(Section):
    """Where the functions run so they reach a private database, and how they reach S3 and Secrets Manager."""

    subnet_ids: _SubnetIds = Field(min_length=1, max_length=16,
                                   description="Private subnets of the functions (and Aurora), 1..16.")
    security_group_ids: _SecurityGroupIds = Field(min_length=1, max_length=5,
                                                  description="Security groups of the functions (and Aurora), 1..5.")
    vpc_id: str | None = Field(None, pattern=_VPC_PATTERN,
                               description="The subnets' VPC; with it the stack creates the endpoints by default.")
    route_table_ids: _RouteTableIds = Field(
        (), max_length=50, description="Route tables of the subnets, for the S3 gateway endpoint the stack creates.")
    endpoints: VpcEndpointSettings = Field(default_factory=VpcEndpointSettings,
                                           description="The route to each service the functions call.")

    def route(self, service: str) -> Route:
        """How the functions reach ``service`` (``s3``, ``secrets_manager``): declared, else "create" with a VPC."""
        declared: Route | None = getattr(self.endpoints, service)
        return declared or "create"

    @model_validator(mode="after")
    def _a_route_to_each_service(self) -> VpcSettings:
        # A function in private subnets reaches no AWS API unless the VPC routes it there; without a route the
        # first S3 read or secret lookup times out, and `pulumi up` itself fails at the migrations.
        undeclared = [name for key, name in ROUTED_SERVICES.items() if getattr(self.endpoints, key) is None]
        if self.vpc_id is None and undeclared:
            raise ValueError(
                f"the functions run in subnets {list(self.subnet_ids)} and need a route to "
                f"{' and '.join(undeclared)}: set vpcId (and routeTableIds) so the stack creates a gateway endpoint "
                "for S3 and an interface endpoint for Secrets Manager, or declare the route the VPC has with "
                "endpoints.s3 and endpoints.secretsManager: existing (an endpoint of that service in the VPC) or nat "
                "(the subnets' default route goes through a NAT gateway)")
        created = [key for key in ROUTED_SERVICES if self.route(key) == "create"]
        if created and self.vpc_id is None:
            raise ValueError(f"endpoints {', '.join(to_camel(k) for k in created)}: create needs vpcId (the VPC of "
                             f"subnets {list(self.subnet_ids)})")
        if self.route("s3") == "create" and not self.route_table_ids:
            raise ValueError("endpoints.s3 is create (the default with vpcId): set routeTableIds, the route tables "
                             "of the subnets, to attach the S3 gateway endpoint to; or declare endpoints.s3 existing "
                             "or nat")
        if self.route_table_ids and self.route("s3") != "create":
            raise ValueError(f"routeTableIds is set but endpoints.s3 is {self.route('s3')}: the route tables are "
                             "only for the S3 gateway endpoint the stack creates; remove them")
        if self.endpoints.subnet_ids and self.route("secrets_manager") != "create":
            raise ValueError("endpoints.subnetIds is set but the stack creates no Secrets Manager endpoint; remove it")
        return self


class DatabaseSecretSettings(Section):
    """The Secrets Manager secret with the database credentials: an existing one, else one the stack creates."""

    existing_arn: str | None = Field(None, pattern=_SECRET_ARN_PATTERN,
                                     description="ARN of an existing secret (RDS format: username, password, ...).")
    existing_name: str | None = Field(None, pattern=_SECRET_NAME_PATTERN,
                                      description="Name of an existing secret in the stack's account and region.")
    value_wait_seconds: int = Field(
        120, ge=0, le=600,
        description="How long the migration function waits for a value in the admin secret the stack creates (first "
                    "deploy: put the credentials in it meanwhile, or run `pulumi up` again after), in seconds.")

    @model_validator(mode="after")
    def _one_source(self) -> DatabaseSecretSettings:
        if self.existing_arn and self.existing_name:
            raise ValueError("set existingArn or existingName, not both: the role may read exactly one secret")
        return self


class AuroraSettings(Section):
    """An Aurora PostgreSQL Serverless v2 cluster the stack creates in the VPC subnets (off: use an existing one)."""

    enabled: bool = Field(False, description="Create the cluster; its managed master secret holds the credentials.")
    engine_version: str = Field("16.6", pattern=r"^\d{2}\.\d{1,2}$", description="aurora-postgresql version.")
    database_name: str = Field("ingest", pattern=_DB_IDENTIFIER_PATTERN, description="Database created in it.")
    master_username: str = Field("ingest_admin", pattern=_DB_IDENTIFIER_PATTERN, description="Master user name.")
    min_capacity: float = Field(0.5, ge=0, le=256, description="Minimum Aurora capacity units (0..256).")
    max_capacity: float = Field(4, ge=1, le=256, description="Maximum Aurora capacity units (1..256).")
    backup_retention_days: int = Field(7, ge=1, le=35, description="Automated backup retention in days.")

    @model_validator(mode="after")
    def _capacity_range(self) -> AuroraSettings:
        if self.min_capacity > self.max_capacity:
            raise ValueError(f"minCapacity {self.min_capacity} exceeds maxCapacity {self.max_capacity}")
        return self


class RotationSettings(Section):
    """Scheduled rotation of the secrets the stack creates, by AWS's rotation function for PostgreSQL in the VPC."""

    enabled: bool = Field(True, description="Rotate the loader's secret (alternating users) and the admin secret the "
                                            "stack creates (single user); Aurora's managed secret is rotated by RDS.")
    days: int = Field(30, ge=1, le=365, description="Days between rotations.")


class PostgresSettings(Section):
    """How the functions reach PostgreSQL. Only non-secret connection facts live here; credentials are in the secret."""

    vpc: VpcSettings = Field(description="Subnets and security groups of the functions.")
    secret: DatabaseSecretSettings = Field(default_factory=DatabaseSecretSettings,
                                           description="The credentials' secret.")
    host: str | None = Field(None, pattern=r"^[A-Za-z0-9.-]{1,253}$",
                             description="Database host, written into the loader's secret (required unless "
                                         "aurora.enabled; the admin secret names it too).")
    port: int = Field(5432, ge=1, le=65535, description="Database port.")
    name: str | None = Field(None, pattern=_DB_IDENTIFIER_PATTERN,
                             description="Database name, written into the loader's secret (required unless "
                                         "aurora.enabled).")
    ssl_mode: Literal["require", "verify-ca", "verify-full"] = Field(
        "require", description="libpq sslmode: connections are always encrypted. The server is authenticated "
                               "without a CA bundle: the functions connect with channel_binding=require "
                               "(SCRAM-SHA-256-PLUS bound to the TLS channel), so the password is never sent to a "
                               "server that cannot prove it knows it (the database must store passwords as SCRAM, "
                               "PostgreSQL's default since 14). verify-ca and verify-full need the database's CA "
                               "certificates packaged with the functions, which is not supported yet.")
    connect_timeout_seconds: int = Field(5, ge=1, le=30, description="Bound of one connection attempt.")
    statement_timeout_seconds: int = Field(30, ge=1, le=300, description="Bound of one statement (COPY, insert).")
    aurora: AuroraSettings = Field(default_factory=AuroraSettings, description="Optional Aurora cluster.")
    rotation: RotationSettings = Field(default_factory=RotationSettings,
                                       description="Rotation of the credentials' secrets the stack creates.")

    @model_validator(mode="after")
    def _coherent(self) -> PostgresSettings:
        if not self.aurora.enabled and not (self.host and self.name):
            raise ValueError("host and name are required (unless aurora.enabled): the loader's secret, which the stack "
                             "writes, names the database, since the loader never reads the admin secret")
        if self.aurora.enabled and (self.secret.existing_arn or self.secret.existing_name):
            raise ValueError("aurora.enabled creates the cluster and its credentials' secret; remove secret.existingArn"
                             " / secret.existingName")
        if self.aurora.enabled and (self.host or self.name):
            raise ValueError("aurora.enabled: host and name come from the cluster; remove host and name")
        if self.ssl_mode != "require":
            # libpq would look for the CA in ~/.postgresql/root.crt, which no Lambda has: every connection would fail.
            raise ValueError(f"sslMode {self.ssl_mode} needs the database's CA certificates (for RDS and Aurora, the "
                             "RDS CA bundle) inside the functions, which this project does not package yet; use "
                             "require (every connection is encrypted)")
        return self


class FileIngestionSettings(Section):
    """High-frequency JSON file ingestion: S3 (prefix + suffix rules) -> SQS -> Lambda batches -> PostgreSQL."""

    enabled: bool = Field(True, description="Build this pipeline in the stack.")
    bucket: BucketSettings = Field(default_factory=BucketSettings, description="The bucket files arrive in.")
    input_rules: tuple[InputRuleSettings, ...] = Field(
        (InputRuleSettings(prefix="input/", suffix=".json"),), min_length=1, max_length=10,
        description="Notification filters (prefix + suffix); other objects never reach the queue.")
    datasets: tuple[DatasetRouteSettings, ...] = Field(
        (DatasetRouteSettings(prefix="input/orders/", dataset="orders"),
         DatasetRouteSettings(prefix="input/customers/", dataset="customers")), min_length=1, max_length=50,
        description="Per prefix, the dataset its files hold; the role reads only these prefixes.")
    max_object_bytes: int = Field(1024 * 1024, ge=1024, le=64 * 1024 * 1024,
                                  description="Largest file loaded; a larger one fails alone, clearly (bytes).")
    read_concurrency: int = Field(16, ge=1, le=64, description="Objects one invocation reads from S3 at a time.")
    database: PostgresSettings = Field(description="The database and how to reach it.")
    queue: QueueSettings = Field(default_factory=QueueSettings,
                                 description="Source queue (4-day retention, long polling, DLQ).")
    worker: WorkerSettings = Field(
        default_factory=lambda: WorkerSettings(timeout_seconds=120, memory_mb=512, reserved_concurrency=10,
                                               batch_size=100, batching_window_seconds=55, max_concurrency=10),
        description="The loader: batches of 100 over a 55 s window; reserved concurrency bounds connections.")
    migration_timeout_seconds: int = Field(300, ge=30, le=900,
                                           description="Timeout of the migration function `pulumi up` invokes.")

    @property
    def s3_filters(self) -> list[S3Filter]:
        """What the pipeline asks S3 to notify: objects created that match an input rule."""
        return [S3Filter("fileIngestion", ("s3:ObjectCreated:*",), rule.prefix, rule.suffix)
                for rule in self.input_rules]

    @model_validator(mode="after")
    def _coherent(self) -> FileIngestionSettings:
        rules = [rule.prefix for rule in self.input_rules]
        prefixes = [route.prefix for route in self.datasets]
        if len(set(prefixes)) != len(prefixes):
            raise ValueError(f"datasets: a prefix appears twice in {prefixes}")
        stray = [p for p in prefixes if not any(p.startswith(rule) for rule in rules)]
        if stray:
            raise ValueError(f"datasets prefixes {stray} are under no inputRules prefix {rules}: no notification "
                             "would ever name their files")
        budget = self.worker.memory_mb * 1024 * 1024 // 4
        if self.max_object_bytes * self.worker.batch_size > budget:
            raise ValueError(f"maxObjectBytes {self.max_object_bytes} x worker.batchSize {self.worker.batch_size} "
                             f"exceeds a quarter of worker.memoryMb {self.worker.memory_mb} ({budget} bytes): a batch "
                             "of the largest files, parsed, would not fit in memory")
        # A message may wait (queue, then DLQ, then redriven) as long as the DLQ keeps it, counted from when it was
        # first sent; the version it announces must still be there when it is read.
        kept_days = defaults.DLQ_RETENTION_SECONDS // 86400
        if not self.bucket.existing_name and self.bucket.noncurrent_version_days < kept_days:
            raise ValueError(f"bucket.noncurrentVersionDays {self.bucket.noncurrent_version_days} is below the "
                             f"{kept_days} days a file's message may wait in its queue and dead-letter queue: a "
                             "redriven message would announce a version already expired")
        database = self.database
        needed = 2 * (database.connect_timeout_seconds + database.statement_timeout_seconds)
        if self.worker.timeout_seconds < needed:
            raise ValueError(f"worker.timeoutSeconds {self.worker.timeout_seconds} is below 2 x (database."
                             f"connectTimeoutSeconds + statementTimeoutSeconds) = {needed}: a slow write must fail "
                             "inside the invocation, not with it")
        return self
