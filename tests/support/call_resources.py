"""What IAM authorizes for a recorded request (`aws_calls.Request`), in a given stack: the action, the ARN it acts on
and the request's context keys, resolved from the request's own parameters.

A handler test runs the function under one configuration, in moto's region. To hold the same request against
another stack, its parameters are resolved again for that stack (`Placement.retarget`): every value the function
took from its configuration becomes the other stack's value of the same variable (a queue URL, a bucket, a model or
inference-profile id, a key prefix), and an identifier AWS issued (a job's or an execution's ARN) is issued again
in that stack's partition, region and account naming that stack's resources. The ARN is then built from those
parameters, in that stack's region (`authorizations`), so prod's model calls name prod's inference profile in prod's
region.

Where AWS chooses part of a name at run time, the resource is a pattern and compared as such (`iam_eval.covers`):
a secret named without its suffix (``secret:<name>-??????``), the job Bedrock creates (``model-invocation-job/*``).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from tests.support.aws_calls import INFERENCE_PROFILE_GEOGRAPHIES, Request, partition_of
from tests.support.iam_actions import iam_action
from tests.support.iam_eval import Authorization, context_of

BEDROCK_SERVICE = "bedrock.amazonaws.com"


@dataclass(frozen=True)
class Placement:
    """Where requests are resolved: a stack's region and account, and each function's environment there.

    ``recorded`` maps each function to the environment its requests were recorded under; ``environments`` to the
    stack's. ``profile_regions`` lists, per inference profile id, the regions it routes to (the stack's config);
    ``job_tags`` the tags this stack's jobs carry (what its submitter's requests put on them).
    """

    region: str
    account: str
    environments: Mapping[str, Mapping[str, str]]
    recorded: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    profile_regions: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    job_tags: Mapping[str, str] = field(default_factory=dict)

    @property
    def partition(self) -> str:
        return partition_of(self.region)

    def arn(self, service: str, resource: str, *, regional: bool = True, with_account: bool = True,
            region: str | None = None) -> str:
        return (f"arn:{self.partition}:{service}:{(region or self.region) if regional else ''}:"
                f"{self.account if with_account else ''}:{resource}")

    # --- re-resolving parameters ---------------------------------------------------------------------------------

    @functools.cached_property
    def renames(self) -> dict[str, str]:
        """Recorded value -> this stack's value, for every configuration variable whose value names something."""
        renames: dict[str, str] = {}
        for function, recorded in self.recorded.items():
            target = self.environments.get(function, {})
            for name, old in recorded.items():
                new = target.get(name)
                if new is not None and new != old and _names_something(old):
                    renames[old] = new
                    old_name, new_name = _last_name(old), _last_name(new)
                    if old_name != old and old_name != new_name and _names_something(old_name):
                        renames.setdefault(old_name, new_name)
        return renames

    def retarget(self, request: Request) -> dict[str, Any]:
        """The request's parameters as the function configured by this stack makes it."""
        renames, prefixes = self.renames, self.prefix_renames
        return dict(_map_strings(request.parameters, lambda s: self._retarget_string(s, request, renames, prefixes)))

    @functools.cached_property
    def prefix_renames(self) -> dict[str, str]:
        """Recorded value -> this stack's value of every ``*PREFIX`` variable that differs."""
        return {old: new for function, recorded in self.recorded.items()
                for name, old in recorded.items() if name.endswith("PREFIX")
                and (new := self.environments.get(function, {}).get(name)) is not None and new != old}

    def _retarget_string(self, value: str, request: Request, renames: Mapping[str, str],
                         prefixes: Mapping[str, str]) -> str:
        if value in renames:
            return renames[value]
        if value.startswith("arn:"):
            parts = value.split(":", 5)
            if len(parts) == 6:
                partition, region, account = parts[1], parts[3], parts[4]
                parts[1] = self.partition if partition == partition_of(request.region) else partition
                parts[3] = self.region if region == request.region else region
                parts[4] = self.account if account == request.account else account
                parts[5] = _rename_segments(parts[5], renames, prefixes)
                return ":".join(parts)
        for old, new in prefixes.items():
            if value.startswith(old):
                return new + value[len(old):]
        return _rename_segments(value, renames, prefixes)

    # --- resolving ------------------------------------------------------------------------------------------------

    def authorizations(self, request: Request) -> list[Authorization]:
        """What IAM authorizes for the request, made by the function configured by this stack, in its region."""
        params = self.retarget(request)
        resolver = RESOLVERS.get(request.service)
        if resolver is None:
            raise LookupError(f"no resource resolver for {request.service} (its {request.operation} was recorded)")
        origin = f"{request.service}.{request.operation}"
        action = iam_action(request.service, request.operation)
        return [Authorization(a or action, resource, context, origin)
                for a, resource, context in resolver(self, request.operation, params)]


Resolved = tuple[str | None, str, Any]  # (action, or None for the request's own; resource; context)


def _names_something(value: str) -> bool:
    return len(value) >= 3 and re.search(r"[A-Za-z]", value) is not None and not value.startswith(("[", "{"))


def _last_name(value: str) -> str:
    if value.startswith("https://"):
        return urlparse(value).path.rstrip("/").rsplit("/", 1)[-1]
    if value.startswith("arn:"):
        return re.split(r"[:/]", value)[-1]
    return value


def _rename_segments(value: str, renames: Mapping[str, str], prefixes: Mapping[str, str]) -> str:
    def one(segment: str) -> str:
        if segment in renames:
            return renames[segment]
        for old, new in prefixes.items():
            if segment.startswith(old.rstrip("/")) and old.rstrip("/"):
                return new.rstrip("/") + segment[len(old.rstrip("/")):]
        return segment
    return "".join(one(s) for s in re.split(r"([:/])", value))


def _map_strings(value: Any, change: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return change(value)
    if isinstance(value, dict):
        return {k: _map_strings(v, change) for k, v in value.items()}
    if isinstance(value, list):
        return [_map_strings(v, change) for v in value]
    return value


# --- resolvers, one per service: (placement, operation, params) -> [(action, resource, context)] ------------------

def _s3(where: Placement, operation: str, params: Mapping[str, Any]) -> list[Resolved]:
    bucket = params["Bucket"]
    if "Key" in params:
        return [(None, f"arn:{where.partition}:s3:::{bucket}/{params['Key']}", ())]
    context = context_of({"s3:prefix": params["Prefix"]}) if "Prefix" in params else ()
    return [(None, f"arn:{where.partition}:s3:::{bucket}", context)]


def _sqs(where: Placement, operation: str, params: Mapping[str, Any]) -> list[Resolved]:
    if "QueueUrl" in params:
        url = urlparse(params["QueueUrl"])
        account, name = url.path.strip("/").split("/")[:2]
        host = url.hostname or ""
        region = host.split(".")[1] if host.startswith("sqs.") else where.region
        return [(None, f"arn:{partition_of(region)}:sqs:{region}:{account}:{name}", ())]
    return [(None, where.arn("sqs", params["QueueName"]), ())]


def _dynamodb(where: Placement, operation: str, params: Mapping[str, Any]) -> list[Resolved]:
    tables = [params["TableName"]] if "TableName" in params else sorted(params.get("RequestItems", {}))
    return [(None, t if t.startswith("arn:") else where.arn("dynamodb", f"table/{t}"), ()) for t in tables]


def _events(where: Placement, operation: str, params: Mapping[str, Any]) -> list[Resolved]:
    resolved: list[Resolved] = []
    for entry in params.get("Entries", []):
        bus = entry.get("EventBusName", "default")
        arn = bus if bus.startswith("arn:") else where.arn("events", f"event-bus/{bus}")
        context = {k: entry[p] for k, p in (("events:source", "Source"), ("events:detail-type", "DetailType"))
                   if p in entry}
        resolved.append((None, arn, context_of(context)))
    return resolved


def _model_arns(where: Placement, model: str, *, with_profile: bool) -> list[str]:
    """A model id's ARNs: the foundation model, or an inference profile and the model in every region it routes to."""
    if model.startswith("arn:"):
        return [model]
    geography, _, base = model.partition(".")
    if geography in INFERENCE_PROFILE_GEOGRAPHIES:
        regions = where.profile_regions.get(model)
        if not regions:
            raise LookupError(f"the regions inference profile {model} routes to are not configured in this stack")
        models = [where.arn("bedrock", f"foundation-model/{base}", with_account=False, region=r) for r in regions]
        return [where.arn("bedrock", f"inference-profile/{model}"), *models] if with_profile else models
    return [where.arn("bedrock", f"foundation-model/{model}", with_account=False)]


def _bedrock_runtime(where: Placement, operation: str, params: Mapping[str, Any]) -> list[Resolved]:
    return [(None, arn, ()) for arn in _model_arns(where, str(params["modelId"]), with_profile=True)]


def _job_arn(where: Placement, identifier: str) -> str:
    # A job named rather than by ARN: Bedrock's id for it is chosen at run time.
    return identifier if identifier.startswith("arn:") else where.arn("bedrock", "model-invocation-job/*")


def _bedrock(where: Placement, operation: str, params: Mapping[str, Any]) -> list[Resolved]:
    if operation == "CreateModelInvocationJob":
        tags = {t["key"]: t["value"] for t in params.get("tags", [])}
        context = context_of({**{f"aws:RequestTag/{k}": v for k, v in tags.items()}, "aws:TagKeys": sorted(tags)})
        # AWS authorizes the creation on the job (its id is Bedrock's) and the model(s) it runs (a profile's models
        # in each region it routes to); passing the job's service role is authorized by iam:PassRole.
        resolved: list[Resolved] = [(None, where.arn("bedrock", "model-invocation-job/*"), context)]
        resolved += [(None, arn, context) for arn in _model_arns(where, str(params["modelId"]), with_profile=False)]
        return [*resolved, ("iam:PassRole", params["roleArn"], context_of({"iam:PassedToService": BEDROCK_SERVICE}))]
    if "jobIdentifier" in params:
        context = context_of({f"aws:ResourceTag/{k}": v for k, v in where.job_tags.items()})
        return [(None, _job_arn(where, str(params["jobIdentifier"])), context)]
    return [(None, "*", ())]  # ListModelInvocationJobs: no resource-level permission


def _bedrock_agent(where: Placement, operation: str, params: Mapping[str, Any]) -> list[Resolved]:
    return [(None, where.arn("bedrock", f"knowledge-base/{params['knowledgeBaseId']}"), ())]


def _stepfunctions(where: Placement, operation: str, params: Mapping[str, Any]) -> list[Resolved]:
    for name in ("executionArn", "stateMachineArn", "mapRunArn"):
        if name in params:
            return [(None, str(params[name]), ())]
    return [(None, "*", ())]  # SendTask*: a task token names no resource


def _secretsmanager(where: Placement, operation: str, params: Mapping[str, Any]) -> list[Resolved]:
    secret = str(params["SecretId"])
    if secret.startswith("arn:"):
        # A complete ARN ends in the six characters Secrets Manager appended; a partial one stops at the name.
        complete = re.search(r":secret:.+-[A-Za-z0-9]{6}$", secret) is not None
        return [(None, secret if complete else f"{secret}-??????", ())]
    return [(None, where.arn("secretsmanager", f"secret:{secret}-??????"), ())]


def _lambda(where: Placement, operation: str, params: Mapping[str, Any]) -> list[Resolved]:
    name = str(params["FunctionName"])
    return [(None, name if name.startswith("arn:") else where.arn("lambda", f"function:{name}"), ())]


RESOLVERS: dict[str, Callable[[Placement, str, Mapping[str, Any]], Sequence[Resolved]]] = {
    "s3": _s3, "sqs": _sqs, "dynamodb": _dynamodb, "events": _events, "bedrock-runtime": _bedrock_runtime,
    "bedrock": _bedrock, "bedrock-agent": _bedrock_agent, "stepfunctions": _stepfunctions,
    "secretsmanager": _secretsmanager, "lambda": _lambda,
}


def profile_regions(config: Any) -> dict[str, tuple[str, ...]]:
    """Inference profile id -> the regions it routes to, from every model section of a stack's config."""
    found: dict[str, tuple[str, ...]] = {}
    if isinstance(config, str) and config.startswith("{"):
        config = json.loads(config)
    if isinstance(config, dict):
        if config.get("inferenceProfileId"):
            found[str(config["inferenceProfileId"])] = tuple(config.get("inferenceProfileRegions", ()))
        for value in config.values():
            found.update(profile_regions(value))
    elif isinstance(config, list):
        for value in config:
            found.update(profile_regions(value))
    return found
