"""What the AWS provider answers, emulated where the policy pack or the program can observe it.

A create is answered as the bridged provider answers it (`docs/offline-fidelity.md`):

* in preview mode with the *planned state*: the checked inputs (`offline.check`), and every property the provider
  computes (`offline.schema`) that the program left unset as unknown, `tagsAll` and `region` excepted (the
  provider plans both from known values); the id is unknown;
* in update mode with the state after a completed create: ids, ARNs and URLs in AWS's formats from the stack's
  account and region, every other computed property the value AWS reports for a new resource where AWS documents
  one, else an empty value of its type (never null).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import replace
from typing import Any

from pulumi.runtime.mocks import MockCallArgs, MockResourceArgs, Mocks

from offline import tf_defaults
from offline.aws_account import AwsAccount
from offline.check import check
from offline.invokes import InvokeAnswerer
from offline.model import UNKNOWN, Mode
from offline.schema import schema_of


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


# What AWS reports for a new resource where the program left a computed property unset and AWS documents a default.
_REPORTED_AFTER_CREATE: dict[str, dict[str, Any]] = {
    # SQS managed encryption is on for every new queue since October 2022.
    "aws:sqs/queue:Queue": {"sqsManagedSseEnabled": True, "kmsDataKeyReusePeriodSeconds": 300},
    # Every new bucket is encrypted with SSE-S3 since January 2023.
    "aws:s3/bucket:Bucket": {"serverSideEncryptionConfiguration": {"rule": {"applyServerSideEncryptionByDefault": {
        "sseAlgorithm": "AES256"}, "bucketKeyEnabled": False}}},
    "aws:lambda/function:Function": {"architectures": ["x86_64"], "ephemeralStorage": {"size": 512},
                                     "tracingConfig": {"mode": "PassThrough"}},
}
_EMPTY = {"string": "", "integer": 0, "number": 0, "boolean": False, "array": [], "object": {}}


def planned_state(type_: str, checked: dict[str, Any], region: str) -> dict[str, Any]:
    """`Create(preview=true)`: the checked inputs with every schema default, every computed property the program
    left unset unknown (`region` is planned from the provider's region, `tagsAll` from known tags)."""
    schema = schema_of(type_)
    state = {**tf_defaults.planned_defaults(type_), **checked}
    if state.get("tagsAll") == {}:
        del state["tagsAll"]  # without tags or default tags the provider's plan leaves tags_all to be computed
    for prop in sorted(schema.computed - state.keys() if schema else ()):
        state[prop] = region if prop == "region" else UNKNOWN
    if schema is None:
        state.update({"id": UNKNOWN, "arn": UNKNOWN})  # a type the SDK does not declare: at least its identity
    return state


def applied_state(type_: str, name: str, checked: dict[str, Any], acct: AwsAccount) -> tuple[str, dict[str, Any]]:
    """`Create`: the id and the state after a completed create, every computed property with a value."""
    resource_id, computed = computed_outputs(type_, name, checked, acct)
    state = {**tf_defaults.planned_defaults(type_), **computed, **checked}
    reported = _REPORTED_AFTER_CREATE.get(type_, {})
    schema = schema_of(type_)
    if schema is None:
        return resource_id, state
    for prop in sorted(schema.computed - state.keys()):
        state[prop] = acct.region if prop == "region" else reported.get(prop, _EMPTY[schema.kind_of(prop)])
    return resource_id, state


class AwsProviderEmulator(Mocks):
    """The engine's provider for `aws` resources and invokes, in preview or update mode.

    `RecordingMonitor` calls `check`, `create`, `read` and `invoke` in the engine's order; the `Mocks` methods
    are not used (the monitor answers every call itself, without the SDK's mock path).
    """

    def __init__(self, account: AwsAccount, mode: Mode, invokes: InvokeAnswerer | None = None) -> None:
        self.account = account
        self.mode = mode
        self.invokes = invokes or InvokeAnswerer(account)

    def call(self, args: MockCallArgs) -> dict:  # type: ignore[override]  # the SDK accepts a bare dict
        raise NotImplementedError("invokes are answered through RecordingMonitor.Invoke")

    def new_resource(self, args: MockResourceArgs) -> tuple[str | None, dict]:
        raise NotImplementedError("resources are registered through RecordingMonitor.RegisterResource")

    @staticmethod
    def check(type_: str, name: str, urn: str, inputs: dict[str, Any]) -> dict[str, Any]:
        return inputs if type_.startswith("pulumi:providers:") else check(type_, name, urn, inputs)

    def create(self, type_: str, name: str, checked: dict[str, Any], region: str | None = None
               ) -> tuple[str, dict[str, Any]]:
        """The id and state of a custom resource created from `checked` inputs ("" for an id unknown at preview),
        in `region` (an explicit provider's) or the stack's."""
        if type_.startswith("pulumi:providers:"):
            return f"{name}-provider-id", checked
        account = replace(self.account, region=region) if region else self.account
        if self.mode == "preview":
            return "", planned_state(type_, checked, account.region)
        return applied_state(type_, name, checked, account)

    def read(self, type_: str, resource_id: str, given: dict[str, Any], region: str | None = None
             ) -> dict[str, Any]:
        """The state of an existing resource (`Resource.get`, a StackReference): read from the cloud, so known in a
        preview too."""
        if type_ == "pulumi:pulumi:StackReference":
            return {"name": resource_id, "outputs": self.invokes.stack_outputs(resource_id),
                    "secretOutputNames": []}
        account = replace(self.account, region=region) if region else self.account
        return applied_state(type_, resource_id, given, account)[1]

    def invoke(self, token: str, args: dict[str, Any]) -> dict[str, Any]:
        return self.invokes.invoke(token, args)
