"""A one-pipeline program with a known verdict per policy category (see the stack files for which).

bucket -> (notification) -> queue -> (event source mapping) -> function, queue -> (redrive) -> DLQ, and a
schedule that invokes the function. Plain `pulumi_aws` resources, so the harness tests don't depend on the
project's components.
"""

import json

import pulumi
import pulumi_aws as aws

config = pulumi.Config()
stack = pulumi.get_stack()
timeout = config.get_int("timeoutSeconds", 30)
if timeout < 1:
    raise pulumi.RunError(f"Pulumi.{stack}.yaml: offline-fixture:timeoutSeconds must be at least 1 (got {timeout})")
visibility = config.get_int("visibilityTimeoutSeconds") or 6 * timeout
policy_from_outputs = config.get_bool("queuePolicyFromOutputs") or False

account = aws.get_caller_identity().account_id
region = aws.get_region().region
tags = {"pipeline": "orders", "stack": stack}


def queue_arn(name: pulumi.Input[str]) -> pulumi.Output[str]:
    """An ARN assembled from a physical name: known at preview, and it carries the queue as a dependency."""
    return pulumi.Output.from_input(name).apply(lambda n: f"arn:aws:sqs:{region}:{account}:{n}")


class Pipeline(pulumi.ComponentResource):
    def __init__(self, name: str) -> None:
        super().__init__("fixture:index:Pipeline", name)
        child = pulumi.ResourceOptions(parent=self)
        bucket = aws.s3.Bucket(f"{name}-inbox", bucket=f"fixture-{stack}-{name}-inbox", tags=tags, opts=child)
        dlq = aws.sqs.Queue(f"{name}-dlq", name=f"fixture-{stack}-{name}-dlq", tags=tags, opts=child)
        queue = aws.sqs.Queue(
            f"{name}-queue", name=f"fixture-{stack}-{name}", visibility_timeout_seconds=visibility,
            redrive_policy=pulumi.Output.json_dumps({"deadLetterTargetArn": queue_arn(dlq.name),
                                                     "maxReceiveCount": 5}),
            tags=tags, opts=child)
        arn = queue.arn if policy_from_outputs else queue_arn(queue.name)
        aws.sqs.QueuePolicy(
            f"{name}-queue-policy", queue_url=queue.url,
            policy=pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": [{
                "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "sqs:*",
                "Resource": arn, "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}),
            opts=child)
        role = aws.iam.Role(f"{name}-role", name=f"fixture-{stack}-{name}", assume_role_policy=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                     "Principal": {"Service": "lambda.amazonaws.com"}}]}),
            opts=child)
        function = aws.lambda_.Function(
            f"{name}-worker", name=f"fixture-{stack}-{name}", role=role.arn, runtime="python3.13",
            handler="app.handler", timeout=timeout,
            code=pulumi.AssetArchive({"app.py": pulumi.StringAsset("def handler(event, context):\n    pass\n")}),
            tags=tags, opts=child)
        aws.lambda_.EventSourceMapping(f"{name}-source", event_source_arn=queue_arn(queue.name),
                                       function_name=function.name, batch_size=10, opts=child)
        aws.s3.BucketNotification(f"{name}-inbox-notifications", bucket=bucket.bucket,
                                  queues=[{"queue_arn": queue_arn(queue.name), "events": ["s3:ObjectCreated:*"],
                                           "filter_prefix": "incoming/"}], opts=child)
        aws.scheduler.Schedule(f"{name}-nightly", schedule_expression="rate(1 day)",
                               flexible_time_window={"mode": "OFF"},
                               target={"arn": function.arn, "role_arn": role.arn}, opts=child)
        self.register_outputs({})


Pipeline("orders")
pulumi.export("region", region)
