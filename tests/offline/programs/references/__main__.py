"""Resources passed where the provider takes ids: directly, in lists and maps, from a component, with a provider."""

import json

import pulumi
import pulumi_aws as aws

TRUST = json.dumps({"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]})


class Network(pulumi.ComponentResource):
    def __init__(self, name: str, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("fixture:index:Network", name, None, opts)
        self.role = aws.iam.Role(f"{name}-role", assume_role_policy=TRUST, opts=pulumi.ResourceOptions(parent=self))
        self.register_outputs({"role": self.role})


network = Network("net")
west = aws.Provider("west", region="us-west-2")
function = aws.lambda_.Function("fn", role=network.role, runtime="python3.13", handler="app.handler",
                                code=pulumi.AssetArchive({}), opts=pulumi.ResourceOptions(provider=west))
topic = aws.sns.Topic("topic", tags={"owner": network.role.name})
aws.cloudwatch.MetricAlarm("alarm", comparison_operator="GreaterThanThreshold", evaluation_periods=1,
                           metric_name="Errors", namespace="AWS/Lambda", period=60, statistic="Sum", threshold=0,
                           dimensions={"FunctionName": function.name}, alarm_actions=[topic, topic.arn])
pulumi.export("function", function.arn)
pulumi.export("component", network)
