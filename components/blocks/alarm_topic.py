"""The alarm topic: where every alarm of a stack sends its notifications."""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from components.blocks.iam import AwsEnv, PolicyDocument, Statement, deny_insecure_transport, service_may
from components.blocks.key import StackKey
from components.blocks.naming import Naming


class AlarmTopic(pulumi.ComponentResource):
    """An SNS topic encrypted with its own KMS key, TLS-only, with email subscriptions.

    The key is customer-managed because CloudWatch cannot publish to a topic encrypted with the AWS-managed
    `aws/sns` key (its key policy can't grant CloudWatch): the stack's key when the stack has one (`key`), else a
    key of the topic's own. Either admits CloudWatch only for this stack's alarms (``aws:SourceArn``) in this account.
    The topic names the key by its alias, which is known at preview, so a policy can see that the topic is encrypted.

    >>> topic = AlarmTopic(naming, env, emails=["oncall@example.com"])  # doctest: +SKIP
    >>> topic.arn  # an Output known at preview  # doctest: +SKIP
    """

    def __init__(self, naming: Naming, env: AwsEnv, *, emails: Sequence[str] = (), key: StackKey | None = None,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("ai-pipelines:blocks:AlarmTopic", naming.logical("alarms"), None, opts)
        child = pulumi.ResourceOptions(parent=self)
        topic_name = naming.name("alarms", max_length=256)
        topic_arn = env.sns_topic(topic_name)
        # Every alarm of the stack is named <project>-<stack>-<pipeline>-<purpose> (Naming.name).
        alarms = env.arn("cloudwatch", f"alarm:{naming.project}-{naming.stack}-*")
        publish_actions = ["kms:Decrypt", "kms:GenerateDataKey*"]  # AWS: SNS "compatibility with AWS services"

        if key is not None:
            key.admit_service("cloudwatch.amazonaws.com", publish_actions, "ArnLike", "aws:SourceArn", [alarms],
                              source_account=True)
            self.key_ref: pulumi.Output[str] = key.alias_ref
        else:
            self.key_ref = self._own_key(naming, env, topic_name, publish_actions, alarms)
        self.topic = aws.sns.Topic(naming.logical("alarms-topic"), name=topic_name,
                                   kms_master_key_id=self.key_ref, tags=naming.tags, opts=child)
        self.arn: pulumi.Output[str] = env.sns_topic(self.topic.name)
        self.policy = aws.sns.TopicPolicy(
            naming.logical("alarms-topic-policy"),
            arn=self.arn,
            policy=PolicyDocument([
                service_may("CloudWatchPublishes", "cloudwatch.amazonaws.com", ["sns:Publish"], [topic_arn], env,
                            source_arn=alarms),
                deny_insecure_transport(["sns:Publish", "sns:Subscribe"], [topic_arn]),
            ]).to_json(),
            opts=child,
        )
        for index, email in enumerate(emails):
            aws.sns.TopicSubscription(naming.logical(f"alarms-email-{index}"), topic=self.arn, protocol="email",
                                      endpoint=email, opts=child)
        self.register_outputs({"arn": self.arn})

    def _own_key(self, naming: Naming, env: AwsEnv, topic_name: str, publish_actions: list[str],
                 alarms: str) -> pulumi.Output[str]:
        child = pulumi.ResourceOptions(parent=self)
        self.key = aws.kms.Key(
            naming.logical("alarms-key"),
            description=f"Encrypts the alarm topic {topic_name}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=PolicyDocument([
                Statement("AccountAdministers", ["kms:*"], ["*"],
                          principals={"AWS": f"arn:{env.partition}:iam::{env.account_id}:root"}),
                service_may("CloudWatchPublishes", "cloudwatch.amazonaws.com", publish_actions, ["*"], env,
                            source_arn=alarms),
            ]).to_json(),
            tags=naming.tags,
            opts=child,
        )
        self.alias = aws.kms.Alias(naming.logical("alarms-key-alias"), name=f"alias/{topic_name}",
                                   target_key_id=self.key.key_id, opts=child)
        return self.alias.name
