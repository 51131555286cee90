"""Step Functions: bounded Distributed Maps that tolerate poison records, observable runs, resilient Tasks."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pulumi_policy import Severity

from .core import aws_defaults, types
from .core.frameworks import serverless_lens, well_architected
from .core.rule import ResourceContext, Rule
from .core.values import as_list, get_path, json_document, truthy

_TOLERANCE_KEYS = ("ToleratedFailurePercentage", "ToleratedFailureCount", "ToleratedFailurePercentagePath",
                   "ToleratedFailureCountPath")
_LOG_LEVELS = ("ALL", "ERROR", "FATAL")


@dataclass(frozen=True)
class _State:
    path: str  # "Map 'Shards' > Task 'Invoke'"
    body: Mapping[str, Any]


def _walk(states: Any, parent: str = "") -> Iterator[_State]:
    """Every state, including those nested in Map processors and Parallel branches."""
    if not isinstance(states, Mapping):
        return
    for name, body in states.items():
        if not isinstance(body, Mapping):
            continue
        path = f"{parent}{body.get('Type', '?')} '{name}'"
        yield _State(path, body)
        for nested in (body.get("ItemProcessor"), body.get("Iterator"), *as_list(body.get("Branches"))):
            if isinstance(nested, Mapping):
                yield from _walk(nested.get("States"), f"{path} > ")


def _is_distributed(state: _State) -> bool:
    return (state.body.get("Type") == "Map"
            and get_path(state.body, "ItemProcessor", "ProcessorConfig", "Mode") == "DISTRIBUTED")


def _map_problems(state: _State, limit: float) -> list[str]:
    problems = []
    concurrency = state.body.get("MaxConcurrency")
    if not isinstance(concurrency, int | float) or not 1 <= concurrency <= limit:
        shown = "MaxConcurrencyPath (unbounded at deploy time)" if "MaxConcurrencyPath" in state.body else (
            f"MaxConcurrency {concurrency if concurrency is not None else 'unset (0 = up to 10,000)'}")
        problems.append(f"Distributed {state.path} has {shown}; it must be 1..{limit:g} so the downstream quota "
                        f"bounds it")
    if not any(k in state.body for k in _TOLERANCE_KEYS):
        problems.append(f"Distributed {state.path} sets no ToleratedFailurePercentage/Count, so one poison "
                        f"record fails the whole run")
    return problems


def _covers_throttling(retry: Any, patterns: list[str]) -> bool:
    if not isinstance(retry, Mapping) or retry.get("MaxAttempts") == 0:
        return False
    return any(p in str(error) for error in as_list(retry.get("ErrorEquals")) for p in patterns)


def _task_problems(state: _State, patterns: list[str]) -> list[str]:
    problems = []
    if not any(_covers_throttling(r, patterns) for r in as_list(state.body.get("Retry"))):
        problems.append(f"{state.path} has no Retry for throttling errors (ErrorEquals matching "
                        f"{', '.join(patterns)})")
    if "TimeoutSeconds" not in state.body and "TimeoutSecondsPath" not in state.body:
        problems.append(f"{state.path} has no TimeoutSeconds, so a hung call holds the execution for up to a year")
    waits_for_callback = str(state.body.get("Resource", "")).endswith(".waitForTaskToken")
    if waits_for_callback and "HeartbeatSeconds" not in state.body and "HeartbeatSecondsPath" not in state.body:
        problems.append(f"{state.path} waits for a task token without HeartbeatSeconds, so a lost callback is "
                        f"noticed only when the whole TimeoutSeconds has passed")
    return problems


def _observability_problems(ctx: ResourceContext) -> list[str]:
    problems = []
    level = get_path(ctx.props, "loggingConfiguration", "level", default="OFF")
    if level not in _LOG_LEVELS or not get_path(ctx.props, "loggingConfiguration", "logDestination"):
        problems.append(f"loggingConfiguration level {level} (needs {'/'.join(_LOG_LEVELS)} and a logDestination)")
    if not truthy(get_path(ctx.props, "tracingConfiguration", "enabled")):
        problems.append("tracingConfiguration.enabled is not true")
    return problems


def _workflow_guardrails(ctx: ResourceContext) -> None:
    limit = float(ctx.settings["maxMapConcurrency"])
    patterns = [str(p) for p in ctx.settings["throttlingErrorPatterns"]]
    kind = str(ctx.props.get("type") or aws_defaults.STATE_MACHINE_TYPE)
    for problem in _observability_problems(ctx):
        ctx.violation(f"{ctx.subject} {problem}")
    definition = json_document(ctx.props.get("definition")) or {}
    for state in _walk(definition.get("States")):
        problems = []
        if _is_distributed(state):
            problems += _map_problems(state, limit)
            if kind != "STANDARD":
                problems.append(f"Distributed {state.path} runs in a state machine of type {kind}; it needs STANDARD")
        if state.body.get("Type") == "Task":
            problems += _task_problems(state, patterns)
        for problem in problems:
            ctx.violation(f"{ctx.subject} definition: {problem}")


RULES = (
    Rule(
        name="sfn-workflow-guardrails",
        what="A Distributed Map has MaxConcurrency in 1..max and a tolerated failure threshold and runs in a "
             "STANDARD state machine; logging and tracing are on; every Task retries throttling and has a timeout; "
             "a Task waiting for a task token has a heartbeat.",
        why="Unbounded fan-out exceeds model quotas, one bad record should not fail a corpus run, and a Task "
            "without a timeout or throttling retry turns a slow dependency into a stuck or failed run.",
        scope="resource",
        resource_types=(types.STATE_MACHINE,),
        check=_workflow_guardrails,
        severity=Severity.MEDIUM,
        frameworks=(
            serverless_lens("REL 2", "OPS 1",
                spec="Building resiliency into a serverless application; evaluating its health"),
            well_architected("REL05-BP03", spec="Control and limit retry calls"),
        ),
        remediation=(
            "Bound a Distributed Map's MaxConcurrency and tolerated failures, run it in a STANDARD state "
            "machine; turn logging and tracing on; give every Task a Retry for throttling and a "
            "TimeoutSeconds (HeartbeatSeconds when it waits for a task token)."
        ),
        url="https://docs.aws.amazon.com/step-functions/latest/dg/sfn-best-practices.html",
        settings={
            "maxMapConcurrency": {"type": "integer", "minimum": 1, "default": 1000,
                                  "description": "Highest MaxConcurrency accepted on a Distributed Map."},
            "throttlingErrorPatterns": {"type": "array", "items": {"type": "string"},
                                        "default": ["States.ALL", "States.TaskFailed", "Throttl", "TooManyRequests"],
                                        "description": "Substrings of ErrorEquals entries that count as retrying "
                                                       "throttling errors."},
        },
    ),
)
