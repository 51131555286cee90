"""Placing a function in a VPC: its subnets and security groups, the network-interface permissions it needs, and
the endpoints through which it reaches AWS services from private subnets.

Lambda creates, describes and deletes the function's elastic network interfaces with the function's own role, so
a VPC function's role carries these actions although its code never calls them (the least-privilege check derives
these requests from the function's VPC placement). They are scoped as far as EC2 allows: creating an interface only
in the configured subnets with the configured security groups, deleting and re-addressing only network
interfaces of this account and region; the two Describe actions have no resource-level permissions.

>>> placement = VpcPlacement(("subnet-0123456789abcdef0",), ("sg-0123456789abcdef0",))
>>> [s.sid for s in network_interface_statements(AwsEnv("123456789012", "eu-west-1"), placement)]
['CreateInterfacesInOwnSubnets', 'ManageOwnInterfaces', 'DescribeNetwork']
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.blocks.iam import AwsEnv, Statement
from components.blocks.naming import Naming

# The actions AWS documents for a VPC function's execution role (AWSLambdaVPCAccessExecutionRole), no more.
NETWORK_INTERFACE_ACTIONS = (
    "ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface", "ec2:DescribeNetworkInterfaces",
    "ec2:DescribeSubnets", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses",
)


@dataclass(frozen=True)
class VpcPlacement:
    subnet_ids: tuple[str, ...]
    security_group_ids: tuple[str, ...]

    def function_args(self) -> aws.lambda_.FunctionVpcConfigArgs:
        """``vpc_config`` of ``aws.lambda_.Function``."""
        return aws.lambda_.FunctionVpcConfigArgs(subnet_ids=list(self.subnet_ids),
                                                 security_group_ids=list(self.security_group_ids))


def network_interface_statements(env: AwsEnv, placement: VpcPlacement) -> list[Statement]:
    interfaces = env.arn("ec2", "network-interface/*")
    return [
        Statement("CreateInterfacesInOwnSubnets", ["ec2:CreateNetworkInterface"],
                  [interfaces, *(env.arn("ec2", f"subnet/{s}") for s in placement.subnet_ids),
                   *(env.arn("ec2", f"security-group/{g}") for g in placement.security_group_ids)]),
        Statement("ManageOwnInterfaces",
                  ["ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"],
                  [interfaces]),
        # EC2's Describe actions support no resource-level permissions: "*" is the only valid resource.
        Statement("DescribeNetwork", ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"], ["*"]),
    ]


HTTPS = 443


class ServiceEndpoints(pulumi.ComponentResource):
    """The routes from private subnets to S3 and Secrets Manager: a gateway endpoint for S3 on the subnets' route
    tables (free; S3 in this region only) and an interface endpoint for Secrets Manager with private DNS, so the SDK's
    usual address resolves to it, reachable on 443 only from the functions' security groups (its own group, which
    allows nothing else in and nothing out). Either may be left out when the VPC already routes to the service.

    ``resources`` are what a call through them must wait for (the migrations `pulumi up` invokes).

    >>> ServiceEndpoints(naming, env, vpc_id="vpc-0123456789abcdef0", s3_route_tables=("rtb-0123456789abcdef0",),
    ...                  interface_subnets=("subnet-0123456789abcdef0",),
    ...                  client_security_groups=("sg-0123456789abcdef0",))  # doctest: +SKIP
    """

    def __init__(self, naming: Naming, env: AwsEnv, *, vpc_id: str, s3_route_tables: Sequence[str] = (),
                 interface_subnets: Sequence[str] = (), client_security_groups: Sequence[str] = (),
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ai-pipelines:blocks:ServiceEndpoints", naming.logical("endpoints"), None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.resources: list[pulumi.Resource] = []
        if s3_route_tables:
            self.s3 = aws.ec2.VpcEndpoint(
                naming.logical("s3-endpoint"), vpc_id=vpc_id, service_name=f"com.amazonaws.{env.region}.s3",
                vpc_endpoint_type="Gateway", route_table_ids=list(s3_route_tables),
                tags={**naming.tags, "Name": naming.name("s3")}, opts=child)
            self.resources.append(self.s3)
        if interface_subnets:
            self.security_group = aws.ec2.SecurityGroup(
                naming.logical("endpoints-sg"), name=naming.name("endpoints", max_length=255), vpc_id=vpc_id,
                description="HTTPS from the pipeline's functions to its interface endpoints",
                ingress=[aws.ec2.SecurityGroupIngressArgs(
                    description="HTTPS from the functions", protocol="tcp", from_port=HTTPS, to_port=HTTPS,
                    security_groups=list(client_security_groups))],
                tags=naming.tags, opts=child)
            self.secrets_manager = aws.ec2.VpcEndpoint(
                naming.logical("secretsmanager-endpoint"), vpc_id=vpc_id,
                service_name=f"com.amazonaws.{env.region}.secretsmanager", vpc_endpoint_type="Interface",
                subnet_ids=list(interface_subnets), security_group_ids=[self.security_group.id],
                private_dns_enabled=True, tags={**naming.tags, "Name": naming.name("secretsmanager")}, opts=child)
            self.resources.append(self.secrets_manager)
        self.register_outputs({})
