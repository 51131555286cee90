"""Values a program reads back after create: an instance's addresses, a certificate's DNS validation records, an IAM
user's ARN, the route tables of the default VPC."""

import json

import pulumi
import pulumi_aws as aws

vpc = aws.ec2.get_vpc(default=True)
tables = aws.ec2.get_route_tables(vpc_id=vpc.id)
server = aws.ec2.Instance("web", ami="ami-0fixture", instance_type="t3.micro")
certificate = aws.acm.Certificate("site", domain_name="www.example.com", validation_method="DNS")
zone = aws.route53.get_zone(name="example.com")
record = aws.route53.Record("validation", zone_id=zone.zone_id, ttl=60,
                            name=certificate.domain_validation_options.apply(lambda o: o[0].resource_record_name),
                            type=certificate.domain_validation_options.apply(lambda o: o[0].resource_record_type),
                            records=[certificate.domain_validation_options.apply(
                                lambda o: o[0].resource_record_value)])
aws.acm.CertificateValidation("site", certificate_arn=certificate.arn, validation_record_fqdns=[record.fqdn])
deployer = aws.iam.User("deployer", name="deployer")
aws.iam.Role("deploy", assume_role_policy=deployer.arn.apply(lambda arn: json.dumps({
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"AWS": arn}, "Action": "sts:AssumeRole"}]})))
pulumi.export("server", {"id": server.id, "private_ip": server.private_ip, "public_dns": server.public_dns})
pulumi.export("route_table", tables.ids[0])
