"""Answers to the invokes (data sources) a program calls, and to its stack references, without AWS.

Three sources, first match wins:

1. an answers file the user supplies per stack (`offline.<stack>.yaml` beside `Pulumi.yaml`, or `--invokes FILE`):

       invokes:
         - invoke: aws:ec2/getVpc:getVpc      # the invoke's token
           args: {default: true}              # optional: matches a call whose arguments include these
           result: {id: vpc-0a1b2c3d, cidrBlock: 10.20.0.0/16}
       stackReferences:
         acme/network/prod: {vpcId: vpc-0a1b2c3d}   # the referenced stack's outputs

2. pure functions the provider computes from the arguments alone: `aws.iam.get_policy_document`;
3. realistic answers for the invokes programs commonly make (account, region, partition, availability zones,
   the default VPC, its subnets and route tables, an AMI, a hosted zone, a security group), from the stack's account
   and region,
   stable for the same arguments.

Anything else is an `InvokeError` naming the invoke, its arguments and how to answer it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from offline.aws_account import AwsAccount
from offline.policy_document import policy_document

FIXTURE_FORMAT = "docs/offline-fidelity.md#invokes-urns-stack-references-config"  # where the format is documented


class InvokeError(Exception):
    """An invoke (or stack reference) the offline provider cannot answer, or an answers file it cannot read."""


@dataclass(frozen=True)
class Answer:
    token: str
    args: Mapping[str, Any]
    result: Mapping[str, Any]

    def matches(self, token: str, args: Mapping[str, Any]) -> bool:
        return token == self.token and all(args.get(key) == value for key, value in self.args.items())


@dataclass(frozen=True)
class Answers:
    """What the user's answers file says; empty when there is none."""

    source: Path | None = None
    invokes: tuple[Answer, ...] = ()
    suggested: Path | None = None  # where an answers file would be read from, when there is none
    stack_references: Mapping[str, Mapping[str, Any]] | None = None


def load_answers(path: Path) -> Answers:
    """Read an answers file, naming the file and the entry that is wrong."""
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as error:
        raise InvokeError(f"{path}: {error.strerror}") from error
    except yaml.YAMLError as error:
        raise InvokeError(f"{path}: not YAML: {error}") from error
    if not isinstance(document, dict) or set(document) - {"invokes", "stackReferences"}:
        raise InvokeError(f"{path}: expected a mapping with 'invokes' and/or 'stackReferences' ({FIXTURE_FORMAT})")
    answers = []
    for position, entry in enumerate(document.get("invokes") or []):
        where = f"{path}: invokes[{position}]"
        if not isinstance(entry, dict) or not isinstance(entry.get("invoke"), str):
            raise InvokeError(f"{where}: needs 'invoke' (a token such as aws:ec2/getVpc:getVpc) and 'result'")
        if not isinstance(entry.get("result"), dict) or not isinstance(entry.get("args") or {}, dict):
            raise InvokeError(f"{where} ({entry['invoke']}): 'result' and 'args' must be mappings")
        answers.append(Answer(entry["invoke"], entry.get("args") or {}, entry["result"]))
    references = document.get("stackReferences") or {}
    if not isinstance(references, dict) or not all(isinstance(v, dict) for v in references.values()):
        raise InvokeError(f"{path}: stackReferences maps a stack name (org/project/stack) to its outputs")
    return Answers(source=path, invokes=tuple(answers), stack_references=references)


def _hex(*parts: Any, length: int) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:length]


def _zone_letters(acct: AwsAccount) -> list[str]:
    return [f"{acct.region}{letter}" for letter in "abc"]


def _caller_identity(args: Mapping[str, Any], acct: AwsAccount) -> dict[str, Any]:
    return {"accountId": acct.account_id, "arn": f"arn:{acct.partition}:iam::{acct.account_id}:user/offline",
            "id": acct.account_id, "userId": "AIDAOFFLINE"}


def _region(args: Mapping[str, Any], acct: AwsAccount) -> dict[str, Any]:
    return {"name": acct.region, "region": acct.region, "id": acct.region, "description": acct.region,
            "endpoint": f"ec2.{acct.region}.{acct.dns_suffix}"}


def _partition(args: Mapping[str, Any], acct: AwsAccount) -> dict[str, Any]:
    return {"partition": acct.partition, "dnsSuffix": acct.dns_suffix, "id": acct.partition,
            "reverseDnsPrefix": ".".join(reversed(acct.dns_suffix.split(".")))}


def _availability_zones(args: Mapping[str, Any], acct: AwsAccount) -> dict[str, Any]:
    names = [z for z in _zone_letters(acct) if z not in (args.get("excludeNames") or ())]
    short = "".join(part[0] for part in acct.region.split("-")[:-1]) + acct.region.rsplit("-", 1)[-1]
    return {"id": acct.region, "names": names, "zoneIds": [f"{short}-az{i + 1}" for i in range(len(names))],
            "groupNames": [acct.region], "state": args.get("state") or "available", "region": acct.region}


def _vpc(args: Mapping[str, Any], acct: AwsAccount) -> dict[str, Any]:
    vpc_id = args.get("id") or f"vpc-{_hex('vpc', args, length=17)}"
    return {"id": vpc_id, "arn": acct.arn("ec2", f"vpc/{vpc_id}"), "cidrBlock": args.get("cidrBlock") or
            "172.31.0.0/16", "default": bool(args.get("default", True)), "state": "available",
            "ownerId": acct.account_id, "instanceTenancy": "default", "enableDnsSupport": True,
            "enableDnsHostnames": True, "mainRouteTableId": f"rtb-{_hex('rtb', vpc_id, length=17)}",
            "dhcpOptionsId": f"dopt-{_hex('dopt', vpc_id, length=17)}", "cidrBlockAssociations": [],
            "tags": args.get("tags") or {}, "region": acct.region}


def _subnets(args: Mapping[str, Any], acct: AwsAccount) -> dict[str, Any]:
    return {"id": acct.region, "ids": [f"subnet-{_hex('subnet', zone, args, length=17)}"
                                       for zone in _zone_letters(acct)], "region": acct.region}


def _subnet(args: Mapping[str, Any], acct: AwsAccount) -> dict[str, Any]:
    subnet_id = args.get("id") or f"subnet-{_hex('subnet', args, length=17)}"
    return {"id": subnet_id, "arn": acct.arn("ec2", f"subnet/{subnet_id}"), "vpcId": args.get("vpcId") or
            f"vpc-{_hex('vpc', {}, length=17)}", "cidrBlock": "172.31.0.0/20",
            "availabilityZone": _zone_letters(acct)[0], "availableIpAddressCount": 4091, "state": "available",
            "ownerId": acct.account_id, "mapPublicIpOnLaunch": False, "tags": {}, "region": acct.region}


def _security_group(args: Mapping[str, Any], acct: AwsAccount) -> dict[str, Any]:
    group_id = args.get("id") or f"sg-{_hex('sg', args, length=17)}"
    return {"id": group_id, "arn": acct.arn("ec2", f"security-group/{group_id}"),
            "name": args.get("name") or "default", "description": "offline security group",
            "vpcId": args.get("vpcId") or f"vpc-{_hex('vpc', {}, length=17)}", "tags": {}, "region": acct.region}


def _route_tables(args: Mapping[str, Any], acct: AwsAccount) -> dict[str, Any]:
    """The route tables of a VPC (its main one) or of the subnet a filter names: one, never none."""
    return {"id": acct.region, "ids": [f"rtb-{_hex('rtb', args.get('vpcId'), args.get('filters'), length=17)}"],
            "region": acct.region}


def _ami(args: Mapping[str, Any], acct: AwsAccount) -> dict[str, Any]:
    image_id = f"ami-{_hex('ami', acct.region, args, length=17)}"  # AMI ids differ between regions
    arm = "arm64" in json.dumps(args.get("filters") or []) or "arm64" in str(args.get("nameRegex") or "")
    return {"id": image_id, "imageId": image_id, "arn": acct.arn("ec2", f"image/{image_id}", with_account=False),
            "architecture": "arm64" if arm else "x86_64", "name": "offline-image", "ownerId": "137112412989",
            "owners": args.get("owners") or [], "state": "available", "rootDeviceType": "ebs",
            "rootDeviceName": "/dev/xvda", "virtualizationType": "hvm", "imageType": "machine", "public": True,
            "creationDate": "2026-01-01T00:00:00.000Z", "blockDeviceMappings": [], "productCodes": [],
            "tags": {}, "region": acct.region}


def _zone(args: Mapping[str, Any], acct: AwsAccount) -> dict[str, Any]:
    name = str(args.get("name") or "example.com").rstrip(".")
    zone_id = args.get("zoneId") or "Z" + _hex("zone", name, length=13).upper()
    return {"id": zone_id, "zoneId": zone_id, "name": name, "arn": f"arn:{acct.partition}:route53:::hostedzone/"
            f"{zone_id}", "privateZone": bool(args.get("privateZone", False)), "comment": "",
            "nameServers": [f"ns-{n}.awsdns-{n:02d}.org" for n in (1, 2, 3, 4)], "resourceRecordSetCount": 2,
            "callerReference": zone_id, "tags": {}}


def _policy_document(args: Mapping[str, Any], acct: AwsAccount) -> dict[str, Any]:
    return policy_document(args)  # the provider computes it from the arguments alone


COMPUTED: dict[str, Callable[[Mapping[str, Any], AwsAccount], dict[str, Any]]] = {
    "aws:index/getCallerIdentity:getCallerIdentity": _caller_identity,
    "aws:index/getRegion:getRegion": _region,
    "aws:index/getPartition:getPartition": _partition,
    "aws:index/getAvailabilityZones:getAvailabilityZones": _availability_zones,
    "aws:iam/getPolicyDocument:getPolicyDocument": _policy_document,
    "aws:ec2/getVpc:getVpc": _vpc,
    "aws:ec2/getSubnets:getSubnets": _subnets,
    "aws:ec2/getSubnet:getSubnet": _subnet,
    "aws:ec2/getSecurityGroup:getSecurityGroup": _security_group,
    "aws:ec2/getRouteTables:getRouteTables": _route_tables,
    "aws:ec2/getAmi:getAmi": _ami,
    "aws:route53/getZone:getZone": _zone,
}


class InvokeAnswerer:
    """Answers a program's invokes and stack references for one stack."""

    def __init__(self, account: AwsAccount, answers: Answers | None = None) -> None:
        self.account = account
        self.answers = answers or Answers()

    def _how_to_answer(self) -> str:
        where = self.answers.source or self.answers.suggested or "offline.<stack>.yaml beside Pulumi.yaml"
        return f"answer it in {where} ({FIXTURE_FORMAT})"

    def invoke(self, token: str, args: Mapping[str, Any], *, region: str | None = None) -> dict[str, Any]:
        for answer in self.answers.invokes:
            if answer.matches(token, args):
                return dict(answer.result)
        compute = COMPUTED.get(token)
        if compute is None:
            raise InvokeError(f"the offline provider does not answer the invoke {token} with arguments "
                              f"{json.dumps(dict(args), sort_keys=True, default=str)}: {self._how_to_answer()}")
        account = replace(self.account, region=region) if region else self.account
        try:
            return compute(args, account)
        except ValueError as error:
            raise InvokeError(f"invoke {token}: {error}") from error

    def stack_outputs(self, name: str) -> dict[str, Any]:
        outputs = (self.answers.stack_references or {}).get(name)
        if outputs is None:
            raise InvokeError(f"the offline engine cannot read stack {name!r} (a StackReference): give its outputs "
                              f"under stackReferences: {{{name}: {{...}}}}; {self._how_to_answer()}")
        return dict(outputs)
