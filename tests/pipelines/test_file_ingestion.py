"""The file-ingestion component, asserted on recorded registrations in preview and update modes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from components.blocks.alarm_topic import AlarmTopic
from components.blocks.iam import AwsEnv
from components.blocks.naming import Naming
from components.blocks.notifications import BucketNotifications
from components.config import ConfigError, FileIngestionSettings, parse_stack_config
from components.pipelines.file_ingestion import FileIngestion, migrations_checksum
from offline.check import contains_unknown
from offline.synth import Synthesis, run_program
from tests.blocks.programs import fake_code

REGION, ACCOUNT = "eu-west-1", "123456789012"
NAMING = Naming("ai-pipelines", "test", "shared", owner="platform")
SUBNETS = ["subnet-0123456789abcdef0", "subnet-0123456789abcdef1"]
GROUPS = ["sg-0123456789abcdef0"]
# The VPC routes to both services through a NAT gateway here; the endpoint tests below let the stack create them.
VPC = {"subnetIds": SUBNETS, "securityGroupIds": GROUPS, "endpoints": {"s3": "nat", "secretsManager": "nat"}}
BUCKET = f"ai-pipelines-test-fileingest-files-{ACCOUNT}-{REGION}"
SECRET_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:analytics/ingest-AbCdEf"
NETWORK_ACTIONS = {"ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface", "ec2:DescribeNetworkInterfaces",
                   "ec2:DescribeSubnets", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"}


LOADER_SECRET = "ai-pipelines/test/fileingest/loader"
LOADER_GRANT = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{LOADER_SECRET}-??????"
ADMIN_GRANT = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:ai-pipelines/test/fileingest/database-??????"


def settings(database: dict[str, Any] | None = None, **overrides: Any) -> FileIngestionSettings:
    database = dict(database or {})
    if not database.get("aurora", {}).get("enabled"):
        database = {"host": "db.internal", "name": "ingest", **database}
    return FileIngestionSettings.model_validate(
        {"database": {"vpc": VPC, **database}, **overrides})


def synth(config: FileIngestionSettings, mode: str = "preview", protect: bool = False) -> Synthesis:
    def program() -> None:
        env = AwsEnv.lookup()
        hub = BucketNotifications()
        FileIngestion(NAMING.child("fileingest"), env, config, code=fake_code(), migration_code=fake_code(),
                      alarm_topic_arn=AlarmTopic(NAMING, env).arn, notifications=hub, log_retention_days=30,
                      protect_data=protect)
        hub.build()

    return run_program(program, project="ai-pipelines", stack="test", mode=mode,  # type: ignore[arg-type]
                       config={"aws:region": REGION})


def statements(result: Synthesis, name: str) -> dict[str, dict[str, Any]]:
    return {s["Sid"]: s for s in json.loads(result.named(name).inputs["policy"])["Statement"]}


@pytest.mark.parametrize("mode", ["preview", "update"])
def test_queue_worker_and_notifications_follow_the_issue(mode: str) -> None:
    result = synth(settings(), mode)
    queue, dlq = result.named("fileingest-incoming").inputs, result.named("fileingest-incoming-dlq").inputs
    assert queue["messageRetentionSeconds"] == 4 * 24 * 3600 and queue["receiveWaitTimeSeconds"] == 20
    assert queue["visibilityTimeoutSeconds"] == 6 * 120 + 55  # derived from the worker
    assert json.loads(queue["redrivePolicy"])["deadLetterTargetArn"].endswith(dlq["name"])
    worker = result.named("fileingest-worker").inputs
    assert (worker["memorySize"], worker["reservedConcurrentExecutions"], worker["timeout"]) == (512, 10, 120)
    assert worker["vpcConfig"] == {"subnetIds": SUBNETS, "securityGroupIds": GROUPS}
    mapping = result.named("fileingest-worker-source").inputs
    assert (mapping["batchSize"], mapping["maximumBatchingWindowInSeconds"]) == (100, 55)
    assert mapping["functionResponseTypes"] == ["ReportBatchItemFailures"]
    [notification] = result.of_type("aws:s3/bucketNotification:BucketNotification")
    assert [(q["filterPrefix"], q["filterSuffix"], q["events"]) for q in notification.inputs["queues"]] == [
        ("input/", ".json", ["s3:ObjectCreated:*"])]
    assert not contains_unknown(result.named("fileingest-worker-policy").inputs["policy"])


def test_configurable_rules_become_one_notification_each() -> None:
    config = settings(inputRules=[{"prefix": "input/", "suffix": ".json"}, {"prefix": "landing/", "suffix": ".jsonl"}],
                      datasets=[{"prefix": "input/orders/", "dataset": "orders"},
                                {"prefix": "landing/customers/", "dataset": "customers"}])
    result = synth(config)
    [notification] = result.of_type("aws:s3/bucketNotification:BucketNotification")
    assert [(q["filterPrefix"], q["filterSuffix"]) for q in notification.inputs["queues"]] == [
        ("input/", ".json"), ("landing/", ".jsonl")]
    reads = statements(result, "fileingest-worker-policy")["ReadDatasetPrefixes"]["Resource"]
    assert reads == [f"arn:aws:s3:::{BUCKET}/input/orders/*", f"arn:aws:s3:::{BUCKET}/landing/customers/*"]


def test_the_worker_role_reads_only_the_prefixes_and_the_secret_and_manages_only_its_interfaces() -> None:
    result = synth(settings(), "update")
    policy = statements(result, "fileingest-worker-policy")
    extra = {sid: s for sid, s in policy.items() if sid not in ("ConsumeOwnQueue", "WriteOwnLogs", "WriteTraces")}
    assert {sid: sorted(s["Action"]) for sid, s in extra.items()} == {
        "ReadDatasetPrefixes": ["s3:GetObject", "s3:GetObjectVersion"],
        "ListDatasetPrefixes": ["s3:ListBucket"],
        "ReadLoaderCredentials": ["secretsmanager:GetSecretValue"],
        "CreateInterfacesInOwnSubnets": ["ec2:CreateNetworkInterface"],
        "ManageOwnInterfaces": ["ec2:AssignPrivateIpAddresses", "ec2:DeleteNetworkInterface",
                                "ec2:UnassignPrivateIpAddresses"],
        "DescribeNetwork": ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"]}
    assert policy["ReadDatasetPrefixes"]["Resource"] == [f"arn:aws:s3:::{BUCKET}/input/orders/*",
                                                         f"arn:aws:s3:::{BUCKET}/input/customers/*"]
    # Listing only the dataset prefixes: S3 then answers a key deleted since its notification with 404, not 403.
    assert policy["ListDatasetPrefixes"]["Resource"] == [f"arn:aws:s3:::{BUCKET}"]
    assert policy["ListDatasetPrefixes"]["Condition"] == {"StringLike": {"s3:prefix": ["input/orders/*",
                                                                                      "input/customers/*"]}}
    assert policy["ReadLoaderCredentials"]["Resource"] == [LOADER_GRANT]  # its own secret, never the admin's
    assert policy["CreateInterfacesInOwnSubnets"]["Resource"][1:] == [
        *(f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/{s}" for s in SUBNETS),
        *(f"arn:aws:ec2:{REGION}:{ACCOUNT}:security-group/{g}" for g in GROUPS)]
    # What Lambda does with these network grants is derived and held by tests/least_privilege (uses.py).
    secret = result.named("fileingest-database-secret").inputs
    assert secret["name"] == "ai-pipelines/test/fileingest/database"
    environment = result.named("fileingest-worker").inputs["environment"]["variables"]
    assert environment["DATABASE_SECRET_ID"] == LOADER_SECRET
    assert not any(word in name for name in environment for word in ("PASSWORD", "USER"))  # never credentials


@pytest.mark.parametrize(("secret", "resource", "secret_id"), [
    ({"existingArn": SECRET_ARN}, SECRET_ARN, SECRET_ARN),
    ({"existingName": "analytics/ingest"}, f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:analytics/ingest-??????",
     "analytics/ingest"),
])
def test_an_existing_secret_is_read_by_arn_or_name_and_none_is_created(secret: dict[str, str], resource: str,
                                                                       secret_id: str) -> None:
    result = synth(settings({"secret": secret, "host": "db.internal", "name": "analytics"}))
    migrate = statements(result, "fileingest-migrate-policy")
    assert migrate["ReadDatabaseCredentials"]["Resource"] == [resource]
    assert migrate["ReadLoaderCredentials"]["Resource"] == [LOADER_GRANT]
    assert "ReadDatabaseCredentials" not in statements(result, "fileingest-worker-policy")
    assert [s.inputs["name"] for s in result.of_type("aws:secretsmanager/secret:Secret")] == [LOADER_SECRET]
    variables = result.named("fileingest-migrate").inputs["environment"]["variables"]
    assert (variables["DATABASE_SECRET_ID"], variables["LOADER_SECRET_ID"]) == (secret_id, LOADER_SECRET)
    # The address is in each secret (the loader's written by the stack from host and name), not in the environment.
    assert "DATABASE_HOST" not in variables
    loader = json.loads(result.named("fileingest-loader-secret-value").inputs["secretString"])
    assert (loader["host"], loader["dbname"], loader["masterarn"]) == ("db.internal", "analytics", secret_id)


def test_migrations_run_in_the_vpc_once_per_checksum() -> None:
    result = synth(settings(), "update")
    function = result.named("fileingest-migrate").inputs
    assert function["vpcConfig"] == {"subnetIds": SUBNETS, "securityGroupIds": GROUPS}
    assert function["reservedConcurrentExecutions"] == 1
    invocation = result.named("fileingest-migrate-run")
    # Invoked again when the migrations change, or when the stack writes a new loader password.
    assert sorted(invocation.inputs["triggers"]) == ["loaderSecretVersion", "migrations"]
    assert invocation.inputs["triggers"]["migrations"] == migrations_checksum()
    assert result.named("fileingest-loader-secret-value").urn in invocation.dependencies
    assert json.loads(invocation.inputs["input"]) == {"checksum": migrations_checksum()}
    policy = statements(result, "fileingest-migrate-policy")
    assert "ReadDatasetPrefixes" not in policy and "ConsumeOwnQueue" not in policy


@pytest.mark.parametrize("mode", ["preview", "update"])
def test_the_worker_and_its_deliveries_wait_for_the_migrations(mode: str) -> None:
    result = synth(settings(), mode)
    migrations = result.named("fileingest-migrate-run").urn
    assert migrations in result.named("fileingest-worker").dependencies
    assert migrations in result.named("fileingest-worker-source").dependencies


def test_aurora_is_optional_and_its_managed_secret_is_the_only_one_readable() -> None:
    assert synth(settings()).of_type("aws:rds/cluster:Cluster") == []
    result = synth(settings({"aurora": {"enabled": True, "minCapacity": 0.5, "maxCapacity": 8}}), protect=True)
    cluster = result.named("fileingest-db").inputs
    assert cluster["engine"] == "aurora-postgresql" and cluster["manageMasterUserPassword"] is True
    assert cluster["storageEncrypted"] is True and cluster["deletionProtection"] is True
    assert cluster["serverlessv2ScalingConfiguration"] == {"minCapacity": 0.5, "maxCapacity": 8}
    assert cluster["vpcSecurityGroupIds"] == GROUPS
    assert result.named("fileingest-db-writer").inputs["instanceClass"] == "db.serverless"
    grant = statements(result, "fileingest-migrate-policy")["ReadDatabaseCredentials"]
    assert grant["Resource"] == [f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:rds!cluster-*"]
    assert grant["Condition"] == {"StringEquals": {"secretsmanager:ResourceTag/aws:rds:primaryDBClusterArn":
                                                   f"arn:aws:rds:{REGION}:{ACCOUNT}:cluster:ai-pipelines-test-fileingest-db"}}


def test_the_created_bucket_keeps_versions_as_long_as_a_message_may_name_them() -> None:
    rules = synth(settings()).named("fileingest-files-lifecycle").inputs["rules"]
    assert [r["id"] for r in rules] == ["abort-uploads-expire-noncurrent-versions"]
    assert rules[0]["noncurrentVersionExpiration"] == {"noncurrentDays": 30}
    assert rules[0]["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 1}
    expiring = synth(settings(bucket={"noncurrentVersionDays": 14, "objectRetentionDays": 60}))
    rules = expiring.named("fileingest-files-lifecycle").inputs["rules"]
    assert rules[0]["noncurrentVersionExpiration"] == {"noncurrentDays": 14}
    assert (rules[1]["filter"], rules[1]["expiration"]) == ({"prefix": ""}, {"days": 60})


DB = {"vpc": VPC, "host": "db.internal", "name": "ingest"}


@pytest.mark.parametrize(("vpc", "message"), [
    ({"subnetIds": SUBNETS, "securityGroupIds": GROUPS},
     r"need a route to S3 and Secrets Manager: set vpcId \(and routeTableIds\) so the stack creates"),
    ({"subnetIds": SUBNETS, "securityGroupIds": GROUPS, "endpoints": {"s3": "nat"}},
     r"need a route to Secrets Manager: set vpcId"),
    ({"subnetIds": SUBNETS, "securityGroupIds": GROUPS, "vpcId": "vpc-0123456789abcdef0"},
     "endpoints.s3 is create .*: set routeTableIds"),
    ({**VPC, "routeTableIds": ["rtb-0123456789abcdef0"]}, "routeTableIds is set but endpoints.s3 is nat"),
    ({**VPC, "endpoints": {"s3": "nat", "secretsManager": "create"}}, "secretsManager: create needs vpcId"),
    ({**VPC, "vpcId": "vpc-nope"}, "vpcId"),
])
def test_a_vpc_without_a_route_to_s3_and_secrets_manager_is_refused(vpc: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_stack_config({"owner": "x", "fileIngestion": {"database": {**DB, "vpc": vpc}}}, stack="dev")


def test_with_a_vpc_id_the_stack_creates_both_endpoints_before_the_migrations_run() -> None:
    vpc = {"subnetIds": SUBNETS, "securityGroupIds": GROUPS, "vpcId": "vpc-0123456789abcdef0",
           "routeTableIds": ["rtb-0123456789abcdef0"]}
    stack = synth(settings(database={"vpc": vpc}))
    s3 = stack.named("fileingest-s3-endpoint").inputs
    assert (s3["vpcEndpointType"], s3["serviceName"], s3["routeTableIds"]) == (
        "Gateway", f"com.amazonaws.{REGION}.s3", ["rtb-0123456789abcdef0"])
    secrets = stack.named("fileingest-secretsmanager-endpoint")
    assert (secrets.inputs["vpcEndpointType"], secrets.inputs["serviceName"], secrets.inputs["privateDnsEnabled"],
            secrets.inputs["subnetIds"]) == ("Interface", f"com.amazonaws.{REGION}.secretsmanager", True, SUBNETS)
    group = stack.named("fileingest-endpoints-sg")
    assert secrets.property_dependencies["securityGroupIds"] == [group.urn]
    (ingress,) = group.inputs["ingress"]
    assert (ingress["protocol"], ingress["fromPort"], ingress["toPort"], ingress["securityGroups"]) == (
        "tcp", 443, 443, GROUPS)
    assert "cidrBlocks" not in ingress and not group.inputs.get("egress")
    invocation = next(r for r in stack.resources if r.type == "aws:lambda/invocation:Invocation")
    assert {stack.named("fileingest-s3-endpoint").urn, secrets.urn} <= set(invocation.dependencies)


def test_declared_routes_create_no_endpoint_and_endpoint_subnets_can_be_chosen() -> None:
    assert synth(settings()).of_type("aws:ec2/vpcEndpoint:VpcEndpoint") == []
    vpc = {"subnetIds": SUBNETS, "securityGroupIds": GROUPS, "vpcId": "vpc-0123456789abcdef0",
           "endpoints": {"s3": "existing", "subnetIds": SUBNETS[:1]}}
    stack = synth(settings(database={"vpc": vpc}))
    (endpoint,) = stack.of_type("aws:ec2/vpcEndpoint:VpcEndpoint")
    assert (endpoint.inputs["serviceName"], endpoint.inputs["subnetIds"]) == (
        f"com.amazonaws.{REGION}.secretsmanager", SUBNETS[:1])


@pytest.mark.parametrize(("change", "message"), [
    ({"datasets": [{"prefix": "other/orders/", "dataset": "orders"}]}, "under no inputRules prefix"),
    ({"maxObjectBytes": 64 * 1024 * 1024}, "would not fit in memory"),
    ({"database": {**DB, "vpc": {"subnetIds": ["subnet-nope"], "securityGroupIds": GROUPS}}}, "subnet ids"),
    ({"database": {"vpc": VPC, "aurora": {"enabled": True},
                   "secret": {"existingName": "x"}}}, "aurora.enabled creates"),
    ({"database": {**DB, "secret": {"existingName": "x", "existingArn": SECRET_ARN}}}, "not both"),
    ({"database": {**DB, "sslMode": "verify-full"}},
     "sslMode verify-full needs the database's CA certificates"),
    ({"bucket": {"noncurrentVersionDays": 13}}, "bucket.noncurrentVersionDays 13 is below the 14 days a file's "
                                                "message may wait"),
    ({"bucket": {"existingName": "corp-landing", "objectRetentionDays": 30}},
     "objectRetentionDays set with existingName corp-landing"),
    ({"database": {k: v for k, v in DB.items() if k != "host"}}, "host and name are required .unless aurora.enabled."),
    ({"database": {**DB, "rotation": {"days": 0}}}, "rotation.days"),
])
def test_inconsistent_config_fails_naming_the_rule(change: dict[str, Any], message: str) -> None:
    section = {"database": DB, **change}
    with pytest.raises(ConfigError, match=message):
        parse_stack_config({"owner": "x", "fileIngestion": section}, stack="dev")


def test_shipped_stacks_name_declared_datasets() -> None:
    from file_ingestion.datasets import CATALOGUE
    from tests.support.stacks import function_environment

    for stack in ("dev", "prod"):
        datasets = json.loads(function_environment("file_ingestion", stack)["DATASETS"])
        assert {d["dataset"] for d in datasets} <= set(CATALOGUE)


def _rotations(result: Synthesis) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Per rotated secret's logical name: (the SecretRotation's inputs, its function stack's inputs)."""
    secrets = {r.urn: r.name for r in result.of_type("aws:secretsmanager/secret:Secret")}
    stack_type = "aws:serverlessrepository/cloudFormationStack:CloudFormationStack"
    stacks = {r.urn: r.inputs for r in result.of_type(stack_type)}
    found = {}
    for rotation in result.of_type("aws:secretsmanager/secretRotation:SecretRotation"):
        secret = next(secrets[urn] for urn in rotation.property_dependencies.get("secretId", []) if urn in secrets)
        stack = next(stacks[urn] for urn in rotation.dependencies if urn in stacks)
        found[secret] = (rotation.inputs, stack)
    return found


def test_the_secrets_the_stack_creates_rotate_by_aws_rotation_functions_in_the_vpc() -> None:
    result = synth(settings(), "update")
    rotations = _rotations(result)
    assert sorted(rotations) == ["fileingest-database-secret", "fileingest-loader-secret"]
    applications = {name: stack["applicationId"].rsplit("/", 1)[1] for name, (_, stack) in rotations.items()}
    assert applications == {"fileingest-loader-secret": "SecretsManagerRDSPostgreSQLRotationMultiUser",
                            "fileingest-database-secret": "SecretsManagerRDSPostgreSQLRotationSingleUser"}
    for rotation, stack in rotations.values():
        assert rotation["rotationRules"] == {"automaticallyAfterDays": 30}
        assert rotation["rotateImmediately"] is False  # the schedule's first turn; AWS tests the setup at once
        assert rotation["rotationLambdaArn"] == (f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:"
                                                 f"{stack['parameters']['functionName']}")
        assert stack["parameters"]["vpcSubnetIds"] == ",".join(SUBNETS)
        assert stack["parameters"]["vpcSecurityGroupIds"] == ",".join(GROUPS)
        assert stack["parameters"]["endpoint"] == f"https://secretsmanager.{REGION}.amazonaws.com"
    migrations = result.named("fileingest-migrate-run").urn  # the users exist before the first rotation
    assert all(migrations in r.dependencies for r in result.of_type("aws:secretsmanager/secretRotation:SecretRotation"))
    # Alternating users: the loader's rotation changes its users with the admin secret.
    assert rotations["fileingest-loader-secret"][1]["parameters"]["masterSecretArn"] == \
        "ai-pipelines/test/fileingest/database"
    assert "masterSecretArn" not in rotations["fileingest-database-secret"][1]["parameters"]


def test_rotation_is_configurable_and_aurora_s_managed_secret_is_left_to_rds() -> None:
    weekly = _rotations(synth(settings({"rotation": {"days": 7}}), "update"))
    assert {rotation["rotationRules"]["automaticallyAfterDays"] for rotation, _ in weekly.values()} == {7}
    assert _rotations(synth(settings({"rotation": {"enabled": False}}), "update")) == {}
    aurora = _rotations(synth(settings({"aurora": {"enabled": True}}), "update"))
    assert sorted(aurora) == ["fileingest-loader-secret"]


def test_the_loader_secret_is_created_with_a_generated_value_naming_its_user_and_the_database() -> None:
    result = synth(settings(), "update")
    version = result.named("fileingest-loader-secret-value")
    assert result.named("fileingest-loader-secret").urn in version.property_dependencies["secretId"]
    document = json.loads(version.inputs["secretString"])
    assert {k: v for k, v in document.items() if k != "password"} == {
        "engine": "postgres", "username": "test_fileingest_loader", "host": "db.internal", "port": 5432,
        "dbname": "ingest", "masterarn": "ai-pipelines/test/fileingest/database"}
    assert len(document["password"]) >= 40
