"""Pulumi type tokens of the AWS resources the rules read (pulumi-aws 7)."""

from __future__ import annotations

from typing import Final

QUEUE: Final = "aws:sqs/queue:Queue"
QUEUE_POLICY: Final = "aws:sqs/queuePolicy:QueuePolicy"
REDRIVE_POLICY: Final = "aws:sqs/redrivePolicy:RedrivePolicy"
TOPIC: Final = "aws:sns/topic:Topic"
TOPIC_POLICY: Final = "aws:sns/topicPolicy:TopicPolicy"

FUNCTION: Final = "aws:lambda/function:Function"
EVENT_SOURCE_MAPPING: Final = "aws:lambda/eventSourceMapping:EventSourceMapping"
LAMBDA_PERMISSION: Final = "aws:lambda/permission:Permission"
FUNCTION_EVENT_INVOKE_CONFIG: Final = "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"
TOPIC_SUBSCRIPTION: Final = "aws:sns/topicSubscription:TopicSubscription"
KMS_KEY: Final = "aws:kms/key:Key"
KMS_ALIAS: Final = "aws:kms/alias:Alias"
SECRET: Final = "aws:secretsmanager/secret:Secret"
SECRET_ROTATION: Final = "aws:secretsmanager/secretRotation:SecretRotation"

LOG_GROUP: Final = "aws:cloudwatch/logGroup:LogGroup"
METRIC_ALARM: Final = "aws:cloudwatch/metricAlarm:MetricAlarm"
COMPOSITE_ALARM: Final = "aws:cloudwatch/compositeAlarm:CompositeAlarm"
EVENT_RULE: Final = "aws:cloudwatch/eventRule:EventRule"
EVENT_TARGET: Final = "aws:cloudwatch/eventTarget:EventTarget"
SCHEDULE: Final = "aws:scheduler/schedule:Schedule"
EVENT_BUS_POLICY: Final = "aws:cloudwatch/eventBusPolicy:EventBusPolicy"

ROLE: Final = "aws:iam/role:Role"
ROLE_POLICY: Final = "aws:iam/rolePolicy:RolePolicy"
USER_POLICY: Final = "aws:iam/userPolicy:UserPolicy"
GROUP_POLICY: Final = "aws:iam/groupPolicy:GroupPolicy"
MANAGED_POLICY: Final = "aws:iam/policy:Policy"
ROLE_POLICY_ATTACHMENT: Final = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
POLICY_ATTACHMENT: Final = "aws:iam/policyAttachment:PolicyAttachment"

# pulumi-aws 7 keeps both bucket tokens (BucketV2 is the deprecated alias of the new Bucket) and both
# encryption-configuration tokens; a program may use either.
BUCKETS: Final = ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2")
BUCKET_PUBLIC_ACCESS_BLOCK: Final = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_ENCRYPTIONS: Final = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
    "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2",
)
BUCKET_POLICY: Final = "aws:s3/bucketPolicy:BucketPolicy"
BUCKET_NOTIFICATION: Final = "aws:s3/bucketNotification:BucketNotification"
BUCKET_VERSIONINGS: Final = ("aws:s3/bucketVersioning:BucketVersioning", "aws:s3/bucketVersioningV2:BucketVersioningV2")
BUCKET_LOGGINGS: Final = ("aws:s3/bucketLogging:BucketLogging", "aws:s3/bucketLoggingV2:BucketLoggingV2")
BUCKET_LIFECYCLES: Final = (
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
    "aws:s3/bucketLifecycleConfigurationV2:BucketLifecycleConfigurationV2",
)

STATE_MACHINE: Final = "aws:sfn/stateMachine:StateMachine"
TABLE: Final = "aws:dynamodb/table:Table"
RDS_CLUSTER: Final = "aws:rds/cluster:Cluster"
RDS_CLUSTER_INSTANCE: Final = "aws:rds/clusterInstance:ClusterInstance"
RDS_INSTANCE: Final = "aws:rds/instance:Instance"

_NOUNS: Final = {
    QUEUE: "queue", QUEUE_POLICY: "queue policy", REDRIVE_POLICY: "redrive policy", TOPIC: "topic",
    TOPIC_POLICY: "topic policy",
    FUNCTION: "function", EVENT_SOURCE_MAPPING: "mapping", LOG_GROUP: "log group", METRIC_ALARM: "alarm",
    COMPOSITE_ALARM: "alarm", EVENT_RULE: "rule", EVENT_TARGET: "rule target", SCHEDULE: "schedule",
    LAMBDA_PERMISSION: "lambda permission", EVENT_BUS_POLICY: "event bus policy",
    ROLE: "role", ROLE_POLICY: "role policy", USER_POLICY: "user policy", GROUP_POLICY: "group policy",
    MANAGED_POLICY: "managed policy", ROLE_POLICY_ATTACHMENT: "policy attachment",
    POLICY_ATTACHMENT: "policy attachment", BUCKET_PUBLIC_ACCESS_BLOCK: "public access block",
    BUCKET_POLICY: "bucket policy", BUCKET_NOTIFICATION: "bucket notification", STATE_MACHINE: "state machine",
    TABLE: "table", FUNCTION_EVENT_INVOKE_CONFIG: "async invoke config", TOPIC_SUBSCRIPTION: "subscription",
    KMS_KEY: "KMS key", KMS_ALIAS: "KMS alias", SECRET: "secret", SECRET_ROTATION: "secret rotation",
    RDS_CLUSTER: "database cluster",
    RDS_CLUSTER_INSTANCE: "database instance",
    RDS_INSTANCE: "database instance", **{t: "bucket versioning" for t in BUCKET_VERSIONINGS},
    **{t: "bucket lifecycle" for t in BUCKET_LIFECYCLES}, **{t: "bucket" for t in BUCKETS},
    **{t: "bucket encryption" for t in BUCKET_ENCRYPTIONS}, **{t: "bucket logging" for t in BUCKET_LOGGINGS},
}


def label(resource_type: str, name: str) -> str:
    """How a message names a resource: "queue 'jobs'"."""
    noun = _NOUNS.get(resource_type, resource_type)
    return f"{noun} '{name}'"
