"""Resource sets for the policy tests and the policy benchmark, shaped as the engine records them.

`Stack` builds `ResourceRecord`s with engine URNs (`urn:pulumi:<stack>::<project>::<parent type chain>$<type>::<name>`)
and property dependencies, as a preview of a new stack holds them: a custom resource's inputs are what the
provider's Check returns for the given ones, its outputs the provider's planned state (`offline.check`,
`offline.provider.planned_state`), so a rule that reads a property the provider computes sees it unknown here too.
The other builders add one well-architected piece each (a queue with its DLQ, a worker, a data bucket, an event
rule, a workflow, a table) that passes every rule; a test changes one property through
`overrides` and expects exactly the violation that change causes.

>>> stack = Stack()
>>> topic = alarm_topic(stack)
>>> jobs = queue_with_dlq(stack, "jobs", topic)
>>> worker(stack, "worker", jobs, topic, function={"timeout": 120})  # doctest: +ELLIPSIS
Worker(...)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from offline.check import check
from offline.model import ResourceRecord
from offline.provider import planned_state

PROJECT = "ai-pipelines"
STACK = "test"
ACCOUNT = "123456789012"
REGION = "eu-west-1"
DROP = object()  # an override value that removes the property

Overrides = Mapping[str, Any] | None


def queue_arn(queue: ResourceRecord) -> str:
    return arn("sqs", queue.inputs["name"])


def arn(service: str, resource: str, *, region: str = REGION, account: str = ACCOUNT) -> str:
    return f"arn:aws:{service}:{region}:{account}:{resource}"


def merged(base: Mapping[str, Any], overrides: Overrides) -> dict[str, Any]:
    result = dict(base)
    for key, value in (overrides or {}).items():
        if value is DROP:
            result.pop(key, None)
        else:
            result[key] = value
    return result


def document(*statements: Mapping[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def allow(sid: str, actions: Sequence[str], resources: Sequence[str],
          conditions: Mapping[str, Any] | None = None) -> dict[str, Any]:
    statement = {"Sid": sid, "Effect": "Allow", "Action": list(actions), "Resource": list(resources)}
    return {**statement, "Condition": dict(conditions)} if conditions else statement


def deny_insecure_transport(service: str, resource: str) -> dict[str, Any]:
    return {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": [f"{service}:*"],
            "Resource": [resource], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}


def trust(service: str, *, conditions: Mapping[str, Any] | None = None) -> str:
    condition = {"StringEquals": {"aws:SourceAccount": ACCOUNT}} if conditions is None else conditions
    statement: dict[str, Any] = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


class Stack:
    """Records resources as the engine does: URN from the parent's type chain, property dependencies by key."""

    def __init__(self, stack: str = STACK, project: str = PROJECT) -> None:
        self.stack, self.project = stack, project
        self.records: list[ResourceRecord] = []
        self.root = self._record("pulumi:pulumi:Stack", f"{project}-{stack}", {}, None, {}, custom=False)

    def physical(self, name: str) -> str:
        return f"{self.project}-{self.stack}-{name}"

    def _record(self, type_: str, name: str, inputs: Mapping[str, Any], parent: ResourceRecord | None,
                deps: Mapping[str, Sequence[ResourceRecord]], *, custom: bool) -> ResourceRecord:
        # The root stack is no part of the type chain; a component parent's chain is.
        chain = type_ if parent is None or parent.type == "pulumi:pulumi:Stack" else (
            f"{parent.urn.split('::')[2]}${type_}")
        dependencies = sorted({d.urn for targets in deps.values() for d in targets})
        urn = f"urn:pulumi:{self.stack}::{self.project}::{chain}::{name}"
        checked = check(type_, name, urn, dict(inputs)) if custom else dict(inputs)
        record = ResourceRecord(
            urn=urn, type=type_, name=name, custom=custom, inputs=checked,
            outputs=planned_state(type_, checked, REGION) if custom else {},
            parent=parent.urn if parent else None, dependencies=dependencies,
            property_dependencies={key: [d.urn for d in targets] for key, targets in deps.items()
                                   if targets and key in inputs})  # the engine records them for set properties only
        self.records.append(record)
        return record

    def add(self, type_: str, name: str, inputs: Mapping[str, Any], *, parent: ResourceRecord | None = None,
            deps: Mapping[str, Sequence[ResourceRecord]] | None = None) -> ResourceRecord:
        return self._record(type_, name, inputs, parent or self.root, deps or {}, custom=True)

    def component(self, type_: str, name: str, parent: ResourceRecord | None = None) -> ResourceRecord:
        return self._record(type_, name, {}, parent or self.root, {}, custom=False)

    def find(self, type_: str, name: str) -> ResourceRecord:
        return next(r for r in self.records if r.type == type_ and r.name == name)

    def tags(self, pipeline: str = "test", **extra: str) -> dict[str, str]:
        return {"project": self.project, "stack": self.stack, "pipeline": pipeline, "owner": "platform-team",
                **extra}


# --- pieces -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Queue:
    queue: ResourceRecord
    dlq: ResourceRecord
    physical: str
    arn: str


def alarm_topic(stack: Stack, name: str = "alarms", **overrides: Any) -> ResourceRecord:
    topic_name = stack.physical(name)
    topic = stack.add("aws:sns/topic:Topic", name, merged(
        {"name": topic_name, "kmsMasterKeyId": "alias/aws/sns", "tags": stack.tags()}, overrides))
    stack.add("aws:sns/topicPolicy:TopicPolicy", f"{name}-policy", {
        "arn": arn("sns", topic_name), "policy": document(deny_insecure_transport("sns", arn("sns", topic_name)))},
        deps={"arn": [topic]})
    return topic


def metric_alarm(stack: Stack, name: str, watched: ResourceRecord, metric: str, topic: ResourceRecord | None, *,
                 namespace: str = "AWS/SQS", dimension: str = "QueueName", threshold: float | object = 0,
                 parent: ResourceRecord | None = None, as_query: bool = False, **overrides: Any) -> ResourceRecord:
    """`as_query=True` names the metric in a `metricQueries` entry (as a metric-math alarm does) instead of the
    alarm's own metricName, namespace and dimensions."""
    watched_metric = {"namespace": namespace, "metricName": metric, "dimensions": {dimension: watched.inputs["name"]}}
    where: dict[str, Any] = (
        {"metricQueries": [{"id": "m1", "returnData": True,
                            "metric": {**watched_metric, "period": 60, "stat": "Maximum"}}]} if as_query
        else {**watched_metric, "statistic": "Maximum", "period": 60})
    inputs = {"name": stack.physical(name), **where, "evaluationPeriods": 1, "threshold": threshold,
              "comparisonOperator": "GreaterThanThreshold",
              "alarmActions": [arn("sns", topic.inputs["name"])] if topic else [], "tags": stack.tags()}
    deps = {"metricQueries" if as_query else "dimensions": [watched], "alarmActions": [topic] if topic else []}
    overrides = {"threshold": threshold, **overrides}  # DROP as the threshold leaves it out
    return stack.add("aws:cloudwatch/metricAlarm:MetricAlarm", name, merged(inputs, overrides), parent=parent,
                     deps=deps)


def queue_with_dlq(stack: Stack, name: str, topic: ResourceRecord, *, queue: Overrides = None, dlq: Overrides = None,
                   dlq_alarm: Overrides = None, max_receive_count: int = 5, age_alarm: bool = True) -> Queue:
    group = stack.component("ai-pipelines:blocks:QueueWithDlq", name)
    physical, dlq_physical = stack.physical(name), stack.physical(f"{name}-dlq")
    dlq_record = stack.add("aws:sqs/queue:Queue", f"{name}-dlq", merged({
        "name": dlq_physical, "messageRetentionSeconds": 1_209_600, "sqsManagedSseEnabled": True,
        "tags": stack.tags()}, dlq), parent=group)
    queue_record = stack.add("aws:sqs/queue:Queue", name, merged({
        "name": physical, "visibilityTimeoutSeconds": 360, "messageRetentionSeconds": 345_600,
        "sqsManagedSseEnabled": True, "tags": stack.tags(),
        "redrivePolicy": json.dumps({"deadLetterTargetArn": arn("sqs", dlq_physical),
                                     "maxReceiveCount": max_receive_count})}, queue),
        parent=group, deps={"redrivePolicy": [dlq_record]})
    for record, queue_name in ((queue_record, physical), (dlq_record, dlq_physical)):
        stack.add("aws:sqs/queuePolicy:QueuePolicy", f"{record.name}-policy", {
            "queueUrl": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{queue_name}",
            "policy": document(deny_insecure_transport("sqs", arn("sqs", queue_name)))},
            parent=group, deps={"queueUrl": [record]})
    metric_alarm(stack, f"{name}-dlq-depth", dlq_record, "ApproximateNumberOfMessagesVisible", topic, parent=group,
                 **(dlq_alarm or {}))
    if age_alarm:
        metric_alarm(stack, f"{name}-age", queue_record, "ApproximateAgeOfOldestMessage", topic, threshold=900,
                     parent=group)
    return Queue(queue_record, dlq_record, physical, arn("sqs", physical))


@dataclass(frozen=True)
class Worker:
    function: ResourceRecord
    role: ResourceRecord
    role_policy: ResourceRecord
    log_group: ResourceRecord
    mapping: ResourceRecord
    physical: str


def worker(stack: Stack, name: str, source: Queue, topic: ResourceRecord, *, function: Overrides = None,
           mapping: Overrides = None, role: Overrides = None, log_group: Overrides = None,
           statements: Sequence[Mapping[str, Any]] = ()) -> Worker:
    group = stack.component("ai-pipelines:blocks:QueueWorker", name)
    physical = stack.physical(name)
    group_name = f"/aws/lambda/{physical}"
    logs = stack.add("aws:cloudwatch/logGroup:LogGroup", f"{name}-logs", merged(
        {"name": group_name, "retentionInDays": 14, "tags": stack.tags()}, log_group), parent=group)
    role_record = stack.add("aws:iam/role:Role", f"{name}-role", merged(
        {"name": physical, "assumeRolePolicy": trust("lambda.amazonaws.com"), "tags": stack.tags()}, role),
        parent=group)
    policy = stack.add("aws:iam/rolePolicy:RolePolicy", f"{name}-policy", {
        "name": f"{name}-permissions", "role": physical, "policy": document(
            allow("ConsumeOwnQueue", ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                  [source.arn]),
            allow("WriteOwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"],
                  [arn("logs", f"log-group:{group_name}:log-stream:*")]),
            allow("WriteTraces", ["xray:PutTraceSegments", "xray:PutTelemetryRecords"], ["*"]),
            *statements)},
        parent=group, deps={"role": [role_record], "policy": [source.queue, logs]})
    function_record = stack.add("aws:lambda/function:Function", name, merged({
        "name": physical, "role": arn("iam", f"role/{physical}", region=""), "runtime": "python3.13",
        "handler": "app.handler", "timeout": 60, "memorySize": 256, "reservedConcurrentExecutions": 2,
        "architectures": ["arm64"], "tracingConfig": {"mode": "Active"},
        "loggingConfig": {"logFormat": "JSON", "logGroup": group_name},
        "environment": {"variables": {"QUEUE_URL": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{source.physical}"}},
        "tags": stack.tags()}, function),
        parent=group, deps={"role": [role_record], "loggingConfig": [logs]})
    mapping_record = stack.add("aws:lambda/eventSourceMapping:EventSourceMapping", f"{name}-source", merged({
        "eventSourceArn": source.arn, "functionName": physical, "batchSize": 10,
        "maximumBatchingWindowInSeconds": 0, "functionResponseTypes": ["ReportBatchItemFailures"],
        "scalingConfig": {"maximumConcurrency": 2}, "metricsConfig": {"metrics": ["EventCount"]}}, mapping),
        parent=group, deps={"eventSourceArn": [source.queue], "functionName": [function_record]})
    for metric in ("Errors", "Throttles"):
        metric_alarm(stack, f"{name}-{metric.lower()}", function_record, metric, topic, namespace="AWS/Lambda",
                     dimension="FunctionName", parent=group)
    return Worker(function_record, role_record, policy, logs, mapping_record, physical)


def role(stack: Stack, name: str, service: str = "lambda.amazonaws.com", **overrides: Any) -> ResourceRecord:
    return stack.add("aws:iam/role:Role", name, merged(
        {"name": stack.physical(name), "assumeRolePolicy": trust(service), "tags": stack.tags()}, overrides))


def role_policy(stack: Stack, name: str, owner: ResourceRecord, *statements: Mapping[str, Any]) -> ResourceRecord:
    return stack.add("aws:iam/rolePolicy:RolePolicy", name, {
        "name": name, "role": owner.inputs["name"], "policy": document(*statements)}, deps={"role": [owner]})


def attachment(stack: Stack, name: str, owner: ResourceRecord, policy_arn: str) -> ResourceRecord:
    return stack.add("aws:iam/rolePolicyAttachment:RolePolicyAttachment", name,
                     {"role": owner.inputs["name"], "policyArn": policy_arn}, deps={"role": [owner]})


WHOLE_BUCKET_LIFECYCLE: dict[str, Any] = {
    "id": "expire-noncurrent-and-abandoned-uploads", "status": "Enabled", "filter": {},
    "abortIncompleteMultipartUpload": {"daysAfterInitiation": 7},
    "noncurrentVersionExpiration": {"noncurrentDays": 30}}


def data_bucket(stack: Stack, name: str, *, bucket: Overrides = None, public_access: Overrides | bool = None,
                encryption: bool = True, tls_policy: bool = True, versioned: bool = False,
                lifecycle: Sequence[Mapping[str, Any]] | None = None) -> ResourceRecord:
    """`public_access=False` leaves out the BucketPublicAccessBlock (S3's default for a new bucket then holds).
    `versioned=True` adds a BucketVersioning and a BucketLifecycleConfiguration with `lifecycle` as its rules
    (default: one whole-bucket rule that aborts uploads and expires noncurrent versions; [] leaves it out)."""
    physical = stack.physical(name)
    record = stack.add("aws:s3/bucket:Bucket", name, merged({"bucket": physical, "tags": stack.tags()}, bucket))
    if versioned:
        stack.add("aws:s3/bucketVersioning:BucketVersioning", f"{name}-versioning", {
            "bucket": physical, "versioningConfiguration": {"status": "Enabled"}}, deps={"bucket": [record]})
        rules = [WHOLE_BUCKET_LIFECYCLE] if lifecycle is None else list(lifecycle)
        if rules:
            stack.add("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", f"{name}-lifecycle",
                      {"bucket": physical, "rules": rules}, deps={"bucket": [record]})
    if public_access is not False:
        stack.add("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", f"{name}-public-access", merged(
            {"bucket": physical, "blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True,
             "restrictPublicBuckets": True}, public_access if isinstance(public_access, Mapping) else None),
            deps={"bucket": [record]})
    if encryption:
        stack.add("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                  f"{name}-encryption", {"bucket": physical, "rules": [
                      {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}, "bucketKeyEnabled": True}]},
                  deps={"bucket": [record]})
    if tls_policy:
        bucket_arn = f"arn:aws:s3:::{physical}"
        stack.add("aws:s3/bucketPolicy:BucketPolicy", f"{name}-policy", {
            "bucket": physical, "policy": document({**deny_insecure_transport("s3", bucket_arn),
                                                    "Resource": [bucket_arn, f"{bucket_arn}/*"]})},
            deps={"bucket": [record]})
    return record


def bucket_logging(stack: Stack, source: ResourceRecord, target: ResourceRecord, **overrides: Any) -> ResourceRecord:
    """`source`'s server access logs into `target`, under a folder named after the source."""
    return stack.add("aws:s3/bucketLogging:BucketLogging", f"{source.name}-access-logging", merged({
        "bucket": source.inputs["bucket"], "targetBucket": target.inputs["bucket"],
        "targetPrefix": f"{source.inputs['bucket']}/"}, overrides),
        deps={"bucket": [source], "targetBucket": [target]})


def log_delivery(target: str, source: ResourceRecord, *, conditions: Mapping[str, Any] | None = None
                 ) -> dict[str, Any]:
    """The bucket-policy grant that admits S3's delivery of `source`'s access logs into the bucket named `target`
    (AWS's shape: the source bucket and account as conditions, unless `conditions` says otherwise)."""
    grant = allow(f"DeliverAccessLogsOf{source.name.replace('-', '')}", ["s3:PutObject"],
                  [f"arn:aws:s3:::{target}/{source.inputs['bucket']}/*"],
                  {"ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{source.inputs['bucket']}"},
                   "StringEquals": {"aws:SourceAccount": ACCOUNT}} if conditions is None else conditions)
    return {**grant, "Principal": {"Service": "logging.s3.amazonaws.com"}}


def access_log_bucket(stack: Stack, name: str, sources: Sequence[ResourceRecord], *,
                      grants: Sequence[Mapping[str, Any]] | None = None) -> ResourceRecord:
    """A locked-down log bucket receiving the access logs of `sources` (each with its BucketLogging); its policy
    denies plain HTTP and holds `grants` (default: one scoped log-delivery grant per source)."""
    physical = stack.physical(name)
    record = stack.add("aws:s3/bucket:Bucket", name, {"bucket": physical, "tags": stack.tags()})
    stack.add("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", f"{name}-public-access", {
        "bucket": physical, "blockPublicAcls": True, "blockPublicPolicy": True, "ignorePublicAcls": True,
        "restrictPublicBuckets": True}, deps={"bucket": [record]})
    stack.add("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
              f"{name}-encryption", {"bucket": physical, "rules": [
                  {"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}]}, deps={"bucket": [record]})
    bucket_arn = f"arn:aws:s3:::{physical}"
    statements = [log_delivery(physical, source) for source in sources] if grants is None else list(grants)
    stack.add("aws:s3/bucketPolicy:BucketPolicy", f"{name}-policy", {
        "bucket": physical, "policy": document({**deny_insecure_transport("s3", bucket_arn),
                                                "Resource": [bucket_arn, f"{bucket_arn}/*"]}, *statements)},
        deps={"bucket": [record, *sources]})
    for source in sources:
        bucket_logging(stack, source, record)
    return record


def bucket_to_queue(stack: Stack, name: str, bucket: ResourceRecord, target: Queue, *, prefix: str = "incoming/",
                    suffix: str = "", events: Sequence[str] = ("s3:ObjectCreated:*",)) -> ResourceRecord:
    entry: dict[str, Any] = {"queueArn": target.arn, "events": list(events)}
    if prefix:
        entry["filterPrefix"] = prefix
    if suffix:
        entry["filterSuffix"] = suffix
    return stack.add("aws:s3/bucketNotification:BucketNotification", name,
                     {"bucket": bucket.inputs["bucket"], "queues": [entry]},
                     deps={"bucket": [bucket], "queues": [target.queue]})


def rule_to_queue(stack: Stack, name: str, target: Queue, dead_letter: ResourceRecord, *,
                  target_props: Overrides = None) -> ResourceRecord:
    rule = stack.add("aws:cloudwatch/eventRule:EventRule", name, {
        "name": stack.physical(name), "eventBusName": "default", "tags": stack.tags(),
        "eventPattern": json.dumps({"source": ["ai-pipelines.requests"]})})
    return stack.add("aws:cloudwatch/eventTarget:EventTarget", f"{name}-target", merged({
        "rule": stack.physical(name), "arn": target.arn, "deadLetterConfig": {"arn": queue_arn(dead_letter)},
        "retryPolicy": {"maximumRetryAttempts": 185, "maximumEventAgeInSeconds": 86_400}}, target_props),
        deps={"rule": [rule], "arn": [target.queue], "deadLetterConfig": [dead_letter]})


def schedule(stack: Stack, name: str, target: Queue, dead_letter: ResourceRecord, *, target_props: Overrides = None
             ) -> ResourceRecord:
    return stack.add("aws:scheduler/schedule:Schedule", name, {
        "name": stack.physical(name), "scheduleExpression": "rate(6 hours)", "flexibleTimeWindow": {"mode": "OFF"},
        "target": merged({"arn": target.arn, "roleArn": arn("iam", f"role/{stack.physical(name)}", region=""),
                          "deadLetterConfig": {"arn": queue_arn(dead_letter)},
                          "retryPolicy": {"maximumRetryAttempts": 3, "maximumEventAgeInSeconds": 3600}},
                         target_props)},
        deps={"target": [target.queue, dead_letter]})


def task(resource: str, **overrides: Any) -> dict[str, Any]:
    return merged({"Type": "Task", "Resource": resource, "TimeoutSeconds": 300,
                   "Retry": [{"ErrorEquals": ["Bedrock.ThrottlingException", "States.TaskFailed"],
                              "IntervalSeconds": 2, "MaxAttempts": 6, "BackoffRate": 2}], "End": True}, overrides)


def distributed_map(**overrides: Any) -> dict[str, Any]:
    return merged({
        "Type": "Map", "MaxConcurrency": 10, "ToleratedFailurePercentage": 5,
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSONL"}},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                          "StartAt": "Invoke",
                          "States": {"Invoke": task("arn:aws:states:::bedrock:invokeModel")}},
        "End": True}, overrides)


EXECUTION_METRICS = ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted")


def execution_alarms(stack: Stack, machine: ResourceRecord, topic: ResourceRecord | None,
                     metrics: Sequence[str] = EXECUTION_METRICS) -> list[ResourceRecord]:
    """One alarm per Step Functions execution metric, its StateMachineArn dimension built from the machine."""
    machine_arn = arn("states", f"stateMachine:{machine.inputs['name']}")
    return [stack.add("aws:cloudwatch/metricAlarm:MetricAlarm", f"{machine.name}-{metric.lower()}", {
        "name": stack.physical(f"{machine.name}-{metric.lower()}"), "namespace": "AWS/States", "metricName": metric,
        "dimensions": {"StateMachineArn": machine_arn}, "statistic": "Sum", "period": 300, "evaluationPeriods": 1,
        "threshold": 0, "comparisonOperator": "GreaterThanThreshold", "tags": stack.tags(),
        "alarmActions": [arn("sns", topic.inputs["name"])] if topic else []},
        deps={"dimensions": [machine], "alarmActions": [topic] if topic else []}) for metric in metrics]


def state_machine(stack: Stack, name: str, states: Mapping[str, Any] | None = None, *,
                  alarms: ResourceRecord | None = None, **overrides: Any) -> ResourceRecord:
    """`alarms`: a topic to alarm on failed, timed-out and aborted runs (none without one)."""
    states = states or {"Shards": distributed_map()}
    definition = {"StartAt": next(iter(states)), "States": dict(states)}
    machine = stack.add("aws:sfn/stateMachine:StateMachine", name, merged({
        "name": stack.physical(name), "type": "STANDARD",
        "roleArn": arn("iam", f"role/{stack.physical(name)}", region=""),
        "definition": json.dumps(definition), "tags": stack.tags(),
        "loggingConfiguration": {"level": "ERROR", "includeExecutionData": False,
                                 "logDestination": arn("logs", f"log-group:/aws/vendedlogs/{name}:*")},
        "tracingConfiguration": {"enabled": True}}, overrides))
    if alarms is not None:
        execution_alarms(stack, machine, alarms)
    return machine


def scheduled_function(stack: Stack, name: str, dead_letter: Queue, *, invoke_config: Overrides | bool = None,
                       function: Overrides = None) -> ResourceRecord:
    """A function a Scheduler schedule invokes (asynchronously), with a FunctionEventInvokeConfig sending failed
    events to `dead_letter` (`invoke_config=False` leaves it out)."""
    physical = stack.physical(name)
    record = stack.add("aws:lambda/function:Function", name, merged({
        "name": physical, "role": arn("iam", f"role/{physical}", region=""), "runtime": "python3.13",
        "handler": "app.handler", "timeout": 60, "reservedConcurrentExecutions": 1, "tags": stack.tags()},
        function))
    stack.add("aws:cloudwatch/logGroup:LogGroup", f"{name}-logs", {
        "name": f"/aws/lambda/{physical}", "retentionInDays": 14, "tags": stack.tags()})
    stack.add("aws:scheduler/schedule:Schedule", f"{name}-schedule", {
        "name": physical, "scheduleExpression": "rate(15 minutes)", "flexibleTimeWindow": {"mode": "OFF"},
        "target": {"arn": arn("lambda", f"function:{physical}"), "roleArn": arn("iam", f"role/{physical}-schedule",
                                                                                  region=""),
                   "deadLetterConfig": {"arn": dead_letter.arn},
                   "retryPolicy": {"maximumRetryAttempts": 3, "maximumEventAgeInSeconds": 3600}}},
        deps={"target": [record, dead_letter.queue]})
    if invoke_config is not False:
        stack.add("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig", f"{name}-failures", merged({
            "functionName": physical, "maximumRetryAttempts": 2, "maximumEventAgeInSeconds": 3600,
            "destinationConfig": {"onFailure": {"destination": dead_letter.arn}}},
            invoke_config if isinstance(invoke_config, Mapping) else None),
            deps={"functionName": [record], "destinationConfig": [dead_letter.queue]})
    return record


def aurora(stack: Stack, name: str, *, cluster: Overrides = None, instance: Overrides = None) -> ResourceRecord:
    """An Aurora PostgreSQL Serverless v2 cluster with its writer, as the file-ingestion pipeline builds it."""
    physical = stack.physical(name)
    record = stack.add("aws:rds/cluster:Cluster", name, merged({
        "clusterIdentifier": physical, "engine": "aurora-postgresql", "engineMode": "provisioned",
        "engineVersion": "16.6", "databaseName": "ingest", "masterUsername": "ingest_admin",
        "manageMasterUserPassword": True, "storageEncrypted": True, "backupRetentionPeriod": 7,
        "serverlessv2ScalingConfiguration": {"minCapacity": 0.5, "maxCapacity": 4}, "tags": stack.tags()}, cluster))
    stack.add("aws:rds/clusterInstance:ClusterInstance", f"{name}-writer", merged({
        "identifier": f"{physical}-writer", "clusterIdentifier": physical, "instanceClass": "db.serverless",
        "engine": "aurora-postgresql", "publiclyAccessible": False, "tags": stack.tags()}, instance),
        deps={"clusterIdentifier": [record]})
    return record


def kms_key(stack: Stack, name: str, **overrides: Any) -> ResourceRecord:
    return stack.add("aws:kms/key:Key", name, merged(
        {"description": name, "enableKeyRotation": True, "tags": stack.tags()}, overrides))


def table(stack: Stack, name: str, purpose: str, **overrides: Any) -> ResourceRecord:
    protection: dict[str, Any] = (
        {"ttl": {"attributeName": "expiration", "enabled": True}} if purpose == "idempotency"
        else {"pointInTimeRecovery": {"enabled": True}})
    return stack.add("aws:dynamodb/table:Table", name, merged({
        "name": stack.physical(name), "billingMode": "PAY_PER_REQUEST", "hashKey": "id",
        "attributes": [{"name": "id", "type": "S"}], "tags": stack.tags(purpose=purpose), **protection}, overrides))


# --- whole stacks ----------------------------------------------------------------------------------------------

def pipeline_unit(stack: Stack, name: str, topic: ResourceRecord) -> None:
    """One of everything the rules look at, wired as the program wires it (about 45 resources)."""
    jobs = queue_with_dlq(stack, f"{name}-jobs", topic)
    worker(stack, f"{name}-worker", jobs, topic)
    bucket = data_bucket(stack, f"{name}-data", versioned=True)
    access_log_bucket(stack, f"{name}-access-logs", [bucket])
    bucket_to_queue(stack, f"{name}-uploads", bucket, jobs)
    requests = queue_with_dlq(stack, f"{name}-requests", topic)
    rule_to_queue(stack, f"{name}-requests", requests, requests.dlq)
    state_machine(stack, f"{name}-batch", alarms=topic)
    table(stack, f"{name}-results", "results")
    scheduled_function(stack, f"{name}-reconciler", jobs)
    kms_key(stack, f"{name}-key")
    aurora(stack, f"{name}-db")


def compliant_stack() -> Stack:
    stack = Stack()
    pipeline_unit(stack, "p0", alarm_topic(stack))
    return stack


def synthetic_stack(resources: int) -> list[ResourceRecord]:
    """A compliant stack of exactly `resources` records: whole pipeline units, topped up with log groups."""
    probe = Stack()
    topic = alarm_topic(probe)
    before = len(probe.records)
    pipeline_unit(probe, "probe", topic)
    unit_size = len(probe.records) - before

    stack = Stack()
    topic = alarm_topic(stack)
    unit = 0
    while len(stack.records) + unit_size <= resources:
        pipeline_unit(stack, f"p{unit}", topic)
        unit += 1
    while len(stack.records) < resources:
        stack.add("aws:cloudwatch/logGroup:LogGroup", f"spare-{len(stack.records)}",
                  {"name": f"/ai-pipelines/spare/{len(stack.records)}", "retentionInDays": 14})
    return stack.records
