"""Ids, ARNs and other provider-computed values of a completed create, in AWS's formats.

Update mode (`offline.provider.applied_state`) gives every computed property the program left unset a value a
program can use as it would use the real one: ARNs and ids in their services' formats, stable for the same
resource, from the stack's account and region; addresses, host names and zone ids that look like AWS's. Where
nothing better is known, an empty value of the property's type.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

from offline.aws_account import AwsAccount


def _stable_id(*parts: str, length: int = 12) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def _uuid(*parts: str) -> str:
    return str(uuid.UUID(hashlib.md5("/".join(parts).encode()).hexdigest()))


# EC2 and VPC resources: the prefix of their ids and the resource type in their ARNs.
_EC2_IDS = {
    "aws:ec2/instance:Instance": ("i-", "instance"),
    "aws:ec2/vpc:Vpc": ("vpc-", "vpc"),
    "aws:ec2/subnet:Subnet": ("subnet-", "subnet"),
    "aws:ec2/securityGroup:SecurityGroup": ("sg-", "security-group"),
    "aws:ec2/internetGateway:InternetGateway": ("igw-", "internet-gateway"),
    "aws:ec2/routeTable:RouteTable": ("rtb-", "route-table"),
    "aws:ec2/natGateway:NatGateway": ("nat-", "natgateway"),
    "aws:ec2/eip:Eip": ("eipalloc-", "elastic-ip"),
    "aws:ec2/networkInterface:NetworkInterface": ("eni-", "network-interface"),
    "aws:ec2/launchTemplate:LaunchTemplate": ("lt-", "launch-template"),
    "aws:ec2/vpcEndpoint:VpcEndpoint": ("vpce-", "vpc-endpoint"),
    "aws:ec2/keyPair:KeyPair": ("key-", "key-pair"),
    "aws:ec2/networkAcl:NetworkAcl": ("acl-", "network-acl"),
    "aws:ec2/volume:Volume": ("vol-", "volume"),
}
# IAM resources: global ARNs, `<type>/<name>`.
_IAM_PATHS = {
    "aws:iam/user:User": "user", "aws:iam/group:Group": "group", "aws:iam/instanceProfile:InstanceProfile":
    "instance-profile", "aws:iam/role:Role": "role", "aws:iam/policy:Policy": "policy",
}


def computed_outputs(type_: str, name: str, inputs: dict[str, Any], acct: AwsAccount) -> tuple[str, dict[str, Any]]:
    """The id and the identity outputs (ARNs, URLs, generated ids) of a completed create, in AWS's formats."""
    physical = str(inputs.get("name") or name)
    module = type_.split(":")[1].split("/")[0] if type_.count(":") == 2 else ""
    out: dict[str, Any] = {}
    rid = physical
    if type_ in _EC2_IDS:
        prefix, kind = _EC2_IDS[type_]
        rid = prefix + _stable_id(type_, name, length=17)
        out = {"arn": acct.arn("ec2", f"{kind}/{rid}")}
    elif type_ in _IAM_PATHS:
        arn = acct.arn("iam", f"{_IAM_PATHS[type_]}/{physical}", regional=False)
        rid = arn if type_ == "aws:iam/policy:Policy" else physical
        out = {"arn": arn, "uniqueId": "AROA" + _stable_id(physical, length=16).upper(),
               "policyId": "ANPA" + _stable_id(physical, length=16).upper()}
    elif type_ == "aws:sqs/queue:Queue":
        rid = f"https://sqs.{acct.region}.{acct.dns_suffix}/{acct.account_id}/{physical}"
        out = {"arn": acct.arn("sqs", physical), "url": rid}
    elif type_.startswith("aws:s3/bucket") and type_.endswith(("Bucket", "BucketV2")):
        bucket = str(inputs.get("bucket") or physical)
        rid = bucket
        out = {"arn": acct.arn("s3", bucket, regional=False, with_account=False), "bucket": bucket,
               "bucketDomainName": f"{bucket}.s3.{acct.dns_suffix}",
               "bucketRegionalDomainName": f"{bucket}.s3.{acct.region}.{acct.dns_suffix}", "region": acct.region}
    elif type_ == "aws:lambda/function:Function":
        arn = acct.arn("lambda", f"function:{physical}")
        out = {"arn": arn, "qualifiedArn": f"{arn}:$LATEST", "version": "$LATEST",
               "invokeArn": f"arn:{acct.partition}:apigateway:{acct.region}:lambda:path/2015-03-31/functions/"
                            f"{arn}/invocations"}
    elif type_ == "aws:iam/rolePolicy:RolePolicy":
        rid = f"{inputs.get('role', '')}:{physical}"
    elif type_ == "aws:cloudwatch/logGroup:LogGroup":
        out = {"arn": acct.arn("logs", f"log-group:{physical}")}
    elif type_ == "aws:cloudwatch/metricAlarm:MetricAlarm":
        out = {"arn": acct.arn("cloudwatch", f"alarm:{physical}")}
    elif type_ == "aws:sns/topic:Topic":
        rid = acct.arn("sns", physical)
        out = {"arn": rid}
    elif type_ == "aws:kms/key:Key":
        rid = _uuid(name)
        out = {"arn": acct.arn("kms", f"key/{rid}"), "keyId": rid}
    elif type_ == "aws:kms/alias:Alias":
        out = {"arn": acct.arn("kms", physical)}
    elif type_ == "aws:lambda/eventSourceMapping:EventSourceMapping":
        rid = _uuid(name)
        out = {"uuid": rid, "arn": acct.arn("lambda", f"event-source-mapping:{rid}"), "state": "Enabled"}
    elif type_ == "aws:sqs/queuePolicy:QueuePolicy":
        rid = str(inputs.get("queueUrl", physical))
    elif type_ == "aws:sns/topicSubscription:TopicSubscription":
        rid = f"{inputs.get('topic', '')}:{_uuid(name)}"
        out = {"arn": rid}
    elif type_ == "aws:scheduler/schedule:Schedule":
        group = inputs.get("groupName", "default")
        rid = f"{group}/{physical}"
        out = {"arn": acct.arn("scheduler", f"schedule/{group}/{physical}")}
    elif type_ == "aws:dynamodb/table:Table":
        out = {"arn": acct.arn("dynamodb", f"table/{physical}")}
    elif type_ == "aws:cloudwatch/eventBus:EventBus":
        out = {"arn": acct.arn("events", f"event-bus/{physical}")}
    elif type_ == "aws:cloudwatch/eventRule:EventRule":
        bus = inputs.get("eventBusName", "default")
        path = f"rule/{physical}" if bus == "default" else f"rule/{bus}/{physical}"
        out = {"arn": acct.arn("events", path)}
    elif type_ == "aws:sfn/stateMachine:StateMachine":
        rid = acct.arn("states", f"stateMachine:{physical}")
        out = {"arn": rid}
    elif type_ == "aws:secretsmanager/secret:Secret":
        rid = acct.arn("secretsmanager", f"secret:{physical}-{_stable_id(physical, length=6)}")
        out = {"arn": rid}
    elif type_ == "aws:acm/certificate:Certificate":
        rid = acct.arn("acm", f"certificate/{_uuid(name)}")
        out = {"arn": rid, "domainValidationOptions": _validation_options(inputs)}
    elif type_.startswith("aws:lb/loadBalancer:") or type_.startswith("aws:alb/loadBalancer:"):
        kind = "net" if inputs.get("loadBalancerType") == "network" else "app"
        rid = acct.arn("elasticloadbalancing", f"loadbalancer/{kind}/{physical}/{_stable_id(name, length=16)}")
        out = {"arn": rid, "arnSuffix": rid.split(":loadbalancer/", 1)[1],
               "dnsName": f"{physical}-{int(_stable_id(name, length=8), 16)}.{acct.region}.elb.{acct.dns_suffix}"}
    elif module:
        # Any other type: `<service>:<region>:<account>:<resource type>/<name>`, the most common ARN layout.
        kind = re.sub(r"(?<!^)(?=[A-Z])", "-", type_.rsplit(":", 1)[1]).lower()
        out = {"arn": acct.arn(module, f"{kind}/{physical}")}
    out.setdefault("id", rid)
    return rid, out


def _validation_options(inputs: dict[str, Any]) -> list[dict[str, str]]:
    """One DNS validation record per domain of a certificate, as ACM returns them."""
    if inputs.get("validationMethod") not in ("DNS", None):
        return []
    domains = [inputs.get("domainName"), *(inputs.get("subjectAlternativeNames") or [])]
    return [{"domainName": domain, "resourceRecordName": f"_{_stable_id('name', domain, length=32)}.{domain}.",
             "resourceRecordType": "CNAME", "resourceRecordValue":
             f"_{_stable_id('value', domain, length=32)}.{_stable_id(domain)}.acm-validations.aws."}
            for domain in domains if domain]


def realistic_value(type_: str, prop: str, kind: str, physical: str, state: dict[str, Any],
                    acct: AwsAccount) -> Any:
    """A value for a computed property no format above covers: by its name where AWS's format is well known
    (addresses, host names, zones, ids), else an empty value of its type."""
    if kind != "string":
        return {"integer": 0, "number": 0, "boolean": False, "array": [], "object": {}}[kind]
    seed = _stable_id(type_, physical, prop, length=8)
    octets = [int(seed[i:i + 2], 16) for i in (0, 2)]
    lowered = prop.lower()
    if lowered in ("privateip", "privateipaddress"):
        return f"10.0.{octets[0]}.{octets[1] or 1}"
    if lowered in ("publicip", "publicipaddress"):
        return f"203.0.113.{octets[1] or 1}"
    if lowered == "privatedns":
        return f"ip-10-0-{octets[0]}-{octets[1] or 1}.{acct.region}.compute.internal"
    if lowered == "publicdns":
        return f"ec2-203-0-113-{octets[1] or 1}.{acct.region}.compute.{acct.dns_suffix}"
    if lowered == "availabilityzone":
        return f"{acct.region}a"
    if lowered in ("zoneid", "hostedzoneid"):
        return "Z" + seed.upper() + _stable_id(seed, length=5).upper()
    if lowered in ("ownerid", "accountid"):
        return acct.account_id
    if lowered in ("dnsname", "domainname", "websiteendpoint", "websitedomain"):
        return f"{physical.lower()}-{seed}.{acct.region}.{acct.dns_suffix}"
    if lowered.endswith("endpoint"):
        return f"https://{seed}.{type_.split(':')[1].split('/')[0]}.{acct.region}.{acct.dns_suffix}"
    if lowered.endswith("arn"):
        return acct.arn(type_.split(":")[1].split("/")[0], f"{prop[:-3].lower() or 'resource'}/{physical}")
    for suffix, prefix in (("vpcid", "vpc-"), ("subnetid", "subnet-"), ("securitygroupid", "sg-")):
        if lowered.endswith(suffix):
            return prefix + _stable_id(seed, length=17)
    return ""
