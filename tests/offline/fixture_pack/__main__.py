"""Policies with one verdict per category: a resource policy with config, a stack policy that relates resources
through property dependencies, and a policy that reads a value unknown at preview."""

import json
import os
import time

from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

FUNCTION = "aws:lambda/function:Function"
MAPPING = "aws:lambda/eventSourceMapping:EventSourceMapping"


def function_timeout(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != FUNCTION:
        return
    # No fallback here on purpose: the config must arrive with the schema default filled in.
    maximum = args.get_config()["maxTimeoutSeconds"]
    timeout = args.props.get("timeout", 3)
    if timeout > maximum:
        report(f"timeout {timeout} s exceeds the maximum of {maximum} s", None)


def visibility_covers_timeout(args: StackValidationArgs, report: ReportViolation) -> None:
    # Lets a test interrupt the driver while the pack is busy (the marker file says it is).
    if marker := os.environ.get("OFFLINE_FIXTURE_PACK_BUSY_FILE"):
        with open(marker, "w") as busy:
            busy.write(str(os.getpid()))
    time.sleep(float(os.environ.get("OFFLINE_FIXTURE_PACK_SLEEP", "0")))
    for mapping in (r for r in args.resources if r.resource_type == MAPPING):
        queues = mapping.property_dependencies.get("eventSourceArn", [])
        functions = mapping.property_dependencies.get("functionName", [])
        for queue in queues:
            for function in functions:
                visibility = queue.props.get("visibilityTimeoutSeconds", 30)
                timeout = function.props.get("timeout", 3)
                if visibility < 6 * timeout:
                    report(f"queue {queue.name}: visibility timeout {visibility} s is under 6 x the timeout "
                           f"({timeout} s) of function {function.name}", mapping.urn)


def queue_policy_tls(args: ResourceValidationArgs, report: ReportViolation) -> None:
    if args.resource_type != "aws:sqs/queuePolicy:QueuePolicy":
        return
    document = json.loads(args.props["policy"])
    denies_plain_http = any(s.get("Effect") == "Deny" and s.get("Condition", {}).get("Bool", {})
                            .get("aws:SecureTransport") == "false" for s in document["Statement"])
    if not denies_plain_http:
        report("the queue policy does not deny requests without TLS", None)


PolicyPack(
    name="offline-fixture-pack",
    enforcement_level=EnforcementLevel.MANDATORY,
    policies=[
        ResourceValidationPolicy(
            name="fixture-function-timeout", description="Function timeouts stay under a configured maximum.",
            validate=function_timeout,
            config_schema=PolicyConfigSchema(properties={"maxTimeoutSeconds": {"type": "integer", "default": 300}})),
        StackValidationPolicy(
            name="fixture-visibility-covers-timeout",
            description="A queue's visibility timeout is at least 6 x the timeout of the function it feeds.",
            validate=visibility_covers_timeout),
        ResourceValidationPolicy(
            name="fixture-queue-policy-tls", description="Queue policies deny requests without TLS.",
            validate=queue_policy_tls),
    ],
)
