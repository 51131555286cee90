"""What a role's requests ask of the stack's customer-managed keys, derived from the synthesized stack.

A request on a store encrypted with a KMS key of the stack makes the store's service call KMS as the role (AWS:
"Amazon SQS key management", "Using server-side encryption with AWS KMS keys" for S3 with bucket keys, "How
Secrets Manager uses AWS KMS", DynamoDB encryption at rest, "Data at rest encryption in Step Functions"): the action,
the key, and the context KMS evaluates (the key's aliases, ``kms:ViaService``, the store's encryption context). A
schedule or a state machine encrypted with a key uses it as its own role, without ``kms:ViaService``.

Which store uses which key is read from the synthesized resources (a queue's ``kmsMasterKeyId``, a bucket's
encryption configuration, a table's, secret's, schedule's or state machine's key), never from the grants under test.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from offline.synth import Synthesis
from tests.least_privilege.roles import Role
from tests.support.call_resources import Placement
from tests.support.iam_eval import Authorization, context_of

SEND = ("kms:Decrypt", "kms:GenerateDataKey")  # a producer of an encrypted queue
RECEIVE = ("kms:Decrypt",)  # its consumer
READ_OBJECT, WRITE_OBJECT, WRITE_IN_PARTS = ("kms:Decrypt",), ("kms:GenerateDataKey",), ("kms:Decrypt",
                                                                                          "kms:GenerateDataKey")
TABLE_USE = ("kms:Decrypt",)  # DynamoDB decrypts the table key it encrypts items under
_DYNAMODB_DATA = ("BatchGetItem", "BatchWriteItem", "ConditionCheckItem", "DeleteItem", "GetItem", "PutItem", "Query",
                  "Scan", "TransactGetItems", "TransactWriteItems", "UpdateItem")


@dataclass(frozen=True)
class Key:
    arn: str
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class StackKeyUses:
    placement: Placement
    queues: Mapping[str, Key]  # queue ARN -> its key
    buckets: Mapping[str, Key]  # bucket name -> its key
    tables: Mapping[str, Key]  # table name -> its key
    secrets: Mapping[str, Key]  # secret name -> its key
    machines: Mapping[str, Key]  # state machine ARN -> its key
    schedules: Mapping[str, Key]  # schedule name -> its key

    @classmethod
    def build(cls, synthesis: Synthesis, placement: Placement) -> StackKeyUses:
        if id(synthesis) not in _BUILT:
            _BUILT[id(synthesis)] = (synthesis, _uses(synthesis, placement))  # the synthesis kept: ids stay unique
        return _BUILT[id(synthesis)][1]

    def behind(self, role: Role, found: Iterable[Authorization]) -> list[Authorization]:
        """The KMS requests behind `found` (what AWS authorizes with `role`), and the role's own use of a key."""
        derived = [k for a in found for k in self._behind(a)]
        if role.kind == "state machine":
            for machine in role.users:
                arn = self.placement.arn("states", f"stateMachine:{machine.inputs['name']}")
                if arn in self.machines:
                    derived += self._use(self.machines[arn], SEND, None, {"aws:states:stateMachineArn": arn},
                                         f"state machine {machine.inputs['name']} encrypted with the key")
        if role.kind == "schedule":
            for schedule in role.users:
                name = schedule.inputs["name"]
                if name in self.schedules:
                    arn = self.placement.arn("scheduler", f"schedule/{schedule.inputs.get('groupName') or 'default'}"
                                                          f"/{name}")
                    derived += self._use(self.schedules[name], RECEIVE, None, {"aws:scheduler:schedule:arn": arn},
                                         f"schedule {name}'s encrypted input")
        return derived

    # --- one request ------------------------------------------------------------------------------------------

    def _behind(self, request: Authorization) -> Iterator[Authorization]:
        service, _, operation = request.action.partition(":")
        origin = f"{request.origin} ({request.action} on an encrypted store)"
        if service == "sqs" and request.resource in self.queues:
            actions = SEND if operation in ("SendMessage", "SendMessageBatch") else (
                RECEIVE if operation == "ReceiveMessage" else ())
            yield from self._use(self.queues[request.resource], actions, "sqs",
                                 {"aws:sqs:arn": request.resource}, origin)
        elif service == "s3" and "/" in request.resource.split(":::", 1)[-1]:
            bucket = request.resource.split(":::", 1)[1].split("/", 1)[0]
            if bucket in self.buckets:
                actions = {"GetObject": READ_OBJECT, "GetObjectVersion": READ_OBJECT}.get(operation, ())
                if operation == "PutObject":
                    # Step Functions' ResultWriter and Bedrock's batch jobs upload in parts, which decrypts too.
                    in_parts = "ResultWriter" in request.origin or "batch job" in request.origin
                    actions = WRITE_IN_PARTS if in_parts else WRITE_OBJECT
                bucket_arn = f"arn:{self.placement.partition}:s3:::{bucket}"
                yield from self._use(self.buckets[bucket], actions, "s3", {"aws:s3:arn": bucket_arn}, origin)
        elif service == "dynamodb" and operation in _DYNAMODB_DATA:
            name = request.resource.split(":table/", 1)[-1].split("/", 1)[0]
            if name in self.tables:
                yield from self._use(self.tables[name], TABLE_USE, "dynamodb", {"aws:dynamodb:tableName": name},
                                     origin)
        elif service == "secretsmanager" and operation == "GetSecretValue":
            name = request.resource.split(":secret:", 1)[-1].removesuffix("-??????")
            if name in self.secrets:
                yield from self._use(self.secrets[name], ("kms:Decrypt",), "secretsmanager",
                                     {"SecretARN": request.resource}, origin)
        elif service == "states" and operation in ("SendTaskSuccess", "SendTaskFailure"):
            # A task token belongs to an execution of the stack's machine: the result is encrypted with its key.
            for arn, key in self.machines.items():
                yield from self._use(key, ("kms:GenerateDataKey",), "states", {"aws:states:stateMachineArn": arn},
                                     origin)
        elif service == "states" and operation == "DescribeExecution":
            machine = request.resource.replace(":execution:", ":stateMachine:", 1).rsplit(":", 1)[0].split("/", 1)[0]
            if machine in self.machines:
                yield from self._use(self.machines[machine], ("kms:Decrypt",), "states",
                                     {"aws:states:stateMachineArn": machine}, origin)

    def _use(self, key: Key, actions: Iterable[str], via: str | None, context: Mapping[str, str],
             origin: str) -> list[Authorization]:
        where = self.placement
        values: dict[str, str | tuple[str, ...]] = {
            "kms:ResourceAliases": key.aliases, "kms:CallerAccount": where.account,
            **{f"kms:EncryptionContext:{name}": value for name, value in context.items()}}
        if via is not None:
            values["kms:ViaService"] = f"{via}.{where.region}.amazonaws.com"
        return [Authorization(action, key.arn, context_of(values), origin) for action in actions]


_BUILT: dict[int, tuple[Synthesis, StackKeyUses]] = {}


def _uses(synthesis: Synthesis, placement: Placement) -> StackKeyUses:
    keys = {k.outputs["keyId"]: k.outputs["arn"] for k in synthesis.of_type("aws:kms/key:Key")}
    aliases: dict[str, list[str]] = {}
    for alias in synthesis.of_type("aws:kms/alias:Alias"):
        aliases.setdefault(keys.get(alias.inputs["targetKeyId"], ""), []).append(alias.inputs["name"])
    by_arn = {arn: Key(arn, tuple(sorted(aliases.get(arn, [])))) for arn in keys.values()}
    by_alias = {name: key for key in by_arn.values() for name in key.aliases}
    by_alias.update({placement.arn("kms", name): key for name, key in list(by_alias.items())})

    def key_of(reference: object) -> Key | None:
        return by_arn.get(str(reference)) or by_alias.get(str(reference))

    def named(type_: str, reference: str, *path: str) -> dict[str, Key]:
        found = {}
        for record in synthesis.of_type(type_):
            value: object = record.inputs
            for part in (reference, *path):
                value = value.get(part) if isinstance(value, dict) else None
            key = key_of(value)
            if key is not None:
                found[str(record.inputs["name"])] = key
        return found

    buckets = {}
    for config in synthesis.of_type(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"):
        for rule in config.inputs.get("rules") or []:
            key = key_of((rule.get("applyServerSideEncryptionByDefault") or {}).get("kmsMasterKeyId"))
            if key is not None:
                buckets[str(config.inputs["bucket"])] = key
    return StackKeyUses(
        placement,
        queues={placement.arn("sqs", name): key
                for name, key in named("aws:sqs/queue:Queue", "kmsMasterKeyId").items()},
        buckets=buckets,
        tables=named("aws:dynamodb/table:Table", "serverSideEncryption", "kmsKeyArn"),
        secrets=named("aws:secretsmanager/secret:Secret", "kmsKeyId"),
        machines={placement.arn("states", f"stateMachine:{name}"): key
                  for name, key in named("aws:sfn/stateMachine:StateMachine", "encryptionConfiguration",
                                         "kmsKeyId").items()},
        schedules=named("aws:scheduler/schedule:Schedule", "kmsKeyArn"),
    )
