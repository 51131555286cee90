"""IAM helpers: the AWS environment, ARN builders and structured policy documents.

Every ARN is assembled from a physical name plus the account, region and partition returned by invokes, so a
policy document is fully known during `pulumi preview` and the policy pack can judge it (design principle 1).
An ARN built from a resource's `name` output also carries that resource as a dependency, which is how the
engine's property dependencies relate a policy, a mapping or an alarm to the resource it names.

>>> env = AwsEnv(account_id="123456789012", region="eu-west-1", partition="aws")
>>> env.arn("sqs", "jobs")
'arn:aws:sqs:eu-west-1:123456789012:jobs'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws
from pulumi import Input


@dataclass(frozen=True)
class AwsEnv:
    """Account, region and partition of the stack, known at preview because they come from invokes."""

    account_id: str
    region: str
    partition: str = "aws"
    dns_suffix: str = "amazonaws.com"

    @classmethod
    def lookup(cls) -> AwsEnv:
        identity = aws.get_caller_identity()
        region = aws.get_region()
        partition = aws.get_partition()
        return cls(account_id=identity.account_id, region=region.region or region.name,
                   partition=partition.partition, dns_suffix=partition.dns_suffix)

    def arn(self, service: str, resource: str, *, regional: bool = True, with_account: bool = True) -> str:
        region = self.region if regional else ""
        account = self.account_id if with_account else ""
        return f"arn:{self.partition}:{service}:{region}:{account}:{resource}"

    # --- builders: each takes a physical name (plain or an Output of a resource's name) -----------------

    def _build(self, name: Input[str], template: Any) -> pulumi.Output[str]:
        return pulumi.Output.from_input(name).apply(template)

    def sqs_queue(self, name: Input[str]) -> pulumi.Output[str]:
        return self._build(name, lambda n: self.arn("sqs", n))

    def sqs_queue_url(self, name: Input[str]) -> pulumi.Output[str]:
        return self._build(name, lambda n: f"https://sqs.{self.region}.{self.dns_suffix}/{self.account_id}/{n}")

    def s3_bucket(self, name: Input[str]) -> pulumi.Output[str]:
        return self._build(name, lambda n: self.arn("s3", n, regional=False, with_account=False))

    def s3_objects(self, bucket: Input[str], prefix: str = "") -> pulumi.Output[str]:
        return self._build(bucket, lambda n: self.arn("s3", f"{n}/{prefix}*", regional=False, with_account=False))

    def dynamodb_table(self, name: Input[str]) -> pulumi.Output[str]:
        return self._build(name, lambda n: self.arn("dynamodb", f"table/{n}"))

    def event_bus(self, name: Input[str]) -> pulumi.Output[str]:
        return self._build(name, lambda n: self.arn("events", f"event-bus/{n}"))

    def event_rule(self, name: Input[str], bus: str = "default") -> pulumi.Output[str]:
        path = "rule/{}" if bus == "default" else f"rule/{bus}/{{}}"
        return self._build(name, lambda n: self.arn("events", path.format(n)))

    def state_machine(self, name: Input[str]) -> pulumi.Output[str]:
        return self._build(name, lambda n: self.arn("states", f"stateMachine:{n}"))

    def state_machine_executions(self, name: Input[str]) -> pulumi.Output[str]:
        return self._build(name, lambda n: self.arn("states", f"execution:{n}:*"))

    def map_run_executions(self, name: Input[str]) -> pulumi.Output[str]:
        """The child executions of every Map Run of state machine `name` (``execution:<name>/<label>:<id>``)."""
        return self._build(name, lambda n: self.arn("states", f"execution:{n}/*:*"))

    def secret(self, name: Input[str]) -> pulumi.Output[str]:
        # Secrets Manager appends six random characters to every secret's ARN.
        return self._build(name, lambda n: self.arn("secretsmanager", f"secret:{n}-??????"))

    def foundation_model(self, model_id: Input[str]) -> pulumi.Output[str]:
        return self._build(model_id, lambda m: self.arn("bedrock", f"foundation-model/{m}", with_account=False))

    def inference_profile(self, profile_id: Input[str]) -> pulumi.Output[str]:
        return self._build(profile_id, lambda p: self.arn("bedrock", f"inference-profile/{p}"))

    def knowledge_base(self, kb_id: Input[str]) -> pulumi.Output[str]:
        return self._build(kb_id, lambda k: self.arn("bedrock", f"knowledge-base/{k}"))

    def model_invocation_job(self, job: Input[str] = "*") -> pulumi.Output[str]:
        return self._build(job, lambda j: self.arn("bedrock", f"model-invocation-job/{j}"))

    def log_group(self, name: Input[str]) -> pulumi.Output[str]:
        return self._build(name, lambda n: self.arn("logs", f"log-group:{n}"))

    def log_streams(self, group: Input[str]) -> pulumi.Output[str]:
        return self._build(group, lambda n: self.arn("logs", f"log-group:{n}:log-stream:*"))

    def lambda_function(self, name: Input[str]) -> pulumi.Output[str]:
        return self._build(name, lambda n: self.arn("lambda", f"function:{n}"))

    def sns_topic(self, name: Input[str]) -> pulumi.Output[str]:
        return self._build(name, lambda n: self.arn("sns", n))

    def iam_role(self, name: Input[str]) -> pulumi.Output[str]:
        return self._build(name, lambda n: self.arn("iam", f"role/{n}", regional=False))

    def schedule(self, name: Input[str], group: str = "default") -> pulumi.Output[str]:
        return self._build(name, lambda n: self.arn("scheduler", f"schedule/{group}/{n}"))


@dataclass(frozen=True)
class Statement:
    """One IAM statement. `resources` may hold Outputs (ARNs built from names); everything else is plain."""

    sid: str
    actions: Sequence[str]
    resources: Sequence[Input[str]] = ("*",)
    effect: str = "Allow"
    principals: Mapping[str, Any] | None = None
    conditions: Mapping[str, Mapping[str, Any]] | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"Sid": self.sid, "Effect": self.effect}
        if self.principals is not None:
            doc["Principal"] = dict(self.principals)
        doc["Action"] = sorted(self.actions)
        doc["Resource"] = list(self.resources)
        if self.conditions:
            doc["Condition"] = {op: dict(values) for op, values in self.conditions.items()}
        return doc


@dataclass(frozen=True)
class PolicyDocument:
    """A policy document built as structured statements, serialized once by the engine-aware `json_dumps`."""

    statements: Sequence[Statement] = field(default_factory=tuple)

    def __add__(self, other: PolicyDocument) -> PolicyDocument:
        return PolicyDocument(tuple(self.statements) + tuple(other.statements))

    def to_json(self) -> pulumi.Output[str]:
        body = {"Version": "2012-10-17", "Statement": [s.to_json() for s in self.statements]}
        return pulumi.Output.json_dumps(body)


def service_trust_policy(service: str, env: AwsEnv, source_arn: Input[str] | None = None) -> pulumi.Output[str]:
    """A role trust policy naming one service principal, limited to this account (and source, when given)."""
    conditions: dict[str, dict[str, Any]] = {"StringEquals": {"aws:SourceAccount": env.account_id}}
    if source_arn is not None:
        conditions["ArnLike"] = {"aws:SourceArn": source_arn}
    statement = Statement(sid="TrustService", actions=["sts:AssumeRole"], resources=(),
                          principals={"Service": service}, conditions=conditions)
    body = {"Version": "2012-10-17", "Statement": [_without_resource(statement.to_json())]}
    return pulumi.Output.json_dumps(body)


def deny_insecure_transport(actions: Sequence[str], resources: Sequence[Input[str]]) -> Statement:
    """The TLS-only statement every resource policy carries."""
    return Statement(sid="DenyInsecureTransport", effect="Deny", actions=actions, resources=resources,
                     principals={"AWS": "*"}, conditions={"Bool": {"aws:SecureTransport": "false"}})


def service_may(sid: str, service: str, actions: Sequence[str], resources: Sequence[Input[str]], env: AwsEnv,
                source_arn: Input[str] | None = None) -> Statement:
    """A resource-policy grant to an AWS service principal, scoped to this account and, when given, a source."""
    conditions: dict[str, dict[str, Any]] = {"StringEquals": {"aws:SourceAccount": env.account_id}}
    if source_arn is not None:
        conditions["ArnLike"] = {"aws:SourceArn": source_arn}
    return Statement(sid=sid, actions=actions, resources=resources, principals={"Service": service},
                     conditions=conditions)


def _without_resource(statement: dict[str, Any]) -> dict[str, Any]:
    statement.pop("Resource", None)
    return statement
