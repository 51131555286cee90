"""Everyday invokes: identity, region, partition, zones, the default VPC and its subnets, an AMI, a hosted zone, a
policy document, and one the offline provider does not know (answered in offline.test.yaml)."""

import pulumi
import pulumi_aws as aws

identity = aws.get_caller_identity()
region = aws.get_region()
partition = aws.get_partition()
zones = aws.get_availability_zones(state="available")
vpc = aws.ec2.get_vpc(default=True)
subnets = aws.ec2.get_subnets(filters=[{"name": "vpc-id", "values": [vpc.id]}])
ami = aws.ec2.get_ami(most_recent=True, owners=["amazon"], filters=[{"name": "name", "values": ["al2023-ami-*"]}])
zone = aws.route53.get_zone(name="example.com")
group = aws.ec2.get_security_group(vpc_id=vpc.id, name="default")
document = aws.iam.get_policy_document(statements=[{
    "actions": ["sqs:SendMessage"],
    "resources": [f"arn:{partition.partition}:sqs:{region.region}:{identity.account_id}:jobs"],
}])
parameter = aws.ssm.get_parameter(name="/fixture/image-tag")

aws.ec2.Instance("web", ami=ami.id, instance_type="t3.micro", subnet_id=subnets.ids[0],
                 vpc_security_group_ids=[group.id], availability_zone=zones.names[0],
                 tags={"zone": zone.zone_id, "image": parameter.value})
aws.iam.Policy("send", policy=document.json)
pulumi.export("cidr", vpc.cidr_block)
