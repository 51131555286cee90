"""What each role is used for, as the authorizations AWS makes with it, in one stack.

* A function's role: the requests its handler made in the handler tests (re-resolved for this stack), and what the
  Lambda service does with the role: write the function's logs and traces, poll its event source mappings, send a
  failed asynchronous invocation to its on-failure destination, manage a VPC function's network interfaces.
* The state machine's role: every service integration its definition calls (Task states and their parameters), a
  Distributed Map's child executions, its ItemReader and ResultWriter, log delivery and tracing.
* The Bedrock batch service role: what each job the submitter created reads (its shard), writes (its output
  prefix) and invokes (its model, or inference profile and the models it routes to).
* A schedule's or an event target's role: invoking its target, and sending to its dead-letter queue.
* With the stack's customer-managed key, what each of those requests asks of the key (`stack_key.py`): a request on
  a store encrypted with it makes the service call KMS as the role, and a schedule or a state machine encrypted with
  it uses the key as its role.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlparse

from offline.synth import Synthesis, load_stack_files
from tests.least_privilege.roles import FUNCTION, Role
from tests.least_privilege.stack_key import StackKeyUses
from tests.support.aws_calls import CallRegistry, Request
from tests.support.call_resources import Placement, profile_regions
from tests.support.iam_eval import Authorization, context_of
from tests.support.stacks import handler_identity

VPC_INTERFACE = "network-interface/*"  # Lambda's network interfaces get ids chosen by EC2
LOG_DELIVERY = ("logs:CreateLogDelivery", "logs:DeleteLogDelivery", "logs:DescribeLogGroups",
                "logs:DescribeResourcePolicies", "logs:GetLogDelivery", "logs:ListLogDeliveries",
                "logs:PutResourcePolicy", "logs:UpdateLogDelivery")
STATE_MACHINE_TRACING = ("xray:GetSamplingRules", "xray:GetSamplingTargets", "xray:PutTelemetryRecords",
                         "xray:PutTraceSegments")


@dataclass(frozen=True)
class StackUses:
    """A synthesized stack and the handler tests' recording, resolved in that stack's region and account."""

    synthesis: Synthesis
    registry: CallRegistry
    placement: Placement
    _derived: dict[tuple[str, str], list[Authorization]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, synthesis: Synthesis, registry: CallRegistry) -> StackUses:
        environments = {handler_identity(f.inputs["handler"]): dict(f.inputs["environment"]["variables"])
                        for f in synthesis.of_type(FUNCTION)}
        config = load_stack_files(synthesis.stack).config
        placement = Placement(synthesis.account.region, synthesis.account.account_id, environments,
                              recorded=dict(registry.environments), profile_regions=profile_regions(config))
        uses = cls(synthesis, registry, placement)
        tags = {key: value for a in uses.recorded_authorizations("batch_inference.submitter")
                if a.action == "bedrock:CreateModelInvocationJob"
                for key, (value, *_) in a.context if key.startswith("aws:RequestTag/")}
        job_tags = {key.removeprefix("aws:RequestTag/"): value for key, value in tags.items()}
        return cls(synthesis, registry, replace(placement, job_tags=job_tags))

    def recorded_authorizations(self, package: str) -> list[Authorization]:
        key = (package, "recorded")
        if key not in self._derived:
            self._derived[key] = [a for r in self.requests(package) for a in self.placement.authorizations(r)]
        return self._derived[key]

    def requests(self, package: str) -> list[Request]:
        return sorted(self.registry.requests.get(package, {}))

    def function(self, arn: str) -> Any:
        return next(f for f in self.synthesis.of_type(FUNCTION) if self.function_arn(f) == arn)

    def function_arn(self, function: Any) -> str:
        return self.placement.arn("lambda", f"function:{function.inputs['name']}")

    def authorizations(self, role: Role) -> list[Authorization]:
        """Everything AWS authorizes with the role in this stack."""
        derive = {"function": self._function, "state machine": self._state_machine, "bedrock jobs": self._jobs,
                  "schedule": self._schedule, "event target": self._event_target}.get(role.kind)
        key = (role.name, role.kind)
        if key not in self._derived:
            found = derive(role) if derive else []
            self._derived[key] = sorted(set(found) | set(self.stack_key.behind(role, found)))
        return self._derived[key]

    @property
    def stack_key(self) -> StackKeyUses:
        return StackKeyUses.build(self.synthesis, self.placement)

    # --- functions ------------------------------------------------------------------------------------------------

    def _function(self, role: Role) -> list[Authorization]:
        function, package = role.users[0], role.package or ""
        return [*self.recorded_authorizations(package), *self._lambda_service(function)]

    def _lambda_service(self, function: Any) -> Iterator[Authorization]:
        name, where = function.inputs["name"], self.placement
        group = (function.inputs.get("loggingConfig") or {}).get("logGroup", f"/aws/lambda/{name}")
        for action in ("logs:CreateLogStream", "logs:PutLogEvents"):  # stream names are the runtime's
            yield Authorization(action, where.arn("logs", f"log-group:{group}:log-stream:*"), (), "Lambda logs")
        if (function.inputs.get("tracingConfig") or {}).get("mode") == "Active":
            for action in ("xray:PutTraceSegments", "xray:PutTelemetryRecords"):
                yield Authorization(action, "*", (), "Lambda active tracing")
        for mapping in self.synthesis.of_type("aws:lambda/eventSourceMapping:EventSourceMapping"):
            if mapping.inputs["functionName"] == name:
                for action in ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"):
                    yield Authorization(action, mapping.inputs["eventSourceArn"], (), "event source mapping")
        for config in self.synthesis.of_type("aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig"):
            if config.inputs["functionName"] == name:
                for outcome in ("onFailure", "onSuccess"):
                    destination = ((config.inputs.get("destinationConfig") or {}).get(outcome) or {}).get(
                        "destination")
                    if destination:
                        yield _send_to(destination, f"asynchronous invocation {outcome} destination")
        vpc = function.inputs.get("vpcConfig") or {}
        if vpc.get("subnetIds"):
            interface = where.arn("ec2", VPC_INTERFACE)
            placed_in = [where.arn("ec2", f"subnet/{s}") for s in vpc["subnetIds"]] + [
                where.arn("ec2", f"security-group/{g}") for g in vpc.get("securityGroupIds", [])]
            for resource in [interface, *placed_in]:
                yield Authorization("ec2:CreateNetworkInterface", resource, (), "Lambda VPC networking")
            for action in ("ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses",
                           "ec2:UnassignPrivateIpAddresses"):
                yield Authorization(action, interface, (), "Lambda VPC networking")
            for action in ("ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"):
                yield Authorization(action, "*", (), "Lambda VPC networking")

    # --- the state machine ----------------------------------------------------------------------------------------

    def _state_machine(self, role: Role) -> list[Authorization]:
        machine = role.users[0]
        name = machine.inputs["name"]
        definition = json.loads(machine.inputs["definition"])
        found: list[Authorization] = []
        for state_name, state, scope in _scoped_states(definition, ()):
            origin = f"state {state_name}"
            if state.get("Type") == "Task":
                found += self._task(state, origin)
            if state.get("Type") == "Map" and (state.get("ItemProcessor") or {}).get(
                    "ProcessorConfig", {}).get("Mode") == "DISTRIBUTED":
                children = self.placement.arn("states", f"execution:{name}/*:*")  # <machine>/<map run>:<child>
                found.append(Authorization("states:StartExecution", self.placement.arn(
                    "states", f"stateMachine:{name}"), (), f"{origin} (Distributed Map)"))
                found += [Authorization(a, children, (), f"{origin} (Distributed Map)")
                          for a in ("states:DescribeExecution", "states:StopExecution", "states:RedriveExecution")]
                found += self._item_reader(state, origin, scope)
                found += self._result_writer(state, origin)
        if (machine.inputs.get("loggingConfiguration") or {}).get("level", "OFF") != "OFF":
            found += [Authorization(a, "*", (), "log delivery") for a in LOG_DELIVERY]
        if (machine.inputs.get("tracingConfiguration") or {}).get("enabled"):
            found += [Authorization(a, "*", (), "tracing") for a in STATE_MACHINE_TRACING]
        return found

    def _task(self, state: Mapping[str, Any], origin: str) -> list[Authorization]:
        resource = str(state["Resource"])
        integration = re.fullmatch(r"arn:[^:]+:states:::([a-z0-9-]+):(\w+)(?:\.\w+)?", resource)
        if integration is None and ":lambda:" in resource:
            return [Authorization("lambda:InvokeFunction", resource, (), origin)]
        if integration is not None and integration.group(1) == "lambda" and integration.group(2) == "invoke":
            return [Authorization("lambda:InvokeFunction", str(state["Parameters"]["FunctionName"]), (), origin)]
        raise NotImplementedError(f"{origin}: the integration {resource} is not resolved by this check")

    def _item_reader(self, state: Mapping[str, Any], origin: str, scope: Scope) -> list[Authorization]:
        reader = state.get("ItemReader")
        if not reader:
            return []
        if not str(reader["Resource"]).endswith(":s3:getObject"):
            raise NotImplementedError(f"{origin}: ItemReader {reader['Resource']} is not resolved by this check")
        parameters = reader["Parameters"]
        if "Bucket" in parameters and "Key" in parameters:
            return [Authorization("s3:GetObject", f"arn:{self.placement.partition}:s3:::{parameters['Bucket']}/"
                                                  f"{parameters['Key']}", (), f"{origin} ItemReader")]
        # Bucket and key from the state input: objects a previous state's function wrote (the sharder's shards).
        path = str(parameters.get("Key.$", ""))
        producer = _producer(path, scope)
        if producer is None:
            raise NotImplementedError(f"{origin}: no state produces {path}")
        package = handler_identity(self.function(producer).inputs["handler"])
        return [Authorization("s3:GetObject", a.resource, (), f"{origin} ItemReader (written by {package})")
                for a in self.recorded_authorizations(package) if a.action == "s3:PutObject"]

    def _result_writer(self, state: Mapping[str, Any], origin: str) -> list[Authorization]:
        writer = state.get("ResultWriter")
        if not writer:
            return []
        parameters = writer["Parameters"]
        prefix = str(parameters.get("Prefix", "")).rstrip("/")
        objects = f"arn:{self.placement.partition}:s3:::{parameters['Bucket']}/{prefix}/*"  # <prefix>/<map run>/...
        return [Authorization(a, objects, (), f"{origin} ResultWriter")
                for a in ("s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts")]

    # --- the Bedrock batch service role --------------------------------------------------------------------------

    def _jobs(self, role: Role) -> list[Authorization]:
        found: list[Authorization] = []
        for user in role.users:
            package = handler_identity(user.inputs["handler"])
            for request in self.requests(package):
                if request.operation != "CreateModelInvocationJob":
                    continue
                params = self.placement.retarget(request)
                if params["roleArn"] != role.arn:
                    continue
                origin = f"a batch job {package} created"
                source = urlparse(params["inputDataConfig"]["s3InputDataConfig"]["s3Uri"])
                output = urlparse(params["outputDataConfig"]["s3OutputDataConfig"]["s3Uri"])
                partition = self.placement.partition
                source_key, output_prefix = source.path.lstrip("/"), output.path.lstrip("/")
                found += [
                    Authorization("s3:GetObject", f"arn:{partition}:s3:::{source.netloc}/{source_key}", (), origin),
                    Authorization("s3:ListBucket", f"arn:{partition}:s3:::{source.netloc}",
                                  context_of({"s3:prefix": source_key}), origin),
                    # Bedrock writes <output prefix><job id>/..., the id its own.
                    Authorization("s3:PutObject", f"arn:{partition}:s3:::{output.netloc}/{output_prefix}*", (),
                                  origin),
                    Authorization("s3:ListBucket", f"arn:{partition}:s3:::{output.netloc}",
                                  context_of({"s3:prefix": output_prefix}), origin),
                ]
                invoke = Request("bedrock-runtime", "InvokeModel", json.dumps({"modelId": params["modelId"]}),
                                 self.placement.region, self.placement.account)
                found += [replace(a, origin=origin) for a in Placement.authorizations(
                    replace(self.placement, recorded={}), invoke)]
        return found

    # --- schedules and event targets -----------------------------------------------------------------------------

    def _schedule(self, role: Role) -> list[Authorization]:
        found = []
        for schedule in role.users:
            target = schedule.inputs["target"]
            found.append(_invoke(target["arn"], f"schedule {schedule.inputs['name']}"))
            if (target.get("deadLetterConfig") or {}).get("arn"):
                found.append(_send_to(target["deadLetterConfig"]["arn"], f"schedule {schedule.inputs['name']} DLQ"))
        return found

    def _event_target(self, role: Role) -> list[Authorization]:
        return [_invoke(target.inputs["arn"], f"event target {target.name}") for target in role.users]


def _send_to(destination: str, origin: str) -> Authorization:
    service = destination.split(":")[2]
    action = {"sqs": "sqs:SendMessage", "sns": "sns:Publish", "lambda": "lambda:InvokeFunction",
              "events": "events:PutEvents"}.get(service)
    if action is None:
        raise NotImplementedError(f"{origin}: destination {destination} is not resolved by this check")
    return Authorization(action, destination, (), origin)


def _invoke(target: str, origin: str) -> Authorization:
    if target.split(":")[2] == "states":
        return Authorization("states:StartExecution", target, (), origin)
    return _send_to(target, origin)


def _states(definition: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for name, state in definition.get("States", {}).items():
        yield name, state
        for nested in (state.get("ItemProcessor"), state.get("Iterator"), *state.get("Branches", [])):
            if nested:
                yield from _states(nested)


Scope = tuple[tuple[Mapping[str, Any], Mapping[str, Any]], ...]
"""Where a state is: (states block, the Map state running it) from the definition's top inwards."""


def _scoped_states(block: Mapping[str, Any], scope: Scope,
                   owner: Mapping[str, Any] | None = None) -> Iterator[tuple[str, Mapping[str, Any], Scope]]:
    here: Scope = (*scope, (block, owner or {}))
    for name, state in block.get("States", {}).items():
        yield name, state, here
        for nested in (state.get("ItemProcessor"), state.get("Iterator"), *state.get("Branches", [])):
            if nested:
                yield from _scoped_states(nested, here, state)


def _producer(path: str, scope: Scope) -> str | None:
    """The function whose result names what `path` holds in `scope`: a Task of the same states block whose
    ResultPath holds the path, or, inside a Map, whatever named the items the Map read (its ItemSelector)."""
    if not scope:
        return None
    block, owner = scope[-1]
    tasks = sorted((str(s["ResultPath"]), str(s["Parameters"]["FunctionName"])) for s in block["States"].values()
                   if s.get("Type") == "Task" and s.get("ResultPath") not in (None, "$")
                   and "FunctionName" in s.get("Parameters", {}))
    held = [arn for result, arn in tasks if path == result or path.startswith(f"{result}.")]
    if held:
        return held[-1]
    field, _, rest = path.removeprefix("$.").partition(".")
    source = str((owner.get("ItemSelector") or {}).get(f"{field}.$", ""))
    if source.startswith("$$.Map.Item.Value"):  # the items of the owner's reader: named by who wrote it
        return _producer(str(owner["ItemReader"]["Parameters"].get("Key.$", "")), scope[:-1])
    if source.startswith("$."):
        return _producer(f"{source}.{rest}" if rest else source, scope[:-1])
    return None


def configured_prefixes(synthesis: Synthesis) -> frozenset[str]:
    """The key prefixes the stack configures: its functions' ``*PREFIX`` variables and the prefixes of their JSON
    routes, the stack outputs named ``*Prefix``, and its state machines' ResultWriter prefixes."""
    found: set[str] = set()
    for function in synthesis.of_type(FUNCTION):
        for name, value in function.inputs["environment"]["variables"].items():
            if name.endswith("PREFIX"):
                found.add(value)
            elif value.startswith("["):
                found.update(str(route["prefix"]) for route in json.loads(value)
                             if isinstance(route, dict) and "prefix" in route)
    found.update(_output_prefixes(synthesis.outputs))
    for machine in synthesis.of_type("aws:sfn/stateMachine:StateMachine"):
        for _, state in _states(json.loads(machine.inputs["definition"])):
            prefix = ((state.get("ResultWriter") or {}).get("Parameters") or {}).get("Prefix")
            if prefix:
                found.add(f"{str(prefix).rstrip('/')}/")
    return frozenset(p for p in found if p)


def _output_prefixes(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for key, item in value.items():
            if key.endswith("Prefix") and isinstance(item, str):
                yield item
            else:
                yield from _output_prefixes(item)
