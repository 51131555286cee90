"""Placing a function in a VPC: its subnets and security groups, and the network-interface permissions it needs.

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

from dataclasses import dataclass

import pulumi_aws as aws

from components.blocks.iam import AwsEnv, Statement

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
