"""Scheduled rotation of a PostgreSQL credentials secret by AWS's own rotation function.

The function is AWS's (the Secrets Manager rotation templates, deployed from the Serverless Application Repository
as a CloudFormation stack), placed in the database's VPC so it reaches the database and, through the VPC's route or
endpoint, Secrets Manager. Two strategies, by what the secret is for:

- ``single-user``: the secret's own user changes its password. Between the database's change and the secret's new
  version becoming current (seconds), a new connection made with the old secret is refused; clients read the secret
  again when refused. Fits an admin secret, used only by `pulumi up`'s migrations.
- ``alternating-users``: the function keeps two users (the secret's and a ``_clone``, which it creates with the
  same role memberships) and changes the password of the one not in use, with the admin credentials of the secret
  named by the rotated secret's ``masterarn``. The secret's current version always works while a rotation runs, so
  an always-on client (the loader) never meets a refused password; the previous user keeps working until the next
  rotation, so connections opened before it are not cut.

Rotation is configured with ``rotate_immediately=False``: the first rotation happens on the schedule, and Secrets
Manager checks the configuration at once by running the function's testSecret step.

>>> SecretRotation(naming, env, "loader-rotation", secret=loader_secret, strategy="alternating-users", vpc=placement,
...                master_secret_arn=admin_arn, days=30, depends_on=[migrations])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import pulumi
import pulumi_aws as aws

from components.blocks.iam import AwsEnv
from components.blocks.naming import Naming
from components.blocks.vpc import VpcPlacement

Strategy = Literal["single-user", "alternating-users"]
# AWS's rotation templates in the Serverless Application Repository, pinned to one version so a deploy never takes
# a new rotation function silently.
_APPLICATIONS = {
    "single-user": "SecretsManagerRDSPostgreSQLRotationSingleUser",
    "alternating-users": "SecretsManagerRDSPostgreSQLRotationMultiUser",
}
_REPOSITORY_ACCOUNT = {"aws": ("us-east-1", "297356227824"), "aws-cn": ("cn-north-1", "193023089310")}
APPLICATION_VERSION = "1.1.618"


def application_id(env: AwsEnv, strategy: Strategy) -> str:
    if env.partition not in _REPOSITORY_ACCOUNT:
        raise ValueError(f"partition {env.partition}: the rotation templates' repository is known only for "
                         f"{sorted(_REPOSITORY_ACCOUNT)}; set database.rotation.enabled false and rotate otherwise")
    region, account = _REPOSITORY_ACCOUNT[env.partition]
    return f"arn:{env.partition}:serverlessrepo:{region}:{account}:applications/{_APPLICATIONS[strategy]}"


class SecretRotation(pulumi.ComponentResource):
    """AWS's rotation function for PostgreSQL in the VPC, and the secret's rotation schedule."""

    def __init__(self, naming: Naming, env: AwsEnv, purpose: str, *, secret: aws.secretsmanager.Secret,
                 strategy: Strategy, vpc: VpcPlacement, days: int, master_secret_arn: pulumi.Input[str] | None = None,
                 depends_on: Sequence[pulumi.Resource] = (), key_arn: pulumi.Input[str] | None = None,
                 master_key_arn: pulumi.Input[str] | None = None, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ai-pipelines:blocks:SecretRotation", naming.logical(purpose), None, opts)
        if (strategy == "alternating-users") != (master_secret_arn is not None):
            raise ValueError("alternating-users rotation needs the admin secret (master_secret_arn); single-user none")
        function_name = naming.name(purpose)
        parameters: dict[str, pulumi.Input[str]] = {
            "endpoint": f"https://secretsmanager.{env.region}.{env.dns_suffix}",
            "functionName": function_name,
            "vpcSubnetIds": ",".join(vpc.subnet_ids),
            "vpcSecurityGroupIds": ",".join(vpc.security_group_ids),
            # Characters that would need quoting in a libpq connection string or a shell.
            "excludeCharacters": "/@\"'\\ :;`",
        }
        if master_secret_arn is not None:
            parameters["masterSecretArn"] = master_secret_arn
        if key_arn is not None:
            # The secret is encrypted with the stack's key: the template grants its function that key (through
            # Secrets Manager, which the key policy allows the account's roles) instead of aws/secretsmanager.
            parameters["kmsKeyArn"] = key_arn
        if master_key_arn is not None:
            parameters["masterSecretKmsKeyArn"] = master_key_arn  # likewise for the admin secret it reads
        self.function_stack = aws.serverlessrepository.CloudFormationStack(
            naming.logical(f"{purpose}-function"), name=naming.name(purpose, max_length=128),
            application_id=application_id(env, strategy), semantic_version=APPLICATION_VERSION,
            capabilities=["CAPABILITY_IAM", "CAPABILITY_RESOURCE_POLICY"], parameters=parameters, tags=naming.tags,
            opts=pulumi.ResourceOptions(parent=self))
        self.rotation = aws.secretsmanager.SecretRotation(
            naming.logical(purpose), secret_id=secret.id,
            # The function's name is ours (a template parameter), so its ARN is known at preview; the dependency
            # on the stack orders the two.
            rotation_lambda_arn=env.arn("lambda", f"function:{function_name}"),
            rotation_rules={"automatically_after_days": days}, rotate_immediately=False,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*depends_on, self.function_stack]))
        self.register_outputs({"functionName": function_name, "strategy": strategy, "days": days})
