"""A program that reads a secret from config and passes it on, and a plain number."""

import pulumi
import pulumi_aws as aws

config = pulumi.Config()
token = config.require_secret("apiToken")
aws.secretsmanager.Secret("token", name="fixture-token")
aws.ssm.Parameter("token-copy", type="SecureString", value=token)
pulumi.export("replicas", config.require_int("replicas"))
