"""A STANDARD Step Functions state machine with its role, a log group with retention, tracing and an alarm on
executions that fail, time out or are aborted.

The definition is a dict (values may be Outputs of ARNs built from physical names) serialized by the engine-aware
``Output.json_dumps``, so it is known at preview and the policy pack can read every state. The role may start and
watch the machine's own child executions (what a Distributed Map does to run its children), deliver logs and traces,
and exactly the `statements` the pipeline declares.

>>> machine = StateMachine(naming, env, "runs", definition=definition(...), statements=[...],
...                        alarm_topic_arn=topic.arn, log_retention_days=30)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_aws as aws

from components.blocks.alarms import notifying_alarm, sum_signal
from components.blocks.dashboard import Widget, alarm_widget, metrics_widget
from components.blocks.iam import AwsEnv, PolicyDocument, Statement, service_trust_policy
from components.blocks.key import StackKey, key_use
from components.blocks.metrics import Metric
from components.blocks.naming import Naming

STATES_SERVICE = "states.amazonaws.com"
# The AWS/States metrics of executions that ended without succeeding; any of them pages.
BAD_ENDINGS = ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted")
# Only errors: ALL would log every child execution's events and inputs of a million-record run.
LOG_LEVEL = "ERROR"
# CloudWatch Logs' vended-logs prefix, under which Step Functions' log delivery needs no resource policy growth.
LOG_GROUP_PREFIX = "/aws/vendedlogs/states/"
# Log delivery and X-Ray sampling actions accept no resource-level permission ("*" is the only valid resource).
LOG_DELIVERY_ACTIONS = ("logs:CreateLogDelivery", "logs:DeleteLogDelivery", "logs:DescribeLogGroups",
                        "logs:DescribeResourcePolicies", "logs:GetLogDelivery", "logs:ListLogDeliveries",
                        "logs:PutResourcePolicy", "logs:UpdateLogDelivery")
TRACING_ACTIONS = ("xray:GetSamplingRules", "xray:GetSamplingTargets", "xray:PutTelemetryRecords",
                   "xray:PutTraceSegments")
# A machine encrypted with a customer-managed key: its executions' data is encrypted with data keys bound to the
# machine (AWS: "Data at rest encryption in Step Functions"), which the role and Step Functions' log delivery use.
MACHINE_CONTEXT = "aws:states:stateMachineArn"
MACHINE_KEY_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
DATA_KEY_REUSE_SECONDS = 300


class StateMachine(pulumi.ComponentResource):
    def __init__(self, naming: Naming, env: AwsEnv, purpose: str, *, definition: Mapping[str, Any],
                 statements: Sequence[Statement], alarm_topic_arn: pulumi.Input[str], log_retention_days: int,
                 key: StackKey | None = None, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ai-pipelines:blocks:StateMachine", naming.logical(purpose), None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.name = naming.name(purpose, max_length=80)
        self.arn: pulumi.Output[str] = env.state_machine(self.name)
        log_group_name = f"{LOG_GROUP_PREFIX}{self.name}"
        self.log_group = aws.cloudwatch.LogGroup(
            naming.logical(f"{purpose}-logs"), name=log_group_name, retention_in_days=log_retention_days,
            kms_key_id=key.encrypt_log_group(log_group_name) if key is not None else None, tags=naming.tags,
            opts=child)
        own_key = key_use(key, "UseOwnExecutionsKey", MACHINE_KEY_ACTIONS, via=None,
                          context={MACHINE_CONTEXT: [env.arn("states", f"stateMachine:{self.name}")]})
        if key is not None:
            key.admit_service("delivery.logs.amazonaws.com", ["kms:Decrypt"], "StringEquals",
                              f"kms:EncryptionContext:{MACHINE_CONTEXT}",
                              [env.arn("states", f"stateMachine:{self.name}")])
        self.role = aws.iam.Role(naming.logical(f"{purpose}-role"), name=naming.name(purpose, max_length=64),
                                 assume_role_policy=service_trust_policy(STATES_SERVICE, env, source_arn=self.arn),
                                 tags=naming.tags, opts=child)
        self.policy_document = PolicyDocument([
            # A Distributed Map starts its child executions as executions of this same state machine.
            Statement("RunOwnChildExecutions", ["states:StartExecution"], [self.arn]),
            # Its child executions are <machine>/<map run label>:<child id>, not executions of <machine> itself.
            Statement("WatchOwnChildExecutions", ["states:DescribeExecution", "states:StopExecution"],
                      [env.map_run_executions(self.name)]),
            Statement("DeliverLogs", list(LOG_DELIVERY_ACTIONS), ["*"]),
            Statement("DeliverTraces", list(TRACING_ACTIONS), ["*"]),
            *own_key,
            *statements,
        ])
        if key is not None:
            key.admit_roles(env.iam_role(self.role.name), [*own_key, *statements])
        self.role_policy = aws.iam.RolePolicy(naming.logical(f"{purpose}-policy"), name=f"{purpose}-permissions",
                                              role=self.role.name, policy=self.policy_document.to_json(),
                                              opts=child)
        self.state_machine = aws.sfn.StateMachine(
            naming.logical(purpose),
            name=self.name,
            type="STANDARD",
            role_arn=env.iam_role(self.role.name),
            definition=pulumi.Output.json_dumps(dict(definition)),
            logging_configuration={"log_destination": env.log_group(self.log_group.name).apply(lambda a: f"{a}:*"),
                                   "include_execution_data": False, "level": LOG_LEVEL},
            tracing_configuration={"enabled": True},
            encryption_configuration={"type": "CUSTOMER_MANAGED_KMS_KEY", "kms_key_id": key.arn,
                                      "kms_data_key_reuse_period_seconds": DATA_KEY_REUSE_SECONDS}
            if key is not None else None,
            tags=naming.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.role_policy]),
        )
        # One alarm (the runbook's `<purpose>-failed`) on every way a run ends badly: its notification names the
        # machine, and the run's status (which way it ended) is in the execution and in what the pipeline publishes.
        self.machine_arn = env.state_machine(self.state_machine.name)
        self.failed_alarm = notifying_alarm(
            naming, f"{purpose}-failed", watch=sum_signal([self.metric(m) for m in BAD_ENDINGS],
                                                          label=" + ".join(BAD_ENDINGS)),
            topic_arn=alarm_topic_arn, threshold=0, title=f"{purpose} failed, timed out or aborted",
            description=f"An execution of {self.name} failed, timed out or was aborted", parent=self)
        self.alarms = [self.failed_alarm]
        self.register_outputs({"arn": self.arn, "name": self.state_machine.name})

    def metric(self, name: str, stat: str = "Sum") -> Metric:
        """One of the machine's AWS/States metrics (dimension StateMachineArn)."""
        return Metric("AWS/States", name, {"StateMachineArn": self.machine_arn}, stat=stat)

    def widgets(self) -> list[Widget]:
        """Runs started and succeeded beside the alarm on the bad endings, and how long runs take."""
        return [alarm_widget(self.failed_alarm, extra=[self.metric("ExecutionsStarted"),
                                                        self.metric("ExecutionsSucceeded")]),
                metrics_widget("run time (ms)", [self.metric("ExecutionTime", "Maximum"),
                                                 self.metric("ExecutionTime", "Average")])]
