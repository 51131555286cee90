"""Functions invoked asynchronously keep the events they fail on: an on-failure destination or a dead-letter queue.

Lambda queues an asynchronous invocation, retries it twice, and then discards the event unless the function has an
on-failure destination (a FunctionEventInvokeConfig) or a dead-letter queue (its `deadLetterConfig`). Who invokes a
function asynchronously is known from property dependencies: a Scheduler schedule's `target`, an EventBridge rule
target's `arn`, a bucket notification's `lambdaFunctions` and an SNS subscription's `endpoint` built from the function.
"""

from __future__ import annotations

from collections.abc import Iterator

from pulumi_policy import PolicyResource, Severity

from .core import types
from .core.frameworks import serverless_lens, well_architected
from .core.rule import Rule, StackContext, describe
from .core.values import get_path, unless_computed

# (invoker type, the property built from the function)
_ASYNC_INVOKERS = ((types.SCHEDULE, "target"), (types.EVENT_TARGET, "arn"),
                   (types.BUCKET_NOTIFICATION, "lambdaFunctions"), (types.TOPIC_SUBSCRIPTION, "endpoint"))


def _async_invokers(ctx: StackContext) -> dict[str, tuple[PolicyResource, list[PolicyResource]]]:
    """Function URN -> (function, the resources that invoke it asynchronously)."""
    found: dict[str, tuple[PolicyResource, list[PolicyResource]]] = {}
    for invoker_type, key in _ASYNC_INVOKERS:
        for invoker in ctx.index.of_type(invoker_type):
            for function in ctx.index.deps(invoker, key, types.FUNCTION):
                found.setdefault(function.urn, (function, []))[1].append(invoker)
    return found


def _failure_handlers(ctx: StackContext, function: PolicyResource) -> Iterator[str]:
    """Where the function's failed asynchronous events go: its invoke configs' on-failure destinations (followed
    through FunctionEventInvokeConfig.functionName), else its own deadLetterConfig."""
    for config in ctx.index.referrers(function, types.FUNCTION_EVENT_INVOKE_CONFIG, key="functionName"):
        destination = get_path(config.props, "destinationConfig", "onFailure", "destination")
        if destination:
            yield f"{describe(config)} onFailure {destination}"
    # deadLetterConfig is computed when left unset (unknown at preview, read as not set: a DLQ unknown at preview
    # cannot be shown to keep anything).
    target = get_path(unless_computed(function, "deadLetterConfig"), "targetArn")
    if target:
        yield f"deadLetterConfig {target}"


def _async_failure_destination(ctx: StackContext) -> None:
    for function, invokers in _async_invokers(ctx).values():
        with ctx.about(function):
            if next(_failure_handlers(ctx, function), None) is None:
                callers = ", ".join(describe(i) for i in invokers)
                ctx.violation(function, f"{describe(function)} is invoked asynchronously by {callers} but has no "
                                        f"on-failure destination (a FunctionEventInvokeConfig's destinationConfig."
                                        f"onFailure) or deadLetterConfig, so an event that fails its retries is "
                                        f"discarded")


RULES = (
    Rule(
        name="lambda-async-failure-destination",
        what="A function invoked asynchronously (by a Scheduler schedule, an EventBridge rule target, a bucket "
             "notification or an SNS subscription) has an on-failure destination or a dead-letter queue.",
        why="Lambda retries a failed asynchronous event twice and then drops it; without a destination nobody can "
            "see or replay the work that was lost. The pipelines' scheduled reconcilers and syncs are invoked this "
            "way.",
        scope="stack",
        check=_async_failure_destination,
        severity=Severity.MEDIUM,
        frameworks=(
            serverless_lens("REL 2", spec="Building resiliency into a serverless application"),
            well_architected("REL05-BP03", spec="Control and limit retry calls"),
        ),
        remediation="Add an aws.lambda.FunctionEventInvokeConfig for the function with destinationConfig.onFailure "
                    "naming an SQS queue (or topic), or set the function's deadLetterConfig.targetArn; alarm on that "
                    "queue's depth.",
        url="https://docs.aws.amazon.com/lambda/latest/dg/invocation-async-retain-records.html",
        relations=("Schedule.target -> Function", "EventTarget.arn -> Function",
                   "BucketNotification.lambdaFunctions -> Function", "TopicSubscription.endpoint -> Function",
                   "FunctionEventInvokeConfig.functionName -> Function"),
    ),
)
