"""A function invoked on a schedule: an EventBridge Scheduler schedule, a role that may invoke only that function,
bounded retries, and one alarmed dead-letter queue for ticks Scheduler could not deliver and runs that failed
inside the function (Lambda retries them twice, then sends them there)."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

from components import defaults
from components.blocks.iam import AwsEnv, PolicyDocument, Statement, service_trust_policy
from components.blocks.key import StackKey, key_use
from components.blocks.naming import Naming
from components.blocks.queue import key_to_send

# What every scheduled invocation receives: Scheduler substitutes the tick's time, so a retried delivery of one
# tick carries the same `scheduledTime` and the function can recognise it.
SCHEDULED_EVENT = {"source": "schedule", "scheduledTime": "<aws.scheduler.scheduled-time>"}


def invoke_on_schedule(owner: pulumi.Resource, naming: Naming, env: AwsEnv, purpose: str, *,
                       function: aws.lambda_.Function, function_arn: pulumi.Input[str], invoked: str,
                       expression: str, dead_letter_arn: pulumi.Input[str],
                       failed_run_max_age_seconds: int,
                       failed_run_destination_arn: pulumi.Input[str] | None = None,
                       key: StackKey | None = None, dead_letter_arn_value: str = "") -> aws.scheduler.Schedule:
    """Schedule ``purpose`` invoking ``function`` (``invoked`` names it in the grant: "Worker" gives the statement
    ``InvokeOnlyTheWorker`` and the policy ``invoke-worker``); resources are children of ``owner``.

    ``failed_run_destination_arn`` receives the runs that failed inside the function (Lambda's destination
    records, which wrap the payload), when they must not share ``dead_letter_arn`` with the undelivered ticks. With
    ``key`` the schedule's input is encrypted with the stack's key, which the role decrypts to deliver a tick (context
    aws:scheduler:schedule:arn) and uses to dead-letter one on the (encrypted) queue, named for the key policy by
    ``dead_letter_arn_value`` (the ARN as a plain value: the queue waits for the key, the key cannot wait for it)."""
    child = pulumi.ResourceOptions(parent=owner)
    schedule_name = naming.name(purpose)
    role_name = naming.name(purpose, max_length=64)
    key_statements = [
        *key_use(key, "DecryptOwnSchedule", ["kms:Decrypt"], via=None,
                 context={"aws:scheduler:schedule:arn": [env.arn("scheduler", f"schedule/default/{schedule_name}")]}),
        *key_to_send(key, "DeadLetterUndeliveredEncrypted", [dead_letter_arn_value])]
    role = aws.iam.Role(
        naming.logical(f"{purpose}-role"), name=role_name,
        assume_role_policy=service_trust_policy("scheduler.amazonaws.com", env, source_arn=env.schedule(schedule_name)),
        tags=naming.tags, opts=child)
    policy = aws.iam.RolePolicy(
        naming.logical(f"{purpose}-policy"), name=f"invoke-{invoked.lower()}", role=role.name,
        policy=PolicyDocument([
            Statement(f"InvokeOnlyThe{invoked}", ["lambda:InvokeFunction"], [function_arn]),
            Statement("DeadLetterUndelivered", ["sqs:SendMessage"], [dead_letter_arn]),
            *key_statements,
        ]).to_json(), opts=child)
    if key is not None:
        key.admit_roles(env.iam_role(role.name), key_statements)
    aws.lambda_.FunctionEventInvokeConfig(
        naming.logical(f"{purpose}-failures"), function_name=function.name,
        maximum_retry_attempts=2, maximum_event_age_in_seconds=failed_run_max_age_seconds,
        destination_config={"on_failure": {"destination": failed_run_destination_arn or dead_letter_arn}},
        opts=child)
    return aws.scheduler.Schedule(
        naming.logical(purpose), name=schedule_name, schedule_expression=expression,
        flexible_time_window={"mode": "OFF"},
        kms_key_arn=key.arn if key is not None else None,
        target={"arn": function_arn, "role_arn": env.iam_role(role.name), "input": json.dumps(SCHEDULED_EVENT),
                "retry_policy": {"maximum_retry_attempts": defaults.TARGET_MAX_RETRY_ATTEMPTS,
                                 "maximum_event_age_in_seconds": defaults.TARGET_MAX_EVENT_AGE_SECONDS},
                "dead_letter_config": {"arn": dead_letter_arn}},
        opts=pulumi.ResourceOptions(parent=owner, depends_on=[policy]))
