"""What the AWS provider computes, emulated where the policy pack or the program can observe it.

In preview mode a brand-new resource's provider-computed outputs (ARNs, ids, URLs) are unknown, exactly as in
`pulumi preview` of a new stack. In update mode they are realistic, in AWS's formats, from the stack's account
and region. Policy documents arrive as JSON strings, and a document with any unknown inside is one unknown
string, as the provider turns it.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs, Mocks

from offline.model import UNKNOWN, Mode
from offline.values import plain

# Properties the AWS provider takes as JSON documents (type token -> property names).
JSON_DOCUMENT_PROPERTIES: dict[str, tuple[str, ...]] = {
    "aws:iam/role:Role": ("assumeRolePolicy",),
    "aws:iam/rolePolicy:RolePolicy": ("policy",),
    "aws:iam/policy:Policy": ("policy",),
    "aws:sqs/queue:Queue": ("policy", "redrivePolicy", "redriveAllowPolicy"),
    "aws:sqs/queuePolicy:QueuePolicy": ("policy",),
    "aws:sns/topicPolicy:TopicPolicy": ("policy",),
    "aws:s3/bucketPolicy:BucketPolicy": ("policy",),
    "aws:kms/key:Key": ("policy",),
    "aws:sfn/stateMachine:StateMachine": ("definition",),
    "aws:cloudwatch/eventRule:EventRule": ("eventPattern",),
}


@dataclass(frozen=True)
class AwsAccount:
    account_id: str
    region: str
    partition: str = "aws"
    dns_suffix: str = "amazonaws.com"

    def arn(self, service: str, resource: str, *, regional: bool = True, with_account: bool = True) -> str:
        return (f"arn:{self.partition}:{service}:{self.region if regional else ''}:"
                f"{self.account_id if with_account else ''}:{resource}")


def contains_unknown(value: Any) -> bool:
    if isinstance(value, str):
        return value == UNKNOWN
    if isinstance(value, dict):
        return any(contains_unknown(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(contains_unknown(v) for v in value)
    return False


def as_provider_inputs(type_: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Inputs as the provider holds them: JSON documents as strings, unknown as a whole if unknown in part."""
    result = dict(inputs)
    for prop in JSON_DOCUMENT_PROPERTIES.get(type_, ()):
        value = result.get(prop)
        if value is None:
            continue
        if contains_unknown(value):
            result[prop] = UNKNOWN
        elif not isinstance(value, str):
            result[prop] = json.dumps(value)
    return result


def _stable_id(*parts: str, length: int = 12) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def computed_outputs(type_: str, name: str, inputs: dict[str, Any], acct: AwsAccount) -> tuple[str, dict[str, Any]]:
    """The id and provider-computed outputs of a completed `pulumi up`, in AWS's formats."""
    physical = str(inputs.get("name") or name)
    token = type_.split(":")[1].split("/")[0] if ":" in type_ else ""
    out: dict[str, Any] = {}
    rid = physical
    if type_ == "aws:sqs/queue:Queue":
        rid = f"https://sqs.{acct.region}.{acct.dns_suffix}/{acct.account_id}/{physical}"
        out = {"arn": acct.arn("sqs", physical), "url": rid}
    elif type_.startswith("aws:s3/bucket") and type_.endswith(("Bucket", "BucketV2")):
        bucket = str(inputs.get("bucket") or physical)
        rid = bucket
        out = {"arn": acct.arn("s3", bucket, regional=False, with_account=False), "bucket": bucket,
               "bucketDomainName": f"{bucket}.s3.{acct.dns_suffix}", "region": acct.region}
    elif type_ == "aws:lambda/function:Function":
        arn = acct.arn("lambda", f"function:{physical}")
        out = {"arn": arn, "qualifiedArn": f"{arn}:$LATEST", "version": "$LATEST",
               "invokeArn": f"arn:{acct.partition}:apigateway:{acct.region}:lambda:path/2015-03-31/functions/"
                            f"{arn}/invocations"}
    elif type_ == "aws:iam/role:Role":
        out = {"arn": acct.arn("iam", f"role/{physical}", regional=False), "uniqueId": "AROA" + _stable_id(
            physical, length=16).upper()}
    elif type_ == "aws:iam/policy:Policy":
        rid = acct.arn("iam", f"policy/{physical}", regional=False)
        out = {"arn": rid, "policyId": "ANPA" + _stable_id(physical, length=16).upper()}
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
        rid = str(uuid.UUID(hashlib.md5(name.encode()).hexdigest()))
        out = {"arn": acct.arn("kms", f"key/{rid}"), "keyId": rid}
    elif type_ == "aws:kms/alias:Alias":
        out = {"arn": acct.arn("kms", physical)}
    elif type_ == "aws:lambda/eventSourceMapping:EventSourceMapping":
        rid = str(uuid.UUID(hashlib.md5(name.encode()).hexdigest()))
        out = {"uuid": rid, "arn": acct.arn("lambda", f"event-source-mapping:{rid}"), "state": "Enabled"}
    elif type_ == "aws:sqs/queuePolicy:QueuePolicy":
        rid = str(inputs.get("queueUrl", physical))
    elif type_ == "aws:sns/topicSubscription:TopicSubscription":
        rid = f"{inputs.get('topic', '')}:{uuid.UUID(hashlib.md5(name.encode()).hexdigest())}"
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
    elif token:
        out = {"arn": acct.arn(token, physical)}
    out.setdefault("id", rid)
    return rid, out


def invoke_result(token: str, acct: AwsAccount) -> dict[str, Any]:
    """Answers for the data-source invokes the program uses; any other invoke is a clear error."""
    if token == "aws:index/getCallerIdentity:getCallerIdentity":
        return {"accountId": acct.account_id, "arn": f"arn:{acct.partition}:iam::{acct.account_id}:user/offline",
                "id": acct.account_id, "userId": "AIDAOFFLINE"}
    if token == "aws:index/getRegion:getRegion":
        return {"name": acct.region, "region": acct.region, "id": acct.region,
                "description": acct.region, "endpoint": f"ec2.{acct.region}.{acct.dns_suffix}"}
    if token == "aws:index/getPartition:getPartition":
        return {"partition": acct.partition, "dnsSuffix": acct.dns_suffix, "id": acct.partition,
                "reverseDnsPrefix": ".".join(reversed(acct.dns_suffix.split(".")))}
    raise NotImplementedError(f"the offline provider does not answer the invoke {token}")


class AwsProviderEmulator(Mocks):
    """`pulumi.runtime.Mocks` that answer like the engine and the AWS provider in preview or update mode."""

    def __init__(self, account: AwsAccount, mode: Mode) -> None:
        self.account = account
        self.mode = mode

    def call(self, args: MockCallArgs) -> dict:  # type: ignore[override]  # the SDK accepts a bare dict
        return invoke_result(args.token, self.account)

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict]:
        inputs = as_provider_inputs(args.typ, plain(args.inputs))
        if args.typ.startswith("pulumi:providers:"):
            return f"{args.name}-provider-id", inputs
        resource_id, computed = computed_outputs(args.typ, args.name, inputs, self.account)
        if self.mode == "preview":
            # A create in preview: inputs are known as given, every provider-computed output is unknown.
            unknowns = {key: UNKNOWN for key in computed if key not in inputs}
            return "", {**inputs, **unknowns}
        return resource_id, {**computed, **inputs}
