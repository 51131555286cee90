"""The Terraform schema defaults of the AWS provider: in the planned state always, in `Check`'s output when truthy.

A Terraform attribute with a `Default` is Optional and not Computed, so the SDK cannot tell it from an attribute
with no default (both are `Optional[...]` outputs): the values are therefore a table, each type with the schema
that declares its defaults (hashicorp/terraform-provider-aws v6, `internal/service/...`; the release and the
mechanisms are in `docs/offline-fidelity.md`). A test holds every entry against the installed SDK: each property
is an optional input that the provider does not compute. Types not listed get no defaults (stated in the contract).

The bridge's Check applies the Terraform defaults too, except a falsy one (false, 0, ""), which it leaves out so
that Terraform sees the attribute as unset (pulumi-terraform-bridge `shouldSuppressTFSchemaDefaultValue`); the
provider's plan then fills every default in, falsy ones included.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

# type token -> {Pulumi property: default}; the comment names the Terraform schema that declares the defaults.
SCHEMA_DEFAULTS: Mapping[str, Mapping[str, Any]] = MappingProxyType({
    # sqs/queue.go queueSchema
    "aws:sqs/queue:Queue": {"contentBasedDeduplication": False, "delaySeconds": 0, "fifoQueue": False,
                            "maxMessageSize": 262_144, "messageRetentionSeconds": 345_600,
                            "receiveWaitTimeSeconds": 0, "visibilityTimeoutSeconds": 30},
    # iam/role.go resourceRole; iam/policy.go resourcePolicy
    "aws:iam/role:Role": {"forceDetachPolicies": False, "maxSessionDuration": 3600, "path": "/"},
    "aws:iam/policy:Policy": {"path": "/"},
    # lambda/function.go resourceFunction; event_source_mapping.go; function_event_invoke_config.go; invocation.go
    "aws:lambda/function:Function": {"memorySize": 128, "packageType": "Zip", "publish": False,
                                     "reservedConcurrentExecutions": -1, "skipDestroy": False, "timeout": 3},
    "aws:lambda/eventSourceMapping:EventSourceMapping": {"enabled": True},
    "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig": {"maximumRetryAttempts": 2},
    "aws:lambda/invocation:Invocation": {"lifecycleScope": "CREATE_ONLY", "qualifier": "$LATEST",
                                         "terraformKey": "tf"},
    # logs/group.go resourceGroup; cloudwatch/metric_alarm.go resourceMetricAlarm
    "aws:cloudwatch/logGroup:LogGroup": {"retentionInDays": 0, "skipDestroy": False},
    "aws:cloudwatch/metricAlarm:MetricAlarm": {"actionsEnabled": True, "treatMissingData": "missing"},
    # events/rule.go resourceRule; events/target.go resourceTarget
    "aws:cloudwatch/eventRule:EventRule": {"eventBusName": "default", "forceDestroy": False},
    "aws:cloudwatch/eventTarget:EventTarget": {"eventBusName": "default", "forceDestroy": False},
    # s3/bucket.go resourceBucket; bucket_public_access_block.go; bucket_notification.go
    "aws:s3/bucket:Bucket": {"forceDestroy": False},
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": {
        "blockPublicAcls": False, "blockPublicPolicy": False, "ignorePublicAcls": False,
        "restrictPublicBuckets": False},
    "aws:s3/bucketNotification:BucketNotification": {"eventbridge": False},
    # dynamodb/table.go resourceTable
    "aws:dynamodb/table:Table": {"billingMode": "PROVISIONED", "tableClass": "STANDARD"},
    # sns/topic.go topicSchema; sns/topic_subscription.go subscriptionSchema
    "aws:sns/topic:Topic": {"contentBasedDeduplication": False, "fifoTopic": False},
    "aws:sns/topicSubscription:TopicSubscription": {"confirmationTimeoutInMinutes": 1,
                                                    "endpointAutoConfirms": False, "rawMessageDelivery": False},
    # kms/key.go resourceKey
    "aws:kms/key:Key": {"bypassPolicyLockoutSafetyCheck": False, "customerMasterKeySpec": "SYMMETRIC_DEFAULT",
                        "enableKeyRotation": False, "isEnabled": True, "keyUsage": "ENCRYPT_DECRYPT"},
    # secretsmanager/secret.go resourceSecret
    "aws:secretsmanager/secret:Secret": {"forceOverwriteReplicaSecret": False, "recoveryWindowInDays": 30},
    # sfn/state_machine.go resourceStateMachine
    "aws:sfn/stateMachine:StateMachine": {"publish": False, "type": "STANDARD"},
    # scheduler/schedule.go resourceSchedule
    "aws:scheduler/schedule:Schedule": {"scheduleExpressionTimezone": "UTC", "state": "ENABLED"},
})


# Defaults of attributes inside a block, applied only when the program sets the block (the bridge's applyDefaults
# runs at every object level): type token -> {path of the block: {property: default}}.
NESTED_DEFAULTS: Mapping[str, Mapping[tuple[str, ...], Mapping[str, Any]]] = MappingProxyType({
    # scheduler/schedule.go resourceSchedule: target.retry_policy
    "aws:scheduler/schedule:Schedule": {("target", "retryPolicy"): {"maximumEventAgeInSeconds": 86_400,
                                                                    "maximumRetryAttempts": 185}},
})

# Computed attributes inside a block, unknown in a create's plan when the block is set without them
# (terraform-plugin-sdk `SetUnknowns` recurses into blocks). The SDK's nested output types do not mark them, so the
# ones programs commonly leave out are listed, with what AWS reports after the create ({name}: the physical name):
# type token -> {path of the block: {property: value after create}}.
NESTED_COMPUTED: Mapping[str, Mapping[tuple[str, ...], Mapping[str, str]]] = MappingProxyType({
    # lambda/function.go: logging_config.log_group is Optional+Computed (Lambda's /aws/lambda/<name> when unset)
    "aws:lambda/function:Function": {("loggingConfig",): {"logGroup": "/aws/lambda/{name}"}},
})


def planned_defaults(type_: str) -> Mapping[str, Any]:
    """Every top-level default of the type's schema: what the provider's plan holds for a property left unset."""
    return SCHEMA_DEFAULTS.get(type_, {})


def _blocks(props: dict[str, Any], path: tuple[str, ...]) -> list[dict[str, Any]]:
    """The blocks at `path` the program set (a block may be one object or, for a list of blocks, each element)."""
    found: list[Any] = [props]
    for key in path:
        children: list[Any] = []
        for parent in found:
            child = parent.get(key) if isinstance(parent, dict) else None
            children += child if isinstance(child, list) else [child]
        found = children
    return [block for block in found if isinstance(block, dict)]


def apply_checked_defaults(type_: str, props: dict[str, Any]) -> None:
    """Add the defaults the bridge's Check adds, in place: the truthy ones, top-level and inside set blocks."""
    _apply(props, {(): planned_defaults(type_), **NESTED_DEFAULTS.get(type_, {})}, truthy_only=True)


def apply_planned_defaults(type_: str, props: dict[str, Any]) -> None:
    """Add every default the provider's plan holds, in place, falsy ones included."""
    _apply(props, {(): planned_defaults(type_), **NESTED_DEFAULTS.get(type_, {})}, truthy_only=False)


def _apply(props: dict[str, Any], defaults: Mapping[tuple[str, ...], Mapping[str, Any]], *, truthy_only: bool) -> None:
    for path, values in defaults.items():
        for block in _blocks(props, path):
            for prop, value in values.items():
                if value or not truthy_only:
                    block.setdefault(prop, value)


def fill_nested_computed(type_: str, props: dict[str, Any], *, planned: Any = None, name: str = "") -> None:
    """In place, each listed computed attribute of a set block that the program left out: `planned` (the unknown
    sentinel) in a planned state, else what AWS reports after the create."""
    for path, values in NESTED_COMPUTED.get(type_, {}).items():
        for block in _blocks(props, path):
            for prop, after_create in values.items():
                block.setdefault(prop, planned if planned is not None else after_create.format(name=name))
