"""Record the AWS API calls a Lambda function's code makes while its tests run.

The least-privilege check holds these calls against the IAM role the infrastructure builds for the function:
every call must be allowed, and every granted action must have been exercised. The record is taken through
botocore's event hooks, so it sees exactly what the handler asks of AWS, whether moto or a ``Stubber`` answers.

Example::

    def test_conflict(aws_calls):                    # fixture from tests/handlers/conftest.py
        with aws_calls("kb_sync") as calls:           # name the function by its handler package
            handler(event, context)
        assert ("sqs", "SendMessage") in {(c.service, c.operation) for c in calls}

At the end of the session every function's calls are written to ``.build/aws-calls/<function>.json``:
``{"function": ..., "environment": {...}, "calls": [{"service", "operation", "resource", "count"}]}``, sorted, one
row per distinct (service, operation, resource). ``service`` is botocore's service name (``bedrock-agent``, ``sqs``);
``resource`` is the ARN the request names, or null when it names none (or its service has no resolver).

Only calls made inside a ``recording`` block count, so a test's own setup (creating queues, uploading objects)
is never mistaken for the function's.

The tests run the function under one configuration (``environment``: its environment variables). Another stack
names other resources through other values of the same variables; ``CallRegistry.calls_under`` translates the
recorded calls to that stack's environment, so one recording can be held against every stack's role.

Each call's request is kept too (``CallRegistry.requests``: the parameters that name what it acts on, with the
client's region and the account), so a check can resolve it again under another stack's environment and region
(``tests/support/call_resources.py``) instead of rewriting the ARN recorded here. Payloads (bodies, items, event
details, task tokens) are left out; a call recorded by hand (``CallRegistry.record`` without a request) is given one
from its ARN, or, for S3's implied ``ListBucket`` of a missing key, from the ``GetObject`` that implied it.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import boto3
from botocore import handlers as botocore_handlers

# moto's default account, in which every test resource lives.
DEFAULT_ACCOUNT = "123456789012"
_EVENT = "before-parameter-build"


@dataclass(frozen=True, order=True)
class AwsCall:
    service: str
    operation: str
    resource: str | None


@dataclass(frozen=True, order=True)
class Request:
    """One request as the function made it: ``params`` is the canonical JSON of its naming parameters."""

    service: str
    operation: str
    params: str
    region: str
    account: str

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(json.loads(self.params))


@dataclass
class CallRegistry:
    """Calls recorded per function over a test session."""

    calls: dict[str, list[AwsCall]] = field(default_factory=lambda: defaultdict(list))
    environments: dict[str, dict[str, str]] = field(default_factory=dict)
    requests: dict[str, Counter[Request]] = field(default_factory=lambda: defaultdict(Counter))
    _last: dict[str, Request] = field(default_factory=dict)

    def record(self, function: str, call: AwsCall, request: Request | None = None) -> None:
        self.calls[function].append(call)
        if request is None:
            request = _implied_request(call, self._last.get(function))
        self.requests[function][request] += 1
        self._last[function] = request

    def calls_under(self, function: str, environment: Mapping[str, str]) -> list[AwsCall]:
        """``function``'s calls as its code would make them configured with ``environment`` instead."""
        recorded = self.environments.get(function, {})
        return [rebase(call, recorded, environment) for call in self.calls.get(function, [])]

    def summary(self, function: str) -> list[dict[str, Any]]:
        counts = Counter(self.calls.get(function, []))
        return [{**vars(call), "count": counts[call]} for call in sorted(counts)]

    def write(self, directory: Path) -> list[Path]:
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for function in sorted(self.calls):
            path = directory / f"{function}.json"
            document = {
                "function": function,
                "environment": dict(sorted(self.environments.get(function, {}).items())),
                "calls": self.summary(function),
            }
            path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
            written.append(path)
        return written


REGISTRY = CallRegistry()


@dataclass(frozen=True)
class _Recording:
    function: str
    account: str
    registry: CallRegistry
    calls: list[AwsCall]


class _ActiveRecording:
    """The recording in force, visible from every thread.

    A handler may make its AWS calls from worker threads (a ThreadPoolExecutor reading objects concurrently),
    and neither threads nor `run_in_executor` inherit context variables; handler tests run one at a time, so a
    process-wide slot is both simpler and complete.
    """

    def __init__(self) -> None:
        # Entries are recordings or pause markers (a test playing AWS itself); each block removes its own entry,
        # since a handler thread's block may end while the main thread's is still open.
        self._stack: list[_Recording | _Pause] = []
        self._lock = threading.Lock()

    def get(self) -> _Recording | None:
        with self._lock:
            top = self._stack[-1] if self._stack else None
            return top if isinstance(top, _Recording) else None

    def push(self, entry: _Recording | _Pause) -> None:
        with self._lock:
            self._stack.append(entry)

    def pop(self, entry: _Recording | _Pause) -> None:
        with self._lock:  # by identity: two recordings of one function compare equal
            del self._stack[next(i for i, e in enumerate(self._stack) if e is entry)]


class _Pause:
    """Marks a stretch of a recording in which the calls are the test's own."""


_active = _ActiveRecording()


@contextmanager
def recording(
    function: str,
    *,
    environment: Mapping[str, str] | None = None,
    account: str = DEFAULT_ACCOUNT,
    registry: CallRegistry = REGISTRY,
) -> Iterator[list[AwsCall]]:
    """Record, as ``function``'s, every AWS call made inside the block; yields the list of this block's calls.

    ``environment`` is the configuration the function runs with in the block, kept for ``calls_under``.
    """
    install()
    if environment is not None:
        registry.environments[function] = dict(environment)
    state = _Recording(function, account, registry, [])
    _active.push(state)
    try:
        yield state.calls
    finally:
        _active.pop(state)


@contextmanager
def paused() -> Iterator[None]:
    """Inside a recording, calls the test itself makes (playing SQS, say) are not the function's."""
    marker = _Pause()
    _active.push(marker)
    try:
        yield
    finally:
        _active.pop(marker)


_installed = False


def install() -> None:
    """Hook every botocore session, present and future, once per process.

    Clients copy their session's event handlers when created, so the hook must be on the session first:
    ``BUILTIN_HANDLERS`` reaches every session created from now on (moto hooks in the same way), and the
    current default session is hooked directly. Outside a ``recording`` block the hook does nothing.
    """
    global _installed
    if _installed:
        return
    botocore_handlers.BUILTIN_HANDLERS.append((_EVENT, _on_call))
    if boto3.DEFAULT_SESSION is not None:
        boto3.DEFAULT_SESSION.events.register(_EVENT, _on_call)
    _installed = True


def _on_call(params: Mapping[str, Any], model: Any, context: Mapping[str, Any] | None = None, **_: Any) -> None:
    state = _active.get()
    if state is None:
        return
    service = model.service_model.service_name
    region = (context or {}).get("client_region") or "us-east-1"
    resources: list[str | None] = [*resource_arns(service, params, region=region, account=state.account)] or [None]
    operation = model.name
    if service == "s3" and operation == "GetObject" and params.get("VersionId"):
        operation = "GetObjectVersion"  # reading a named version is authorized by s3:GetObjectVersion
    request = Request(service, operation, _canonical(service, params), region, state.account)
    for resource in resources:
        call = AwsCall(service, operation, resource)
        state.calls.append(call)
        state.registry.record(state.function, call, request)


# Parameters that carry content, not the name of what a call acts on: left out of the kept request.
_PAYLOAD_PARAMETERS = frozenset({
    "Body", "MessageBody", "MessageAttributes", "MessageSystemAttributes", "Detail", "Item", "Key:dynamodb",
    "ExpressionAttributeValues", "ExpressionAttributeNames", "UpdateExpression", "ConditionExpression",
    "ProjectionExpression", "taskToken", "output", "cause", "error", "ContentMD5", "ChecksumSHA256", "messages",
    "system", "inferenceConfig", "body", "Metadata", "ReceiptHandle", "clientRequestToken", "nextToken",
})
_MAX_KEPT_STRING = 1024


def _canonical(service: str, params: Mapping[str, Any]) -> str:
    return json.dumps(_kept(service, params), sort_keys=True, ensure_ascii=False)


def _kept(service: str, value: Any) -> Any:
    if isinstance(value, Mapping):
        kept = {str(k): _kept(service, v) for k, v in value.items()
                if k not in _PAYLOAD_PARAMETERS and f"{k}:{service}" not in _PAYLOAD_PARAMETERS}
        return {k: v for k, v in kept.items() if v is not None}
    if isinstance(value, list | tuple):
        return [_kept(service, v) for v in value]
    if isinstance(value, str):
        return value if len(value) <= _MAX_KEPT_STRING else None
    if isinstance(value, bool | int | float) or value is None:
        return value
    return None  # bytes, streams, datetimes: content


def _implied_request(call: AwsCall, previous: Request | None) -> Request:
    """The request of a call recorded by hand: S3's ``ListBucket`` check of a missing key (a listing of the bucket
    recorded right after the ``GetObject`` that implied it) lists that key as its prefix; otherwise the names in
    the call's ARN."""
    region, account = (previous.region, previous.account) if previous else ("us-east-1", DEFAULT_ACCOUNT)
    params: dict[str, Any] = {}
    if call.resource and call.service == "s3" and call.resource.startswith("arn:"):
        bucket, _, key = call.resource.split(":::", 1)[1].partition("/")
        params = {"Bucket": bucket, **({"Key": key} if key else {})}
        earlier = previous.parameters if previous is not None and previous.service == "s3" else {}
        if not key and earlier.get("Bucket") == bucket and "Key" in earlier:
            params["Prefix"] = earlier["Key"]
    elif call.resource:
        params = {"ResourceArn": call.resource}
    return Request(call.service, call.operation, json.dumps(params, sort_keys=True), region, account)


def rebase(call: AwsCall, recorded: Mapping[str, str], target: Mapping[str, str]) -> AwsCall:
    """Rewrite the resource ``call`` names from one configuration of the function to another.

    Each variable whose value differs maps the resource name it holds (the value itself, or the last path
    segment of a URL such as a queue URL) to the target's; only whole ARN segments are replaced.
    """
    if call.resource is None:
        return call
    renames = {
        _resource_name(old): _resource_name(target[name])
        for name, old in recorded.items()
        if name in target and target[name] != old
    }
    segments = re.split(r"([:/])", call.resource)
    return replace(call, resource="".join(renames.get(segment, segment) for segment in segments))


def _resource_name(value: str) -> str:
    return urlparse(value).path.rstrip("/").rsplit("/", 1)[-1] if value.startswith("https://") else value


# --- resource ARNs --------------------------------------------------------------------------------------------

Resolver = Callable[[Mapping[str, Any], str, str, str], list[str]]
"""(params, partition, region, account) -> the ARNs a request names."""


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def queue_arn(queue_url: str, partition: str, region: str) -> str:
    """``https://sqs.<region>.amazonaws.com/<account>/<name>`` -> ``arn:<partition>:sqs:<region>:<account>:<name>``."""
    account, name = urlparse(queue_url).path.strip("/").split("/")[:2]
    return f"arn:{partition}:sqs:{region}:{account}:{name}"


def _sqs(params: Mapping[str, Any], partition: str, region: str, account: str) -> list[str]:
    if "QueueUrl" in params:
        return [queue_arn(params["QueueUrl"], partition, region)]
    if "QueueName" in params:  # GetQueueUrl, CreateQueue
        owner = params.get("QueueOwnerAWSAccountId", account)
        return [f"arn:{partition}:sqs:{region}:{owner}:{params['QueueName']}"]
    return []


def _bedrock_agent(params: Mapping[str, Any], partition: str, region: str, account: str) -> list[str]:
    if "knowledgeBaseId" in params:
        return [f"arn:{partition}:bedrock:{region}:{account}:knowledge-base/{params['knowledgeBaseId']}"]
    if "agentId" in params:
        return [f"arn:{partition}:bedrock:{region}:{account}:agent/{params['agentId']}"]
    return []


# The geography prefixes of cross-region inference profile ids (``eu.anthropic...``), as Bedrock lists them.
INFERENCE_PROFILE_GEOGRAPHIES = ("us", "eu", "apac", "us-gov", "jp", "au", "ca", "global")


def _bedrock_runtime(params: Mapping[str, Any], partition: str, region: str, account: str) -> list[str]:
    """The ARN a Converse/InvokeModel request names: its model, its inference profile, or the ARN given."""
    model = str(params.get("modelId", ""))
    if model.startswith("arn:"):
        return [model]
    if model.split(".", 1)[0] in INFERENCE_PROFILE_GEOGRAPHIES:
        return [f"arn:{partition}:bedrock:{region}:{account}:inference-profile/{model}"]
    return [f"arn:{partition}:bedrock:{region}::foundation-model/{model}"]


def _s3(params: Mapping[str, Any], partition: str, region: str, account: str) -> list[str]:
    if "Bucket" not in params:
        return []
    if "Key" in params:
        return [f"arn:{partition}:s3:::{params['Bucket']}/{params['Key']}"]
    return [f"arn:{partition}:s3:::{params['Bucket']}"]


def _dynamodb(params: Mapping[str, Any], partition: str, region: str, account: str) -> list[str]:
    tables = [params["TableName"]] if "TableName" in params else list(params.get("RequestItems", {}))
    return [t if t.startswith("arn:") else f"arn:{partition}:dynamodb:{region}:{account}:table/{t}" for t in tables]


def _events(params: Mapping[str, Any], partition: str, region: str, account: str) -> list[str]:
    names = [entry.get("EventBusName", "default") for entry in params.get("Entries", [])]
    if "EventBusName" in params:
        names.append(params["EventBusName"])
    return sorted(
        {n if n.startswith("arn:") else f"arn:{partition}:events:{region}:{account}:event-bus/{n}" for n in names}
    )


RESOLVERS: dict[str, Resolver] = {
    "sqs": _sqs,
    "bedrock-agent": _bedrock_agent,
    "bedrock-runtime": _bedrock_runtime,
    "s3": _s3,
    "dynamodb": _dynamodb,
    "events": _events,
}


def register_resolver(service: str, resolver: Resolver) -> None:
    """Teach the recorder which ARN a service's requests name (for services not covered above)."""
    RESOLVERS[service] = resolver


def resource_arns(service: str, params: Mapping[str, Any], *, region: str, account: str) -> list[str]:
    """The ARNs a request names: from the service's resolver, else any top-level ``...Arn`` parameter."""
    partition = partition_of(region)
    resolver = RESOLVERS.get(service)
    if resolver is not None:
        return resolver(params, partition, region, account)
    return sorted(
        value
        for key, value in params.items()
        if key.lower().endswith("arn") and isinstance(value, str) and value.startswith("arn:")
    )
