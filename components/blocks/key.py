"""The stack's one customer-managed key (``encryption: customer-managed``): rotation on, and a key policy that admits
exactly the roles and services that use it, each grant narrowed by the conditions AWS supports for it.

Every block that stores data takes the key (``key=``) and does two things with it: it names the key on the store,
and it asks the key for the grants its users need. A role's use is granted twice, as AWS evaluates it: in the key
policy (the role's ARN as principal) and in the role's own policy (`StackKey.statement`). An AWS service that writes
to a store on its own behalf (S3 and EventBridge delivering to queues, CloudWatch Logs, CloudWatch alarms publishing
to the alarm topic, Step Functions' log delivery) is granted in the key policy only (`admit_service`).

The role policies name the key through its alias (``kms:ResourceAliases``) on ``key/*`` of this account and region:
the key's id is chosen by KMS, so its ARN is unknown at preview and a document naming it would be one unknown string
the policy pack cannot judge (design principle 1); the alias is known. The key policy itself is assembled only once
every pipeline has asked for its grants (`seal`, called by the stack), so it lists them all; the key, and with it
every store that names the key, is created after the roles it names exist, which KMS requires of a key policy.

>>> key = StackKey(naming, env)  # doctest: +SKIP
>>> queue = QueueWithDlq(..., key=key)  # doctest: +SKIP
>>> key.seal()  # after every pipeline  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from components.blocks.iam import AwsEnv, PolicyDocument, Statement
from components.blocks.naming import Naming

# Managing the key (never using it): for the account's administrators through IAM, so the key stays manageable
# (KMS refuses a policy that would lock its caller out) without letting any principal of the account decrypt.
ADMIN_ACTIONS = ("kms:CancelKeyDeletion", "kms:CreateAlias", "kms:DeleteAlias", "kms:DescribeKey",
                 "kms:DisableKey", "kms:EnableKey", "kms:EnableKeyRotation", "kms:GetKeyPolicy",
                 "kms:GetKeyRotationStatus", "kms:ListAliases", "kms:ListResourceTags", "kms:PutKeyPolicy",
                 "kms:RotateKeyOnDemand", "kms:ScheduleKeyDeletion", "kms:TagResource", "kms:UntagResource",
                 "kms:UpdateAlias", "kms:UpdateKeyDescription")
# What `pulumi up` (and an operator) does with the key through the services that create the stores: DynamoDB
# creates a grant for the table, Secrets Manager and Step Functions encrypt what the deployment writes, Scheduler
# encrypts a schedule's input. Only through those services, only from this account.
DEPLOY_ACTIONS = ("kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey",
                  "kms:ReEncryptFrom", "kms:ReEncryptTo")
DEPLOY_SERVICES = ("dynamodb", "scheduler", "secretsmanager", "states")
DELETION_WINDOW_DAYS = 30
# What CloudWatch Logs does with a log group's key, as AWS's key policy example for log groups lists it.
LOGS_ACTIONS = ("kms:Decrypt*", "kms:Describe*", "kms:Encrypt*", "kms:GenerateDataKey*", "kms:ReEncrypt*")


class StackKey(pulumi.ComponentResource):
    """One symmetric key per stack, rotating yearly, named by an alias known at preview."""

    def __init__(self, naming: Naming, env: AwsEnv, *, readers: Sequence[str] = (),
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ai-pipelines:blocks:StackKey", naming.logical("data-key"), None, opts)
        self.env = env
        self.readers = tuple(readers)  # roles outside the stack that read its stores (config keyReaders)
        self.alias_name = f"alias/{naming.name('data', max_length=250)}"
        self._services: dict[tuple[str, str, tuple[str, ...]], dict[str, dict[str, list[Any]]]] = {}
        self._roles: list[tuple[pulumi.Input[str], Statement]] = []
        # The role-policy statements this key wrote, by identity (kept alive so an id is never reused).
        self._issued: dict[int, Statement] = {}
        # The policy, resolved once `seal` has written it (pulumi.deferred_output: the SDK's Output of later value).
        policy, self._resolve_policy = pulumi.deferred_output()  # type: ignore[var-annotated]
        self._sealed = False
        self.key = aws.kms.Key(
            naming.logical("data-key"),
            description=f"Encrypts every store of {naming.project} stack {naming.stack}",
            enable_key_rotation=True,
            deletion_window_in_days=DELETION_WINDOW_DAYS,
            policy=policy,
            tags=naming.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.alias = aws.kms.Alias(naming.logical("data-key-alias"), name=self.alias_name,
                                   target_key_id=self.key.key_id, opts=pulumi.ResourceOptions(parent=self))
        # What a store names: the alias (known at preview, and waiting for the alias to exist), or the key's ARN where
        # the service accepts only a key ARN (CloudWatch Logs, DynamoDB, Scheduler).
        self.alias_ref: pulumi.Output[str] = self.alias.name
        self.alias_arn: pulumi.Output[str] = self.alias.name.apply(lambda name: env.arn("kms", name))
        self.arn: pulumi.Output[str] = self.key.arn
        self.register_outputs({"arn": self.key.arn, "alias": self.alias_name})

    # --- what the stores ask for ----------------------------------------------------------------------------------

    def statement(self, sid: str, actions: Sequence[str], *, via: str | None,
                  context: Mapping[str, Sequence[str]], role_arn: pulumi.Input[str] | None = None,
                  like: bool = False) -> Statement:
        """The role-policy statement allowing `actions` on this key only through the service `via` (e.g. "sqs") and
        only for the stores of `context` (``kms:EncryptionContext:<key>`` -> values; ``like`` for patterns). With
        `role_arn`, the key policy admits that role for the same use. `via` None: the service calls KMS as the role
        it assumed (Scheduler, Step Functions), so no ``kms:ViaService`` is set."""
        conditions: dict[str, dict[str, Any]] = {
            "ForAnyValue:StringEquals": {"kms:ResourceAliases": [self.alias_name]}}
        if via is not None:
            conditions["StringEquals"] = {"kms:ViaService": self.via(via)}
        if context:
            conditions["StringLike" if like else "StringEquals"] = {
                **conditions.get("StringLike" if like else "StringEquals", {}),
                **{f"kms:EncryptionContext:{name}": list(values) for name, values in context.items()}}
        grant = Statement(sid, sorted(actions), [self.env.arn("kms", "key/*")], conditions=conditions)
        self._issued[id(grant)] = grant
        if role_arn is not None:
            self._roles.append((role_arn, grant))
        return grant

    def admit_roles(self, role_arn: pulumi.Input[str], statements: Sequence[Statement]) -> None:
        """Admit `role_arn` in the key policy for what each of its `statements` that this key wrote allows."""
        self._roles += [(role_arn, s) for s in statements if self._issued.get(id(s)) is s]

    def admit_service(self, service: str, actions: Sequence[str], condition: str, key: str,
                      values: Sequence[str], *, source_account: bool = False) -> None:
        """Admit the AWS service principal `service` for `actions` when ``condition`` ``key`` holds one of `values`
        (grants of one service, actions and key are merged into one statement); with `source_account`, only on behalf
        of this account (``aws:SourceAccount``, where the service sets it)."""
        found = self._services.setdefault((service, condition, tuple(sorted(actions))), {})
        found.setdefault(condition, {}).setdefault(key, []).extend(values)
        if source_account:
            found.setdefault("StringEquals", {})["aws:SourceAccount"] = [self.env.account_id]

    def encrypt_log_group(self, name: str) -> pulumi.Output[str]:
        """The key ARN a log group `name` names (CloudWatch Logs accepts no alias), CloudWatch Logs admitted for that
        log group only (AWS: "Encrypt log data in CloudWatch Logs using AWS KMS")."""
        self.admit_service(f"logs.{self.env.region}.{self.env.dns_suffix}", LOGS_ACTIONS, "ArnEquals",
                           "kms:EncryptionContext:aws:logs:arn",
                           [self.env.arn("logs", f"log-group:{name}")])
        return self.arn

    def via(self, service: str) -> str:
        return f"{service}.{self.env.region}.{self.env.dns_suffix}"

    # --- the key policy -------------------------------------------------------------------------------------------

    def seal(self) -> None:
        """Write the key policy from every grant asked for; the key is created only then."""
        if not self._sealed:
            self._sealed = True
            self._resolve_policy(self.policy_document().to_json())

    def policy_document(self) -> PolicyDocument:
        """The key policy. Its conditions name stores by ARNs built from their names, but only by value: a store
        that names the key is created after it, so a dependency on the store would be a cycle. A role principal keeps
        its dependency: KMS accepts a policy naming a role only once the role exists."""
        env = self.env
        root = {"AWS": f"arn:{env.partition}:iam::{env.account_id}:root"}
        statements = [
            Statement("AccountAdministers", ADMIN_ACTIONS, ["*"], principals=root),
            Statement("AccountDeploysThroughServices", DEPLOY_ACTIONS, ["*"], principals=root,
                      conditions={"StringEquals": {"kms:CallerAccount": env.account_id,
                                                   "kms:ViaService": [self.via(s) for s in DEPLOY_SERVICES]}}),
        ]
        if self.readers:
            statements.append(Statement("ReadersDecryptThroughS3AndSqs", ["kms:Decrypt"], ["*"],
                                        principals={"AWS": list(self.readers)},
                                        conditions={"StringEquals": {"kms:ViaService": [self.via("s3"),
                                                                                        self.via("sqs")]}}))
        for index, ((service, _, actions), conditions) in enumerate(sorted(self._services.items())):
            name = "".join(part.capitalize() for part in service.split(".")[0].split("-"))
            statements.append(Statement(f"{name}Uses{index}", actions, ["*"], principals={"Service": service},
                                        conditions=_by_value(conditions)))
        for index, (role_arn, grant) in enumerate(self._roles):
            conditions = {op: {k: v for k, v in keys.items() if k != "kms:ResourceAliases"}
                          for op, keys in (grant.conditions or {}).items()}
            statements.append(Statement(f"Role{index}{grant.sid}", grant.actions, ["*"],
                                        principals={"AWS": role_arn},
                                        conditions=_by_value({op: keys for op, keys in conditions.items() if keys})))
        return PolicyDocument(statements)


def _by_value(conditions: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """`conditions` with every Output replaced by one of the same value that depends on no resource."""
    def plain(value: Any) -> Any:
        if isinstance(value, pulumi.Output):
            return pulumi.Output(set(), value.future(with_unknowns=True), value.is_known(), value.is_secret())
        if isinstance(value, list | tuple):
            return [plain(v) for v in value]
        return value

    return {op: {key: plain(values) for key, values in tests.items()} for op, tests in conditions.items()}


def key_use(key: StackKey | None, sid: str, actions: Sequence[str], *, via: str | None,
            context: Mapping[str, Sequence[str]], like: bool = False) -> list[Statement]:
    """`key.statement(...)` as a list, empty without a key: what a caller splices into a role's statements."""
    if key is None:
        return []
    return [key.statement(sid, actions, via=via, context=context, like=like)]
