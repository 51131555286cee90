"""Lambda functions: bounded concurrency behind queues, batch failure reporting, logs, runtimes and secrets."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pulumi_policy import PolicyResource, Severity

from . import relations
from .core import aws_defaults, types
from .core.frameworks import serverless_lens, well_architected
from .core.rule import Rule, StackContext, describe
from .core.values import as_list, fmt, get_path, number, unless_computed

_REPORT_BATCH_ITEM_FAILURES = "ReportBatchItemFailures"


def _max_concurrency(link: relations.SqsMapping) -> float | None:
    cap = number(get_path(link.mapping.props, "scalingConfig", "maximumConcurrency"), 0)
    return cap or None


def _concurrency_problems(function: PolicyResource, links: list[relations.SqsMapping],
                          minimum: float) -> list[str]:
    reserved = number(function.props.get("reservedConcurrentExecutions"), aws_defaults.UNRESERVED_CONCURRENCY)
    caps = [(link, _max_concurrency(link)) for link in links]
    if reserved < 0:  # -1 (or absent) is "unreserved": only the mappings' caps can bound it
        return [f"{describe(function)} has no reserved concurrency and {describe(link.mapping)} (from "
                f"{describe(link.queue)}) sets no scalingConfig.maximumConcurrency, so a burst on the queue can "
                f"take the account's whole concurrency" for link, cap in caps if cap is None]
    problems = []
    if reserved < minimum:
        problems.append(f"{describe(function)} reservedConcurrentExecutions {fmt(reserved)} is below the minimum "
                        f"{fmt(minimum)}" + (" (0 throttles every invocation)" if reserved == 0 else ""))
    capped = [(link, cap) for link, cap in caps if cap is not None]
    total = sum(cap for _, cap in capped)
    if capped and total > reserved:
        parts = " + ".join(f"{describe(link.mapping)} {fmt(cap)}" for link, cap in capped)
        problems.append(f"scalingConfig.maximumConcurrency {parts} = {fmt(total)} > {describe(function)} "
                        f"reservedConcurrentExecutions {fmt(reserved)}; the mappings poll more batches than the "
                        f"function may run, and the excess is throttled back to the queue")
    return problems


def _concurrency_bounded(ctx: StackContext) -> None:
    minimum = float(ctx.settings["minimumReservedConcurrency"])
    by_function: dict[str, tuple[PolicyResource, list[relations.SqsMapping]]] = {}
    for link in relations.sqs_mappings(ctx.index):
        if link.function is not None:
            by_function.setdefault(link.function.urn, (link.function, []))[1].append(link)
    for function, links in by_function.values():
        with ctx.about(function):
            for problem in _concurrency_problems(function, links, minimum):
                ctx.violation(function, problem)


def _batch_reporting(ctx: StackContext) -> None:
    min_window = float(ctx.settings["minBatchingWindowSeconds"])
    for link in relations.sqs_mappings(ctx.index):
        with ctx.about(link.mapping):
            props = link.mapping.props
            batch = number(props.get("batchSize"), aws_defaults.SQS_MAPPING_BATCH_SIZE)
            window = number(props.get("maximumBatchingWindowInSeconds"), aws_defaults.MAPPING_BATCHING_WINDOW_SECONDS)
            subject = f"{describe(link.mapping)} ({describe(link.queue)})"
            if batch > 1 and _REPORT_BATCH_ITEM_FAILURES not in as_list(props.get("functionResponseTypes")):
                ctx.violation(link.mapping, f"{subject} batchSize {fmt(batch)} without functionResponseTypes "
                                            f"['{_REPORT_BATCH_ITEM_FAILURES}']: one failing message makes the whole "
                                            f"batch return to the queue and be processed again")
            if batch > 10 and window < min_window:
                ctx.violation(link.mapping, f"{subject} batchSize {fmt(batch)} > 10 needs "
                                            f"maximumBatchingWindowInSeconds >= {fmt(min_window)} (got {fmt(window)})")


def _log_groups_by_name(ctx: StackContext) -> dict[str, PolicyResource]:
    groups: dict[str, PolicyResource] = {}
    for group in ctx.index.of_type(types.LOG_GROUP):
        with ctx.about(group):
            groups[str(group.props.get("name") or "")] = group
    return groups


def _log_group(ctx: StackContext, function: PolicyResource, by_name: Mapping[str, PolicyResource]
               ) -> PolicyResource | None:
    """The function's log group: the one its loggingConfig was built from, else Lambda's default name."""
    linked = ctx.index.deps(function, "loggingConfig", types.LOG_GROUP)
    if linked:
        return linked[0]
    # loggingConfig is computed when left unset (unknown at preview): then Lambda logs to /aws/lambda/<name>.
    logging = unless_computed(function, "loggingConfig")
    name = get_path(logging, "logGroup") or f"/aws/lambda/{function.props.get('name')}"
    return by_name.get(str(name))


def _is_literal(value: Any) -> bool:
    """A value that is the secret itself rather than a reference to where it is kept."""
    return isinstance(value, str) and bool(value) and not value.startswith("arn:") and "{{resolve:" not in value


def _logs_runtime_secrets(ctx: StackContext) -> None:
    min_retention = float(ctx.settings["minRetentionDays"])
    runtimes = {str(r) for r in ctx.settings["allowedRuntimes"]}
    secret_name = re.compile(str(ctx.settings["secretNamePattern"]))
    by_name = _log_groups_by_name(ctx)
    for function in ctx.index.of_type(types.FUNCTION):
        with ctx.about(function):
            subject = describe(function)
            group = _log_group(ctx, function, by_name)
            if group is None:
                ctx.violation(function, f"{subject} has no log group in the stack (loggingConfig.logGroup or "
                                        f"/aws/lambda/<name>), so Lambda creates one that never expires")
            else:
                retention = number(group.props.get("retentionInDays"), 0)
                if retention < min_retention:
                    ctx.violation(function, f"{subject} logs to {describe(group)} with retentionInDays "
                                            f"{fmt(retention) if retention else 'unset (never expires)'}; at least "
                                            f"{fmt(min_retention)} required")
            if function.props.get("packageType") != "Image":
                runtime = function.props.get("runtime")
                if runtime not in runtimes:
                    ctx.violation(function, f"{subject} runtime {runtime!r} is not a supported runtime "
                                            f"({', '.join(sorted(runtimes))})")
            variables = get_path(function.props, "environment", "variables", default={})
            for name in list(variables):  # iterating names reads no values: unknown ones stay unread
                if secret_name.search(name) and _is_literal(variables[name]):
                    ctx.violation(function, f"{subject} environment variable {name} holds a literal value; pass "
                                            f"the secret's ARN and read it at run time from Secrets Manager")


RULES = (
    Rule(
        name="lambda-sqs-concurrency-bounded",
        what="A function fed by SQS has reserved concurrency (>= the minimum) or a mapping maximum concurrency, "
             "and its mappings' maximum concurrency sums to no more than its reserved concurrency (-1 = unreserved).",
        why="Unbounded consumers melt the downstream (a database, a model quota) and starve other functions; "
            "caps above the reservation only turn into throttles and retries.",
        scope="stack",
        check=_concurrency_bounded,
        severity=Severity.MEDIUM,
        frameworks=(
            serverless_lens("REL 1", spec="Regulating inbound request rates"),
            well_architected("REL05-BP02", spec="Throttle requests"),
        ),
        remediation=(
            "Set reservedConcurrentExecutions on the function, or scalingConfig.maximumConcurrency on its "
            "mappings, so that the mappings' caps add up to no more than the reservation."
        ),
        url="https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-scaling.html",
        settings={"minimumReservedConcurrency": {"type": "integer", "minimum": 1, "default": 1,
                                                 "description": "Smallest reserved concurrency accepted."}},
        relations=("EventSourceMapping.eventSourceArn -> Queue", "EventSourceMapping.functionName -> Function"),
    ),
    Rule(
        name="lambda-sqs-batch-reporting",
        what="SQS mappings with batchSize > 1 report partial batch failures; batchSize > 10 needs a batching "
             "window (AWS default batch size 10).",
        why="Without ReportBatchItemFailures one poison message makes the whole batch retry; SQS rejects "
            "batches above 10 without a window.",
        scope="stack",
        check=_batch_reporting,
        severity=Severity.MEDIUM,
        frameworks=(
            serverless_lens("REL 2", spec="Building resiliency into a serverless application"),
        ),
        remediation=(
            "Add functionResponseTypes ['ReportBatchItemFailures'] to the mapping (and return "
            "batchItemFailures from the handler); give a batch larger than 10 a "
            "maximumBatchingWindowInSeconds."
        ),
        url="https://docs.aws.amazon.com/lambda/latest/dg/services-sqs-errorhandling.html#services-sqs-batchfailurereporting",
        settings={"minBatchingWindowSeconds": {"type": "number", "minimum": 0, "default": 1,
                                               "description": "Smallest window accepted for batchSize > 10."}},
        relations=("EventSourceMapping.eventSourceArn -> Queue",),
    ),
    Rule(
        name="lambda-logs-runtime-secrets",
        what="Each function has a log group with retention and a supported runtime, and no secret-named "
             "environment variable holding a literal value.",
        why="Logs without retention grow forever; deprecated runtimes stop getting patches; a secret in an "
            "environment variable is readable by anyone who can read the function's configuration.",
        scope="stack",
        check=_logs_runtime_secrets,
        severity=Severity.HIGH,
        frameworks=(
            well_architected("SEC02-BP03", "SEC04-BP01", "SEC06-BP01",
                spec="Store and use secrets securely; configure service and application logging; perform vulnerability "
                     "management"),
            serverless_lens("SEC 3", spec="Implementing application security in a serverless workload"),
        ),
        remediation=(
            "Create the function's log group in the stack with retentionInDays; move to a supported "
            "runtime; replace a literal secret in the environment with its Secrets Manager ARN, read at "
            "run time."
        ),
        url="https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html",
        settings={
            "minRetentionDays": {"type": "integer", "minimum": 1, "default": 1,
                                 "description": "Least log retention accepted, in days."},
            "allowedRuntimes": {"type": "array", "items": {"type": "string"},
                                "default": ["python3.10", "python3.11", "python3.12", "python3.13", "python3.14",
                                            "nodejs20.x", "nodejs22.x", "nodejs24.x", "java17", "java21",
                                            "dotnet8", "ruby3.3", "ruby3.4", "provided.al2023"],
                                "description": "Runtimes AWS supports (not deprecated)."},
            "secretNamePattern": {"type": "string",
                                  "default": r"(?i)(secret|passw(or)?d|passphrase|pwd|token|api_?key|"
                                             r"(private|access|secret|signing|encryption|hmac|master|session)_?key|"
                                             r"credentials?|(^|_)(verification|auth|mfa|otp|totp|recovery|security|"
                                             r"one_?time)_?codes?|(^|_)(otp|pin|salt|pepper|dsn|cookie))$",
                                  "description": "Regular expression for environment variable names that hold "
                                                 "secrets."},
        },
        relations=("Function.loggingConfig -> LogGroup (else the log group named /aws/lambda/<function name>)",),
    ),
)
