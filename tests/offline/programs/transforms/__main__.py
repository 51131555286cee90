"""A stack transformation (SDK side) that tags every taggable resource, and a resource transform."""

import pulumi
import pulumi_aws as aws


def tag_everything(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult | None:
    if "tags" in args.props or args.type_.startswith("aws:sqs"):
        props = {**args.props, "tags": {**(args.props.get("tags") or {}), "team": "fixture"}}
        return pulumi.ResourceTransformationResult(props, args.opts)
    return None


pulumi.runtime.register_stack_transformation(tag_everything)


def encrypt(args: pulumi.ResourceTransformArgs) -> pulumi.ResourceTransformResult | None:
    if args.type_ == "aws:sqs/queue:Queue":
        return pulumi.ResourceTransformResult({**args.props, "sqsManagedSseEnabled": True}, args.opts)
    return None


aws.sqs.Queue("jobs", name="jobs", opts=pulumi.ResourceOptions(transforms=[encrypt]))
