"""Drive the policy pack over its gRPC analyzer protocol, the way the Pulumi CLI does, without the CLI.

What the CLI does, and what is mirrored here (pulumi/pulumi, `sdk/go/common/resource/plugin/analyzer_plugin.go`
and `pkg/resource/deploy/step_generator.go`):

* It starts the pack through the Python language host's `RunPlugin` (`offline.pack_runtime` resolves which Python,
  from the pack's `runtime.options`): `python -u -m pulumi.policy <engine-address> <pack dir>`, with the pack
  directory as working directory and PULUMI_ORGANIZATION / PULUMI_PROJECT / PULUMI_STACK / PULUMI_DRY_RUN /
  PULUMI_CONFIG set. `pulumi.policy` then runs `runpy.run_path(<pack dir>)`, which puts the pack directory first on
  `sys.path` (so the pack's `from rules import ...` resolves) and runs its `__main__.py`; the pack prints its port
  on stdout.
* `ConfigureStack` (stack, project, organization, tags, dry_run), `GetAnalyzerInfo`, then `Configure` with every
  policy's enforcement level and properties: schema defaults, overlaid by the `--policy-pack-config` file
  (`offline.policy_config`).
* `Analyze` for each custom resource, before its step runs, with the resource's *inputs* (unknowns kept as the
  engine's sentinels), URN, name, options and provider. (The engine's step generator also calls it for component
  resources, whose inputs are whatever the component passed to its constructor; no rule of this pack judges
  those, and leaving them out saves a round trip per component.) The engine also calls `Remediate` first; this
  pack has no remediations, so that call is skipped.
* `AnalyzeStack` once after all steps, in preview and in update alike, with every resource's *outputs*
  (`news[urn].Outputs`), parent, dependencies and property dependencies. In a preview the outputs of a resource to
  be created are what the provider's `Create(preview=true)` returns (its planned state); a component's are what it
  registered with `register_outputs`, the root stack's its exports. A stack diagnostic whose URN is not a resource
  of the stack is attributed to the root stack resource.
* Diagnostics whose message says "can't run policy ... during preview" are the SDK's note for a policy that read an
  unknown value; they are reported as `Skipped`, the rest as `Violation`s. The SDK leaves the URN of a resource
  policy's diagnostic empty; like the engine, the URN of the analyzed resource is used.

The Python policy SDK does not connect to the engine address it is given (its `pulumi.log` writes to stderr),
but the CLI serves an Engine service there and so does this driver: anything the pack logs through it, and
everything it writes to stderr, ends up in `PolicyPackProcess.logs`.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent import futures
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
from google.protobuf import empty_pb2, json_format, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc, engine_pb2, engine_pb2_grpc

from offline import policy_config as pack_config
from offline.model import AnalysisReport, Mode, PolicyInfo, ResourceRecord, Skipped, Violation

DEFAULT_PACK_DIR = Path(__file__).resolve().parent.parent / "policies"
ORGANIZATION = "organization"  # the Pulumi organization the offline engine reports for every stack
_SKIP_MARKERS = ("can't run policy", "during preview")
_LEVELS = {analyzer_pb2.ADVISORY: "advisory", analyzer_pb2.MANDATORY: "mandatory",
           analyzer_pb2.DISABLED: "disabled", analyzer_pb2.REMEDIATE: "remediate"}
_LEVEL_VALUES = {name: value for value, name in _LEVELS.items()}
_SEVERITIES = {analyzer_pb2.POLICY_SEVERITY_LOW: "low", analyzer_pb2.POLICY_SEVERITY_MEDIUM: "medium",
               analyzer_pb2.POLICY_SEVERITY_HIGH: "high", analyzer_pb2.POLICY_SEVERITY_CRITICAL: "critical"}
# Analyze calls are independent (the engine makes one per resource, each answered from that resource alone), so
# the next request travels while the pack answers the previous one: this hides this Python client's own per-call
# overhead, which the engine's Go client does not have. Responses are still taken in resource order.
_ANALYZE_IN_FLIGHT = 2
_MAX_MESSAGE = 400 * 1024 * 1024  # the SDK raises its limits to 400 MB; a 2,000-resource stack is a few MB


class PolicyPackError(RuntimeError):
    """The policy pack did not start, or failed while analyzing (the message carries its stderr)."""


@dataclass(frozen=True)
class LogEntry:
    severity: str
    message: str
    urn: str = ""


class _Engine(engine_pb2_grpc.EngineServicer):
    """The part of the engine's Engine service a plugin may call: logging and the root resource."""

    def __init__(self, logs: list[LogEntry]) -> None:
        self._logs = logs
        self.root_urn = ""

    def Log(self, request: engine_pb2.LogRequest, context: grpc.ServicerContext) -> empty_pb2.Empty:
        self._logs.append(LogEntry(engine_pb2.LogSeverity.Name(request.severity).lower(), request.message,
                                   request.urn))
        return empty_pb2.Empty()

    def GetRootResource(self, request: Any, context: grpc.ServicerContext) -> Any:
        return engine_pb2.GetRootResourceResponse(urn=self.root_urn)

    def SetRootResource(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.root_urn = request.urn
        return engine_pb2.SetRootResourceResponse()


def _struct(values: Mapping[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(values)  # unknowns stay the engine's sentinel strings, as MarshalProperties(KeepUnknowns) sends
    return struct


def _options(record: ResourceRecord) -> analyzer_pb2.AnalyzerResourceOptions:
    return analyzer_pb2.AnalyzerResourceOptions(protect=record.protect, parent=record.parent or "")


class _Messages:
    """The protocol messages of one stack, each property struct and provider built once."""

    def __init__(self, resources: Sequence[ResourceRecord]) -> None:
        self.by_urn = {r.urn: r for r in resources}
        self._inputs: dict[str, struct_pb2.Struct] = {}
        self._providers: dict[str, analyzer_pb2.AnalyzerProviderResource | None] = {}

    def _properties(self, record: ResourceRecord) -> struct_pb2.Struct:
        if record.urn not in self._inputs:
            self._inputs[record.urn] = _struct(record.inputs)
        return self._inputs[record.urn]

    def _provider(self, record: ResourceRecord) -> analyzer_pb2.AnalyzerProviderResource | None:
        reference = record.provider or ""  # "<provider URN>::<provider id>"
        if reference not in self._providers:
            provider = self.by_urn.get(reference) or self.by_urn.get(reference.rsplit("::", 1)[0])
            self._providers[reference] = None if provider is None else analyzer_pb2.AnalyzerProviderResource(
                type=provider.type, urn=provider.urn, name=provider.name, properties=_struct(provider.inputs))
        return self._providers[reference]

    def analyze_request(self, record: ResourceRecord) -> analyzer_pb2.AnalyzeRequest:
        return analyzer_pb2.AnalyzeRequest(type=record.type, properties=self._properties(record), urn=record.urn,
                                           name=record.name, options=_options(record),
                                           provider=self._provider(record))

    def stack_resource(self, record: ResourceRecord) -> analyzer_pb2.AnalyzerResource:
        properties = _struct(record.outputs)  # the engine sends news[urn].Outputs: a component's registered ones
        return analyzer_pb2.AnalyzerResource(
            type=record.type, properties=properties, urn=record.urn, name=record.name,
            options=_options(record), provider=self._provider(record), parent=record.parent or "",
            dependencies=list(record.dependencies),
            propertyDependencies={key: analyzer_pb2.AnalyzerPropertyDependencies(urns=list(urns))
                                  for key, urns in record.property_dependencies.items() if urns})


class PolicyPackProcess:
    """One running policy pack, reused for many analyses (each one configures it afresh).

    >>> with PolicyPackProcess(stack="dev") as pack:  # doctest: +SKIP
    ...     report = pack.analyze(resources, policy_config={"sqs-redrive-to-dlq": "advisory"})
    """

    def __init__(self, pack_dir: Path = DEFAULT_PACK_DIR, *, project: str = "ai-pipelines", stack: str = "dev",
                 mode: Mode = "preview", python: str = sys.executable, startup_timeout: float = 60.0) -> None:
        self.pack_dir = Path(pack_dir).resolve()
        self.project, self.stack, self.mode = project, stack, mode
        self.python = python
        self.startup_timeout = startup_timeout
        self.logs: list[LogEntry] = []
        self._process: subprocess.Popen[bytes] | None = None
        self._engine_server: grpc.Server | None = None
        self._channel: grpc.Channel | None = None
        self._stub: analyzer_pb2_grpc.AnalyzerStub | None = None
        self._info: analyzer_pb2.AnalyzerInfo | None = None
        self._stdout: queue.Queue[bytes] = queue.Queue()
        self._stderr_pump: threading.Thread | None = None

    # --- lifecycle ------------------------------------------------------------------------------------------

    def __enter__(self) -> PolicyPackProcess:
        self.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        if self._process is not None:
            return
        try:
            self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> None:
        self._engine_server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        engine_pb2_grpc.add_EngineServicer_to_server(_Engine(self.logs), self._engine_server)
        engine_port = self._engine_server.add_insecure_port("127.0.0.1:0")
        self._engine_server.start()
        env = {**os.environ, "PULUMI_ORGANIZATION": ORGANIZATION, "PULUMI_PROJECT": self.project,
               "PULUMI_STACK": self.stack, "PULUMI_DRY_RUN": "true" if self.mode == "preview" else "false",
               "PULUMI_CONFIG": "{}"}
        # Its own session: Ctrl-C reaches this process, which then stops the pack in order (see stop()).
        self._process = subprocess.Popen(
            [self.python, "-u", "-m", "pulumi.policy", f"127.0.0.1:{engine_port}", str(self.pack_dir)],
            cwd=self.pack_dir, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            start_new_session=True)
        threading.Thread(target=self._pump_stdout, daemon=True).start()
        self._stderr_pump = threading.Thread(target=self._pump_stderr, daemon=True)
        self._stderr_pump.start()
        port = self._read_port()
        options = [("grpc.max_receive_message_length", _MAX_MESSAGE), ("grpc.max_send_message_length", _MAX_MESSAGE)]
        self._channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=options)
        grpc.channel_ready_future(self._channel).result(timeout=self.startup_timeout)
        self._stub = analyzer_pb2_grpc.AnalyzerStub(self._channel)

    def _pump_stdout(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            self._stdout.put(line)

    def _pump_stderr(self) -> None:
        assert self._process is not None and self._process.stderr is not None
        for line in self._process.stderr:
            self.logs.append(LogEntry("stderr", line.decode("utf-8", "replace").rstrip("\n")))

    def _read_port(self) -> int:
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            try:
                line = self._stdout.get(timeout=0.05).decode().strip()
            except queue.Empty:
                assert self._process is not None
                if self._process.poll() is not None:
                    if self._stderr_pump is not None:
                        self._stderr_pump.join(timeout=5)  # the traceback is the useful part of the error
                    raise PolicyPackError(f"policy pack at {self.pack_dir} exited with code "
                                          f"{self._process.returncode} before serving:\n{self.stderr_text()}"
                                          ) from None
                continue
            if line.isdigit():
                return int(line)
            self.logs.append(LogEntry("stdout", line))
        raise PolicyPackError(f"policy pack at {self.pack_dir} printed no port within {self.startup_timeout} s:\n"
                              f"{self.stderr_text()}")

    def stop(self) -> None:
        if self._channel is not None:
            self._channel.close()
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._engine_server is not None:
            self._engine_server.stop(grace=None)
        self._process, self._channel, self._stub, self._engine_server = None, None, None, None

    @property
    def pid(self) -> int | None:
        """The pack's process id while it runs."""
        return self._process.pid if self._process is not None else None

    def stderr_text(self) -> str:
        return "\n".join(entry.message for entry in self.logs if entry.severity == "stderr")

    # --- protocol -------------------------------------------------------------------------------------------

    @property
    def stub(self) -> analyzer_pb2_grpc.AnalyzerStub:
        if self._stub is None:
            raise PolicyPackError("the policy pack is not running (use PolicyPackProcess as a context manager)")
        return self._stub

    def info(self) -> analyzer_pb2.AnalyzerInfo:
        if self._info is None:
            self._info = self._call(self.stub.GetAnalyzerInfo, empty_pb2.Empty())
        return self._info

    def policies(self) -> list[PolicyInfo]:
        """The pack's policies with their default enforcement levels and config schemas."""
        return [PolicyInfo(p.name, _LEVELS[p.enforcementLevel], p.description,
                           json_format.MessageToDict(p.configSchema), severity=_SEVERITIES.get(p.severity, ""),
                           remediation=p.remediation_steps, url=p.url, tags=tuple(p.tags))
                for p in self.info().policies]

    def _call(self, method: Any, request: Any) -> Any:
        try:
            return method(request)
        except grpc.RpcError as error:
            raise PolicyPackError(f"policy pack call failed: {error.details()}\n{self.stderr_text()}") from error

    def analyze(self, resources: Sequence[ResourceRecord], *, policy_config: Mapping[str, Any] | None = None,
                stack_tags: Mapping[str, str] | None = None) -> AnalysisReport:
        """One analysis, as one `pulumi preview` (or `up`) would run it: configure, Analyze each, AnalyzeStack."""
        policies = self.policies()
        resolved = pack_config.resolve(policies, policy_config)
        self._call(self.stub.ConfigureStack, analyzer_pb2.AnalyzerStackConfigureRequest(
            stack=self.stack, project=self.project, organization=ORGANIZATION, dry_run=self.mode == "preview",
            tags=dict(stack_tags or {})))
        self._call(self.stub.Configure, analyzer_pb2.ConfigureAnalyzerRequest(policyConfig={
            name: analyzer_pb2.PolicyConfig(enforcementLevel=_LEVEL_VALUES[entry.enforcement],
                                            properties=_struct(entry.properties))
            for name, entry in resolved.items()}))
        effective = [replace(p, enforcement=resolved[p.name].enforcement) for p in policies]
        report = AnalysisReport(policies=effective, violations=[], skipped=[], pack_name=self.info().name,
                                pack_version=self.info().version)
        stack = _Messages(resources)
        custom = [r for r in resources if r.custom]
        requests = (stack.analyze_request(r) for r in custom)
        with futures.ThreadPoolExecutor(_ANALYZE_IN_FLIGHT) as calls:
            responses = list(calls.map(lambda request: self._call(self.stub.Analyze, request), requests))
        for record, response in zip(custom, responses, strict=True):
            self._collect(report, response, lambda _urn, urn=record.urn: urn)
        root = self._root_urn(resources)
        response = self._call(self.stub.AnalyzeStack, analyzer_pb2.AnalyzeStackRequest(
            resources=[stack.stack_resource(r) for r in resources]))
        self._collect(report, response, lambda urn: urn if urn in stack.by_urn else root)
        return report

    def _root_urn(self, resources: Iterable[ResourceRecord]) -> str:
        stack = next((r.urn for r in resources if r.type == "pulumi:pulumi:Stack"), None)
        return stack or f"urn:pulumi:{self.stack}::{self.project}::pulumi:pulumi:Stack::{self.project}-{self.stack}"

    @staticmethod
    def _collect(report: AnalysisReport, response: analyzer_pb2.AnalyzeResponse, attribute: Any) -> None:
        for diagnostic in response.diagnostics:
            urn = attribute(diagnostic.urn)
            if all(marker in diagnostic.message for marker in _SKIP_MARKERS):
                report.skipped.append(Skipped(diagnostic.policyName, urn, diagnostic.message))
            else:
                report.violations.append(Violation(diagnostic.policyName, _LEVELS[diagnostic.enforcementLevel], urn,
                                                   diagnostic.message))
        report.not_applicable += [(n.policy_name, n.reason) for n in response.not_applicable]


def analyze(resources: list[ResourceRecord], *, project: str, stack: str, mode: Mode = "preview",
            policy_config: dict[str, Any] | None = None, pack_dir: Path = DEFAULT_PACK_DIR,
            python: str = sys.executable, stack_tags: dict[str, str] | None = None) -> AnalysisReport:
    """Start the pack, analyze one stack, stop the pack (also on errors and Ctrl-C)."""
    with PolicyPackProcess(pack_dir, project=project, stack=stack, mode=mode, python=python) as pack:
        return pack.analyze(resources, policy_config=policy_config, stack_tags=stack_tags)
