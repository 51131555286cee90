"""A resource monitor that registers resources the way the engine does, and records them as the engine holds them.

It extends Pulumi's own `MockMonitor` (so the program runs under the SDK's public mocking path), but registers a
custom resource in the engine's order (`docs/offline-fidelity.md`, "Registration"): the provider's `Check` first,
whose output is what the resource's inputs are from then on (and what `Analyze` receives), then `Create`, whose
state goes back to the program and is what `AnalyzeStack` receives. Per resource it records type, name, parent,
checked inputs, state, id, dependencies and property dependencies; those records drive the component tests, the
policy analysis and the stack export.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import unquote, urlparse

from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime._callbacks import _CallbackServicer
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.proto import resource_pb2
from pulumi.runtime.settings import get_project, get_stack

from offline.model import UNKNOWN, ResourceRecord
from offline.provider import AwsProviderEmulator
from offline.values import from_wire

TRANSFORM_TIMEOUT_SECONDS = 60


class RecordingMonitor(MockMonitor):
    """Records registrations in the order the program makes them."""

    def __init__(self, provider: AwsProviderEmulator) -> None:
        super().__init__(provider)
        self.provider = provider
        self.records: dict[str, ResourceRecord] = {}
        self._explicit_providers: dict[str, dict[str, Any]] = {}  # explicit aws provider URN -> its inputs
        self._stack_transforms: list[Any] = []  # callbacks registered with RegisterStackTransform
        self._own_transforms: dict[str, list[Any]] = {}  # URN -> the transforms a resource declared

    def _provider_config(self, provider_reference: str) -> tuple[str, dict[str, Any]]:
        """(region, default tags) of the provider a resource or invoke names ("<provider URN>::<id>"): an explicit
        aws provider's own settings where it sets them, else the stack's region and no default tags."""
        settings = self._explicit_providers.get(provider_reference.rsplit("::", 1)[0], {}) if provider_reference else {}
        region = settings.get("region")
        default_tags = settings.get("defaultTags")
        if isinstance(default_tags, str):  # a provider's object-valued settings arrive as JSON text
            default_tags = json.loads(default_tags)
        tags = default_tags.get("tags") if isinstance(default_tags, dict) else None
        return (region if isinstance(region, str) else self.provider.account.region,
                dict(tags) if isinstance(tags, dict) else {})

    def make_urn(self, parent: str, type_: str, name: str) -> str:
        """URNs as the engine builds them: the parent's whole type chain, the root stack left out."""
        if parent:
            parent_type = parent.split("::")[2]
            if parent_type != "pulumi:pulumi:Stack":
                type_ = f"{parent_type}${type_}"
        return "urn:pulumi:" + "::".join([get_stack(), get_project(), type_, name])

    def RegisterResource(self, request: Any) -> Any:
        urn = self.make_urn(request.parent, request.type, request.name)
        if request.type == "pulumi:pulumi:Stack":
            self.records[urn] = ResourceRecord(urn=urn, type=request.type, name=request.name, custom=False)
            return resource_pb2.RegisterResourceResponse(urn=urn)
        given = from_wire(self._transformed(request, urn))
        custom = bool(request.custom)
        if custom:
            region, default_tags = self._provider_config(request.provider)
            inputs = self.provider.check(request.type, request.name, urn, given, region=region,
                                         default_tags=default_tags)
            if request.type == "pulumi:providers:aws":
                self._explicit_providers[urn] = inputs
            resource_id, state = self.provider.create(request.type, request.name, inputs, region)
        else:  # a component: its inputs are what it passed to its own constructor; its outputs come later
            inputs, resource_id, state = _drop_nulls(given), "", {}
        self.resources[urn] = MockMonitor.ResourceRegistration(urn, resource_id, state)
        self.records[urn] = ResourceRecord(
            urn=urn,
            type=request.type,
            name=request.name,
            custom=custom,
            inputs=inputs,
            outputs=_drop_nulls(state) if custom else {},
            id=resource_id or (UNKNOWN if custom else None),
            parent=request.parent or None,
            dependencies=list(dict.fromkeys(request.dependencies)),
            property_dependencies={key: list(deps.urns) for key, deps in request.propertyDependencies.items()
                                   if deps.urns},
            protect=bool(request.protect),
            provider=request.provider or None,
            source=_source(request.sourcePosition),
        )
        return resource_pb2.RegisterResourceResponse(urn=urn, id=resource_id, object=_struct(state))

    def RegisterResourceOutputs(self, request: Any) -> Any:
        """A component's (or the root stack's) outputs: what `AnalyzeStack` receives for it, as the engine does."""
        record = self.records.get(request.urn)
        if record is not None:
            record.outputs = _drop_nulls(from_wire(request.outputs))
        return empty_pb2.Empty()

    def RegisterStackTransform(self, request: Any) -> Any:
        self._stack_transforms.append(request)
        return empty_pb2.Empty()

    def _transformed(self, request: Any, urn: str) -> struct_pb2.Struct:
        """The properties after the engine's transforms: the resource's own, then its ancestors', then the stack's
        (pkg/resource/deploy/source_eval.go, RegisterResource). Only properties are taken from a transform's
        result; option changes are not applied offline."""
        transforms = list(request.transforms)
        self._own_transforms[urn] = transforms
        ancestor = request.parent
        while ancestor in self.records:
            transforms += self._own_transforms.get(ancestor, [])
            ancestor = self.records[ancestor].parent or ""
        properties = request.object
        for callback in transforms + self._stack_transforms:
            properties = _run_transform(callback, resource_pb2.TransformRequest(
                type=request.type, name=request.name, custom=request.custom, parent=request.parent,
                properties=properties, options=resource_pb2.TransformResourceOptions()))
        return properties

    def ReadResource(self, request: Any) -> Any:
        """An existing resource (`Resource.get`) or a StackReference: its state as read, known in a preview too."""
        urn = self.make_urn(request.parent, request.type, request.name)
        state = self.provider.read(request.type, request.id, from_wire(request.properties),
                                   self._provider_config(request.provider)[0])
        self.resources[urn] = MockMonitor.ResourceRegistration(urn, request.id, state)
        return resource_pb2.ReadResourceResponse(urn=urn, properties=_struct(state))

    def Invoke(self, request: Any) -> Any:
        if request.tok == "pulumi:pulumi:getResource":
            return super().Invoke(request)
        result = self.provider.invoke(request.tok, from_wire(request.args), self._provider_config(request.provider)[0])
        return resource_pb2.ResourceInvokeResponse(**{"return": _struct(result)})


def _source(position: Any) -> tuple[str, int] | None:
    """The program line the SDK reports as the registration's source (a file: URI and a line), if any."""
    uri = getattr(position, "uri", "")
    if not uri.startswith("file://") or not position.line:
        return None
    return unquote(urlparse(uri).path), int(position.line)


def _run_transform(callback: Any, request: Any) -> struct_pb2.Struct:
    """Call a transform the program registered, on the program's own event loop (this monitor call runs on a
    worker thread while that loop waits for it), as the engine calls it back over the callbacks protocol."""
    for servicer in _CallbackServicer._servicers:
        function = servicer._callbacks.get(callback.token)
        if function is not None:
            pending: Any = function(request.SerializeToString())
            response: Any = asyncio.run_coroutine_threadsafe(pending, servicer._loop).result(
                timeout=TRANSFORM_TIMEOUT_SECONDS)
            return response.properties  # type: ignore[no-any-return]
    raise RuntimeError(f"the program registered a transform ({callback.token}) that no callback server answers")


def _struct(state: dict[str, Any]) -> struct_pb2.Struct:
    struct = struct_pb2.Struct()
    struct.update(state)  # plain JSON: unknowns are the sentinel, assets and archives in wire form
    return struct


def _drop_nulls(props: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in props.items() if v is not None}
