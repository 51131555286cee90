"""A program that reads another stack's outputs."""

import pulumi
import pulumi_aws as aws

network = pulumi.StackReference("acme/network/prod")
aws.ec2.SecurityGroup("app", vpc_id=network.get_output("vpcId"), description="app")
pulumi.export("vpc", network.require_output("vpcId"))
