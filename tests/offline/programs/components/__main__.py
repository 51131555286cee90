"""Components nesting components, with outputs combined through Output.all and apply chains."""

import json

import pulumi
import pulumi_aws as aws


class Queues(pulumi.ComponentResource):
    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("fixture:index:Queues", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.dlq = aws.sqs.Queue(f"{name}-dlq", name=f"{name}-dlq", opts=child)
        redrive = self.dlq.arn.apply(lambda arn: json.dumps({"deadLetterTargetArn": arn, "maxReceiveCount": 5}))
        self.queue = aws.sqs.Queue(name, name=name, redrive_policy=redrive, opts=child)
        self.register_outputs({})


class Pipeline(pulumi.ComponentResource):
    def __init__(self, name: str) -> None:
        super().__init__("fixture:index:Pipeline", name)
        self.queues = Queues(f"{name}-jobs", pulumi.ResourceOptions(parent=self))
        summary = pulumi.Output.all(self.queues.queue.name, self.queues.dlq.name).apply(
            lambda names: " -> ".join(names)).apply(str.upper)
        self.register_outputs({"summary": summary})
        self.summary = summary


pipeline = Pipeline("orders")
pulumi.export("summary", pipeline.summary)
